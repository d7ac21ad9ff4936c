import fc from "fast-check";
import { ROLES } from "../../src/security/permissions";
import type { AuthLabel, Route } from "./oracle";
import { MAX_BODY_BYTES } from "./oracle";
import { type Json, Raw, SchemaDoc, serialize, setOwn, unusualString } from "./schema";

/**
 * The fuzzer's requests, one generator per category. A case may hold placeholders (`~~TASK~~`, `~~LEASE~~`,
 * `~~ADMIN~~`, ...) that the runner replaces, when it sends the case, with live values: ids of tasks and agents
 * that exist, lease tokens that are current, real credentials. Placeholders are URL- and JSON-safe.
 */

export interface AuthSpec {
  /** The Authorization header, absent: none. */
  header?: string;
  /** `?token=` */
  queryToken?: string;
  upgrade?: boolean;
  label: AuthLabel;
}

export interface BodySpec {
  text?: string;
  bytes?: number[];
  /** Send as a stream, without Content-Length. */
  stream?: boolean;
  contentType?: string | null;
  contentLength?: string;
}

export interface Case {
  category: string;
  route: Route;
  method: string;
  path: string;
  query: string;
  auth: AuthSpec;
  body?: BodySpec;
  /** Picks among live values. */
  pick: number;
  note?: string;
}

export const FUZZ_POOLS = ["fz-a", "fz-b"] as const;
export const FUZZ_TENANT = "fz-t";
export const FIXED_AGENTS = ["ag-1", "ag-2", "ag-3"] as const;

export const ADMIN_AUTH: AuthSpec = { header: "Bearer ~~ADMIN~~", label: { valid: true, roles: ["admin"], superAdmin: true, variant: "admin" } };

const SMALL_WAIT = fc.integer({ min: 0, max: 20 });

export class Generators {
  readonly hint;

