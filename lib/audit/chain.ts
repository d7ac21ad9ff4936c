/**
 * The audit log's hash chain, pure and synchronous: each record's hash covers its content and its
 * predecessor's hash, so changing, removing or reordering any record breaks the chain at that point.
 *
 * `hash = hex(SHA-256(JSON.stringify([seq, at, actor, action, target, outcome, ip, prevHash])))`, and the
 * first record's `prevHash` is {@link GENESIS_HASH}. SHA-256 comes from node:crypto because it is
 * synchronous: the hash is computed inside the storage transaction that appends, so two appends can never
 * chain to the same predecessor (crypto.subtle.digest would need an await in the middle of it).
 */
import { createHash } from "node:crypto";

/** What a caller records: who did what to what, how it ended, from where, and when (ms since the epoch). */
export interface AuditEntry {
  actor: string;
  action: string;
  target: string;
  outcome: string;
  ip: string | null;
  at: number;
}

/** An entry as stored: its position in the log and its link in the chain. */
export interface AuditRecord extends AuditEntry {
  seq: number;
  prevHash: string;
  hash: string;
}

/** The `prevHash` of the first record. */
export const GENESIS_HASH = "0".repeat(64);

const TEXT_FIELDS = ["actor", "action", "target", "outcome"] as const;

/** The exact text that is hashed; JSON.stringify keeps field boundaries unambiguous. */
export function canonical(seq: number, entry: AuditEntry, prevHash: string): string {
  return JSON.stringify([seq, entry.at, entry.actor, entry.action, entry.target, entry.outcome, entry.ip, prevHash]);
}

/**
 * The hash of one record, lowercase hex.
 * @example recordHash(1, { actor: "key:k1", action: "task.submit", target: "t1", outcome: "success", ip: null, at: 0 }, GENESIS_HASH)
 */
export function recordHash(seq: number, entry: AuditEntry, prevHash: string): string {
  return createHash("sha256").update(canonical(seq, entry, prevHash), "utf8").digest("hex");
}

/**
 * Checks an entry and answers a copy of it as it will be stored. Strings are made well-formed first (a lone
 * surrogate becomes U+FFFD, as SQLite's UTF-8 would make it anyway), so what is hashed is what is stored and
 * read back. Anything else that could not round-trip is a programming error of the caller and throws.
 */
export function storable(entry: AuditEntry): AuditEntry {
  for (const field of TEXT_FIELDS) {
    if (typeof entry[field] !== "string") throw new Error(`audit entry: ${field} must be a string`);
  }
  if (entry.ip !== null && typeof entry.ip !== "string") throw new Error("audit entry: ip must be a string or null");
  if (!Number.isSafeInteger(entry.at)) throw new Error("audit entry: at must be an integer number of milliseconds");
  return {
    actor: wellFormed(entry.actor),
    action: wellFormed(entry.action),
    target: wellFormed(entry.target),
    outcome: wellFormed(entry.outcome),
    ip: entry.ip === null ? null : wellFormed(entry.ip),
    at: entry.at,
  };
}

/** Links entries after `head` (null for an empty log): seq goes up by one, each record points at the previous hash. */
export function chainEntries(entries: readonly AuditEntry[], head: { seq: number; hash: string } | null): AuditRecord[] {
  let seq = head?.seq ?? 0;
  let prevHash = head?.hash ?? GENESIS_HASH;
  return entries.map((input) => {
    const entry = storable(input);
    seq += 1;
    const hash = recordHash(seq, entry, prevHash);
    const record: AuditRecord = { seq, ...entry, prevHash, hash };
    prevHash = hash;
    return record;
  });
}

/**
 * The seq of the first record that does not link to `expectedPrev` (for the first) or to the hash of the
 * record before it, or whose hash does not match its content; null when the whole run is intact. Pages of a
 * long log are checked one after another by passing the last hash of a page as `expectedPrev` of the next.
 */
export function verifyChain(records: readonly AuditRecord[], expectedPrev: string): number | null {
  let prev = expectedPrev;
  for (const record of records) {
    if (record.prevHash !== prev || recordHash(record.seq, record, record.prevHash) !== record.hash) return record.seq;
    prev = record.hash;
  }
  return null;
}

const LONE_SURROGATE = /\p{Surrogate}/gu;

function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, "\uFFFD");
}
