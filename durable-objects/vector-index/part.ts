/**
 * The part role of a VectorIndex object: the vectors of one hash prefix of an index (store.ts), served from
 * memory (resident.ts), within a byte budget. Writes are one transaction each; a write the part cannot take as it
 * is answers a redirect (moved, busy, full) for the caller to follow. Queries rank the candidates of the in-memory
 * scan again by exact cosine: float32 rows straight from the corpus, int8 ones from the float32 rows in SQLite.
 */
import { ApiError } from "../../contract/errors.ts";
import { MAX_TOP_K, owns, type Match, type Metadata, type MetadataFilter, type PartRef, type PartStats, type Redirect, type StoredVector, type WriteAnswer } from "../../contract/index-rpc.ts";
import { compileFilter } from "../../lib/vectors/filter.ts";
import { exactCosine } from "../../lib/vectors/rank.ts";
import type { Similarity } from "../../lib/wasm/similarity.ts";
import { Resident, type Appended } from "./resident.ts";
import { vectorBytes, type PartRow, type PartStore } from "./store.ts";

/** int8: this many times `topK` candidates from the int8 scan (at least `topK` + 32) are ranked again in float32. */
export const INT8_CANDIDATES = 4;
/** float32: a few more candidates than asked, ranked again in float64, so near-ties come out in exact order. */
const FLOAT32_MARGIN = 8;

export interface PartHost {
  store: PartStore;
  transaction<T>(fn: () => T): T;
  /** The object's own instance of the similarity module. */
  similarity(): Similarity;
}

export class Part {
  readonly #host: PartHost;
  #resident: Resident | null = null;

  constructor(host: PartHost) {
    this.#host = host;
  }

  /** Whether the vectors are in memory now (tests, and the rebuild after a wake). */
  get resident(): Resident | null {
    return this.#resident;
  }

