import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AuditLog } from "../../durable-objects/audit-log";
import { chainEntries, GENESIS_HASH, recordHash, verifyChain, type AuditEntry, type AuditRecord } from "../../lib/audit/chain";

let counter = 0;
/** A tenant name no other test uses, so every test starts from an empty log. */
function freshLog(): DurableObjectStub<AuditLog> {
  counter += 1;
  return env.AUDIT.getByName(`tenant-${counter}-${Math.floor(performance.now())}`);
}

const AT = 1_767_225_600_000;

function entry(i: number, fields: Partial<AuditEntry> = {}): AuditEntry {
  return { actor: `key:k${i % 3}`, action: "task.submit", target: `t-${i}`, outcome: i % 5 === 0 ? "denied" : "success", ip: i % 2 ? "203.0.113.7" : null, at: AT + i, ...fields };
}

const entries = (from: number, n: number): AuditEntry[] => Array.from({ length: n }, (_, k) => entry(from + k));

/** Appends `n` entries in batches, so a large log is built with few calls. */
async function fill(log: DurableObjectStub<AuditLog>, n: number, batch = 500): Promise<void> {
  for (let done = 0; done < n; done += batch) await log.append(entries(done + 1, Math.min(batch, n - done)));
}

async function listAll(log: DurableObjectStub<AuditLog>, limit: number): Promise<{ records: AuditRecord[]; pages: number }> {
  const records: AuditRecord[] = [];
  let cursor: number | null = null;
  let pages = 0;
  do {
    const page: { records: AuditRecord[]; cursor: number | null } = await log.list(limit, cursor);
    records.push(...page.records);
    cursor = page.cursor;
    pages += 1;
  } while (cursor !== null);
  return { records, pages };
}

/** Runs SQL inside the object, as someone with access to its storage would. */
function tamper(log: DurableObjectStub<AuditLog>, query: string, ...bindings: SqlStorageValue[]): Promise<void> {
  return runInDurableObject(log, (_: AuditLog, state) => {
    state.storage.sql.exec(query, ...bindings);
  });
}

/** The message a call failed with; awaited in a try so an RPC rejection is never left unhandled. */
async function failure(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  throw new Error("expected the call to fail");
}

