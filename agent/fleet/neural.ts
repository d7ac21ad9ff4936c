// Handlers of the `neural` pool: CPU inference with onnxruntime-web (WebAssembly backend) on the tiny MLP that
// scripts/generate-model.ts builds (models/tiny-mlp.onnx: 8 inputs -> 16 ReLU units -> 3-way softmax, seeded,
// untrained weights; it shows the inference path, its labels mean nothing).
//
//   daa agent --pool neural --handlers agent/fleet/neural.ts
//
// neural.classify  {"input": [8 numbers]} -> {"probabilities": [3 numbers], "label": 0-2, "model": "tiny-mlp", "inferenceMs"}
// neural.embed     {"input": [8 numbers]} -> {"embedding": [16 numbers], "dimensions": 16, "model": "tiny-mlp", "inferenceMs"}
//
// The session is created once per process, on first use (about 0.2 s: compiling the runtime's wasm), and shared.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

import * as ort from "onnxruntime-web";
import { z } from "zod";

import { type HandlerContext, type HandlerMap, InputError, parsePayload } from "./handler.ts";
import { TINY_MLP } from "./models/tiny-mlp-weights.ts";

const MODEL_URL = new URL("./models/tiny-mlp.onnx", import.meta.url);
/** The largest finite float32: beyond it an input would turn into Infinity inside the model. */
const FLOAT32_MAX = 3.4028234663852886e38;

const InputPayload = z.strictObject({
  input: z
    .array(z.number().min(-FLOAT32_MAX, "is out of the float32 range").max(FLOAT32_MAX, "is out of the float32 range"), {
      error: `must be a list of ${TINY_MLP.inputSize} numbers`,
    })
    .length(TINY_MLP.inputSize, `must hold exactly ${TINY_MLP.inputSize} numbers`),
});

export type NeuralPayload = z.input<typeof InputPayload>;

export interface ClassifyResult {
  readonly probabilities: number[];
  /** Index of the most probable class (the first one on a tie). */
  readonly label: number;
  readonly model: typeof TINY_MLP.name;
  /** Wall time of `session.run`, measured around the call, in milliseconds. */
  readonly inferenceMs: number;
}

export interface EmbedResult {
  /** The hidden layer (ReLU activations), scaled to unit length; all zeros when no unit is active. */
  readonly embedding: number[];
  readonly dimensions: number;
  readonly model: typeof TINY_MLP.name;
  readonly inferenceMs: number;
}

/**
 * Points the runtime at its own files in node_modules (resolved, so neither the working directory nor a bundler
 * changes where they are found) and keeps it to one thread: Node would otherwise start worker threads for it.
 */
function configureRuntime(): void {
  const require = createRequire(import.meta.url);
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = {
    mjs: pathToFileURL(require.resolve("onnxruntime-web/ort-wasm-simd-threaded.mjs")),
    wasm: pathToFileURL(require.resolve("onnxruntime-web/ort-wasm-simd-threaded.wasm")),
  };
}

let session: Promise<ort.InferenceSession> | undefined;

async function createSession(): Promise<ort.InferenceSession> {
  configureRuntime();
  let model: Uint8Array;
  try {
    model = await readFile(MODEL_URL);
  } catch (error) {
    const code = error instanceof Error && "code" in error ? error.code : undefined;
    if (code === "ENOENT") {
      throw new Error(`model file missing at ${MODEL_URL.pathname}: run node_modules/.bin/node scripts/generate-model.ts`);
    }
    throw error;
  }
  return ort.InferenceSession.create(model, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
}

/** The shared session; a failed load is forgotten so that the next task tries again. */
export function tinyMlpSession(): Promise<ort.InferenceSession> {
  session ??= createSession().catch((error: unknown) => {
    session = undefined;
    throw error;
  });
  return session;
}

interface Inference {
  readonly probabilities: Float32Array;
  readonly hidden: Float32Array;
  readonly inferenceMs: number;
}

function floatOutput(outputs: ort.InferenceSession.OnnxValueMapType, name: string): Float32Array {
  const data = outputs[name]?.data;
  if (!(data instanceof Float32Array)) throw new Error(`model output "${name}" is missing or not float32`);
  return data;
}

async function infer(input: readonly number[], signal: AbortSignal): Promise<Inference> {
  const tinyMlp = await tinyMlpSession();
  signal.throwIfAborted();
  const feeds = { input: new ort.Tensor("float32", Float32Array.from(input), [1, TINY_MLP.inputSize]) };
  const started = performance.now();
  const outputs = await tinyMlp.run(feeds);
  const inferenceMs = performance.now() - started;
  const result = { probabilities: floatOutput(outputs, "probabilities"), hidden: floatOutput(outputs, "hidden"), inferenceMs };
  if (!result.probabilities.every(Number.isFinite)) {
    throw new InputError("invalid payload: input: values too large for the model (its outputs are not finite numbers)");
  }
  return result;
}

/** Milliseconds to the microsecond: more digits would be noise. */
const roundMs = (ms: number): number => Math.round(ms * 1000) / 1000;

/** `neural.classify`: class probabilities for one input vector. */
export async function classify(payload: unknown, context: HandlerContext): Promise<ClassifyResult> {
  const { input } = parsePayload(InputPayload, payload);
  const { probabilities, inferenceMs } = await infer(input, context.signal);
  const values = Array.from(probabilities);
  const label = values.reduce((best, p, i) => (p > (values[best] ?? -Infinity) ? i : best), 0);
  return { probabilities: values, label, model: TINY_MLP.name, inferenceMs: roundMs(inferenceMs) };
}

/** `neural.embed`: the model's hidden representation of one input vector, unit length, for cosine similarity. */
export async function embed(payload: unknown, context: HandlerContext): Promise<EmbedResult> {
  const { input } = parsePayload(InputPayload, payload);
  const { hidden, inferenceMs } = await infer(input, context.signal);
  const norm = Math.hypot(...hidden);
  const embedding = Array.from(hidden, (h) => (norm > 0 ? h / norm : 0));
  return { embedding, dimensions: embedding.length, model: TINY_MLP.name, inferenceMs: roundMs(inferenceMs) };
}

export default {
  "neural.classify": classify,
  "neural.embed": embed,
} satisfies HandlerMap;
