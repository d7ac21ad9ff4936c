import { env, exports } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { base64url, SignJWT } from "jose";
import { ROLES } from "../../src/security/permissions";
import { keyringFromEnv } from "../../lib/security/keyring";
import { issueToken } from "../../lib/security/tokens";
import { ADMIN_KEY, api } from "../helpers";
import { createKey } from "../security/fixtures";
import { type AuthSpec, type Case, FIXED_AGENTS, FUZZ_POOLS, FUZZ_TENANT } from "./cases";
import { checkAnswer, expectationOf, type Route, type Sent } from "./oracle";
import type { SchemaDoc } from "./schema";

/** Live values the placeholders of a case stand for, kept up to date from the answers. */
export interface Live {
  tasks: string[];
  leases: { id: string; token: string }[];
  agents: string[];
  keyIds: string[];
  apiKeys: string[];
  credentials: Record<string, string>;
  /**
   * The highest maxConcurrency each agent was ever registered with: re-registering with a lower one keeps the
   * leases it holds (they finish, no new ones come), so in flight may exceed the current value up to this.
   */
  maxConcurrency: Record<string, number>;
}

export interface Violation {
  category: string;
  route: string;
  signature: string;
  problems: string[];
  repro: string;
}

export interface CategoryStats {
  requests: number;
  /** Which step of the pipeline the oracle expected to decide, per request. */
  decided: Record<string, number>;
  unsendable: number;
  statuses: Record<number, number>;
}

/** Logs generation times, slow batches and requests the runtime refuses to build. */
const DEBUG = false;
const TASK_ID = /^[a-z0-9][a-z0-9_-]{0,62}\.(0|[1-9][0-9]{0,3})\.[A-Za-z0-9_-]{22}$/;
const ROLES_TENANT = "fz-roles";

const b64json = (v: unknown) => base64url.encode(new TextEncoder().encode(JSON.stringify(v)));

