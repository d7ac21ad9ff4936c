/**
 * A shard's copy of the seed's SemanticStateCRDT (lib/crdt/semantic.ts), kept in its SQLite storage.
 *
 * The shard's own contribution (replica = shard id + 1) is read from what the shard stores anyway, when a round
 * needs it, so the hot path writes nothing for it:
 * - `task_queue` (OR-Set): the shard's queued tasks, each with the dot (replica, its seq); the causal context covers
 *   every seq up to the largest, so a task that left the queue (leased, finished, moved) is removed;
 * - `agent_loads` (PN-Counter): the summed load of the agents at home here, in thousandths, as this replica's entry
 *   (its p and n only grow: a change of the sum adds to one of them; kept in `gossip_meta`);
 * - `content_mappings` (OR-Map): for each succeeded task whose submit carried an `imageId`, imageId -> the task's
 *   content reference `<task id>:<SHA-256 of its stored result, 32 hex digits>` (the result itself is sealed per
 *   tenant and never leaves the shard), written in the transaction that completed the task;
 * - `image_embeddings` (G-Set): for each submit that carried an `embedding`, the element (the imageId, else the
 *   task id, and the float32 vector), written in the submit's transaction.
 * What the peers contributed arrives by gossip and is kept merged in one blob (`gossip_meta.remote`). The shard's
 * state is the Wasm merge of its own part and that blob.
 */
import { createHash } from "node:crypto";
import { decodeAs, embeddingElement, encode, GSet, keyOf, ORMap, ORSet, PNCounter, SemanticState, type Dot, type MapEntry } from "../../../lib/crdt/index.ts";
import type { Merger } from "../../../lib/gossip/exchange.ts";

export const GOSSIP_MIGRATION = `
  CREATE TABLE gossip_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
  CREATE TABLE gossip_pending (task_id TEXT PRIMARY KEY, image_id TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE gossip_mappings (
    image_id TEXT PRIMARY KEY,
    content TEXT NOT NULL,
    at INTEGER NOT NULL,
    counter INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE gossip_embeddings (element BLOB PRIMARY KEY) WITHOUT ROWID;
`;

/** Most values of an embedding kept in the shared state. */
export const MAX_EMBEDDING = 4096;

const utf8 = new TextEncoder();

export class GossipStore {
  /** Tasks succeeded in the open transaction, to look up in `gossip_pending`. */
  private succeeded: string[] = [];
  /** Whether `gossip_pending` may hold anything (read once; a submit with an imageId sets it). */
  private pendingKnown: boolean | null = null;

  constructor(
    private readonly sql: SqlStorage,
    readonly replica: number,
  ) {}

  // ---- feeding (inside the operation's transaction) ------------------------------------------------------------

  /** A submitted task's imageId and embedding (either may be absent). */
  submitted(taskId: string, imageId: string | undefined, embedding: readonly number[] | undefined): void {
    if (imageId !== undefined) {
      this.sql.exec("INSERT OR REPLACE INTO gossip_pending (task_id, image_id) VALUES (?, ?)", taskId, imageId);
      this.pendingKnown = true;
    }
    if (embedding !== undefined && embedding.length > 0 && embedding.length <= MAX_EMBEDDING) {
      this.sql.exec("INSERT OR IGNORE INTO gossip_embeddings (element) VALUES (?)", embeddingElement(imageId ?? taskId, embedding));
    }
  }

  /** A task succeeded (called for every success; cheap unless tasks with an imageId exist). */
  noteSucceeded(taskId: string): void {
    if (this.pendingKnown === null) this.pendingKnown = this.sql.exec("SELECT 1 FROM gossip_pending LIMIT 1").toArray().length > 0;
    if (this.pendingKnown) this.succeeded.push(taskId);
  }

  /** At the end of the transaction: the content mappings of the tasks that succeeded in it. */
  flush(now: number): void {
    if (this.succeeded.length === 0) return;
    const rows = this.sql
      .exec<{ task_id: string; image_id: string; result: string | null }>(
        "SELECT p.task_id, p.image_id, t.result FROM gossip_pending p JOIN tasks t ON t.id = p.task_id WHERE p.task_id IN (SELECT value FROM json_each(?))",
        JSON.stringify(this.succeeded),
      )
      .toArray();
    for (const r of rows) {
      const content = `${r.task_id}:${createHash("sha256").update(r.result ?? "null").digest("hex").slice(0, 32)}`;
      const counter = this.nextCounter();
      this.sql.exec("INSERT OR REPLACE INTO gossip_mappings (image_id, content, at, counter) VALUES (?, ?, ?, ?)", r.image_id, content, now, counter);
      this.sql.exec("DELETE FROM gossip_pending WHERE task_id = ?", r.task_id);
    }
    this.succeeded = [];
  }

