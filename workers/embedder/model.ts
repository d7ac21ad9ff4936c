/**
 * One embedding model of the edge embedder: its ONNX file and tokenizer file read from R2, its session, and one
 * batch run. The model's interface is that of a sentence-transformers ONNX export:
 * - inputs `input_ids` and `attention_mask` (int64 or int32, `[batch, sequence]`), and `token_type_ids` if it has
 *   that input (all zeros: one segment);
 * - its first output: `[batch, dimensions]` (pooled, e.g. `sentence_embedding`) is used as it is;
 *   `[batch, sequence, dimensions]` (e.g. `last_hidden_state`) is mean-pooled over the attention mask here and
 *   L2-normalized, which is what sentence-transformers' Pooling + Normalize modules do.
 */
import { ApiError } from "../../contract/errors.ts";
import { EMBED_LIMITS } from "../../contract/embedder.ts";
import { DEFAULT_HASH_TOKENIZER, HashTokenizer, hashTokenizerSettings, type EncodedBatch, type Tokenizer } from "../../lib/embed/tokenizer.ts";
import type { Loaded } from "./sessions.ts";
import { createSession, ort } from "./runtime.ts";

export interface EmbeddingModel {
  readonly r2Key: string;
  readonly tokenizer: Tokenizer;
  readonly session: ort.InferenceSession;
  /** From the output's static shape; null when the model leaves it symbolic (checked on each run instead). */
  readonly dimensions: number | null;
  readonly bytes: number;
}

const FED_INPUTS = ["input_ids", "attention_mask", "token_type_ids"];

/** The tokenizer file beside a model; absent: the hashing tokenizer with its defaults. */
export const tokenizerKey = (r2Key: string): string => `${r2Key}.tokenizer.json`;

async function readTokenizer(bucket: R2Bucket, r2Key: string): Promise<Tokenizer> {
  const object = await bucket.get(tokenizerKey(r2Key));
  if (!object) return new HashTokenizer(DEFAULT_HASH_TOKENIZER);
  let settings: unknown;
  try {
    settings = JSON.parse(await object.text());
    return new HashTokenizer(hashTokenizerSettings(settings));
  } catch (err) {
    const why = err instanceof RangeError ? err.message : "it is not JSON";
    throw new ApiError("invalid_request", `the tokenizer file ${tokenizerKey(r2Key)} of model ${JSON.stringify(r2Key)} cannot be used: ${why}`, { r2Key });
  }
}

function tensorMeta(list: readonly ort.InferenceSession.ValueMetadata[], name: string): { type: string; shape: readonly (number | string)[] } | null {
  const meta = list.find((m) => m.name === name);
  return meta && meta.isTensor ? { type: meta.type, shape: meta.shape } : null;
}

/** Reads a model from R2 and makes its session. Refusals name the key; R2 failures are internal. */
export async function loadModel(bucket: R2Bucket, r2Key: string): Promise<Loaded<EmbeddingModel>> {
  // The size first (head), so that a file too large is never read; the tokenizer file meanwhile.
  const [head, tokenizer] = await Promise.all([bucket.head(r2Key), readTokenizer(bucket, r2Key)]);
  if (!head) throw new ApiError("invalid_request", `no model at r2Key ${JSON.stringify(r2Key)} in the embedder's R2 bucket`, { r2Key });
  if (head.size > EMBED_LIMITS.maxModelBytes) {
    throw new ApiError("invalid_request", `model ${JSON.stringify(r2Key)} is ${head.size} bytes, over the edge embedder's ${EMBED_LIMITS.maxModelBytes}: run it on an origin agent`, { r2Key, bytes: head.size });
  }
  // Read by the etag seen above: a file replaced in between is refused (412) and the next call loads the new one.
  const object = await bucket.get(r2Key, { onlyIf: { etagMatches: head.etag } });
  if (!object || !("body" in object)) throw new Error(`model ${r2Key} changed or vanished while loading`);
  const bytes = new Uint8Array(await object.arrayBuffer());
  let session: ort.InferenceSession;
  try {
    session = await createSession(bytes);
  } catch (err) {
    console.error(`embedder: onnxruntime cannot load ${r2Key}: ${err instanceof Error ? err.message : String(err)}`);
    throw new ApiError("invalid_request", `model ${JSON.stringify(r2Key)} is not an ONNX model onnxruntime-web can load`, { r2Key });
  }
  const missing = ["input_ids", "attention_mask"].filter((name) => !session.inputNames.includes(name));
  const extra = session.inputNames.filter((name) => !FED_INPUTS.includes(name));
  const output = session.outputNames[0] === undefined ? null : tensorMeta(session.outputMetadata, session.outputNames[0]);
  const rank = output?.shape.length;
  if (missing.length > 0 || extra.length > 0 || !output || output.type !== "float32" || (rank !== 2 && rank !== 3)) {
    await session.release();
    throw new ApiError(
      "invalid_request",
      `model ${JSON.stringify(r2Key)} has inputs [${session.inputNames.join(", ")}] and outputs [${session.outputNames.join(", ")}]: the embedder feeds input_ids, attention_mask (and token_type_ids) and reads a float32 [batch, dimensions] or [batch, sequence, dimensions] first output`,
      { r2Key },
    );
  }
  const last = output.shape[output.shape.length - 1];
  const model: EmbeddingModel = { r2Key, tokenizer, session, dimensions: typeof last === "number" ? last : null, bytes: bytes.byteLength };
  return { value: model, bytes: bytes.byteLength, etag: object.etag, release: () => void session.release().catch(() => {}) };
}

