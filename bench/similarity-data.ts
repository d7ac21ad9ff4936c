// Deterministic test data for the similarity module (bench/similarity.ts and test/node/similarity-*.test.ts).
//
// Clustered data stands in for sentence embeddings: `clusters` centres drawn from N(0, I), each vector a centre
// plus N(0, spread^2 I) noise, queries drawn the same way (fresh noise around a random centre). With the
// defaults (spread 0.5) vectors of one cluster have a cosine of about 0.8 with each other and about 0 with the
// rest, so a query's top 10 lie in its own cluster and are separated only by the noise: the case where
// quantisation can reorder them.

/** A small, fast, seedable generator (mulberry32) with Gaussian samples (Box-Muller). */
export class Random {
  #state: number;
  #spare: number | null = null;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(below: number): number {
    return Math.floor(this.next() * below);
  }

  gaussian(): number {
    if (this.#spare !== null) {
      const s = this.#spare;
      this.#spare = null;
      return s;
    }
    const u = 1 - this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

export interface ClusteredOptions {
  dim: number;
  clusters: number;
  /** Standard deviation of the noise around a centre (the centres have 1). */
  spread?: number;
  seed?: number;
}

/** Generates clustered vectors in chunks, so a million of them need not exist in JavaScript at once. */
export class ClusteredData {
  readonly dim: number;
  readonly clusters: number;
  readonly spread: number;
  readonly centres: Float32Array;
  #rng: Random;

  constructor({ dim, clusters, spread = 0.5, seed = 1 }: ClusteredOptions) {
    this.dim = dim;
    this.clusters = clusters;
    this.spread = spread;
    this.#rng = new Random(seed);
    this.centres = new Float32Array(clusters * dim);
    for (let i = 0; i < this.centres.length; i++) this.centres[i] = this.#rng.gaussian();
  }

  /** `count` vectors (count * dim floats), each around a random centre. */
  vectors(count: number): Float32Array {
    const { dim, spread } = this;
    const out = new Float32Array(count * dim);
    const rng = this.#rng;
    for (let v = 0; v < count; v++) {
      const c = rng.int(this.clusters) * dim;
      const o = v * dim;
      for (let i = 0; i < dim; i++) out[o + i] = this.centres[c + i]! + spread * rng.gaussian();
    }
    return out;
  }
}

/** Uniform vectors in [-1, 1) (no structure: the hard case for nothing, the easy case for bandwidth). */
export function uniformVectors(count: number, dim: number, seed = 7): Float32Array {
  const rng = new Random(seed);
  const out = new Float32Array(count * dim);
  for (let i = 0; i < out.length; i++) out[i] = 2 * rng.next() - 1;
  return out;
}

/** recall@k of `found` against `truth` (both k indices per query, flat): the fraction of true neighbours found. */
export function recallAtK(found: ArrayLike<number>[], truth: ArrayLike<number>[]): number {
  let hits = 0;
  let total = 0;
  truth.forEach((t, q) => {
    const f = new Set(Array.from(found[q] ?? []));
    for (const i of Array.from(t)) if (f.has(i)) hits++;
    total += t.length;
  });
  return total === 0 ? 1 : hits / total;
}