function expectChained(records: AuditRecord[]): void {
  records.forEach((r, i) => {
    expect(r.seq).toBe(i + 1);
    expect(r.prevHash).toBe(i === 0 ? GENESIS_HASH : records[i - 1]?.hash);
    expect(r.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(recordHash(r.seq, r, r.prevHash)).toBe(r.hash);
  });
}

describe("append and list", () => {
  it("answers the records in order, seq 1..n, each linked to the one before and hashed over its content", async () => {
    const log = freshLog();
    expect(await log.head()).toBeNull();
    const first = await log.append(entries(1, 3));
    const second = await log.append(entries(4, 2));
    expect(first.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(second.map((r) => r.seq)).toEqual([4, 5]);
    expect(second[0]?.prevHash).toBe(first[2]?.hash);

    const { records, cursor } = await log.list(100, null);
    expect(cursor).toBeNull();
    expect(records).toEqual([...first, ...second]);
    expect(records.map(({ actor, action, target, outcome, ip, at }) => ({ actor, action, target, outcome, ip, at }))).toEqual(entries(1, 5));
    expectChained(records);
    expect(await log.head()).toEqual({ seq: 5, hash: second[1]?.hash });
  });

  it("computes the documented hash: SHA-256 of the JSON array of the fields, starting from 64 zeros", async () => {
    const log = freshLog();
    const [r] = await log.append([{ actor: "key:k1", action: "task.submit", target: "t1", outcome: "success", ip: null, at: 0 }]);
    const canonical = JSON.stringify([1, 0, "key:k1", "task.submit", "t1", "success", null, "0".repeat(64)]);
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical));
    const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
    expect(r).toMatchObject({ seq: 1, prevHash: "0".repeat(64), hash: hex });
  });

  it("accepts an empty array and appends nothing", async () => {
    const log = freshLog();
    expect(await log.append([])).toEqual([]);
    await log.append(entries(1, 1));
    expect(await log.append([])).toEqual([]);
    expect((await log.list(10, null)).records.map((r) => r.seq)).toEqual([1]);
  });

  it("pages through 2,500 records with the cursor, each record exactly once", async () => {
    const log = freshLog();
    await fill(log, 2_500);
    const page1 = await log.list(1_000, null);
    expect(page1.records).toHaveLength(1_000);
    expect(page1.cursor).toBe(1_000);
    const page3 = await log.list(1_000, 2_000);
    expect(page3.records.map((r) => r.seq)).toEqual(Array.from({ length: 500 }, (_, k) => 2_001 + k));
    expect(page3.cursor).toBeNull();

    const all = await listAll(log, 1_000);
    expect(all.pages).toBe(3);
    expect(all.records).toHaveLength(2_500);
    expectChained(all.records);

    const odd = await listAll(log, 7);
    expect(odd.pages).toBe(Math.ceil(2_500 / 7));
    expect(odd.records).toEqual(all.records);
  });

  it("answers a null cursor when a page ends exactly at the last record", async () => {
    const log = freshLog();
    await log.append(entries(1, 10));
    expect((await log.list(10, null)).cursor).toBeNull();
    expect(await log.list(5, 5)).toMatchObject({ cursor: null });
    expect(await log.list(4, 5)).toMatchObject({ cursor: 9 });
    expect(await log.list(5, 10)).toEqual({ records: [], cursor: null });
  });

  it("refuses a limit outside 1..1000 instead of clamping it", async () => {
    const log = freshLog();
    await log.append(entries(1, 2));
    for (const limit of [0, -1, 1_001, 1.5, Number.NaN]) {
      expect(await failure(() => log.list(limit, null))).toMatch(/limit/);
    }
    expect(await failure(() => log.list(10, -1))).toMatch(/afterSeq/);
    expect((await log.list(1_000, null)).records).toHaveLength(2);
    expect((await log.list(1, null)).records).toHaveLength(1);
  });

  it("refuses an entry that could not be stored as hashed, and appends nothing of its batch", async () => {
    const log = freshLog();
    expect(await failure(() => log.append([entry(1), entry(2, { at: 1.5 })]))).toMatch(/at must be an integer/);
    expect(await failure(() => log.append([entry(1), { ...entry(2), actor: 7 as unknown as string }]))).toMatch(/actor must be a string/);
    expect(await log.head()).toBeNull();
  });

  it("stores unusual text as hashed: NUL, quotes, emoji, and a lone surrogate (made U+FFFD)", async () => {
    const log = freshLog();
    const [r] = await log.append([entry(1, { actor: 'a"\\\u0000b', target: "🙂\u2028x", outcome: "bad\ud800" })]);
    expect(r?.outcome).toBe("bad\uFFFD");
    const { records } = await log.list(1, null);
    expect(records).toEqual([r]);
    expect(await log.verify()).toEqual({ ok: true, records: 1 });
  });
});

describe("concurrent appends", () => {
  it("50 appends at once form one chain, seq 1..50", async () => {
    const log = freshLog();
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append([entry(i + 1)])));
    expect(answers.flat().map((r) => r.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const { records } = await log.list(1_000, null);
    expect(records).toHaveLength(50);
    expectChained(records);
    expect(new Set(records.map((r) => r.prevHash)).size).toBe(50);
    expect(await log.verify()).toEqual({ ok: true, records: 50 });
  });

  it("batches appended at once stay contiguous", async () => {
    const log = freshLog();
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(entries(i * 5 + 1, 5))));
    for (const batch of answers) expect(batch.map((r) => r.seq - (batch[0]?.seq ?? 0))).toEqual([0, 1, 2, 3, 4]);
    expect(await log.verify()).toEqual({ ok: true, records: 100 });
  });
});