/** Refuses a model whose vectors are not `dimensions` long. */
export function checkDimensions(model: EmbeddingModel, actual: number | null, dimensions: number): void {
  if (actual !== null && actual !== dimensions) {
    throw new ApiError("invalid_request", `model ${JSON.stringify(model.r2Key)} gives vectors of ${actual} dimensions, not the ${dimensions} of model.dimensions`, {
      r2Key: model.r2Key,
      dimensions: actual,
    });
  }
}

function idTensor(meta: { type: string } | null, values: Int32Array, dims: number[]): ort.Tensor {
  return meta?.type === "int32" ? new ort.Tensor("int32", values, dims) : new ort.Tensor("int64", BigInt64Array.from(values, (v) => BigInt(v)), dims);
}

/** Masked mean over the sequence, then unit length: `hidden` is `[batch, sequence, dimensions]`. */
function meanPool(hidden: Float32Array, batch: EncodedBatch, dimensions: number): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < batch.batch; r++) {
    const sum = new Float64Array(dimensions);
    for (let t = 0; t < batch.sequenceLength; t++) {
      if (batch.mask[r * batch.sequenceLength + t] === 0) continue;
      const at = (r * batch.sequenceLength + t) * dimensions;
      for (let j = 0; j < dimensions; j++) sum[j]! += hidden[at + j]!;
    }
    const norm = Math.max(Math.hypot(...sum), 1e-12);
    out.push(Array.from(sum, (v) => Math.fround(v / norm)));
  }
  return out;
}

/** Runs one batch; out: one vector per row. */
export async function runModel(model: EmbeddingModel, batch: EncodedBatch, dimensions: number): Promise<number[][]> {
  const { session } = model;
  const dims = [batch.batch, batch.sequenceLength];
  const feeds: Record<string, ort.Tensor> = {
    input_ids: idTensor(tensorMeta(session.inputMetadata, "input_ids"), batch.ids, dims),
    attention_mask: idTensor(tensorMeta(session.inputMetadata, "attention_mask"), batch.mask, dims),
  };
  if (session.inputNames.includes("token_type_ids")) {
    feeds.token_type_ids = idTensor(tensorMeta(session.inputMetadata, "token_type_ids"), new Int32Array(batch.ids.length), dims);
  }
  const outputName = session.outputNames[0]!;
  const results = await session.run(feeds, [outputName]);
  const output = results[outputName]!;
  try {
    const shape = output.dims;
    checkDimensions(model, shape[shape.length - 1] ?? null, dimensions);
    const data = output.data as Float32Array;
    if (shape.length === 3) return meanPool(data, batch, dimensions);
    return Array.from({ length: batch.batch }, (_, r) => Array.from(data.subarray(r * dimensions, (r + 1) * dimensions)));
  } finally {
    output.dispose();
    for (const tensor of Object.values(feeds)) tensor.dispose();
  }
}