export async function makeLive(): Promise<Live> {
  const live: Live = { tasks: [], leases: [], agents: [...FIXED_AGENTS], keyIds: [], apiKeys: [], credentials: { ADMIN: ADMIN_KEY }, maxConcurrency: Object.fromEntries(FIXED_AGENTS.map((a) => [a, 3])) };
  for (const pool of FUZZ_POOLS) {
    for (const agentId of FIXED_AGENTS) {
      const r = await api("POST", `/v1/pools/${pool}/agents`, { agentId, maxConcurrency: 3 });
      if (r.status !== 201) throw new Error(`register ${pool}/${agentId}: ${r.status} ${JSON.stringify(r.body)}`);
    }
    const batch = await api("POST", "/v1/tasks/batch", { tasks: Array.from({ length: 40 }, (_, i) => ({ type: `${pool}.work`, payload: { i }, priority: i % 10 })) });
    if (batch.status !== 201) throw new Error(`batch: ${batch.status}`);
    live.tasks.push(...batch.body.tasks.map((t: { id: string }) => t.id));
    for (const agentId of FIXED_AGENTS) {
      const r = await api("POST", `/v1/pools/${pool}/agents/${agentId}/lease`, { max: 2 });
      for (const t of r.body.tasks) live.leases.push({ id: t.id, token: t.leaseToken });
    }
  }
  // Keys of the tenant the key routes are fuzzed on (revoking them is fine), and one per role elsewhere.
  for (let i = 0; i < 4; i++) {
    const k = await createKey(FUZZ_TENANT, ["client"]);
    live.keyIds.push(k.id);
    live.apiKeys.push(k.key);
  }
  for (const role of ROLES) {
    const k = await createKey(ROLES_TENANT, [role], role === "agent" ? FUZZ_POOLS[0] : undefined);
    live.credentials[`ROLE_${role}`] = k.key;
    const t = await api("POST", "/v1/auth/token", { apiKey: k.key }, { token: null });
    if (t.status !== 200) throw new Error(`token for ${role}: ${t.status}`);
    live.credentials[`JWT_${role}`] = t.body.token;
  }
  // Credentials that must not work, and a few validly signed tokens with odd claims.
  const revoked = await createKey(ROLES_TENANT, ["admin"]);
  await api("DELETE", `/v1/tenants/${ROLES_TENANT}/keys/${revoked.id}`);
  live.credentials.REVOKED = revoked.key;
  live.credentials.WRONG_SECRET = revoked.key.replace(/\.[^.]+$/, `.${"B".repeat(43)}`);
  const keyring = keyringFromEnv(env);
  const now = Date.now();
  const claims = { keyId: "fuzzkey00000", tenant: ROLES_TENANT, roles: ["admin"], pool: null };
  live.credentials.EXPIRED = (await issueToken(keyring, claims, 60, now - 3_600_000)).token;
  live.credentials.NOT_YET = (await issueToken(keyring, claims, 60, now + 3_600_000)).token;
  live.credentials.ROOT = (await issueToken(keyring, { ...claims, roles: ["root"] }, 60, now)).token;
  live.credentials.NO_ROLES = (await issueToken(keyring, { ...claims, roles: [] }, 60, now)).token;
  live.credentials.OTHER_TENANT_ADMIN = (await issueToken(keyring, { ...claims, tenant: "fz-jwt" }, 60, now)).token;
  const client = live.credentials.JWT_client!;
  const [h, p] = client.split(".");
  const payload = JSON.parse(new TextDecoder().decode(base64url.decode(p!)));
  live.credentials.TAMPERED = `${h}.${b64json({ ...payload, roles: ["admin"], ten: "default" })}.${client.split(".")[2]}`;
  live.credentials.NO_SIGNATURE = `${h}.${p}.`;
  live.credentials.ALG_NONE = `${b64json({ alg: "none", typ: "JWT" })}.${b64json({ ...payload, roles: ["admin"] })}.`;
  live.credentials.ALG_RS256 = `${b64json({ alg: "RS256", typ: "JWT", kid: "v1" })}.${p}.${"A".repeat(86)}`;
  live.credentials.KID_UNKNOWN = `${b64json({ alg: "HS256", typ: "JWT", kid: "v999" })}.${p}.${client.split(".")[2]}`;
  live.credentials.OTHER_KEY = await new SignJWT({ ten: "default", roles: ["admin"] })
    .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: "v1" })
    .setSubject("forged")
    .setIssuer("daa-mesh")
    .setAudience("daa-mesh-api")
    .setIssuedAt()
    .setNotBefore(Math.floor(now / 1000) - 10)
    .setExpirationTime("10m")
    .sign(new TextEncoder().encode("not the mesh's key, 32 bytes long!!"));
  return live;
}

const invalid = (variant: string): AuthSpec["label"] => ({ valid: false, variant });
/** The bootstrap key, in several spellings: the super-admin. */
const admin = (variant: string): AuthSpec["label"] => ({ valid: true, roles: ["admin"], superAdmin: true, variant });

