import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { base64url } from "jose";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { decryptField, keyringFromEnv } from "../../lib/security/keyring";
import { api, freshPool } from "../helpers";

const PAYLOAD_SECRET = "sunflower-7731";
const RESULT_SECRET = "marigold-4410";
const PAYLOAD = { secret: PAYLOAD_SECRET, nested: { note: "plain text at rest would be a leak" } };
const RESULT = { answer: RESULT_SECRET, score: 0.93 };
const ENVELOPE = /^e1\.([0-9]+)\.([A-Za-z0-9_-]+)$/;

let tenants = 0;
function freshTenant(): string {
  tenants += 1;
  return `enc-${tenants}-${Math.floor(performance.now())}`;
}

async function clientKey(tenant: string): Promise<string> {
  const res = await api("POST", `/v1/tenants/${tenant}/keys`, { name: "client", roles: ["client"] });
  if (res.status !== 201) throw new Error(`key creation answered ${res.status}`);
  return res.body.key;
}

interface RawRow {
  id: string;
  tenant: string;
  payload: string;
  result: string | null;
}

async function rawRow(pool: string, id: string): Promise<RawRow> {
  return runInDurableObject(env.POOL.getByName(pool), (_, state) =>
    state.storage.sql.exec<{ id: string; tenant: string; payload: string; result: string | null }>("SELECT id, tenant, payload, result FROM tasks WHERE id = ?", id).one(),
  );
}

async function setColumn(pool: string, id: string, column: "payload" | "result", value: string): Promise<void> {
  await runInDurableObject(env.POOL.getByName(pool), (_, state) => {
    state.storage.sql.exec(`UPDATE tasks SET ${column} = ? WHERE id = ?`, value, id);
  });
}

/** Every text value stored in any table of the pool's SQLite database. */
async function everyStoredText(pool: string): Promise<string[]> {
  return runInDurableObject(env.POOL.getByName(pool), (_, state) => {
    const sql = state.storage.sql;
    const tables = sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
      .toArray()
      .map((t) => t.name);
    const texts: string[] = [];
    for (const table of tables) {
      for (const row of sql.exec(`SELECT * FROM "${table}"`).toArray()) {
        for (const value of Object.values(row)) if (typeof value === "string") texts.push(value);
      }
    }
    return texts;
  });
}

/**
 * The base64 and base64url forms the secret takes inside any longer base64 text, at each of the three byte
 * alignments (only the characters that depend on the secret alone).
 */
