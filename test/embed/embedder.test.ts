// The edge embedder (workers/embedder/) in workerd, reached as the main Worker reaches it: through the service
// binding EMBEDDER. The model is the generated one (build/embed-model.onnx, lib/embed/hash-model.ts), put into the
// embedder's R2 bucket here; the reference is the same math in JS.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";

import modelBytes from "../../build/embed-model.onnx";
import { ApiError } from "../../contract/errors";
import { cosine, HASH_EMBED_MODEL, hashEmbedReference, hashEmbedTable } from "../../lib/embed/hash-model";
import { HashTokenizer } from "../../lib/embed/tokenizer";
import { embedText, embedTexts } from "../../src/mesh/embed";

const KEY = "test/hash-embed-384.onnx";
const MODEL = { r2Key: KEY, dimensions: HASH_EMBED_MODEL.dimensions };
const table = hashEmbedTable();
const tokenizer = new HashTokenizer();
const reference = (texts: string[]): number[][] => hashEmbedReference(tokenizer.encode(texts), table, HASH_EMBED_MODEL.dimensions);

const BASE =
  "The coordinator leases queued tasks to agents of the pool, renews a lease at half of its duration, requeues the task when an agent misses two heartbeats, and records every settlement in the audit chain";
const NEAR = [
  ["identical up to case, punctuation and spacing", BASE, BASE.toUpperCase().replaceAll(",", " ;")],
  ["one word changed", BASE, BASE.replace("requeues", "returns")],
  ["one word added", BASE, `${BASE} today`],
  ["accents", "Résumé of the café meeting in São Paulo about naïve caching", "Resume of the cafe meeting in Sao Paulo about naive caching"],
] as const;
const UNRELATED = [
  ["different topics", BASE, "Quarterly revenue grew eleven percent on strong demand for storage, while margins narrowed in the hardware segment"],
  ["short texts", "red apples and green pears", "distributed consensus protocols"],
  ["a shared stop word or two", "the cat sat on the mat", "the stock market fell sharply on Monday"],
] as const;

/** The first call of the file: the embedder isolate instantiates the runtime and loads the model. */
let firstCallMs = 0;

async function health() {
  return env.EMBEDDER.health();
}

beforeAll(async () => {
  await env.MODELS.put(KEY, modelBytes);
});