/** The credential variants of the auth category; each says whether the mesh must accept it. */
export const CREDENTIALS: readonly AuthSpec[] = [
  { header: "bearer ~~ADMIN~~", label: admin("lower-case scheme") },
  { header: "BEARER ~~ADMIN~~", label: admin("upper-case scheme") },
  { header: "Bearer    ~~ADMIN~~", label: admin("several spaces") },
  { header: "Bearer\t~~ADMIN~~", label: admin("tab") },
  { header: "Bearer ~~ADMIN~~   ", label: admin("trailing spaces") },
  { queryToken: "~~ADMIN~~", upgrade: true, label: admin("?token= on an upgrade") },
  { label: invalid("none") },
  { header: "", label: invalid("empty header") },
  { header: "Bearer", label: invalid("scheme only") },
  { header: "Bearer     ", label: invalid("scheme and spaces") },
  { header: "Bearer ~~ADMIN~~ extra", label: invalid("two words") },
  { header: "Bearer ~~ADMIN~~x", label: invalid("admin key plus a character") },
  { header: "Bearer ~~ADMIN~~, Bearer ~~ADMIN~~", label: invalid("two credentials") },
  { header: "Basic dGVzdDp0ZXN0", label: invalid("basic") },
  { header: "Token ~~ADMIN~~", label: invalid("other scheme") },
  { header: "~~ADMIN~~", label: invalid("no scheme") },
  { header: "Bearer: ~~ADMIN~~", label: invalid("colon") },
  { header: "Bearer,~~ADMIN~~", label: invalid("comma") },
  { header: "Bearer null", label: invalid("null") },
  { header: "Bearer undefined", label: invalid("undefined") },
  { header: `Bearer daa.nobody.AAAAAAAAAAAA.${"A".repeat(43)}`, label: invalid("unknown api key") },
  { header: "Bearer daa.FZ.x.y", label: invalid("malformed api key") },
  { header: `Bearer daa.${"a".repeat(63)}.AAAAAAAAAAAA.${"A".repeat(43)}`, label: invalid("api key, long tenant") },
  { header: "Bearer ~~REVOKED~~", label: invalid("revoked api key") },
  { header: "Bearer ~~WRONG_SECRET~~", label: invalid("api key with a wrong secret") },
  { header: "Bearer ~~EXPIRED~~", label: invalid("expired token") },
  { header: "Bearer ~~NOT_YET~~", label: invalid("token not yet valid") },
  { header: "Bearer ~~TAMPERED~~", label: invalid("tampered token") },
  { header: "Bearer ~~NO_SIGNATURE~~", label: invalid("token without signature") },
  { header: "Bearer ~~ALG_NONE~~", label: invalid("alg none") },
  { header: "Bearer ~~ALG_RS256~~", label: invalid("alg RS256") },
  { header: "Bearer ~~KID_UNKNOWN~~", label: invalid("unknown kid") },
  { header: "Bearer ~~OTHER_KEY~~", label: invalid("signed with another key") },
  { header: "Bearer eyJhbGciOiJIUzI1NiJ9.e30.", label: invalid("empty claims") },
  { header: "Bearer eyJ.eyJ.eyJ", label: invalid("jwt-like garbage") },
  { header: `Bearer ${"A".repeat(9000)}`, label: invalid("9000 characters") },
  { header: `Bearer ${"eyJhbGciOiJIUzI1NiJ9".padEnd(9000, "A")}.e30.x`, label: invalid("long jwt") },
  { header: "Bearer \u00e9\u00e8\u00ff", label: invalid("latin-1") },
  { queryToken: "~~ADMIN~~", label: invalid("?token= without upgrade") },
  { header: "Bearer nope", queryToken: "~~ADMIN~~", upgrade: true, label: invalid("bad header beside a good ?token=") },
  { queryToken: "nope", upgrade: true, label: invalid("bad ?token= on an upgrade") },
  { header: "Bearer ~~ROOT~~", label: { valid: true, roles: ["root"], variant: "signed token, unknown role" } },
  { header: "Bearer ~~NO_ROLES~~", label: { valid: true, roles: [], variant: "signed token, no role" } },
  { header: "Bearer ~~OTHER_TENANT_ADMIN~~", label: { valid: true, roles: ["admin"], variant: "signed token, admin of another tenant" } },
];

function pickOf<T>(list: readonly T[], pick: number, recent = list.length): T | undefined {
  if (list.length === 0) return undefined;
  const window = Math.min(recent, list.length);
  return list[list.length - window + (pick % window)];
}

export function fill(text: string, live: Live, pick: number): string {
  const lease = pickOf(live.leases, pick, 24);
  return text.replace(/~~([A-Za-z0-9_]+)~~/g, (whole, name: string) => {
    switch (name) {
      case "TASK":
        return pickOf(live.tasks, pick) ?? "fz-a.0.AAAAAAAAAAAAAAAAAAAAAA";
      case "TASK2":
        return pickOf(live.tasks, pick * 7 + 3) ?? "fz-a.0.BBBBBBBBBBBBBBBBBBBBBB";
      case "LTASK":
        return lease?.id ?? pickOf(live.tasks, pick) ?? "fz-a.0.AAAAAAAAAAAAAAAAAAAAAA";
      case "LEASE":
        return lease?.token ?? "no-lease";
      case "AGENT":
        return pickOf(live.agents, pick) ?? "ag-1";
      case "KEYID":
        return pickOf(live.keyIds, pick) ?? "AAAAAAAAAAAA";
      case "APIKEY":
        return pickOf(live.apiKeys, pick) ?? "daa.x.y.z";
      default:
        return live.credentials[name] ?? whole;
    }
  });
}

