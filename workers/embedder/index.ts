/**
 * The edge embedder: a Worker of its own (workers/embedder/wrangler.toml, name `daa-embedder`) that embeds texts
 * with an ONNX model from R2 on onnxruntime-web. The main Worker reaches it through the service binding
 * `EMBEDDER` (src/mesh/embed.ts); it has no public route (`workers_dev = false`). The RPC interface is
 * contract/embedder.ts; docs/embeddings.md has the design and the numbers.
 */
import { WorkerEntrypoint } from "cloudflare:workers";

import { EMBED_LIMITS, type EmbedderHealth, type EmbedderRpc, type EmbedModelRef, type EmbedResult } from "../../contract/embedder.ts";
import { ApiError, failed, ok, type FieldProblem, type Outcome } from "../../contract/errors.ts";
import { checkDimensions, loadModel, runModel, type EmbeddingModel } from "./model.ts";
import { RUNTIME_VERSION } from "./runtime.ts";
import { ModelCache } from "./sessions.ts";

/** The bindings of workers/embedder/wrangler.toml (written by hand: `wrangler types` writes one global Env). */
export interface EmbedderEnv {
  MODELS: R2Bucket;
}

/** How long a cached session is trusted before its R2 object's etag is checked again. */
const REVALIDATE_MS = 60_000;
const encoder = new TextEncoder();

/** Per isolate: the bucket is the same for every request, so the first one's binding serves the cache. */
let cache: ModelCache<EmbeddingModel> | undefined;

function modelCache(bucket: R2Bucket): ModelCache<EmbeddingModel> {
  cache ??= new ModelCache<EmbeddingModel>({
    load: (key) => loadModel(bucket, key),
    etagOf: async (key) => (await bucket.head(key))?.etag ?? null,
    maxEntries: EMBED_LIMITS.maxSessions,
    maxBytes: EMBED_LIMITS.maxSessionBytes,
    revalidateMs: REVALIDATE_MS,
  });
  return cache;
}

/** The problems of a call's arguments, each naming its field (and the text's index). */
export function checkArguments(texts: unknown, model: unknown): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (!Array.isArray(texts) || texts.length === 0 || texts.length > EMBED_LIMITS.maxTexts) {
    problems.push({ field: "texts", message: `must be a list of 1 to ${EMBED_LIMITS.maxTexts} strings` });
  } else {
    texts.forEach((text: unknown, index) => {
      if (typeof text !== "string") problems.push({ field: "texts", index, message: "must be a string" });
      else if (text.length > EMBED_LIMITS.maxTextChars) problems.push({ field: "texts", index, message: `is longer than ${EMBED_LIMITS.maxTextChars} characters` });
      else if (!/[\p{L}\p{N}]/u.test(text)) problems.push({ field: "texts", index, message: "has no letter or digit to embed" });
    });
  }
  const ref = (model ?? {}) as Partial<Record<keyof EmbedModelRef, unknown>>;
  const key = ref.r2Key;
  if (typeof key !== "string" || key.length === 0 || encoder.encode(key).length > EMBED_LIMITS.maxR2KeyBytes) {
    problems.push({ field: "model.r2Key", message: `must be an R2 object key of 1 to ${EMBED_LIMITS.maxR2KeyBytes} bytes` });
  }
  const dimensions = ref.dimensions;
  if (typeof dimensions !== "number" || !Number.isInteger(dimensions) || dimensions < 1 || dimensions > EMBED_LIMITS.maxDimensions) {
    problems.push({ field: "model.dimensions", message: `must be an integer from 1 to ${EMBED_LIMITS.maxDimensions}` });
  }
  return problems;
}

export default class Embedder extends WorkerEntrypoint<EmbedderEnv> implements EmbedderRpc {
  async embed(texts: string[], model: EmbedModelRef): Promise<Outcome<EmbedResult>> {
    const problems = checkArguments(texts, model);
    if (problems.length > 0) return failed(new ApiError("invalid_request", "the texts or the model reference are not valid", problems));
    try {
      const { r2Key, dimensions } = model;
      const vectors = await modelCache(this.env.MODELS).use(r2Key, async (loaded) => {
        checkDimensions(loaded, loaded.dimensions, dimensions);
        const batch = loaded.tokenizer.encode(texts);
        return { vectors: await runModel(loaded, batch, dimensions), tokens: batch.tokenCounts };
      });
      return ok({ vectors: vectors.vectors, dimensions, tokens: vectors.tokens });
    } catch (err) {
      if (err instanceof ApiError) return failed(err);
      console.error("embedder: embed failed:", err);
      return failed(new ApiError("internal"));
    }
  }

  async health(): Promise<EmbedderHealth> {
    const models = cache;
    return {
      ok: true,
      runtime: RUNTIME_VERSION,
      sessions: (models?.entries() ?? []).map((e) => ({ r2Key: e.key, bytes: e.bytes, dimensions: e.value.dimensions, loadedAt: e.loadedAt, uses: e.uses })),
      loads: models?.loads ?? 0,
      evictions: models?.evictions ?? 0,
      limits: EMBED_LIMITS,
    };
  }
}
