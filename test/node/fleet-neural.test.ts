import { readFileSync } from "node:fs";

import { describe, expect, it } from "vitest";

import type { HandlerContext } from "../../agent/fleet/handler.ts";
import { mulberry32, TINY_MLP, type TinyMlpWeights, tinyMlpWeights } from "../../agent/fleet/models/tiny-mlp-weights.ts";
import neural, { tinyMlpSession } from "../../agent/fleet/neural.ts";
import { buildTinyMlpModel, TINY_MLP_PATH } from "../../scripts/generate-model.ts";

function context(type: string): HandlerContext {
  return { taskId: "00000000-0000-4000-8000-000000000000", type, attempt: 1, signal: new AbortController().signal };
}

const classify = (payload: unknown) => neural["neural.classify"](payload, context("neural.classify"));
const embed = (payload: unknown) => neural["neural.embed"](payload, context("neural.embed"));

/** The same MLP in plain float64 arithmetic, from the same (float32) weights. */
function reference(weights: TinyMlpWeights, input: readonly number[]): { probabilities: number[]; hidden: number[] } {
  const { inputSize, hiddenSize, classes } = TINY_MLP;
  const at = (array: Float32Array, i: number): number => array[i] ?? Number.NaN;
  const hidden = Array.from({ length: hiddenSize }, (_, j) => {
    let sum = at(weights.b1, j);
    for (let i = 0; i < inputSize; i++) sum += Math.fround(input[i] ?? Number.NaN) * at(weights.w1, i * hiddenSize + j);
    return Math.max(0, sum);
  });
  const logits = Array.from({ length: classes }, (_, k) => {
    let sum = at(weights.b2, k);
    for (let j = 0; j < hiddenSize; j++) sum += (hidden[j] ?? Number.NaN) * at(weights.w2, j * classes + k);
    return sum;
  });
  const top = Math.max(...logits);
  const exps = logits.map((logit) => Math.exp(logit - top));
  const total = exps.reduce((a, b) => a + b, 0);
  return { probabilities: exps.map((e) => e / total), hidden };
}

/** Seeded test inputs: small, large, negative, all zeros, and one-hot vectors. */
function inputs(): number[][] {
  const random = mulberry32(20_240_601);
  const scaled = (scale: number) => Array.from({ length: TINY_MLP.inputSize }, () => (random() * 2 - 1) * scale);
  const oneHot = (i: number) => Array.from({ length: TINY_MLP.inputSize }, (_, j) => (j === i ? 1 : 0));
  return [
    new Array<number>(TINY_MLP.inputSize).fill(0),
    [1, 2, 3, 4, 5, 6, 7, 8],
    ...Array.from({ length: TINY_MLP.inputSize }, (_, i) => oneHot(i)),
    ...Array.from({ length: 20 }, () => scaled(1)),
    ...Array.from({ length: 10 }, () => scaled(10)),
    ...Array.from({ length: 5 }, () => scaled(0.001)),
  ];
}

function expectClose(actual: readonly number[], expected: readonly number[], tolerance: number): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((value, i) => expect(Math.abs(value - (expected[i] ?? Number.NaN))).toBeLessThanOrEqual(tolerance));
}

describe("tiny-mlp model file", () => {
  it("is what the generator builds, byte for byte, every time", () => {
    const built = buildTinyMlpModel();
    expect(Buffer.from(buildTinyMlpModel()).equals(Buffer.from(built))).toBe(true);
    expect(readFileSync(TINY_MLP_PATH).equals(Buffer.from(built))).toBe(true);
    expect(built.length).toBeLessThan(4096);
  });

  it("has seeded weights that the seed alone determines", () => {
    const a = tinyMlpWeights();
    expect(tinyMlpWeights().w1).toEqual(a.w1);
    expect(tinyMlpWeights(TINY_MLP.seed + 1).w1).not.toEqual(a.w1);
    expect(a.w1).toHaveLength(TINY_MLP.inputSize * TINY_MLP.hiddenSize);
    expect(a.w2).toHaveLength(TINY_MLP.hiddenSize * TINY_MLP.classes);
  });
});