  constructor(
    readonly routes: readonly Route[],
    readonly schemas: SchemaDoc,
  ) {
    const taskIdPattern = (this.schemas.doc.components.schemas.SubmitTask?.properties?.dependsOn?.items?.pattern as string | undefined) ?? "^[a-z0-9]{1,8}\\.0\\.[A-Za-z0-9_-]{22}$";
    const randomTaskId = fc.stringMatching(new RegExp(taskIdPattern));
    this.hint = (name: string | undefined, s: Json): fc.Arbitrary<unknown> | undefined => {
      switch (name) {
        case "waitMs":
          return SMALL_WAIT;
        case "leaseToken":
          return fc.oneof({ weight: 4, arbitrary: fc.constant("~~LEASE~~") }, { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 40 }) });
        case "id":
          return s.type === "string" && !s.pattern ? fc.oneof({ weight: 4, arbitrary: fc.constant("~~LTASK~~") }, fc.constant("~~TASK~~"), randomTaskId, fc.string({ maxLength: 20 })) : undefined;
        case "ids":
          return fc.array(fc.oneof({ weight: 3, arbitrary: fc.constant("~~TASK~~") }, randomTaskId), { minLength: 1, maxLength: 3 });
        case "dependsOn":
          return fc.oneof({ weight: 4, arbitrary: fc.constant([]) }, fc.array(fc.oneof(fc.constant("~~TASK~~"), fc.constant("~~TASK2~~"), randomTaskId), { minLength: 1, maxLength: 2 }));
        case "type":
          return s.type === "string" && s.pattern
            ? fc.oneof({ weight: 5, arbitrary: fc.constantFrom("fz-a.work", "fz-b.work", "fz-a.render:v2/x") }, { weight: 1, arbitrary: this.schemas.arbitrary(s, () => undefined) })
            : undefined;
        case "pool":
          return s.type === "string" ? fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...FUZZ_POOLS) }, { weight: 1, arbitrary: this.schemas.arbitrary(s, () => undefined) }) : undefined;
        case "agentId":
          return fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...FIXED_AGENTS) }, { weight: 1, arbitrary: this.schemas.arbitrary(s, () => undefined) });
        case "apiKey":
          return fc.oneof({ weight: 2, arbitrary: fc.constant("~~APIKEY~~") }, fc.string({ minLength: 1, maxLength: 40 }));
        case "maxUnfinishedPerTenant":
          // A tiny quota would turn every later submission to the fuzz pools into a 429.
          return fc.integer({ min: 10_000, max: 100_000_000 });
        case "requireClientCert":
          return fc.constant(false);
        default:
          return undefined;
      }
    };
  }

  // ------------------------------------------------------------------------------------------------------
  // building blocks

  routesWhere(filter: (r: Route) => boolean): fc.Arbitrary<Route> {
    const list = this.routes.filter(filter);
    if (list.length === 0) throw new Error("no route for a category");
    return fc.constantFrom(...list);
  }

  /** A path value: a live one (placeholder) or one matching the parameter's pattern; URL-encoded. */
  liveParam(route: Route, name: string, schema: Json): fc.Arbitrary<string> {
    const pattern = this.schemas.arbitrary(schema, () => undefined).map((v) => encode(String(v)));
    const live = (() => {
      if (name === "pool") return fc.constantFrom(...FUZZ_POOLS);
      if (name === "agentId") return fc.constant("~~AGENT~~");
      if (name === "tenant") return fc.constantFrom(FUZZ_TENANT, FUZZ_TENANT, "default");
      if (name === "id" && route.path.startsWith("/v1/tasks/")) return fc.constantFrom("~~LTASK~~", "~~TASK~~");
      if (name === "id" && route.path.includes("/keys/")) return fc.constant("~~KEYID~~");
      return null;
    })();
    return live ? fc.oneof({ weight: 5, arbitrary: live }, { weight: 1, arbitrary: pattern }) : pattern;
  }

  pathOf(route: Route, values: Record<string, string>): string {
    return route.segments.map((s) => (s.startsWith(":") ? values[s.slice(1)]! : s)).join("/");
  }

  validPath(route: Route): fc.Arbitrary<string> {
    if (route.params.length === 0) return fc.constant(route.path);
    return fc.record(Object.fromEntries(route.params.map((p) => [p.name, this.liveParam(route, p.name, p.schema)]))).map((v) => this.pathOf(route, v));
  }

  validQuery(route: Route): fc.Arbitrary<[string, string][]> {
    if (route.query.length === 0) return fc.constant([]);
    const model = Object.fromEntries(route.query.map((p) => [p.name, this.schemas.arbitrary(p.schema, this.hint, p.name).map((v) => (v instanceof Raw ? v.text : String(v)))]));
    return fc.record(model, { requiredKeys: route.query.filter((p) => p.required).map((p) => p.name) }).map((o) => Object.entries(o) as [string, string][]);
  }

  validBody(route: Route): fc.Arbitrary<unknown> {
    return route.body ? this.schemas.arbitrary(route.body, this.hint) : fc.constant(undefined);
  }

  base(route: Route, category: string, body: fc.Arbitrary<BodySpec | undefined>, query?: fc.Arbitrary<string>): fc.Arbitrary<Case> {
    return fc
      .record({
        path: this.validPath(route),
        query: query ?? this.validQuery(route).map(encodeQuery),
        body,
        pick: fc.nat(),
      })
      .map(({ path, query: q, body: b, pick }) => ({ category, route, method: route.method, path, query: q, auth: ADMIN_AUTH, body: b, pick }));
  }

  withBody(route: Route, text: fc.Arbitrary<string | undefined>): fc.Arbitrary<BodySpec | undefined> {
    return text.map((t) => (t === undefined ? undefined : { text: t, contentType: "application/json" }));
  }

  // ------------------------------------------------------------------------------------------------------
  // categories

  /** Requests built from the OpenAPI schemas: valid, though often unusual (edges, -0, odd strings). */
  valid(): fc.Arbitrary<Case> {
    return this.routesWhere(() => true).chain((route) => this.base(route, "schema-valid", this.withBody(route, this.validBody(route).map((b) => (b === undefined ? undefined : serialize(b))))));
  }

  /** Valid bodies, then 1-3 mutations: missing and extra fields, wrong types, huge numbers, unicode, long strings. */
  mutated(): fc.Arbitrary<Case> {
    return this.routesWhere((r) => r.body !== undefined).chain((route) =>
      this.base(route, "schema-mutated", this.withBody(route, fc.tuple(this.validBody(route), fc.array(mutationArb, { minLength: 1, maxLength: 3 })).map(([b, muts]) => serialize(applyMutations(b, muts))))),
    );
  }

  /** Valid bodies with every string replaced by emoji, RTL, NUL, lone surrogates (escaped) and the like. */
  unicode(): fc.Arbitrary<Case> {
    return this.routesWhere((r) => r.body !== undefined).chain((route) =>
      this.base(
        route,
        "unicode",
        this.withBody(
          route,
          fc.tuple(this.validBody(route), fc.array(unusualString, { minLength: 16, maxLength: 16 }), fc.boolean()).map(([b, strings, keepPlaceholders]) => {
            let i = 0;
            return serialize(mapStrings(b, (s) => (keepPlaceholders && s.startsWith("~~") ? s : strings[i++ % strings.length]!)));
          }),
        ),
      ),
    );
  }

  /** Not JSON, or JSON with traps: truncated, trailing commas, BOMs, bad UTF-8, comments, NaN, control characters. */
  wrongJson(): fc.Arbitrary<Case> {
    return this.routesWhere((r) => r.body !== undefined).chain((route) =>
      this.base(
        route,
        "wrong-json",
        fc.tuple(this.validBody(route), fc.constantFrom(...CORRUPTIONS), fc.nat()).map(([b, corrupt, n]) => corrupt(serialize(b ?? {}), n)),
      ),
    );
  }

  /** Nesting of 1,000 to 500,000 levels: as the whole body, in a free-form field, in a typed field. */
  deep(): fc.Arbitrary<Case> {
    const freeForm = (r: Route) => r.body !== undefined && fc.sample(this.validBody(r), { numRuns: 20, seed: 1 }).some((b) => freeFormPaths(this.schemas, r.body!, b).length > 0);
    return fc.oneof({ weight: 3, arbitrary: this.routesWhere(freeForm) }, { weight: 1, arbitrary: this.routesWhere((r) => r.body !== undefined) }).chain((route) =>
      this.base(
        route,
        "deep-nesting",
        fc
          .record({
            body: this.validBody(route),
            depth: fc.constantFrom(1_000, 6_000, 10_000, 10_000, 100_000, 500_000),
            kind: fc.constantFrom("array", "object", "index keys", "after an index key"),
            where: fc.nat(),
            root: fc.integer({ min: 0, max: 7 }),
          })
          .map(({ body, depth, kind, where, root }) => {
            const arrays = "[".repeat(depth) + "]".repeat(depth);
            const d = Math.min(depth, 150_000);
            const nested = new Raw(
              kind === "array" || depth > 200_000
                ? arrays
                : kind === "object"
                  ? '{"a":'.repeat(d) + "1" + "}".repeat(d)
                  : kind === "index keys"
                    ? '{"0":'.repeat(d) + "1" + "}".repeat(d)
                    : `[{"0":0},${arrays}]`,
            );
            if (root === 0 || body === null || typeof body !== "object") return { text: serialize(nested), contentType: "application/json" };
            const free = freeFormPaths(this.schemas, route.body!, body);
            const paths = free.length > 0 && where % 4 !== 0 ? free : allPaths(body).filter((p) => p.length > 0);
            const target = paths.length > 0 ? paths[where % paths.length]! : [];
            return { text: serialize(replaceAt(body, target, nested)), contentType: "application/json" };
          }),
      ),
    );
  }

  /** Bodies of 10 MiB - 1 KiB to 11 MiB, valid JSON padded with whitespace or a long string, with or without a length. */
  size(): fc.Arbitrary<Case> {
    return this.routesWhere((r) => r.body !== undefined).chain((route) =>
      this.base(
        route,
        "body-size",
        fc
          .record({ body: this.validBody(route), delta: fc.constantFrom(-1024, -1, 0, 1, 2, 4096, MAX_BODY_BYTES / 10), stream: fc.boolean(), inString: fc.boolean(), lie: fc.integer({ min: 0, max: 11 }) })
          .map(({ body, delta, stream, inString, lie }) => {
            const target = MAX_BODY_BYTES + delta;
            let text = serialize(body ?? {});
            const free = body && typeof body === "object" ? freeFormPaths(this.schemas, route.body!, body) : [];
            if (inString && free.length > 0) {
              const withEmpty = serialize(replaceAt(body, free[0]!, ""));
              text = serialize(replaceAt(body, free[0]!, "x".repeat(Math.max(0, target - byteLength(withEmpty)))));
            } else text = text + " ".repeat(Math.max(0, target - byteLength(text)));
            // Now and then a Content-Length that says more than the body holds (the Worker may trust it for 413).
            const lies = [String(MAX_BODY_BYTES * 3), "5", "abc", "-1"];
            return { text, stream, contentType: "application/json", ...(lie < lies.length && !stream ? { contentLength: lies[lie] } : {}) };
          }),
      ),
    );
  }

  /** Every route's path with methods it does not serve, including HEAD, OPTIONS, lower case and made-up ones. */
  wrongMethod(): fc.Arbitrary<Case> {
    return this.routesWhere(() => true).chain((route) =>
      fc
        .record({
          method: fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "patch", "Get", "PURGE", "TRACE", "PROPFIND", "QUERY", "SEARCH", "MKCOL").filter((m) => m.toUpperCase() !== route.method),
          path: this.validPath(route),
          pick: fc.nat(),
          body: this.validBody(route),
          anonymous: fc.boolean(),
        })
        .map(({ method, path, pick, body, anonymous }) => ({
          category: "wrong-method",
          route,
          method,
          path,
          query: "",
          auth: anonymous ? { label: { valid: false, variant: "none" } } : ADMIN_AUTH,
          body: ["GET", "HEAD", "Get", "TRACE"].includes(method) ? undefined : { text: serialize(body ?? {}), contentType: "application/json" },
          pick,
        })),
    );
  }

  /** Missing, wrong and odd Content-Type headers on valid and mutated bodies (the header is not checked). */
  contentType(): fc.Arbitrary<Case> {
    return this.routesWhere((r) => r.body !== undefined).chain((route) =>
      this.base(
        route,
        "content-type",
        fc
          .record({
            body: this.validBody(route),
            muts: fc.array(mutationArb, { maxLength: 1 }),
            type: fc.constantFrom(null, "", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=latin1", "application/json; charset=utf-16", "application/xml", "APPLICATION/JSON", "application/json, text/plain", "application/merge-patch+json", "*/*", "json", "application/json;;;"),
          })
          .map(({ body, muts, type }) => ({ text: serialize(applyMutations(body, muts)), contentType: type })),
      ),
    );
  }

  /** Path values with odd characters: encoded slashes, dots, `..`, NUL, invalid escapes, very long ids, unicode. */
  oddPath(): fc.Arbitrary<Case> {
    return this.routesWhere((r) => r.params.length > 0).chain((route) =>
      fc
        .record({
          values: fc.record(Object.fromEntries(route.params.map((p) => [p.name, this.liveParam(route, p.name, p.schema)]))),
          which: fc.nat(),
          odd: oddSegment,
          body: this.validBody(route),
          pick: fc.nat(),
        })
        .map(({ values, which, odd, body, pick }) => {
          const name = route.params[which % route.params.length]!.name;
          return {
            category: "path-params",
            route,
            method: route.method,
            path: this.pathOf(route, { ...values, [name]: odd }),
            query: "",
            auth: ADMIN_AUTH,
            body: route.body ? { text: serialize(body), contentType: "application/json" } : undefined,
            pick,
          };
        }),
    );
  }

  /** Query strings with repeated keys, odd values, unknown keys, and `?token=` beside a header. */
  query(): fc.Arbitrary<Case> {
    return this.routesWhere((r) => r.method === "GET" || r.query.length > 0).chain((route) => {
      const names = [...route.query.map((p) => p.name), "token", "_", "limit", "cursor", "tenant", "status", "waitMs"];
      return this.base(
        route,
        "query",
        this.withBody(route, this.validBody(route).map((b) => (b === undefined ? undefined : serialize(b)))),
        fc
          .tuple(
            this.validQuery(route),
            fc.array(fc.tuple(fc.constantFrom(...names), oddQueryValue), { minLength: 1, maxLength: 4 }),
            fc.boolean(),
            fc.constantFrom("", "&", "&&", "&=", "&=x", "&limit", "&limit[]=1", "&a=1&a=2&a=3"),
          )
          .map(([valid, odd, oddFirst, tail]) => {
            const parts = oddFirst ? [rawQuery(odd), encodeQuery(valid)] : [encodeQuery(valid), rawQuery(odd)];
            return parts.filter((q) => q !== "").join("&") + tail;
          }),
      );
    });
  }

  /**
   * Valid requests on live tasks, leases and agents, sent in groups that all name the same one at once (the runner
   * gives a group one pick): completions racing cancellations, fails, extends, leases, deletions and redrives.
   */
  races(): fc.Arbitrary<Case> {
    const racy = (r: Route) => r.path.startsWith("/v1/tasks/:id") || r.path.includes(":agentId") || r.key === "POST /v1/tasks/settle" || r.key.endsWith("/dlq/redrive");
    return this.routesWhere((r) => racy(r) && !r.path.endsWith("/connect")).chain((route) =>
      this.base(route, "races", this.withBody(route, this.validBody(route).map((b) => (b === undefined ? undefined : serialize(b))))),
    );
  }

  /** Missing, malformed and forged credentials, `?token=` on ordinary requests, the token on an upgrade. */
  auth(credentials: readonly AuthSpec[]): fc.Arbitrary<Case> {
    // An upgrade request is a GET (the runtime turns any other method with Upgrade: websocket into one).
    const pairs = fc.tuple(fc.constantFrom(...credentials), fc.boolean()).chain(([auth, mutate]) =>
      this.routesWhere((r) => !auth.upgrade || r.method === "GET").map((route) => [route, auth, mutate] as const),
    );
    return pairs.chain(([route, auth, mutate]) =>
      this.base(
        route,
        "auth",
        this.withBody(
          route,
          fc.tuple(this.validBody(route), fc.array(mutationArb, { maxLength: mutate ? 1 : 0 })).map(([b, muts]) => (b === undefined ? undefined : serialize(applyMutations(b, muts)))),
        ),
      ).map((c) => ({ ...c, auth })),
    );
  }

  /** Real API keys of every role (and JWTs of them), valid or mutated requests: a role the table refuses gets 403. */
  roles(): fc.Arbitrary<Case> {
    return fc.tuple(this.routesWhere((r) => !r.public), fc.constantFrom(...ROLES), fc.boolean(), fc.boolean()).chain(([route, role, mutate, jwt]) =>
      this.base(
        route,
        "roles",
        this.withBody(
          route,
          fc.tuple(this.validBody(route), fc.array(mutationArb, { maxLength: mutate ? 2 : 0 })).map(([b, muts]) => (b === undefined ? undefined : serialize(applyMutations(b, muts)))),
        ),
      ).map((c) => ({ ...c, auth: { header: `Bearer ~~${jwt ? "JWT" : "ROLE"}_${role}~~`, label: { valid: true, roles: [role], variant: `${jwt ? "jwt" : "key"} ${role}` } } })),
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// queries and path values

/** encodeURIComponent, with lone surrogates (which it refuses) as U+FFFD. */
export function encode(s: string): string {
  return encodeURIComponent(s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd"));
}

/** `a=1&b=2`, names and values percent-encoded. */
export function encodeQuery(pairs: [string, string][]): string {
  return pairs.map(([k, v]) => `${encode(k)}=${encode(v)}`).join("&");
}

/** `a=1&b=2` with values as they go on the wire (already escaped where they mean to be). */
function rawQuery(pairs: [string, string][]): string {
  return pairs.map(([k, v]) => `${k}=${v.replace(/[#&]/g, encodeURIComponent)}`).join("&");
}

const oddQueryValue: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("", " ", "1e308", "-0", "NaN", "Infinity", "-Infinity", "9007199254740993", "0x10", "1e1", "1.5", "-1", "+5", "%2B5", "١٢", "５", "0", "100001", "null", "[]", "{}", "dead", "DEAD", "leased,dead"),
  fc.constantFrom("%00", "%FF", "%E2%80%AE", "%F0%9F%99%82", "%zz", "%", "a%2Fb", "..%2F..", "_system", "~~TASK~~"),
  fc.constantFrom("x".repeat(65), "9".repeat(16), "1".repeat(400)),
  fc.string({ maxLength: 12 }).map(encode),
);

const oddSegment: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "%2F",
    "a%2Fb",
    "..",
    ".",
    "%2e%2e",
    "%2E",
    "...",
    "a..b",
    "%00",
    "a%00b",
    "%",
    "%zz",
    "%C0%AF",
    "%FF",
    "%E2%80%AE",
    "%F0%9F%99%82",
    "%ED%A0%80",
    "🙂",
    "%20",
    "+",
    ";",
    "a;b=c",
    "%3F",
    "%23",
    "%2525",
    "~",
    "*",
    "null",
    "undefined",
    "__proto__",
    "constructor",
    "0",
    "-1",
    "1e308",
    "NaN",
    "FZ-A",
    "fz-a%2E0%2EAAAAAAAAAAAAAAAAAAAAAA",
    "fz-a.0.AAAAAAAAAAAAAAAAAAAAAA",
    "fz-a.9999.AAAAAAAAAAAAAAAAAAAAAA",
    "fz-a.10000.AAAAAAAAAAAAAAAAAAAAAA",
    "fz-a.01.AAAAAAAAAAAAAAAAAAAAAA",
    "fz-a.0.AAAAAAAAAAAAAAAAAAAAAAA",
    "nope.0.AAAAAAAAAAAAAAAAAAAAAA",
    "-fz",
    "_system",
    "x".repeat(63),
    "x".repeat(64),
    "A".repeat(128),
    "A".repeat(129),
    "a".repeat(10_000),
    "%41".repeat(3000),
  ),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }).map(encode),
  fc.string({ unit: "binary", minLength: 1, maxLength: 10 }).map(encode),
);

// ---------------------------------------------------------------------------------------------------------
// body mutations

type Path = (string | number)[];

interface Mutation {
  op: "delete" | "extra" | "wrongType" | "number" | "unicode" | "long" | "deep" | "manyItems";
  where: number;
  value: unknown;
  key: string;
}

const extraKey = fc.constantFrom("extra", "__proto__", "constructor", "prototype", "", "🙂", "type ", "TYPE", "a.b", "$where", "\u0000", "\ud800", "x".repeat(1000));
const wrongType = fc.constantFrom<unknown>(null, true, false, 0, 1, -1, "x", "", [], {}, [1, 2], { a: 1 }, [null], "true", "1");
const oddNumber = fc.constantFrom<unknown>(
  new Raw("1e308"),
  new Raw("-1e308"),
  new Raw("1e999"),
  new Raw("-1e999"),
  new Raw("-0"),
  new Raw("-0.0"),
  new Raw("0.0"),
  new Raw("9007199254740993"),
  new Raw("-9007199254740993"),
  new Raw("1.5"),
  new Raw("-1"),
  new Raw("4294967296"),
  new Raw("2147483648"),
  new Raw("1E1"),
  new Raw("5e-324"),
  new Raw("1.0"),
  new Raw("1" + "0".repeat(400)),
  "NaN",
  "Infinity",
  "-Infinity",
  "1e308",
  "0x10",
  "1_000",
  "9007199254740993",
);
const longString = fc.constantFrom(129, 256, 257, 10_001, 65_536, 300_000).chain((n) => fc.constantFrom("x".repeat(n), "🙂".repeat(Math.ceil(n / 2)), "\u0000".repeat(Math.min(n, 5000))));

export const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  op: fc.constantFrom("delete", "delete", "extra", "extra", "wrongType", "wrongType", "number", "number", "unicode", "long", "deep", "manyItems"),
  where: fc.nat(),
  value: fc.oneof(wrongType, oddNumber, unusualString),
  key: extraKey,
}).chain((m) => {
  switch (m.op) {
    case "wrongType":
      return wrongType.map((value) => ({ ...m, value }));
    case "number":
      return oddNumber.map((value) => ({ ...m, value }));
    case "unicode":
      return unusualString.map((value) => ({ ...m, value }));
    case "long":
      return longString.map((value) => ({ ...m, value }));
    case "deep":
      return fc.constantFrom(64, 1000, 10_000).map((d) => ({ ...m, value: new Raw("[".repeat(d) + "]".repeat(d)) }));
    default:
      return fc.constant(m);
  }
});

function clone(v: unknown): unknown {
  if (v instanceof Raw || v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(clone);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) setOwn(out, k, clone((v as Record<string, unknown>)[k]));
  return out;
}

export function allPaths(v: unknown, path: Path = [], out: Path[] = []): Path[] {
  out.push(path);
  if (v instanceof Raw || v === null || typeof v !== "object" || path.length > 8) return out;
  if (Array.isArray(v)) v.forEach((x, i) => allPaths(x, [...path, i], out));
  else for (const k of Object.keys(v)) allPaths((v as Record<string, unknown>)[k], [...path, k], out);
  return out;
}

function get(v: unknown, path: Path): unknown {
  return path.reduce<unknown>((acc, k) => (acc as Record<string | number, unknown> | undefined)?.[k], v);
}

export function replaceAt(v: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value;
  const root = clone(v);
  const parent = get(root, path.slice(0, -1)) as Record<string | number, unknown>;
  const key = path[path.length - 1]!;
  if (Array.isArray(parent)) parent[key as number] = value;
  else setOwn(parent as Record<string, unknown>, String(key), value);
  return root;
}

export function applyMutations(body: unknown, muts: readonly Mutation[]): unknown {
  let v = clone(body ?? {});
  for (const m of muts) {
    const paths = allPaths(v);
    const path = paths[m.where % paths.length]!;
    const target = get(v, path);
    switch (m.op) {
      case "delete": {
        if (path.length === 0) {
          v = undefined;
          break;
        }
        const parent = get(v, path.slice(0, -1)) as Record<string | number, unknown>;
        const key = path[path.length - 1]!;
        if (Array.isArray(parent)) parent.splice(key as number, 1);
        else delete parent[key];
        break;
      }
      case "extra": {
        if (target !== null && typeof target === "object" && !(target instanceof Raw)) {
          if (Array.isArray(target)) target.push(m.value);
          else setOwn(target as Record<string, unknown>, m.key, m.value);
        } else if (path.length > 0) {
          const parent = get(v, path.slice(0, -1));
          if (parent && typeof parent === "object" && !Array.isArray(parent)) setOwn(parent as Record<string, unknown>, m.key, m.value);
        }
        break;
      }
      case "manyItems": {
        const arrays = paths.filter((p) => Array.isArray(get(v, p)));
        const p = arrays.length > 0 ? arrays[m.where % arrays.length]! : path;
        const arr = get(v, p);
        const item = Array.isArray(arr) && arr.length > 0 ? arr[0] : "x";
        const n = [33, 65, 101, 1001][m.where % 4]!;
        v = replaceAt(v, p, Array.from({ length: n }, () => clone(item)));
        break;
      }
      default:
        v = replaceAt(v, path, m.value);
    }
  }
  return v;
}

function mapStrings(v: unknown, f: (s: string) => string): unknown {
  if (typeof v === "string") return f(v);
  if (v instanceof Raw || v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map((x) => mapStrings(x, f));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) setOwn(out, k, mapStrings((v as Record<string, unknown>)[k], f));
  return out;
}

/** Paths of `value` (generated from `schema`) where the schema takes any JSON (payload, result, metadata values). */
export function freeFormPaths(schemas: SchemaDoc, schema: Json, value: unknown): Path[] {
  const out: Path[] = [];
  const walk = (s: Json, v: unknown, path: Path): void => {
    const r = schemas.resolve(s);
    if (r.type === undefined && !r.anyOf && !r.oneOf && !("const" in r) && !r.enum) {
      if (path.length > 0) out.push(path);
      return;
    }
    const branch = r.anyOf ?? r.oneOf;
    if (branch) {
      const fit = (branch as Json[]).find((b) => schemas.validate(b, JSON.parse(serialize(v))));
      if (fit) walk(fit, v, path);
      return;
    }
    if (r.type === "object" && v && typeof v === "object" && !Array.isArray(v)) {
      const props = (r.properties ?? {}) as Record<string, Json>;
      for (const k of Object.keys(props)) if (k in (v as object)) walk(props[k]!, (v as Record<string, unknown>)[k], [...path, k]);
      // A free-form map (metadata): its values take any JSON.
      if (r.additionalProperties && typeof r.additionalProperties === "object" && Object.keys(props).length === 0) out.push([...path, "fuzz"]);
    }
    if (r.type === "array" && Array.isArray(v)) v.forEach((x, i) => walk(r.items ?? {}, x, [...path, i]));
  };
  walk(schema, value, []);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// JSON corruptions

export function byteLength(s: string): number {
  return new TextEncoder().encode(s).byteLength;
}

const utf8 = (s: string) => [...new TextEncoder().encode(s)];

/** Breaks the JSON text of a valid body in one of many ways; `n` picks a position. */
export const CORRUPTIONS: readonly ((text: string, n: number) => BodySpec)[] = [
  (t, n) => ({ text: t.slice(0, n % Math.max(1, t.length)) }),
  (t) => ({ text: t.slice(0, -1) }),
  (t) => ({ text: t.replace(/}$/, ",}") }),
  (t) => ({ text: t.replace(/]/, ",]") }),
  (t) => ({ text: `\uFEFF${t}` }),
  (t) => ({ text: `\uFEFF\uFEFF${t}` }),
  (t) => ({ bytes: [0xff, 0xfe, ...[...t].flatMap((ch) => [ch.charCodeAt(0) & 0xff, ch.charCodeAt(0) >> 8])] }),
  (t) => ({ text: t.replace(/"/g, "'") }),
  (t) => ({ text: `/* comment */${t}` }),
  (t) => ({ text: `${t} // comment` }),
  () => ({ text: '{"a": NaN}' }),
  () => ({ text: '{"a": Infinity}' }),
  (t) => ({ text: t.replace(/"(\w+)":/g, "$1:") }),
  (t) => ({ text: `${t}x` }),
  (t) => ({ text: `${t}}` }),
  (t) => ({ text: `${t}${t}` }),
  (t, n) => {
    const b = utf8(t);
    const at = n % Math.max(1, b.length);
    return { bytes: [...b.slice(0, at), 0xff, ...b.slice(at)] };
  },
  () => ({ bytes: utf8('{"type":"fz-a.work","payload":"').concat([0xc0, 0xaf], utf8('"}')) }),
  () => ({ bytes: utf8('{"type":"fz-a.work","payload":"').concat([0xed, 0xa0, 0x80], utf8('"}')) }),
  () => ({ bytes: utf8('{"type":"fz-a.work","payload":"').concat([0xe2, 0x82], utf8('"}')) }),
  () => ({ bytes: utf8('{"type":"fz-a.work","payload":"a').concat([0x00], utf8('b"}')) }),
  () => ({ text: '{"type":"fz-a.work","payload":"line\nbreak"}' }),
  () => ({ text: '{"type":"fz-a.work","payload":"\u2028\u2029"}' }),
  () => ({ text: '{"type":"fz-a.work","payload":"\\x41"}' }),
  () => ({ text: '{"type":"fz-a.work","payload":"\\u12"}' }),
  () => ({ text: '{"type":"fz-a.work","payload":"\\ud800\\udbff\\udc00x"}' }),
  () => ({ text: '{"type":"a","type":"fz-a.work"}' }),
  () => ({ text: '{"type":"fz-a.work","priority":01}' }),
  () => ({ text: '{"type":"fz-a.work","priority":+1}' }),
  () => ({ text: '{"type":"fz-a.work","priority":.5}' }),
  () => ({ text: "" }),
  () => ({ text: " \n\t\r " }),
  () => ({ text: "null" }),
  () => ({ text: "[]" }),
  () => ({ text: '""' }),
  () => ({ text: "0" }),
  () => ({ text: "{" }),
  () => ({ text: "}" }),
  () => ({ text: '{"' }),
  () => ({ text: "\u0000" }),
  () => ({ text: "undefined" }),
  () => ({ text: "{}".repeat(1000) }),
];