function learn(value: unknown, live: Live, depth = 0): void {
  if (depth > 5 || value === null || typeof value !== "object") return;
  if (Array.isArray(value)) {
    for (const v of value.slice(0, 100)) learn(v, live, depth + 1);
    return;
  }
  const o = value as Record<string, unknown>;
  if (typeof o.id === "string" && TASK_ID.test(o.id) && typeof o.status === "string") {
    live.tasks.push(o.id);
    if (typeof o.leaseToken === "string") live.leases.push({ id: o.id, token: o.leaseToken });
  }
  if (typeof o.agentId === "string" && FUZZ_POOLS.includes(o.pool as never) && !live.agents.includes(o.agentId)) live.agents.push(o.agentId);
  if (typeof o.agentId === "string" && typeof o.maxConcurrency === "number") {
    live.maxConcurrency[o.agentId] = Math.max(live.maxConcurrency[o.agentId] ?? 0, o.maxConcurrency);
  }
  if (typeof o.key === "string" && o.tenant === FUZZ_TENANT && typeof o.id === "string") {
    live.keyIds.push(o.id);
    live.apiKeys.push(o.key);
  }
  for (const k of ["tasks", "results"]) learn(o[k], live, depth + 1);
}

function trim<T>(list: T[], max: number): void {
  if (list.length > max) list.splice(0, list.length - max);
}

/** Names of pool coordinators a request may have written to: path values, task ids, types and pools in its body. */
function poolsNamedBy(text: string, out: Set<string>): void {
  for (const m of text.matchAll(/([a-z0-9][a-z0-9_-]{0,62})\.(0|[1-9][0-9]{0,3})\.[A-Za-z0-9_-]{22}/g)) out.add(m[2] === "0" ? m[1]! : `${m[1]}#${m[2]}`);
  for (const m of text.matchAll(/\/v1\/pools\/([a-z0-9][a-z0-9_-]{0,62})(?=\/|$|\?)/g)) out.add(m[1]!);
  for (const m of text.matchAll(/"type":"([a-z0-9][a-z0-9_-]{0,62})[.":]/g)) out.add(m[1]!);
  for (const m of text.matchAll(/"pool":"([a-z0-9][a-z0-9_-]{0,62})"/g)) out.add(m[1]!);
}

function excerpt(s: string, max = 400): string {
  const shown = s.length > max ? `${s.slice(0, max)}... (${s.length} characters)` : s;
  return JSON.stringify(shown);
}

export class Runner {
  readonly stats: Record<string, CategoryStats> = {};
  readonly violations: Violation[] = [];
  readonly pools = new Set<string>(FUZZ_POOLS);
  threw = 0;

  constructor(
    readonly routes: readonly Route[],
    readonly schemas: SchemaDoc,
    readonly live: Live,
    readonly concurrency = 8,
  ) {}

  /** Sends `numRuns` cases of `arb`, `concurrency` at a time; with `together`, each group shares its live picks. */
  async run(category: string, arb: fc.Arbitrary<Case>, numRuns: number, seed: number, together = false): Promise<void> {
    const t0 = Date.now();
    const cases = fc.sample(arb, { numRuns, seed }).map((c, i) => (together ? { ...c, pick: Math.floor(i / this.concurrency) } : c));
    if (DEBUG) console.log(`${category}: ${cases.length} cases generated in ${Date.now() - t0} ms`);
    for (let i = 0; i < cases.length; i += this.concurrency) {
      const tb = Date.now();
      await Promise.all(cases.slice(i, i + this.concurrency).map((c) => this.send(c, category)));
      if (DEBUG && Date.now() - tb > 500) console.log(`slow batch ${category} ${i}: ${Date.now() - tb} ms`, cases.slice(i, i + this.concurrency).map((c) => `${c.method} ${c.path.slice(0, 80)}`));
      trim(this.live.tasks, 400);
      trim(this.live.leases, 200);
      trim(this.live.agents, 60);
    }
  }

