import { DurableObject } from "cloudflare:workers";
import { chainEntries, GENESIS_HASH, verifyChain, type AuditEntry, type AuditRecord } from "../../lib/audit/chain.ts";
import { migrate, tableExists, type Schema } from "../shared/migrations.ts";

export type { AuditEntry, AuditRecord } from "../../lib/audit/chain.ts";

/** Most records one `list` call answers. */
export const MAX_LIST_LIMIT = 1_000;
/** Records `verify` reads and checks at a time, so a long log is never loaded at once. */
const VERIFY_PAGE = 1_000;

/** Version 1 is the log as it was first made (before version rows existed: `records` without `meta`). */
export const AUDIT_SCHEMA: Schema = {
  migrations: [
    /* 1: the records of the chain */ `
  CREATE TABLE records (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    ip TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
  )`,
  ],
  predatesVersions: (sql) => tableExists(sql, "records"),
};

type RecordRow = {
  seq: number;
  at: number;
  actor: string;
  action: string;
  target: string;
  outcome: string;
  ip: string | null;
  prev_hash: string;
  hash: string;
};

const PAGE_QUERY = "SELECT * FROM records WHERE seq > ? ORDER BY seq LIMIT ?";

export type VerifyResult = { ok: true; records: number } | { ok: false; brokenAt: number };

/**
 * The audit log of one tenant (the object is named after the tenant; `_system` holds failed
 * authentications): an append-only, hash-chained list of records in SQLite. Nothing here updates or deletes
 * a record. Each append is one synchronous transaction that reads the head, hashes and inserts, so
 * concurrent appends always form a single chain.
 */
export class AuditLog extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.transactionSync(() => migrate(ctx.storage.sql, AUDIT_SCHEMA));
  }

  /** Appends the entries in order, in one transaction, and answers them as stored. */
  async append(entries: AuditEntry[]): Promise<AuditRecord[]> {
    if (entries.length === 0) return [];
    const sql = this.ctx.storage.sql;
    return this.ctx.storage.transactionSync(() => {
      const records = chainEntries(entries, this.readHead());
      for (const r of records) {
        sql.exec(
          "INSERT INTO records (seq, at, actor, action, target, outcome, ip, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
          r.seq, r.at, r.actor, r.action, r.target, r.outcome, r.ip, r.prevHash, r.hash,
        );
      }
      return records;
    });
  }

  /**
   * Up to `limit` records (1..1000) after `afterSeq`, oldest first; `cursor` is the last seq of the page when
   * more records follow, else null.
   */
  async list(limit: number, afterSeq: number | null): Promise<{ records: AuditRecord[]; cursor: number | null }> {
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) throw new Error(`audit list: limit must be an integer in 1..${MAX_LIST_LIMIT}, got ${limit}`);
    if (afterSeq !== null && (!Number.isSafeInteger(afterSeq) || afterSeq < 0)) throw new Error(`audit list: afterSeq must be null or a non-negative integer, got ${afterSeq}`);
    const rows = this.page(afterSeq ?? 0, limit + 1);
    const more = rows.length > limit;
    const records = more ? rows.slice(0, limit) : rows;
    const last = records.at(-1);
    return { records, cursor: more && last ? last.seq : null };
  }

  /** Recomputes the whole chain from the first record, a page at a time. */
  async verify(): Promise<VerifyResult> {
    let prev = GENESIS_HASH;
    let afterSeq = 0;
    let count = 0;
    for (;;) {
      const records = this.page(afterSeq, VERIFY_PAGE);
      const brokenAt = verifyChain(records, prev);
      if (brokenAt !== null) return { ok: false, brokenAt };
      count += records.length;
      const last = records.at(-1);
      if (!last || records.length < VERIFY_PAGE) return { ok: true, records: count };
      prev = last.hash;
      afterSeq = last.seq;
    }
  }

  /** The newest record's seq and hash (an anchor to keep elsewhere), or null for an empty log. */
  async head(): Promise<{ seq: number; hash: string } | null> {
    return this.readHead();
  }

  private readHead(): { seq: number; hash: string } | null {
    return this.ctx.storage.sql.exec<{ seq: number; hash: string }>("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").toArray()[0] ?? null;
  }

  private page(afterSeq: number, limit: number): AuditRecord[] {
    return this.ctx.storage.sql.exec<RecordRow>(PAGE_QUERY, afterSeq, limit).toArray().map(toRecord);
  }
}

function toRecord(row: RecordRow): AuditRecord {
  return {
    seq: row.seq,
    at: row.at,
    actor: row.actor,
    action: row.action,
    target: row.target,
    outcome: row.outcome,
    ip: row.ip,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}
