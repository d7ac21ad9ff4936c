/**
 * The arithmetic of vector search that is not the scan itself: unit-length float32 copies of input vectors, exact
 * (float64) cosine for the re-rank, a bounded selection of the best candidates, and the merge of the parts' answers.
 */
import type { Match } from "../../contract/index-rpc.ts";

/** The largest float32: a float64 above it would become Infinity when stored. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * What is wrong with a vector's components, or null: each must be a finite number within the float32 range (JSON
 * carries no NaN, but `1e999` parses as Infinity, and a value past 3.4e38 would become Infinity when stored).
 */
export function componentsProblem(values: ArrayLike<unknown>): string | null {
  for (let j = 0; j < values.length; j++) {
    const x = values[j];
    if (typeof x !== "number" || !Number.isFinite(x)) return `has a value that is not a finite number at position ${j}`;
    if (Math.abs(x) > FLOAT32_MAX) return `has a value beyond the float32 range at position ${j}`;
  }
  return null;
}

/**
 * A unit-length copy (cosine only looks at the direction), computed in float64 after scaling by the largest
 * component so that no square overflows; a zero vector stays zero (it scores 0 against everything).
 */
export function unitVector(values: ArrayLike<number>): { f32: Float32Array; f64: Float64Array } {
  const n = values.length;
  let largest = 0;
  for (let i = 0; i < n; i++) largest = Math.max(largest, Math.abs(values[i]!));
  const f64 = new Float64Array(n);
  if (largest === 0) return { f32: new Float32Array(n), f64 };
  let ss = 0;
  for (let i = 0; i < n; i++) {
    const x = values[i]! / largest;
    f64[i] = x;
    ss += x * x;
  }
  const inv = 1 / Math.sqrt(ss);
  for (let i = 0; i < n; i++) f64[i]! *= inv;
  return { f32: Float32Array.from(f64), f64 };
}

/** Cosine of a unit float64 query and a stored float32 vector, in float64 (0 when either is zero). */
export function exactCosine(query: Float64Array, stored: Float32Array): number {
  let dot = 0;
  let ss = 0;
  let qq = 0;
  for (let i = 0; i < query.length; i++) {
    const v = stored[i]!;
    dot += query[i]! * v;
    ss += v * v;
    qq += query[i]! * query[i]!;
  }
  const norms = Math.sqrt(ss) * Math.sqrt(qq);
  return norms > 0 ? Math.max(-1, Math.min(1, dot / norms)) : 0;
}

/** Best first: higher score, then the smaller key (so that answers do not depend on storage order). */
export function better(a: { score: number; key: number | string }, b: { score: number; key: number | string }): boolean {
  return a.score > b.score || (a.score === b.score && a.key < b.key);
}

/**
 * The `capacity` best of the items offered, kept in a binary min-heap of the worst at the top: each offer costs
 * O(log capacity), so selecting from n rows costs O(n log capacity) and O(capacity) memory.
 */
export class Best<K extends number | string> {
  readonly capacity: number;
  readonly #items: { score: number; key: K }[] = [];

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.#items.length;
  }

  offer(score: number, key: K): void {
    const items = this.#items;
    if (this.capacity <= 0) return;
    if (items.length < this.capacity) {
      items.push({ score, key });
      this.#up(items.length - 1);
    } else if (better({ score, key }, items[0]!)) {
      items[0] = { score, key };
      this.#down(0);
    }
  }

  /** The items, best first. */
  sorted(): { score: number; key: K }[] {
    return [...this.#items].sort((a, b) => (better(a, b) ? -1 : better(b, a) ? 1 : 0));
  }

  #up(i: number): void {
    const items = this.#items;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!better(items[parent]!, items[i]!)) break;
      [items[parent], items[i]] = [items[i]!, items[parent]!];
      i = parent;
    }
  }

  #down(i: number): void {
    const items = this.#items;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let worst = i;
      if (l < items.length && better(items[worst]!, items[l]!)) worst = l;
      if (r < items.length && better(items[worst]!, items[r]!)) worst = r;
      if (worst === i) return;
      [items[worst], items[i]] = [items[i]!, items[worst]!];
      i = worst;
    }
  }
}

/**
 * The `k` best matches of several parts' answers, best first. An id answered by two parts (the moment of a split
 * when both hold it, with the same vector) counts once.
 */
export function mergeMatches(answers: readonly (readonly Match[])[], k: number): Match[] {
  const byId = new Map<string, Match>();
  for (const answer of answers) for (const m of answer) if (!byId.has(m.id)) byId.set(m.id, m);
  return [...byId.values()].sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).slice(0, k);
}