  async send(c: Case, category = c.category): Promise<void> {
    const stats = (this.stats[category] ??= { requests: 0, decided: {}, unsendable: 0, statuses: {} });
    const path = fill(c.path, this.live, c.pick);
    const params = fill(c.query, this.live, c.pick);
    const token = c.auth.queryToken === undefined ? "" : `token=${encodeURIComponent(fill(c.auth.queryToken, this.live, c.pick))}`;
    const query = [params, token].filter((q) => q !== "").join("&");
    const url = `https://mesh.test${path}${query === "" ? "" : `?${query}`}`;
    const headers = new Headers();
    let request: Request;
    let bytes: Uint8Array | null = null;
    try {
      if (c.auth.header !== undefined) headers.set("authorization", fill(c.auth.header, this.live, c.pick));
      if (c.auth.upgrade) headers.set("upgrade", "websocket");
      if (c.body) {
        bytes = c.body.bytes ? new Uint8Array(c.body.bytes) : new TextEncoder().encode(fill(c.body.text ?? "", this.live, c.pick));
        if (c.body.contentType !== null) headers.set("content-type", c.body.contentType ?? "application/json");
        // As an HTTP client would send it, unless the case streams the body or states another length.
        if (c.body.contentLength !== undefined) headers.set("content-length", c.body.contentLength);
        else if (!c.body.stream) headers.set("content-length", String(bytes.byteLength));
      }
      const chunks = bytes;
      const body =
        chunks === null
          ? undefined
          : c.body?.stream
            ? new ReadableStream<Uint8Array>({
                start(controller) {
                  for (let i = 0; i < chunks.byteLength; i += 65_536) controller.enqueue(chunks.slice(i, i + 65_536));
                  controller.close();
                },
              })
            : chunks;
      request = new Request(url, { method: c.method, headers, body });
    } catch (err) {
      // The runtime refuses to build it (a header value that is not a ByteString, a GET with a body...).
      if (DEBUG) console.log("unsendable", c.method, String(err).slice(0, 200));
      stats.unsendable++;
      return;
    }
    stats.requests++;
    const sent: Sent = { method: request.method, url: request.url, headers: request.headers, body: bytes, auth: c.auth.label };
    const exp = expectationOf(sent, this.routes, this.schemas);
    stats.decided[exp.decidedBy] = (stats.decided[exp.decidedBy] ?? 0) + 1;
    const bodyText = bytes ? new TextDecoder().decode(bytes) : "";
    const requestText = `${decodeSafe(request.url)} ${[...request.headers.values()].join(" ")} ${bodyText}`;
    poolsNamedBy(decodeSafe(request.url), this.pools);
    if (bodyText.length < 200_000) poolsNamedBy(bodyText, this.pools);
    let status: number;
    let text = "";
    let resHeaders: Headers;
    try {
      const res = await exports.default.fetch(request);
      status = res.status;
      resHeaders = res.headers;
      if (res.webSocket) {
        res.webSocket.accept();
        res.webSocket.close(1000, "fuzz");
      } else text = await res.text();
    } catch (err) {
      this.threw++;
      this.record(c, category, ["the Worker threw instead of answering"], request, bodyText, 0, String(err));
      return;
    }
    stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
    const problems = checkAnswer(sent, exp, { status, headers: resHeaders, text }, requestText, this.schemas);
    if (problems.length > 0) this.record(c, category, problems, request, bodyText, status, text, exp.decidedBy);
    if (status >= 200 && status < 300 && text.startsWith("{") && text.length < 2_000_000) {
      try {
        learn(JSON.parse(text), this.live);
      } catch {
        // not JSON
      }
    }
  }