function base64Forms(secret: string): string[] {
  const forms: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const encoded = btoa("\0".repeat(offset) + secret + "\0\0\0");
    const start = offset === 0 ? 0 : 4;
    const core = encoded.slice(start, start + Math.floor((secret.length - (3 - offset) % 3) / 3) * 4);
    forms.push(core, core.replace(/\+/g, "-").replace(/\//g, "_"));
  }
  return forms.filter((f) => f.length >= 8);
}

function expectNoPlaintext(stored: string, secrets: string[]): void {
  for (const secret of secrets) {
    expect(stored).not.toContain(secret);
    for (const form of base64Forms(secret)) expect(stored).not.toContain(form);
  }
}

/** The bytes inside an envelope, as latin1 text, to search them for plaintext. */
function envelopeBytes(envelope: string): Uint8Array {
  const m = ENVELOPE.exec(envelope);
  if (!m) throw new Error(`not an envelope: ${envelope.slice(0, 40)}`);
  return base64url.decode(m[2]!);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("encryption of payloads and results at rest", () => {
  const pool = freshPool("enc");
  const tenantA = freshTenant();
  const tenantB = freshTenant();
  let keyA = "";
  let keyB = "";
  let taskA = "";
  let taskB = "";
  // What the API answers for each task once completed.
  const seen = new Map<string, { payload: unknown; result: unknown }>();

  beforeAll(async () => {
    [keyA, keyB] = [await clientKey(tenantA), await clientKey(tenantB)];
    // Identical payloads from two tenants.
    const a = await api("POST", "/v1/tasks", { type: `${pool}.work`, payload: PAYLOAD }, { token: keyA });
    const b = await api("POST", "/v1/tasks", { type: `${pool}.work`, payload: PAYLOAD }, { token: keyB });
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(a.body.payload).toEqual(PAYLOAD);
    [taskA, taskB] = [a.body.id, b.body.id];
    // The shared fleet serves both tenants; it sees plaintext payloads in its leases.
    expect((await api("POST", `/v1/pools/${pool}/agents`, { agentId: "w", maxConcurrency: 2 })).status).toBe(201);
    const leased = (await api("POST", `/v1/pools/${pool}/agents/w/lease`, { max: 2 })).body.tasks as { id: string; leaseToken: string; payload: unknown }[];
    expect(leased.map((t) => t.id)).toEqual([taskA, taskB]);
    for (const t of leased) {
      expect(t.payload).toEqual(PAYLOAD);
      const done = await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: t.leaseToken, result: RESULT });
      expect(done.status).toBe(200);
      expect(done.body.result).toEqual(RESULT);
    }
    for (const [id, key] of [
      [taskA, keyA],
      [taskB, keyB],
    ] as const) {
      const got = await api("GET", `/v1/tasks/${id}`, undefined, { token: key });
      expect(got.status).toBe(200);
      seen.set(id, { payload: got.body.payload, result: got.body.result });
    }
  });

  it("detects the plaintext in base64 at every alignment (the check below can fail)", () => {
    for (const pad of ["", "a", "ab"]) {
      for (const encode of [(t: string) => btoa(t), (t: string) => base64url.encode(t)]) {
        expect(() => expectNoPlaintext(encode(pad + JSON.stringify(PAYLOAD)), [PAYLOAD_SECRET])).toThrow();
      }
    }
  });

  it("answers the authorised caller in plaintext", () => {
    expect(seen.get(taskA)).toEqual({ payload: PAYLOAD, result: RESULT });
    expect(seen.get(taskB)).toEqual({ payload: PAYLOAD, result: RESULT });
  });

  it("stores envelopes e1.<version>.<data>, with no plaintext in them, as text or as base64", async () => {
    for (const id of [taskA, taskB]) {
      const row = await rawRow(pool, id);
      for (const stored of [row.payload, row.result!]) {
        const m = ENVELOPE.exec(stored);
        expect(m, stored).not.toBeNull();
        expect(m![1]).toBe(env.DAA_KEY_VERSION);
        expectNoPlaintext(stored, [PAYLOAD_SECRET, RESULT_SECRET, JSON.stringify(PAYLOAD), JSON.stringify(RESULT)]);
        const inside = new TextDecoder("latin1").decode(envelopeBytes(stored));
        expect(inside).not.toContain(PAYLOAD_SECRET);
        expect(inside).not.toContain(RESULT_SECRET);
      }
      // 12 bytes of IV, the ciphertext (as long as the JSON text for AES-GCM), 16 bytes of tag.
      expect(envelopeBytes(row.payload).length).toBe(12 + JSON.stringify(PAYLOAD).length + 16);
      expect(envelopeBytes(row.result!).length).toBe(12 + JSON.stringify(RESULT).length + 16);
    }
  });

  it("leaves the secrets nowhere in the pool's storage", async () => {
    const texts = await everyStoredText(pool);
    expect(texts.length).toBeGreaterThan(4);
    expect(texts.filter((t) => t.includes(PAYLOAD_SECRET) || t.includes(RESULT_SECRET))).toEqual([]);
  });

  it("decrypts with the tenant's key to exactly the JSON the API returns", async () => {
    const keyring = keyringFromEnv(env);
    for (const [id, tenant] of [
      [taskA, tenantA],
      [taskB, tenantB],
    ] as const) {
      const row = await rawRow(pool, id);
      expect(row.tenant).toBe(tenant);
      const payload = await decryptField(keyring, tenant, "payload", row.payload);
      const result = await decryptField(keyring, tenant, "result", row.result!);
      expect(payload).toBe(JSON.stringify(seen.get(id)!.payload));
      expect(result).toBe(JSON.stringify(seen.get(id)!.result));
      expect(JSON.parse(payload)).toEqual(PAYLOAD);
      expect(JSON.parse(result)).toEqual(RESULT);
    }
  });

  it("gives identical plaintexts of two tenants different ciphertexts, each openable only by its own tenant and field", async () => {
    const keyring = keyringFromEnv(env);
    const [a, b] = [await rawRow(pool, taskA), await rawRow(pool, taskB)];
    expect(a.payload).not.toBe(b.payload);
    expect(a.result).not.toBe(b.result);
    await expect(decryptField(keyring, tenantB, "payload", a.payload)).rejects.toThrow(/failed authentication/);
    await expect(decryptField(keyring, tenantA, "payload", b.payload)).rejects.toThrow(/failed authentication/);
    await expect(decryptField(keyring, tenantB, "result", a.result!)).rejects.toThrow(/failed authentication/);
    // A payload moved into the result column does not open either.
    await expect(decryptField(keyring, tenantA, "result", a.payload)).rejects.toThrow(/failed authentication/);
  });

  it("refuses with 500 internal, not another tenant's data, when a ciphertext is copied into another tenant's row", async () => {
    const pool2 = freshPool("enc");
    const [x, y] = [freshTenant(), freshTenant()];
    const [kx, ky] = [await clientKey(x), await clientKey(y)];
    const victim = await api("POST", "/v1/tasks", { type: `${pool2}.work`, payload: { secret: PAYLOAD_SECRET } }, { token: kx });
    const thief = await api("POST", "/v1/tasks", { type: `${pool2}.work`, payload: { mine: true } }, { token: ky });
    expect([victim.status, thief.status]).toEqual([201, 201]);

    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const thiefPayload = (await rawRow(pool2, thief.body.id)).payload;
    await setColumn(pool2, thief.body.id, "payload", (await rawRow(pool2, victim.body.id)).payload);
    const expectInternal = (res: { status: number; body: any }) => {
      expect(res.status).toBe(500);
      expect(res.body).toEqual({ error: { code: "internal", message: expect.any(String) } });
      const text = JSON.stringify(res.body);
      expect(text).not.toContain(PAYLOAD_SECRET);
      expect(text).not.toContain(RESULT_SECRET);
      expect(text).not.toContain("    at ");
      expect(text).not.toMatch(/decrypt|authentication|AES|envelope/i);
    };
    expectInternal(await api("GET", `/v1/tasks/${thief.body.id}`, undefined, { token: ky }));
    expectInternal(await api("GET", `/v1/pools/${pool2}/tasks`, undefined, { token: ky }));
    // The super-admin opens each task with its own tenant's key too, so it cannot be fooled either.
    expectInternal(await api("GET", `/v1/tasks/${thief.body.id}`));
    // The owner still reads its task.
    const own = await api("GET", `/v1/tasks/${victim.body.id}`, undefined, { token: kx });
    expect(own.status).toBe(200);
    expect(own.body.payload).toEqual({ secret: PAYLOAD_SECRET });

    // The same for a result: with the thief's payload restored, both are completed, then the victim's result
    // is copied over the thief's.
    await setColumn(pool2, thief.body.id, "payload", thiefPayload);
    expect((await api("GET", `/v1/tasks/${thief.body.id}`, undefined, { token: ky })).body.payload).toEqual({ mine: true });
    expect((await api("POST", `/v1/pools/${pool2}/agents`, { agentId: "w", maxConcurrency: 2 })).status).toBe(201);
    for (const t of (await api("POST", `/v1/pools/${pool2}/agents/w/lease`, { max: 2 })).body.tasks as { id: string; leaseToken: string }[]) {
      const result = t.id === victim.body.id ? { answer: RESULT_SECRET } : { answer: "mine" };
      expect((await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: t.leaseToken, result })).status).toBe(200);
    }
    expect((await api("GET", `/v1/tasks/${thief.body.id}`, undefined, { token: ky })).body.result).toEqual({ answer: "mine" });
    await setColumn(pool2, thief.body.id, "result", (await rawRow(pool2, victim.body.id)).result!);
    expectInternal(await api("GET", `/v1/tasks/${thief.body.id}/result`, undefined, { token: ky }));
    expectInternal(await api("GET", `/v1/tasks/${thief.body.id}`, undefined, { token: ky }));
    expect((await api("GET", `/v1/tasks/${victim.body.id}`, undefined, { token: kx })).body.result).toEqual({ answer: RESULT_SECRET });
    // Each refusal was logged for the operators, with the reason the client does not see.
    expect(logged.mock.calls.filter((call) => String(call[1]).includes("failed authentication"))).toHaveLength(5);
  });
});