describe("verify", () => {
  it("answers ok with zero records for an empty log", async () => {
    expect(await freshLog().verify()).toEqual({ ok: true, records: 0 });
  });

  it("checks 3,000 records across pages", async () => {
    const log = freshLog();
    await fill(log, 3_000);
    expect(await log.verify()).toEqual({ ok: true, records: 3_000 });
    await log.append(entries(3_001, 1));
    expect(await log.verify()).toEqual({ ok: true, records: 3_001 });
  });

  it("finds a changed field at its record", async () => {
    const log = freshLog();
    await log.append(entries(1, 60).map((e) => ({ ...e, outcome: "denied" })));
    await tamper(log, "UPDATE records SET outcome = 'success' WHERE seq = 37");
    expect(await log.verify()).toEqual({ ok: false, brokenAt: 37 });
  });

  it("finds each kind of field change, including the stored links themselves", async () => {
    const cases: [string, number][] = [
      ["UPDATE records SET at = at + 1 WHERE seq = 12", 12],
      ["UPDATE records SET actor = 'key:root' WHERE seq = 1", 1],
      ["UPDATE records SET action = 'key.delete' WHERE seq = 20", 20],
      ["UPDATE records SET target = 'other' WHERE seq = 5", 5],
      ["UPDATE records SET ip = NULL WHERE seq = 7", 7],
      ["UPDATE records SET ip = '198.51.100.1' WHERE seq = 8", 8],
      ["UPDATE records SET ip = 'null' WHERE seq = 10", 10],
      ["UPDATE records SET prev_hash = hash WHERE seq = 15", 15],
      ["UPDATE records SET hash = prev_hash WHERE seq = 16", 16],
      ["UPDATE records SET hash = upper(hash) WHERE seq = 18", 18],
      ["UPDATE records SET actor = CAST('key:k1' AS BLOB) WHERE seq = 4", 4],
    ];
    for (const [query, brokenAt] of cases) {
      const log = freshLog();
      await log.append(entries(1, 25));
      await tamper(log, query);
      expect({ query, result: await log.verify() }).toEqual({ query, result: { ok: false, brokenAt } });
    }
  });

  it("finds a tampered hash column", async () => {
    const log = freshLog();
    await log.append(entries(1, 60));
    await tamper(log, "UPDATE records SET hash = ? WHERE seq = 37", "f".repeat(64));
    expect(await log.verify()).toEqual({ ok: false, brokenAt: 37 });
  });

  it("finds a deleted record at the one that follows it", async () => {
    const log = freshLog();
    await log.append(entries(1, 60));
    await tamper(log, "DELETE FROM records WHERE seq = 37");
    expect(await log.verify()).toEqual({ ok: false, brokenAt: 38 });
  });

  it("finds a deleted first record at the second", async () => {
    const log = freshLog();
    await log.append(entries(1, 5));
    await tamper(log, "DELETE FROM records WHERE seq = 1");
    expect(await log.verify()).toEqual({ ok: false, brokenAt: 2 });
  });

  it("finds a record changed and re-hashed at the record after it", async () => {
    const log = freshLog();
    const records = await log.append(entries(1, 60));
    const original = records[36];
    if (!original) throw new Error("no record 37");
    const forged = { ...original, outcome: "success" === original.outcome ? "denied" : "success" };
    await tamper(log, "UPDATE records SET outcome = ?, hash = ? WHERE seq = 37", forged.outcome, recordHash(37, forged, forged.prevHash));
    expect(await log.verify()).toEqual({ ok: false, brokenAt: 38 });
  });

  it("finds a change past the first page of a long log", async () => {
    const log = freshLog();
    await fill(log, 2_500);
    await tamper(log, "UPDATE records SET target = 'x' WHERE seq = 2001");
    expect(await log.verify()).toEqual({ ok: false, brokenAt: 2_001 });
  });

  it("finds a record deleted at a page boundary", async () => {
    const log = freshLog();
    await fill(log, 2_500);
    await tamper(log, "DELETE FROM records WHERE seq = 1000");
    expect(await log.verify()).toEqual({ ok: false, brokenAt: 1_001 });
  });
});

