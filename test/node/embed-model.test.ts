// The generated embedding model (build/embed-model.onnx, scripts/make-embed-model.mjs) run by onnxruntime-web in
// Node against the JS reference of lib/embed/hash-model.ts, the similarity property the semantic cache relies on,
// and the embedder's session cache (workers/embedder/sessions.ts) with a fake loader and clock.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

import * as ort from "onnxruntime-web";
import { describe, expect, it } from "vitest";

import { cosine, HASH_EMBED_MODEL, hashEmbedReference, hashEmbedTable } from "../../lib/embed/hash-model.ts";
import { HashTokenizer } from "../../lib/embed/tokenizer.ts";
import { ModelCache, type Loaded } from "../../workers/embedder/sessions.ts";
import { ROOT } from "../../scripts/dev-server.ts";

const MODEL_PATH = join(ROOT, "build", "embed-model.onnx");

async function session(): Promise<ort.InferenceSession> {
  const require = createRequire(import.meta.url);
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = {
    mjs: pathToFileURL(require.resolve("onnxruntime-web/ort-wasm-simd-threaded.mjs")),
    wasm: pathToFileURL(require.resolve("onnxruntime-web/ort-wasm-simd-threaded.wasm")),
  };
  return ort.InferenceSession.create(readFileSync(MODEL_PATH));
}

describe("the generated embedding model", () => {
  it("is up to date with its generator (same bytes on every run)", () => {
    const out = execFileSync(process.execPath, [join(ROOT, "scripts", "make-embed-model.mjs"), "--check"], { cwd: ROOT, encoding: "utf8" });
    expect(out).toContain("up to date");
  });

  it("runs in onnxruntime-web as the JS reference computes it (within 1e-5), with the sentence-transformers interface", async () => {
    const s = await session();
    expect(s.inputNames).toEqual(["input_ids", "attention_mask"]);
    expect(s.outputNames).toEqual(["sentence_embedding"]);
    const tokenizer = new HashTokenizer();
    const texts = ["The quick brown fox jumps over the lazy dog", "a", "Edge embeddings for a semantic cache, measured"];
    const batch = tokenizer.encode(texts);
    const dims = [batch.batch, batch.sequenceLength];
    const out = await s.run({
      input_ids: new ort.Tensor("int64", BigInt64Array.from(batch.ids, BigInt), dims),
      attention_mask: new ort.Tensor("int64", BigInt64Array.from(batch.mask, BigInt), dims),
    });
    const embedding = out.sentence_embedding!;
    expect(embedding.dims).toEqual([3, 384]);
    const expected = hashEmbedReference(batch, hashEmbedTable(), HASH_EMBED_MODEL.dimensions);
    const data = embedding.data as Float32Array;
    let worst = 0;
    for (let r = 0; r < 3; r++) for (let j = 0; j < 384; j++) worst = Math.max(worst, Math.abs(data[r * 384 + j]! - expected[r]![j]!));
    expect(worst).toBeLessThan(1e-5);
    await s.release();
  });

  it("scores texts by the share of words they have in common (reference math)", () => {
    const tokenizer = new HashTokenizer();
    const table = hashEmbedTable();
    const embed = (text: string) => hashEmbedReference(tokenizer.encode([text]), table, 384)[0]!;
    const words = Array.from({ length: 30 }, (_, i) => `word${i}`);
    const base = embed(words.join(" "));
    // One of 30 words changed: about 29/30; disjoint vocabularies: about 0 (random vectors of 384 dimensions).
    expect(cosine(base, embed([...words.slice(0, 29), "other"].join(" ")))).toBeGreaterThan(0.95);
    const unrelated = Array.from({ length: 200 }, (_, i) => cosine(base, embed(`topic${i} subject${i} matter${i} thing${i}`)));
    expect(Math.max(...unrelated.map(Math.abs))).toBeLessThan(0.3);
  });
});

describe("the embedder's session cache", () => {
  function fixture({ maxEntries = 2, maxBytes = 1000, revalidateMs = 60_000 } = {}) {
    let now = 0;
    const loads: string[] = [];
    const released: string[] = [];
    const etags = new Map<string, string>();
    const cache = new ModelCache<string>({
      load: async (key): Promise<Loaded<string>> => {
        loads.push(key);
        if (key.startsWith("bad")) throw new Error("no such model");
        const etag = etags.get(key) ?? "e1";
        return { value: `${key}@${etag}`, bytes: 100, etag, release: () => released.push(`${key}@${etag}`) };
      },
      etagOf: async (key) => etags.get(key) ?? "e1",
      maxEntries,
      maxBytes,
      revalidateMs,
      now: () => now,
    });
    const get = (key: string) => cache.use(key, async (value) => value);
    return { cache, get, loads, released, etags, tick: (ms: number) => (now += ms) };
  }

  it("loads a key once, also for concurrent first uses, and counts the loads", async () => {
    const { cache, get, loads } = fixture();
    expect(await Promise.all([get("a"), get("a"), get("a")])).toEqual(["a@e1", "a@e1", "a@e1"]);
    await get("a");
    expect(loads).toEqual(["a"]);
    expect(cache.loads).toBe(1);
    expect(cache.entries().map((e) => [e.key, e.uses])).toEqual([["a", 4]]);
  });

  it("evicts the least recently used model beyond maxEntries and releases it", async () => {
    const { cache, get, loads, released } = fixture({ maxEntries: 2 });
    await get("a");
    await get("b");
    await get("a"); // a is now the most recent
    await get("c");
    expect(released).toEqual(["b@e1"]);
    expect(cache.entries().map((e) => e.key)).toEqual(["a", "c"]);
    expect(cache.evictions).toBe(1);
    await get("b");
    expect(loads).toEqual(["a", "b", "c", "b"]);
  });

  it("evicts by total bytes too, but always keeps the newest model", async () => {
    const { cache, get } = fixture({ maxEntries: 5, maxBytes: 150 });
    await get("a");
    await get("b");
    expect(cache.entries().map((e) => e.key)).toEqual(["b"]);
  });

  it("does not release a model while a call runs on it", async () => {
    const { cache, get, released } = fixture({ maxEntries: 1 });
    let finish!: () => void;
    const running = cache.use("a", (value) => new Promise<string>((resolve) => (finish = () => resolve(value))));
    await new Promise((r) => setTimeout(r, 0));
    await get("b"); // evicts a, which is still in use
    expect(released).toEqual([]);
    finish();
    expect(await running).toBe("a@e1");
    expect(released).toEqual(["a@e1"]);
  });

  it("does not keep a failed load: the next call tries again", async () => {
    const { cache, get, loads } = fixture();
    await expect(get("bad")).rejects.toThrow("no such model");
    await expect(get("bad")).rejects.toThrow("no such model");
    expect(loads).toEqual(["bad", "bad"]);
    expect(cache.entries()).toEqual([]);
  });

  it("checks the etag after revalidateMs and reloads a model replaced under the same key", async () => {
    const { get, loads, released, etags, tick } = fixture({ revalidateMs: 60_000 });
    await get("a");
    tick(59_999);
    etags.set("a", "e2");
    expect(await get("a")).toBe("a@e1"); // not yet checked
    tick(1);
    expect(await get("a")).toBe("a@e2");
    expect(loads).toEqual(["a", "a"]);
    expect(released).toEqual(["a@e1"]);
    tick(60_000);
    expect(await get("a")).toBe("a@e2"); // same etag: no reload
    expect(loads).toHaveLength(2);
  });
});
