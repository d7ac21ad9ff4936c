// The weights of `tiny-mlp.onnx`, derived from a fixed seed so that the generator
// (scripts/generate-model.ts) and the float64 cross-check in test/node/fleet-neural.test.ts read the very same
// numbers. The model is a demonstration of the inference path, not a trained classifier: its label is stable for a
// given input and carries no meaning beyond that.

/** Shape and seed of the model. Changing any of these changes the generated file. */
export const TINY_MLP = {
  name: "tiny-mlp",
  inputSize: 8,
  hiddenSize: 16,
  classes: 3,
  seed: 0x0da4_3e5d,
} as const;

/** Row-major weights: `w1[i * hiddenSize + j]` links input i to hidden unit j; `w2[j * classes + k]` likewise. */
export interface TinyMlpWeights {
  readonly w1: Float32Array;
  readonly b1: Float32Array;
  readonly w2: Float32Array;
  readonly b2: Float32Array;
}

/** mulberry32: a 32-bit PRNG that is tiny, fast and the same on every platform. Returns floats in [0, 1). */
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

/**
 * Glorot-uniform weights and small biases, rounded to float32 (what the model stores), so a float64 reference
 * computed from these arrays differs from onnxruntime only by float32 arithmetic.
 */
export function tinyMlpWeights(seed: number = TINY_MLP.seed): TinyMlpWeights {
  const { inputSize, hiddenSize, classes } = TINY_MLP;
  const random = mulberry32(seed);
  const uniform = (length: number, limit: number): Float32Array => {
    const out = new Float32Array(length);
    for (let i = 0; i < length; i++) out[i] = (random() * 2 - 1) * limit;
    return out;
  };
  const w1 = uniform(inputSize * hiddenSize, Math.sqrt(6 / (inputSize + hiddenSize)));
  const b1 = uniform(hiddenSize, 0.1);
  const w2 = uniform(hiddenSize * classes, Math.sqrt(6 / (hiddenSize + classes)));
  const b2 = uniform(classes, 0.1);
  return { w1, b1, w2, b2 };
}