  discard(): void {
    this.succeeded = [];
    this.pendingKnown = null;
  }

  private meta(key: string): Uint8Array | null {
    const row = this.sql.exec<{ value: ArrayBuffer }>("SELECT value FROM gossip_meta WHERE key = ?", key).toArray()[0];
    return row ? new Uint8Array(row.value) : null;
  }

  private setMeta(key: string, value: Uint8Array | string): void {
    this.sql.exec("INSERT INTO gossip_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2", key, typeof value === "string" ? utf8.encode(value) : value);
  }

  private number(key: string): number {
    const v = this.meta(key);
    return v ? Number(new TextDecoder().decode(v)) : 0;
  }

  private nextCounter(): number {
    const n = this.number("counter") + 1;
    this.setMeta("counter", String(n));
    return n;
  }

  // ---- the state ---------------------------------------------------------------------------------------------

  /** This shard's own contribution, read from its tables. Call inside a transaction (the load entry may move). */
  own(): SemanticState {
    const r = this.replica;
    const queue = new ORSet();
    const maxSeq = this.sql.exec<{ m: number | null }>("SELECT max(seq) AS m FROM tasks").one().m ?? 0;
    const seen = Math.max(maxSeq, this.number("queue_hwm"));
    if (seen > this.number("queue_hwm")) this.setMeta("queue_hwm", String(seen));
    if (seen > 0) queue.context.vv.set(r, seen);
    for (const t of this.sql.exec<{ id: string; seq: number }>("SELECT id, seq FROM tasks WHERE status = 'queued'")) {
      queue.entries.set(keyOf(t.id), [{ replica: r, counter: t.seq } satisfies Dot]);
    }
    const mappings = new ORMap();
    const counter = this.number("counter");
    if (counter > 0) mappings.context.vv.set(r, counter);
    for (const m of this.sql.exec<{ image_id: string; content: string; at: number; counter: number }>("SELECT * FROM gossip_mappings")) {
      mappings.entries.set(keyOf(m.image_id), [{ replica: r, counter: m.counter, timestamp: m.at, value: utf8.encode(m.content) } satisfies MapEntry]);
    }
    const loads = new PNCounter();
    const total = this.sql.exec<{ s: number | null }>("SELECT sum(CAST(round(json_extract(load, '$.currentLoad') * 1000) AS INTEGER)) AS s FROM agents WHERE home = 1 AND state = 'running'").one().s ?? 0;
    let p = this.number("load_p");
    let n = this.number("load_n");
    if (total > p - n) p += total - (p - n);
    else if (total < p - n) n += p - n - total;
    if (p !== this.number("load_p")) this.setMeta("load_p", String(p));
    if (n !== this.number("load_n")) this.setMeta("load_n", String(n));
    if (p !== 0 || n !== 0) loads.entries.set(r, { p, n });
    const embeddings = new GSet();
    for (const e of this.sql.exec<{ element: ArrayBuffer }>("SELECT element FROM gossip_embeddings")) embeddings.add(new Uint8Array(e.element));
    return new SemanticState(embeddings, mappings, loads, queue);
  }

  /** The shard's whole state: its own part merged with what the peers sent. Call inside a transaction. */
  state(wasm: Merger): Uint8Array {
    const own = encode(this.own());
    const remote = this.meta("remote");
    return remote ? wasm.merge(own, remote) : wasm.merge(own, encode(new SemanticState()));
  }

  decoded(wasm: Merger): SemanticState {
    return decodeAs(this.state(wasm), SemanticState);
  }

  /** What a peer sent, merged into what the peers contributed. Call inside a transaction. */
  absorb(wasm: Merger, delta: Uint8Array): void {
    const remote = this.meta("remote");
    this.setMeta("remote", remote ? wasm.merge(remote, delta) : wasm.merge(encode(new SemanticState()), delta));
  }

  /** Counters of the exchanges, for the state summary (kept across restarts). */
  count(field: "rounds" | "bytes" | "merges", by: number): void {
    this.setMeta(field, String(this.number(field) + by));
  }

  counters(): { rounds: number; bytes: number; merges: number } {
    return { rounds: this.number("rounds"), bytes: this.number("bytes"), merges: this.number("merges") };
  }
}
