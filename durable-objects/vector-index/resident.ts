/**
 * A part's vectors in memory: a corpus of the similarity module (float32, or int8 with one scale per row) and, per
 * row, the vector's id, hash and parsed metadata. Rows are only appended: an upsert of a known id or a delete
 * leaves the old row dead (id null) and the owner rebuilds from SQLite once dead rows pass a quarter of the live
 * ones (`wantsRebuild`), so memory stays within 1.25 times what the live vectors need.
 */
import type { Metadata, Precision } from "../../contract/index-rpc.ts";
import type { Corpus, Similarity } from "../../lib/wasm/similarity.ts";
import { Best } from "../../lib/vectors/rank.ts";
import type { VectorRow } from "./store.ts";

/** Rows copied into the module per call while loading. */
const LOAD_CHUNK = 512;

export interface Appended {
  id: string;
  hash: number;
  values: Float32Array;
  metadata: Metadata;
}

export class Resident {
  readonly corpus: Corpus;
  readonly dims: number;
  readonly #ids: (string | null)[] = [];
  readonly #hashes: number[] = [];
  readonly #metadata: (Metadata | null)[] = [];
  readonly #rowOf = new Map<string, number>();
  #dead = 0;

  constructor(sim: Similarity, dims: number, precision: Precision) {
    this.corpus = sim.createCorpus({ dim: dims, kind: precision });
    this.dims = dims;
  }

  /** A resident copy of `count` stored rows (the corpus reserves exactly what they need). */
  static load(sim: Similarity, dims: number, precision: Precision, count: number, rows: Iterable<VectorRow>): Resident {
    const resident = new Resident(sim, dims, precision);
    try {
      resident.corpus.reserve(count);
      const chunk = new Float32Array(LOAD_CHUNK * dims);
      let n = 0;
      for (const row of rows) {
        chunk.set(new Float32Array(row.vec), n * dims);
        resident.#note(row.id, row.hash, JSON.parse(row.metadata) as Metadata);
        if (++n === LOAD_CHUNK) {
          resident.corpus.add(chunk);
          n = 0;
        }
      }
      if (n > 0) resident.corpus.add(chunk.subarray(0, n * dims));
    } catch (err) {
      resident.free();
      throw err;
    }
    return resident;
  }

  get live(): number {
    return this.#rowOf.size;
  }

  get dead(): number {
    return this.#dead;
  }

  /** Dead rows are over a quarter of the live ones (and over 64): time to rebuild from SQLite. */
  get wantsRebuild(): boolean {
    return this.#dead > 64 && this.#dead * 4 > this.live;
  }

  /** Appends vectors; a known id's old row dies. */
  append(vectors: readonly Appended[]): void {
    if (vectors.length === 0) return;
    const flat = new Float32Array(vectors.length * this.dims);
    vectors.forEach((v, i) => flat.set(v.values, i * this.dims));
    this.corpus.add(flat);
    for (const v of vectors) this.#note(v.id, v.hash, v.metadata);
  }

  remove(id: string): void {
    const row = this.#rowOf.get(id);
    if (row === undefined) return;
    this.#kill(row);
    this.#rowOf.delete(id);
  }

  id(row: number): string {
    return this.#ids[row]!;
  }

  metadata(row: number): Metadata {
    return this.#metadata[row]!;
  }

  /**
   * The `count` best live rows for a unit query by the corpus's own scores (float32, or int8), best first, among
   * those that `passes` (metadata) and `keep` (hash) accept. Without conditions and with few dead rows, the
   * module's top-k does the selection; otherwise every row is scored and the passing ones selected here, so a
   * filter applies before ranking: `count` rows come back whenever that many pass.
   */
  candidates(query: Float32Array, count: number, passes: ((m: Metadata) => boolean) | null, keep: ((hash: number) => boolean) | null): number[] {
    const size = this.corpus.size;
    if (size === 0 || this.live === 0 || count <= 0) return [];
    const want = Math.min(size, count + this.#dead);
    if (passes === null && keep === null && want <= this.corpus.sim.maxK) {
      const { indices } = this.corpus.topK(query, want);
      const rows: number[] = [];
      for (const row of indices) if (this.#ids[row] !== null && rows.push(row) === count) break;
      return rows;
    }
    const scores = this.corpus.scores(query);
    const best = new Best<number>(count);
    for (let row = 0; row < size; row++) {
      if (this.#ids[row] === null) continue;
      if (keep !== null && !keep(this.#hashes[row]!)) continue;
      if (passes !== null && !passes(this.#metadata[row]!)) continue;
      best.offer(scores[row]!, row);
    }
    return best.sorted().map((c) => c.key);
  }

  free(): void {
    this.corpus.free();
  }

  #note(id: string, hash: number, metadata: Metadata): void {
    const previous = this.#rowOf.get(id);
    if (previous !== undefined) this.#kill(previous);
    this.#rowOf.set(id, this.#ids.length);
    this.#ids.push(id);
    this.#hashes.push(hash);
    this.#metadata.push(metadata);
  }

  #kill(row: number): void {
    this.#ids[row] = null;
    this.#metadata[row] = null;
    this.#dead += 1;
  }
}
