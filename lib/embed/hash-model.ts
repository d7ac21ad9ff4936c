/**
 * The generated embedding model of the tests and the local fleet ("hash-embed"), written once here so that the
 * generator (scripts/make-embed-model.mjs), the JS reference below and the tests read the very same numbers.
 *
 * It is a bag of words: each token id (lib/embed/tokenizer.ts, hashing tokenizer) has a fixed pseudo-random int8
 * vector of `dimensions` values (seeded mulberry32, Gaussian by Box-Muller, sigma 40, clamped to +-127; row 0, the
 * padding id, is zero); a text's embedding is the mean of its tokens' vectors, L2-normalized. Random vectors of 384
 * dimensions are nearly orthogonal (their cosine has a standard deviation of 1/sqrt(384), about 0.05), hence
 * the cosine of two texts is close to the share of their tokens they have in common: a text and the same text with
 * one word of 30 changed score about 0.97, texts with no word in common about 0. That is the property the semantic
 * cache needs from a model, without any training. It knows nothing of meaning: synonyms are unrelated words.
 *
 * ONNX graph (opset 13), the interface of a sentence-transformers export with pooling:
 *   input_ids [batch, sequence] int64, attention_mask [batch, sequence] int64
 *   Gather(table int8 [vocabSize, dimensions], input_ids) -> Cast float -> * mask -> ReduceSum over sequence
 *   / max(token count, 1) -> / max(L2 norm, 1e-12) = sentence_embedding [batch, dimensions] float32
 */
import type { EncodedBatch } from "./tokenizer.ts";

/** Shape and seed. Changing any of these changes the generated file. */
export const HASH_EMBED_MODEL = {
  name: "hash-embed-384",
  /** Where `npm start`, `npm run dev` and the tests put the model in R2 (bucket daa-models). */
  r2Key: "models/hash-embed-384.onnx",
  vocabSize: 4096,
  dimensions: 384,
  maxLength: 128,
  seed: 0x5eed_e4b3,
  sigma: 40,
} as const;

/** mulberry32: a 32-bit PRNG, tiny and the same on every platform. Floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The embedding table, row-major `[vocabSize, dimensions]`: `table[id * dimensions + j]`. */
export function hashEmbedTable(spec: { vocabSize: number; dimensions: number; seed: number; sigma: number } = HASH_EMBED_MODEL): Int8Array {
  const { vocabSize, dimensions, seed, sigma } = spec;
  const random = mulberry32(seed);
  const table = new Int8Array(vocabSize * dimensions);
  for (let i = dimensions; i < table.length; i += 2) {
    // Box-Muller: two independent normals per pair of uniforms; 1 - u keeps the logarithm finite.
    const radius = Math.sqrt(-2 * Math.log(1 - random()));
    const angle = 2 * Math.PI * random();
    table[i] = clampInt8(radius * Math.cos(angle) * sigma);
    if (i + 1 < table.length) table[i + 1] = clampInt8(radius * Math.sin(angle) * sigma);
  }
  return table;
}

function clampInt8(value: number): number {
  return Math.max(-127, Math.min(127, Math.round(value)));
}

/**
 * What the model computes, in float64: per row, the masked mean of the tokens' table rows, L2-normalized (a row
 * without tokens gives zeros). onnxruntime computes in float32; the two agree within about 1e-7 per value.
 */
export function hashEmbedReference(batch: EncodedBatch, table: Int8Array, dimensions: number): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < batch.batch; r++) {
    const sum = new Float64Array(dimensions);
    let count = 0;
    for (let t = 0; t < batch.sequenceLength; t++) {
      const at = r * batch.sequenceLength + t;
      if (batch.mask[at] === 0) continue;
      count += 1;
      const row = batch.ids[at]! * dimensions;
      for (let j = 0; j < dimensions; j++) sum[j]! += table[row + j]!;
    }
    const mean = Array.from(sum, (v) => v / Math.max(count, 1));
    const norm = Math.max(Math.hypot(...mean), 1e-12);
    out.push(mean.map((v) => v / norm));
  }
  return out;
}

/** Cosine similarity of two vectors (0 when either is all zeros). */
export function cosine(a: readonly number[], b: readonly number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}
