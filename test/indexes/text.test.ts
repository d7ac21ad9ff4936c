import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import modelBytes from "../../build/embed-model.onnx";
import { api, expectError } from "../helpers";

/** `text` queries: an index created with a model embeds the query at the edge (the embedder behind EMBEDDER). */

const MODEL = { r2Key: "test/index-text-hash-embed-384.onnx", dimensions: 384 };
const DOCS = ["How do I reset my password?", "Shipping times to Norway in winter", "Refund policy for damaged goods"];

beforeAll(async () => {
  await env.MODELS.put(MODEL.r2Key, modelBytes);
});

async function embedded(texts: string[]): Promise<number[][]> {
  const out = await env.EMBEDDER.embed(texts, MODEL);
  if (!out.ok) throw new Error(JSON.stringify(out.error));
  return out.value.vectors;
}

describe("text queries", () => {
  it("embed the query with the index's model and rank by it", async () => {
    expect((await api("PUT", "/v1/indexes/docs-text", { dimensions: 384, model: MODEL })).status).toBe(201);
    const listed = (await api("GET", "/v1/indexes")).body.indexes.find((i: any) => i.index === "docs-text");
    expect(listed.model).toEqual(MODEL);
    const vectors = (await embedded(DOCS)).map((values, i) => ({ id: `doc-${i}`, values, metadata: { text: DOCS[i] } }));
    expect((await api("POST", "/v1/indexes/docs-text/vectors", { vectors })).body).toEqual({ upserted: 3 });
    const res = await api("POST", "/v1/indexes/docs-text/query", { text: "how can I reset the password", topK: 2 });
    expect(res.status).toBe(200);
    expect(res.body.matches[0].id).toBe("doc-0");
    expect(res.body.matches[0].score).toBeGreaterThan(res.body.matches[1].score);
    // The same settings again: 200; another model: 409.
    expect((await api("PUT", "/v1/indexes/docs-text", { dimensions: 384, model: MODEL })).status).toBe(200);
    expectError(await api("PUT", "/v1/indexes/docs-text", { dimensions: 384, model: { ...MODEL, r2Key: "other.onnx" } }), 409, "conflict");
  });

  it("are refused with 400 for an index without a model, and a model must have the index's dimensions", async () => {
    expect((await api("PUT", "/v1/indexes/no-model", { dimensions: 3 })).status).toBe(201);
    const res = await api("POST", "/v1/indexes/no-model/query", { text: "anything", topK: 1 });
    expectError(res, 400, "invalid_request");
    expect(res.body.error.details[0].field).toBe("text");
    expectError(await api("PUT", "/v1/indexes/bad-model", { dimensions: 3, model: MODEL }), 400, "invalid_request");
    expectError(await api("POST", "/v1/indexes/missing-model/query", { text: "x", topK: 1 }), 404, "not_found");
  });
});