  init(ref: PartRef, depth: number, state: "active" | "filling"): PartStats {
    return statsOf(this.#host.transaction(() => this.#host.store.create(ref, depth, state)));
  }

  upsert(ref: PartRef, vectors: readonly StoredVector[]): WriteAnswer<number> {
    const row = this.#mine(ref);
    const redirect = redirectOf(row, vectors.map((v) => v.hash));
    if (redirect) return redirect;
    const bytes = this.#checked(row, vectors);
    const answer = this.#host.transaction((): WriteAnswer<number> => {
      const sizes = this.#host.store.sizes(vectors.map((v) => v.id));
      let need = 0;
      vectors.forEach((v, i) => {
        need += bytes[i]! - (sizes.get(v.id) ?? 0);
        sizes.set(v.id, bytes[i]!);
      });
      if (row.bytes + need > row.ref.partBytes) return { status: "full", bytes: row.bytes, need };
      this.#host.store.write(vectors, bytes);
      return { status: "done", value: vectors.length, depth: row.depth };
    });
    if (answer.status === "done") this.#remember(vectors);
    return answer;
  }

  delete(ref: PartRef, id: string, hash: number): WriteAnswer<boolean> {
    const row = this.#mine(ref);
    const redirect = redirectOf(row, [hash]);
    if (redirect) return redirect;
    const deleted = this.#host.transaction(() => this.#host.store.delete(id));
    this.#resident?.remove(id);
    return { status: "done", value: deleted, depth: row.depth };
  }

  /**
   * The `topK` best matches among the vectors that pass `filter`, best first, by exact cosine; with the depth the
   * registry lists this part at.
   */
  query(ref: PartRef, query: Float64Array, topK: number, filter: MetadataFilter | null): { matches: Match[]; depth: number } {
    const row = this.#mine(ref);
    if (query.length !== row.ref.dimensions) throw new ApiError("invalid_request", `the query has ${query.length} values; index ${row.ref.index} has ${row.ref.dimensions} dimensions`);
    if (!Number.isInteger(topK) || topK < 1 || topK > MAX_TOP_K) throw new ApiError("invalid_request", `topK must be from 1 to ${MAX_TOP_K}`);
    const resident = this.#loaded(row);
    const int8 = row.ref.precision === "int8";
    const count = int8 ? Math.max(INT8_CANDIDATES * topK, topK + 32) : topK + FLOAT32_MARGIN;
    const depth = row.depth;
    // While a split's new part answers for the moving vectors, they are left out here (split.ts, `copied`).
    const keep = row.state === "copied" ? (hash: number) => ((hash >>> depth) & 1) === 0 : null;
    const rows = resident.candidates(Float32Array.from(query), count, filter ? compileFilter(filter) : null, keep);
    const ids = rows.map((r) => resident.id(r));
    const stored = int8 ? this.#host.store.floats(ids) : null;
    const matches = rows.map((r, i) => {
      const values = stored ? stored.get(ids[i]!) : resident.corpus.get(r);
      return { id: ids[i]!, score: values ? exactCosine(query, values) : -Infinity, metadata: resident.metadata(r) };
    });
    matches.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    // The depth the registry lists this part at: a caller whose list is older sees that it misses a part.
    const listed = row.state === "copied" ? depth + 1 : depth;
    return { matches: matches.filter((m) => m.score !== -Infinity).slice(0, topK), depth: listed };
  }

  stats(ref: PartRef): PartStats {
    const row = this.#mine(ref);
    const stats = statsOf(row);
    if (row.state !== "copied") return stats;
    const moving = this.#host.store.movingTotals(row.depth);
    return { ...stats, vectors: stats.vectors - moving.vectors, bytes: stats.bytes - moving.bytes };
  }

  /** Takes vectors a split moves here (only while `filling`); answers how many. */
  absorb(ref: PartRef, vectors: readonly StoredVector[]): number {
    const row = this.#mine(ref);
    if (row.state !== "filling") throw new ApiError("conflict", `part ${ref.prefix} of index ${ref.index} is not being filled`);
    if (vectors.some((v) => !owns(row.ref.prefix, row.depth, v.hash))) throw new ApiError("conflict", `a vector sent to part ${ref.prefix} of index ${ref.index} belongs elsewhere`);
    const bytes = this.#checked(row, vectors);
    this.#host.transaction(() => this.#host.store.write(vectors, bytes));
    this.drop();
    return vectors.length;
  }

  /** The split that made this part is done: it takes writes from now on. */
  activate(ref: PartRef): void {
    const row = this.#mine(ref);
    if (row.state === "filling") this.#host.transaction(() => this.#host.store.setState("active", null));
  }

  /** Forgets the in-memory copy; the next query rebuilds it from SQLite. */
  drop(): void {
    this.#resident?.free();
    this.#resident = null;
  }

  /** The part row, when `ref` names this part; 404 otherwise (an index deleted, or a part never made). */
  #mine(ref: PartRef): PartRow {
    const row = this.#host.store.row();
    const same = row !== null && row.ref.tenant === ref.tenant && row.ref.index === ref.index && row.ref.incarnation === ref.incarnation && row.ref.prefix === ref.prefix;
    if (!same) throw new ApiError("not_found", `no index ${ref.index}`);
    return row;
  }

  /** The budget bytes of each vector, after checking what the Worker already checked (length, finite values). */
  #checked(row: PartRow, vectors: readonly StoredVector[]): number[] {
    return vectors.map((v, i) => {
      if (v.values.length !== row.ref.dimensions || !v.values.every(Number.isFinite)) {
        throw new ApiError("invalid_request", `vector ${i} (${v.id}) does not have ${row.ref.dimensions} finite values`);
      }
      return vectorBytes(row.ref.dimensions, row.ref.precision, v.metadata);
    });
  }

  #loaded(row: PartRow): Resident {
    if (this.#resident?.wantsRebuild) this.drop();
    this.#resident ??= Resident.load(this.#host.similarity(), row.ref.dimensions, row.ref.precision, row.vectors, this.#host.store.all());
    return this.#resident;
  }

  /** Mirrors a committed write in memory; if that fails (memory), the copy is dropped and rebuilt when next needed. */
  #remember(vectors: readonly StoredVector[]): void {
    const resident = this.#resident;
    if (resident === null) return;
    try {
      resident.append(vectors.map((v): Appended => ({ id: v.id, hash: v.hash, values: v.values, metadata: JSON.parse(v.metadata) as Metadata })));
      if (resident.wantsRebuild) this.drop();
    } catch {
      this.drop();
    }
  }
}

function statsOf(row: PartRow): PartStats {
  return { prefix: row.ref.prefix, depth: row.depth, vectors: row.vectors, bytes: row.bytes, state: row.state };
}

/** Why a part cannot take writes of these hashes now, if it cannot. */
function redirectOf(row: PartRow, hashes: readonly number[]): Redirect | null {
  if (row.state === "filling") return { status: "busy" };
  if (hashes.some((h) => !owns(row.ref.prefix, row.depth, h))) return { status: "moved", depth: row.depth };
  if ((row.state === "copying" || row.state === "copied") && hashes.some((h) => ((h >>> row.depth) & 1) === 1)) return { status: "busy" };
  return null;
}