describe("the table", () => {
  it("has the documented columns and no method that updates or deletes", async () => {
    const log = freshLog();
    const columns = await runInDurableObject(log, (_: AuditLog, state) =>
      state.storage.sql.exec<{ name: string; type: string; notnull: number; pk: number }>("PRAGMA table_info(records)").toArray().map(({ name, type, notnull, pk }) => ({ name, type, notnull, pk })),
    );
    expect(columns).toEqual([
      { name: "seq", type: "INTEGER", notnull: 0, pk: 1 },
      { name: "at", type: "INTEGER", notnull: 1, pk: 0 },
      { name: "actor", type: "TEXT", notnull: 1, pk: 0 },
      { name: "action", type: "TEXT", notnull: 1, pk: 0 },
      { name: "target", type: "TEXT", notnull: 1, pk: 0 },
      { name: "outcome", type: "TEXT", notnull: 1, pk: 0 },
      { name: "ip", type: "TEXT", notnull: 0, pk: 0 },
      { name: "prev_hash", type: "TEXT", notnull: 1, pk: 0 },
      { name: "hash", type: "TEXT", notnull: 1, pk: 0 },
    ]);
    const methods = await runInDurableObject(log, (instance: AuditLog) => Object.getOwnPropertyNames(Object.getPrototypeOf(instance)).filter((m) => m !== "constructor").sort());
    // The RPC surface plus two private readers: nothing that could rewrite the log.
    expect(methods).toEqual(["append", "head", "list", "page", "readHead", "verify"]);
  });
});

describe("chain.ts", () => {
  const text = fc.string({ unit: "binary", maxLength: 12 });
  const entryArb: fc.Arbitrary<AuditEntry> = fc.record({
    actor: text,
    action: text,
    target: text,
    outcome: text,
    ip: fc.option(text, { nil: null }),
    at: fc.integer({ min: 0, max: 4_102_444_800_000 }),
  });
  const FIELDS = ["seq", "at", "actor", "action", "target", "outcome", "ip", "prevHash", "hash"] as const;

  /** A different value for one field of a record, never equal to the old one once in JSON. */
  function changed(record: AuditRecord, field: (typeof FIELDS)[number], salt: number): AuditRecord {
    switch (field) {
      case "seq":
      case "at":
        return { ...record, [field]: record[field] + 1 + salt };
      case "ip":
        return { ...record, ip: record.ip === null ? "" : salt % 2 ? null : `${record.ip}x` };
      case "prevHash":
      case "hash":
        return { ...record, [field]: record[field] === GENESIS_HASH ? "1".repeat(64) : GENESIS_HASH };
      default:
        return { ...record, [field]: `${record[field]}${String.fromCharCode(33 + (salt % 90))}` };
    }
  }

  it("verifies a correctly built chain, from the start or from any head", () => {
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 20 }), fc.option(fc.record({ seq: fc.nat(1e9), hash: fc.stringMatching(/^[0-9a-f]{64}$/) }), { nil: null }), (list, head) => {
        const records = chainEntries(list, head);
        expect(verifyChain(records, head?.hash ?? GENESIS_HASH)).toBeNull();
        expect(records.map((r) => r.seq)).toEqual(list.map((_, i) => (head?.seq ?? 0) + i + 1));
      }),
    );
  });

  it("answers exactly the seq of the one record whose field changed", () => {
    fc.assert(
      fc.property(
        fc.array(entryArb, { minLength: 1, maxLength: 15 }),
        fc.nat(),
        fc.constantFrom(...FIELDS),
        fc.nat(1_000),
        (list, pick, field, salt) => {
          const records = chainEntries(list, null);
          const index = pick % records.length;
          const original = records[index];
          if (!original) throw new Error("index out of range");
          const tampered = changed(original, field, salt);
          const forged = records.map((r, i) => (i === index ? tampered : r));
          expect(verifyChain(forged, GENESIS_HASH)).toBe(tampered.seq);
        },
      ),
    );
  });

  it("answers the first record when the expected predecessor is wrong", () => {
    const records = chainEntries(entries(1, 3), null);
    expect(verifyChain(records, "1".repeat(64))).toBe(1);
    expect(verifyChain([], GENESIS_HASH)).toBeNull();
  });
});
