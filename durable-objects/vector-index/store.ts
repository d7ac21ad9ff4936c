/**
 * A part's SQLite rows: its one `part` row (which index, which hash prefix at which depth, the split state, the
 * counters) and its vectors (unit-length float32 blobs with their metadata as JSON text). The source of truth: the
 * in-memory corpus (resident.ts) is rebuilt from here. Every method that writes is called inside a transaction.
 */
import type { PartRef, Precision, StoredVector } from "../../contract/index-rpc.ts";

/**
 * `filling`: a new part receiving the vectors of a split, refusing other writes; `active`: serving; `copying`,
 * `copied`, `activating`: the steps of a split of this part (split.ts).
 */
export type PartState = "filling" | "active" | "copying" | "copied" | "activating";

export interface PartRow {
  ref: PartRef;
  depth: number;
  state: PartState;
  /** The prefix of the part a split of this one is making (null when not splitting). */
  child: number | null;
  vectors: number;
  bytes: number;
}

interface Row {
  [column: string]: SqlStorageValue;
  ref: string;
  depth: number;
  state: string;
  child: number | null;
  vectors: number;
  bytes: number;
}

export interface VectorRow {
  [column: string]: SqlStorageValue;
  id: string;
  hash: number;
  bytes: number;
  metadata: string;
  vec: ArrayBuffer;
}

const utf8 = new TextEncoder();

/**
 * What one vector counts against a part's budget: its row in the similarity module (padded to 16 bytes, plus the
 * inverse norm, and the scale for int8) and its metadata as the JSON text held in memory for filters.
 */
export function vectorBytes(dimensions: number, precision: Precision, metadata: string): number {
  const row = precision === "int8" ? Math.ceil(dimensions / 16) * 16 + 8 : Math.ceil((4 * dimensions) / 16) * 16 + 4;
  return row + utf8.encode(metadata).length;
}

/** The blob of a float32 vector (a copy when the array is a view of a larger buffer). */
export function blobOf(values: Float32Array): ArrayBuffer {
  const { buffer, byteOffset, byteLength } = values;
  return byteOffset === 0 && byteLength === buffer.byteLength ? (buffer as ArrayBuffer) : (buffer.slice(byteOffset, byteOffset + byteLength) as ArrayBuffer);
}

/** The SQL condition of the rows a split moves: bit `depth` of the hash set. */
const MOVING = "((hash >> ?) & 1) = 1";

export class PartStore {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  row(): PartRow | null {
    const r = this.#sql.exec<Row>("SELECT ref, depth, state, child, vectors, bytes FROM part").toArray()[0];
    return r ? { ref: JSON.parse(r.ref) as PartRef, depth: r.depth, state: r.state as PartState, child: r.child, vectors: r.vectors, bytes: r.bytes } : null;
  }

  /** Makes the part row unless there is one; answers the row. */
  create(ref: PartRef, depth: number, state: "active" | "filling"): PartRow {
    this.#sql.exec("INSERT OR IGNORE INTO part (only, ref, depth, state, child, vectors, bytes) VALUES (1, ?, ?, ?, NULL, 0, 0)", JSON.stringify(ref), depth, state);
    return this.row()!;
  }

  setState(state: PartState, child: number | null): void {
    this.#sql.exec("UPDATE part SET state = ?, child = ?", state, child);
  }

  /** The budget bytes of those of `ids` stored here. */
  sizes(ids: readonly string[]): Map<string, number> {
    const rows = this.#sql.exec<{ id: string; bytes: number }>("SELECT id, bytes FROM vectors WHERE id IN (SELECT value FROM json_each(?))", JSON.stringify(ids)).toArray();
    return new Map(rows.map((r) => [r.id, r.bytes]));
  }

  /** Inserts or replaces vectors, `bytes[i]` the budget bytes of `vectors[i]`; keeps the counters. */
  write(vectors: readonly StoredVector[], bytes: readonly number[]): void {
    const before = this.sizes(vectors.map((v) => v.id));
    let added = 0;
    let delta = 0;
    vectors.forEach((v, i) => {
      const old = before.get(v.id);
      if (old === undefined) added += 1;
      delta += bytes[i]! - (old ?? 0);
      before.set(v.id, bytes[i]!);
      this.#sql.exec(
        "INSERT INTO vectors (id, hash, bytes, metadata, vec) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, bytes = excluded.bytes, metadata = excluded.metadata, vec = excluded.vec",
        v.id, v.hash, bytes[i]!, v.metadata, blobOf(v.values),
      );
    });
    this.#sql.exec("UPDATE part SET vectors = vectors + ?, bytes = bytes + ?", added, delta);
  }

  /** Deletes one vector; answers whether it was here. */
  delete(id: string): boolean {
    const gone = this.#sql.exec<{ bytes: number }>("DELETE FROM vectors WHERE id = ? RETURNING bytes", id).toArray()[0];
    if (!gone) return false;
    this.#sql.exec("UPDATE part SET vectors = vectors - 1, bytes = bytes - ?", gone.bytes);
    return true;
  }

  /** Every vector, in storage order (the in-memory corpus is rebuilt from this). */
  all(): Iterable<VectorRow> {
    return this.#sql.exec<VectorRow>("SELECT id, hash, bytes, metadata, vec FROM vectors");
  }

  /** The stored float32 values of `ids` (the int8 re-rank reads them from here). */
  floats(ids: readonly string[]): Map<string, Float32Array> {
    const rows = this.#sql.exec<{ id: string; vec: ArrayBuffer }>("SELECT id, vec FROM vectors WHERE id IN (SELECT value FROM json_each(?))", JSON.stringify(ids)).toArray();
    return new Map(rows.map((r) => [r.id, new Float32Array(r.vec)]));
  }

  /** The next `limit` vectors a split at `depth` moves, after id `after` (in id order, so the copy can resume). */
  moving(depth: number, after: string, limit: number): StoredVector[] {
    return this.#sql
      .exec<VectorRow>(`SELECT id, hash, bytes, metadata, vec FROM vectors WHERE id > ? AND ${MOVING} ORDER BY id LIMIT ?`, after, depth, limit)
      .toArray()
      .map((r) => ({ id: r.id, hash: r.hash, metadata: r.metadata, values: new Float32Array(r.vec) }));
  }

  /** How many vectors, and their bytes, a split at `depth` moves. */
  movingTotals(depth: number): { vectors: number; bytes: number } {
    const r = this.#sql.exec<{ n: number; b: number }>(`SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM vectors WHERE ${MOVING}`, depth).one();
    return { vectors: r.n, bytes: r.b };
  }

  /** The split's last step here: the moved vectors are dropped and the part owns half its hash range. */
  flip(depth: number): void {
    this.#sql.exec(`DELETE FROM vectors WHERE ${MOVING}`, depth);
    const r = this.#sql.exec<{ n: number; b: number }>("SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM vectors").one();
    this.#sql.exec("UPDATE part SET depth = ?, state = 'activating', vectors = ?, bytes = ?", depth + 1, r.n, r.b);
  }
}
