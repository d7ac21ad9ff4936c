// Shared by the vector index tests: seeded vectors, a float64 cosine reference, and index calls over HTTP.
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { partName, registryName, type IndexRecord } from "../../contract/index-rpc";
import { api } from "../helpers";

/** mulberry32: the same sequence for the same seed everywhere. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` vectors of `dims` with components uniform in [-1, 1), from `seed`. */
export function randomVectors(count: number, dims: number, seed: number): number[][] {
  const random = mulberry32(seed);
  return Array.from({ length: count }, () => Array.from({ length: dims }, () => random() * 2 - 1));
}

/** Cosine in float64, each vector scaled by its largest component first (so that tiny ones do not underflow). */
export function cosine64(rawA: readonly number[], rawB: readonly number[]): number {
  const scaled = (v: readonly number[]) => {
    const m = Math.max(...v.map(Math.abs));
    return m === 0 ? v : v.map((x) => x / m);
  };
  const [a, b] = [scaled(rawA), scaled(rawB)];
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return aa === 0 || bb === 0 ? 0 : dot / Math.sqrt(aa * bb);
}

/** The float64 reference: the `k` best of `items` for `query`, best first (ties by id). */
export function reference(items: readonly { id: string; values: number[] }[], query: number[], k: number): { id: string; score: number }[] {
  return items
    .map((v) => ({ id: v.id, score: cosine64(v.values, query) }))
    .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1))
    .slice(0, k);
}

/**
 * The answer agrees with the float64 reference over `items`: the `k` best (or all), with the same scores rank by
 * rank (within the float32 rounding of the stored vectors), and the same ids except where the reference has a
 * near-tie at that rank (with any vector, ranked in or out).
 */
export function expectRanking(matches: { id: string; score: number }[], items: readonly { id: string; values: number[] }[], query: number[], k: number): void {
  const all = reference(items, query, items.length);
  expect(matches.length).toBe(Math.min(k, items.length));
  matches.forEach((m, i) => {
    expect(Math.abs(m.score - all[i]!.score), `rank ${i}`).toBeLessThan(1e-5);
    const tied = all.some((e, j) => j !== i && Math.abs(e.score - all[i]!.score) < 1e-5);
    if (!tied) expect(m.id, `rank ${i}`).toBe(all[i]!.id);
  });
}

let counter = 0;
/** An index name no other test uses. */
export function freshIndex(prefix = "ix"): string {
  counter += 1;
  return `${prefix}-${counter}-${Math.floor(performance.now())}`;
}

export async function createIndex(index: string, body: Record<string, unknown>, init: { token?: string | null; headers?: Record<string, string> } = {}): Promise<any> {
  const res = await api("PUT", `/v1/indexes/${index}`, body, init);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

export async function upsert(index: string, vectors: { id: string; values: number[]; metadata?: Record<string, unknown> }[], token?: string): Promise<void> {
  for (let i = 0; i < vectors.length; i += 100) {
    const res = await api("POST", `/v1/indexes/${index}/vectors`, { vectors: vectors.slice(i, i + 100) }, { token });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.upserted).toBe(Math.min(100, vectors.length - i));
  }
}

export async function query(index: string, body: Record<string, unknown>, token?: string): Promise<{ id: string; score: number; metadata: any }[]> {
  const res = await api("POST", `/v1/indexes/${index}/query`, body, { token });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.matches;
}

/** The registry's record of an index (parts and all), read from its object. */
export async function recordOf(tenant: string, index: string): Promise<IndexRecord | null> {
  return env.VECTOR_INDEX.getByName(registryName(tenant)).getIndex(index);
}

/** The object of one part of an index. */
export function partStub(record: IndexRecord, prefix: number) {
  return env.VECTOR_INDEX.getByName(partName({ tenant: record.tenant, index: record.index, incarnation: record.incarnation, prefix }));
}