describe("neural.classify", () => {
  const weights = tinyMlpWeights();

  it("agrees with a float64 computation of the same MLP within 1e-5", async () => {
    for (const input of inputs()) {
      const result = await classify({ input });
      const expected = reference(weights, input);
      expectClose(result.probabilities, expected.probabilities, 1e-5);
      expect(result.label).toBe(expected.probabilities.indexOf(Math.max(...expected.probabilities)));
    }
  });

  it("answers probabilities that sum to 1, the label, the model and the measured inference time", async () => {
    const result = await classify({ input: [1, 2, 3, 4, 5, 6, 7, 8] });
    expect(result.probabilities).toHaveLength(TINY_MLP.classes);
    expect(result.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(result.label).toBe(result.probabilities.indexOf(Math.max(...result.probabilities)));
    expect(result.model).toBe("tiny-mlp");
    expect(result.inferenceMs).toBeGreaterThanOrEqual(0);
    expect(result.inferenceMs).toBeLessThan(1000);
  });

  it("does not give every input the same label", async () => {
    const labels = new Set<number>();
    for (const input of inputs()) labels.add((await classify({ input })).label);
    expect(labels.size).toBeGreaterThan(1);
  });

  it("loads the session once and serves concurrent tasks from it", async () => {
    const session = tinyMlpSession();
    expect(tinyMlpSession()).toBe(session);
    const all = inputs().slice(0, 16);
    const results = await Promise.all(all.map((input) => classify({ input })));
    results.forEach((result, i) => expectClose(result.probabilities, reference(weights, all[i] ?? []).probabilities, 1e-5));
    expect(tinyMlpSession()).toBe(session);
  });

  it.each([
    [{ input: [1, 2, 3] }, "invalid payload: input: must hold exactly 8 numbers"],
    [{ input: new Array<number>(9).fill(0) }, "invalid payload: input: must hold exactly 8 numbers"],
    [{ input: [1, 2, 3, 4, 5, 6, 7, "8"] }, "invalid payload: input.7: Invalid input: expected number, received string"],
    [{ input: [1, 2, 3, 4, 5, 6, 7, null] }, "invalid payload: input.7: Invalid input: expected number, received null"],
    [{ input: "1,2,3,4,5,6,7,8" }, "invalid payload: input: must be a list of 8 numbers"],
    [{}, "invalid payload: input: must be a list of 8 numbers"],
    [{ input: [0, 0, 0, 0, 0, 0, 0, 0], inputs: [] }, 'invalid payload: payload: Unrecognized key: "inputs"'],
    [{ input: [1e39, 0, 0, 0, 0, 0, 0, 0] }, "invalid payload: input.0: is out of the float32 range"],
    [{ input: new Array<number>(8).fill(3e38) }, "invalid payload: input: values too large for the model (its outputs are not finite numbers)"],
  ])("rejects %j without retry", async (payload, message) => {
    const error: unknown = await classify(payload).then(
      () => expect.fail("expected a failure"),
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ message, retryable: false, code: "invalid_payload" });
  });
});

describe("neural.embed", () => {
  it("returns the hidden layer of the same MLP, scaled to unit length", async () => {
    const weights = tinyMlpWeights();
    for (const input of inputs().slice(1)) {
      const result = await embed({ input });
      const { hidden } = reference(weights, input);
      const norm = Math.hypot(...hidden);
      expect(result.dimensions).toBe(TINY_MLP.hiddenSize);
      expect(result.model).toBe("tiny-mlp");
      if (norm === 0) expect(result.embedding.every((value) => value === 0)).toBe(true);
      else expectClose(result.embedding, hidden.map((h) => h / norm), 1e-5);
    }
  });

  it("validates its payload like classify", async () => {
    await expect(embed({ input: [1] })).rejects.toMatchObject({ retryable: false, message: "invalid payload: input: must hold exactly 8 numbers" });
  });
});