describe("the edge embedder", () => {
  it("embeds a text as the JS reference does (within 1e-5), and reuses the session: one load per key", async () => {
    const before = (await health()).loads;
    const started = performance.now();
    const [vector] = await embedTexts(env, [BASE], MODEL);
    firstCallMs = performance.now() - started;
    expect(vector).toHaveLength(384);
    const [expected] = reference([BASE]);
    expect(Math.max(...vector!.map((v, i) => Math.abs(v - expected![i]!)))).toBeLessThan(1e-5);
    expect(Math.hypot(...vector!)).toBeCloseTo(1, 5);

    for (let i = 0; i < 3; i++) await embedText(env, `call ${i}`, MODEL);
    const after = await health();
    expect(after.loads - before).toBe(1);
    const session = after.sessions.find((s) => s.r2Key === KEY);
    expect(session).toMatchObject({ bytes: modelBytes.byteLength, dimensions: 384 });
    expect(session!.uses).toBeGreaterThanOrEqual(4);
    expect(after.runtime).toBe("onnxruntime-web 1.30.0");
  });

  it("gives near-duplicates a cosine of at least 0.95 and unrelated texts less than 0.5", async () => {
    const pairs = [...NEAR, ...UNRELATED];
    const vectors = await embedTexts(env, pairs.flatMap(([, a, b]) => [a, b]), MODEL);
    const scores = pairs.map(([name], i) => ({ name, score: cosine(vectors[2 * i]!, vectors[2 * i + 1]!) }));
    for (const { name, score } of scores.slice(0, NEAR.length)) expect(score, name).toBeGreaterThanOrEqual(0.95);
    for (const { name, score } of scores.slice(NEAR.length)) expect(score, name).toBeLessThan(0.5);
    console.log(`cosine: ${scores.map((s) => `${s.name} ${s.score.toFixed(3)}`).join("; ")}`);
  });

  it("embeds a batch: one vector per text, in order, each as if embedded alone", async () => {
    const texts = Array.from({ length: 40 }, (_, i) => `text number ${i} ${"word ".repeat(i % 7)}about topic ${i % 5}`);
    const result = await env.EMBEDDER.embed(texts, MODEL);
    if (!result.ok) throw new Error(result.error.message);
    expect(result.value.vectors).toHaveLength(40);
    expect(result.value.tokens).toEqual(texts.map((t) => tokenizer.ids(t).length));
    const alone = await embedTexts(env, [texts[17]!], MODEL);
    expect(result.value.vectors[17]).toEqual(alone[0]);
    const expected = reference(texts);
    const worst = Math.max(...result.value.vectors.flatMap((v, r) => v.map((x, j) => Math.abs(x - expected[r]![j]!))));
    expect(worst).toBeLessThan(1e-5);
  });

  it("refuses a key with no model in R2, naming the key", async () => {
    const result = await env.EMBEDDER.embed(["hello"], { r2Key: "models/missing.onnx", dimensions: 384 });
    expect(result).toEqual({ ok: false, error: { code: "invalid_request", message: `no model at r2Key "models/missing.onnx" in the embedder's R2 bucket`, details: { r2Key: "models/missing.onnx" } } });
    const thrown = await embedTexts(env, ["hello"], { r2Key: "models/missing.onnx", dimensions: 384 }).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(ApiError);
    expect((thrown as ApiError).status).toBe(400);
  });

  it("refuses a model whose vectors have other dimensions than asked", async () => {
    const result = await env.EMBEDDER.embed(["hello"], { r2Key: KEY, dimensions: 768 });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe("invalid_request");
    expect(result.error.message).toBe(`model "${KEY}" gives vectors of 384 dimensions, not the 768 of model.dimensions`);
  });

  it("refuses bad arguments, naming the field and the text's index", async () => {
    const result = await env.EMBEDDER.embed(["fine", "", "!!!", 7 as unknown as string], { r2Key: "", dimensions: 0.5 });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe("invalid_request");
    expect(result.error.details).toEqual([
      { field: "texts", index: 1, message: "has no letter or digit to embed" },
      { field: "texts", index: 2, message: "has no letter or digit to embed" },
      { field: "texts", index: 3, message: "must be a string" },
      { field: "model.r2Key", message: "must be an R2 object key of 1 to 1024 bytes" },
      { field: "model.dimensions", message: "must be an integer from 1 to 4096" },
    ]);
    const empty = await env.EMBEDDER.embed([], MODEL);
    expect(empty.ok || empty.error.details).toEqual([{ field: "texts", message: "must be a list of 1 to 256 strings" }]);
  });

  it("refuses a file that is not an ONNX model, and reads a model's tokenizer file", async () => {
    await env.MODELS.put("test/not-a-model.onnx", new TextEncoder().encode("not a model"));
    const bad = await env.EMBEDDER.embed(["hello"], { r2Key: "test/not-a-model.onnx", dimensions: 384 });
    expect(bad).toMatchObject({ ok: false, error: { code: "invalid_request", message: `model "test/not-a-model.onnx" is not an ONNX model onnxruntime-web can load` } });

    // The same model with a tokenizer file that keeps 3 tokens: the rest of a text is not read.
    await env.MODELS.put("test/short.onnx", modelBytes);
    await env.MODELS.put("test/short.onnx.tokenizer.json", JSON.stringify({ type: "hash", vocabSize: 4096, maxLength: 3 }));
    const short = await env.EMBEDDER.embed(["one two three four five"], { r2Key: "test/short.onnx", dimensions: 384 });
    if (!short.ok) throw new Error(short.error.message);
    expect(short.value.tokens).toEqual([5]);
    const [firstThree] = await embedTexts(env, ["one two three"], MODEL);
    expect(short.value.vectors[0]).toEqual(firstThree);

    await env.MODELS.put("test/wordpiece.onnx", modelBytes);
    await env.MODELS.put("test/wordpiece.onnx.tokenizer.json", JSON.stringify({ type: "wordpiece" }));
    const unsupported = await env.EMBEDDER.embed(["hello"], { r2Key: "test/wordpiece.onnx", dimensions: 384 });
    expect(unsupported).toMatchObject({ ok: false, error: { code: "invalid_request" } });
    if (!unsupported.ok) expect(unsupported.error.message).toContain(`tokenizer type "wordpiece" is not supported`);
  });

  it("measures the latency of a call through the service binding (first call, a new model, then warm)", async () => {
    // Timed here, outside the embedder: workerd's clock stands still while synchronous code runs, and moves on I/O.
    await env.MODELS.put("test/timing.onnx", modelBytes);
    const timing = { r2Key: "test/timing.onnx", dimensions: 384 };
    let started = performance.now();
    await embedTexts(env, [BASE], timing);
    const coldMs = performance.now() - started;
    const rounds = 20;
    started = performance.now();
    for (let i = 0; i < rounds; i++) await embedTexts(env, [`${BASE} ${i}`], timing);
    const singleMs = (performance.now() - started) / rounds;
    const batch = Array.from({ length: 64 }, (_, i) => `${BASE} ${i}`);
    started = performance.now();
    for (let i = 0; i < 5; i++) await embedTexts(env, batch, timing);
    const batchPerTextMs = (performance.now() - started) / (5 * batch.length);
    console.log(`embed latency: first call (runtime start and model load) ${firstCallMs.toFixed(0)} ms; another model's first call ${coldMs.toFixed(0)} ms; warm, one text per call ${singleMs.toFixed(2)} ms; warm, 64 per call ${batchPerTextMs.toFixed(3)} ms per text`);
    expect(singleMs).toBeLessThan(coldMs);
  });
});