  private record(c: Case, category: string, problems: string[], req: Request, bodyText: string, status: number, text: string, decidedBy = ""): void {
    const code = /"code":"(\w+)"/.exec(text)?.[1] ?? "";
    const signature = `${c.route.key} | ${req.method} | ${status} ${code} | ${problems.map((p) => p.replace(/\d+ characters/g, "n characters").slice(0, 60)).join("; ")}`;
    const headers = [...req.headers.entries()].map(([k, v]) => `${k}: ${v.length > 120 ? `${v.slice(0, 120)}...` : v}`).join("\n      ");
    const repro = [
      `${req.method} ${req.url.length > 300 ? `${req.url.slice(0, 300)}... (${req.url.length} characters)` : req.url}`,
      `      ${headers}`,
      `    body: ${bodyText ? excerpt(bodyText) : "(none)"}`,
      `    answer: ${status} ${excerpt(text, 600)}`,
      `    auth: ${c.auth.label.variant}; decided by: ${decidedBy}${c.note ? `; ${c.note}` : ""}`,
    ].join("\n");
    this.violations.push({ category, route: c.route.key, signature, problems, repro });
  }

  /** Violations grouped by signature, one reproduction each. */
  report(categories?: readonly string[]): string {
    const seen = new Map<string, { v: Violation; n: number }>();
    for (const v of this.violations) {
      if (categories && !categories.includes(v.category)) continue;
      const entry = seen.get(v.signature);
      if (entry) entry.n++;
      else seen.set(v.signature, { v, n: 1 });
    }
    return [...seen.values()].map(({ v, n }) => `[${v.category}] x${n} ${v.signature}\n    ${v.problems.join("\n    ")}\n    ${v.repro}`).join("\n\n");
  }

  count(categories: readonly string[]): number {
    return this.violations.filter((v) => categories.includes(v.category)).length;
  }
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The queue invariants of one pool coordinator, read from its SQLite; null when it never stored anything. */
export async function poolInvariantProblems(name: string, everMax: Record<string, number> = {}): Promise<string[] | null> {
  return runInDurableObject(env.POOL.getByName(name), (_, state) => {
    const sql = state.storage.sql;
    if (sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tasks'").toArray().length === 0) return null;
    const problems: string[] = [];
    const kept = sql
      .exec<{ tenant: string; status: string; n: number }>("SELECT tenant, status, n FROM status_counts WHERE n <> 0 ORDER BY tenant, status")
      .toArray()
      .map((r) => `${r.tenant}/${r.status}=${r.n}`);
    const counted = sql
      .exec<{ tenant: string; status: string; n: number }>("SELECT tenant, status, count(*) AS n FROM tasks GROUP BY tenant, status ORDER BY tenant, status")
      .toArray()
      .map((r) => `${r.tenant}/${r.status}=${r.n}`);
    if (kept.join() !== counted.join()) problems.push(`counts by status kept ${kept.join(",")} but counted ${counted.join(",")}`);
    const tokenMismatch = sql.exec<{ n: number }>("SELECT count(*) AS n FROM tasks WHERE (status = 'leased') <> (lease_token IS NOT NULL)").one().n;
    if (tokenMismatch > 0) problems.push(`${tokenMismatch} tasks leased without a lease token or holding one while not leased`);
    const queuedWithDeps = sql.exec<{ n: number }>("SELECT count(*) AS n FROM tasks WHERE status = 'queued' AND pending_deps > 0").one().n;
    if (queuedWithDeps > 0) problems.push(`${queuedWithDeps} queued tasks with pending dependencies`);
    const orphanDeps = sql.exec<{ n: number }>("SELECT count(*) AS n FROM task_deps d JOIN tasks t ON t.seq = d.task_seq WHERE t.status <> 'waiting'").one().n;
    if (orphanDeps > 0) problems.push(`${orphanDeps} dependency rows of tasks that are not waiting`);
    const inFlight = sql
      .exec<{ agent_id: string; n: number; max: number | null }>(
        "SELECT t.agent_id, count(*) AS n, a.max_concurrency AS max FROM tasks t LEFT JOIN agents a ON a.agent_id = t.agent_id WHERE t.status = 'leased' GROUP BY t.agent_id",
      )
      .toArray();
    for (const r of inFlight) {
      if (r.max === null) problems.push(`${r.n} tasks leased to agent ${r.agent_id}, which does not exist`);
      else if (r.n > Math.max(r.max, everMax[r.agent_id] ?? 0)) problems.push(`agent ${r.agent_id} has ${r.n} tasks in flight, over its concurrency ${r.max}`);
    }
    return problems;
  });
}

