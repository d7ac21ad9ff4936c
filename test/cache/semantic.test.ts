import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import modelBytes from "../../build/embed-model.onnx";
import { api, expectError, freshPool, register } from "../helpers";

/**
 * The semantic cache (API.md, "Caches and vector indexes"): a type of `cache.semantic.types` is looked up by its
 * embedding (or its text, embedded at the edge) in the tenant's index when the exact key misses; the nearest entry of
 * the same type and version at or above the threshold answers, with its similarity. Each success is filed there by
 * its fill.
 */

const MODEL_KEY = "test/semantic-hash-embed-384.onnx";
let isolates = 0;
const fresh = () => ({ headers: { "x-daa-test-isolate": `sem-${++isolates}-${Math.floor(performance.now())}` } });

beforeAll(async () => {
  await env.MODELS.put(MODEL_KEY, modelBytes);
});

function unit(v: number[]): number[] {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

async function semanticPool(extra: Record<string, unknown> = {}): Promise<{ pool: string; index: string }> {
  const pool = freshPool("s");
  const index = `ix-${pool}`;
  const res = await api("PUT", `/v1/pools/${pool}/config`, { cache: { semantic: { types: [`${pool}.answer`], index, threshold: 0.95, ...extra } } });
  expect(res.status).toBe(200);
  await register(pool, "worker");
  return { pool, index };
}

/** Submits, runs it on the pool's agent, and waits until the index holds its vector. */
async function runOnce(pool: string, index: string, body: Record<string, unknown>, result: unknown): Promise<string> {
  const submitted = await api("POST", "/v1/tasks", { type: `${pool}.answer`, ...body });
  expect(submitted.status).toBe(201);
  expect(submitted.headers.get("x-daa-cache")).toBe("miss");
  const [task] = (await api("POST", `/v1/pools/${pool}/agents/worker/lease`, { max: 1, waitMs: 0 })).body.tasks;
  expect((await api("POST", `/v1/tasks/${task.id}/complete`, { leaseToken: task.leaseToken, result })).status).toBe(200);
  for (let i = 0; i < 100; i++) {
    const listed = (await api("GET", "/v1/indexes")).body.indexes?.find((x: any) => x.index === index);
    if (listed && listed.vectors >= 1 + Number(body.__seen ?? 0)) return task.id;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`index ${index} never got the vector of ${task.id}`);
}

describe("the semantic cache", () => {
  it("answers a near-duplicate embedding with the nearest result, and not an unrelated one", async () => {
    const { pool, index } = await semanticPool();
    const base = unit([1, 0.5, 0.25, 0, 0, 0, 0, 0.1]);
    const source = await runOnce(pool, index, { payload: { q: "what is an edge queue?" }, embedding: base }, { a: "a queue at the edge" });
    const near = unit(base.map((x, i) => x + (i % 2 === 0 ? 0.03 : -0.02)));
    const hit = await api("POST", "/v1/tasks", { type: `${pool}.answer`, payload: { q: "what's an edge queue" }, embedding: near }, fresh());
    expect(hit.status).toBe(200);
    expect(hit.headers.get("x-daa-cache")).toBe("hit-semantic");
    expect(hit.body).toMatchObject({ id: source, status: "succeeded", result: { a: "a queue at the edge" } });
    expect(hit.body.cache.level).toBe("semantic");
    expect(hit.body.cache.similarity).toBeGreaterThanOrEqual(0.95);
    expect(hit.body.cache.similarity).toBeLessThan(1);
    const unrelated = await api("POST", "/v1/tasks", { type: `${pool}.answer`, payload: { q: "other" }, embedding: unit([0, 0, 0, 1, 1, 0, 0, 0]) }, fresh());
    expect(unrelated.status).toBe(201);
    expect(unrelated.headers.get("x-daa-cache")).toBe("miss");
  });

  it("looks only among entries of the same type and cacheVersion, and never for other types", async () => {
    const { pool, index } = await semanticPool();
    const v = unit([0, 1, 0, 1]);
    await runOnce(pool, index, { payload: { n: 1 }, embedding: v, cacheVersion: "v1" }, "one");
    const otherVersion = await api("POST", "/v1/tasks", { type: `${pool}.answer`, payload: { n: 2 }, embedding: v, cacheVersion: "v2" }, fresh());
    expect(otherVersion.status).toBe(201);
    const sameVersion = await api("POST", "/v1/tasks", { type: `${pool}.answer`, payload: { n: 3 }, embedding: v, cacheVersion: "v1" }, fresh());
    expect(sameVersion.headers.get("x-daa-cache")).toBe("hit-semantic");
    // A type outside cache.semantic.types has side effects, maybe: never answered by similarity.
    const side = await api("POST", "/v1/tasks", { type: `${pool}.publish`, payload: { n: 4 }, embedding: v }, fresh());
    expect(side.status).toBe(201);
    expect(side.headers.get("x-daa-cache")).toBeNull();
  });

  it("embeds text at the edge with the pool's model", async () => {
    const { pool, index } = await semanticPool({ model: { r2Key: MODEL_KEY, dimensions: 384 } });
    const source = await runOnce(pool, index, { payload: { id: 1 }, text: "How do I reset the password of my account?" }, "see settings");
    const hit = await api("POST", "/v1/tasks", { type: `${pool}.answer`, payload: { id: 2 }, text: "how do I reset the password of my account" }, fresh());
    expect(hit.headers.get("x-daa-cache")).toBe("hit-semantic");
    expect(hit.body.cache.sourceTaskId).toBe(source);
    const other = await api("POST", "/v1/tasks", { type: `${pool}.answer`, payload: { id: 3 }, text: "Shipping times to Norway in winter" }, fresh());
    expect(other.status).toBe(201);
  });

  it("refuses text without a model, and an embedding that does not fit the index, with 400", async () => {
    const { pool, index } = await semanticPool();
    expectError(await api("POST", "/v1/tasks", { type: `${pool}.answer`, text: "no model" }), 400, "invalid_request");
    await runOnce(pool, index, { payload: { d: 3 }, embedding: unit([1, 2, 3]) }, "three");
    const wrong = await api("POST", "/v1/tasks", { type: `${pool}.answer`, payload: { d: 4 }, embedding: unit([1, 2, 3, 4]) }, fresh());
    expectError(wrong, 400, "invalid_request");
    expect(JSON.stringify(wrong.body.error.details)).toContain("embedding");
    expect((await api("GET", `/v1/pools/${pool}`)).body.queue.queued).toBe(0);
  });
});
