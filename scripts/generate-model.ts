// Writes agent/fleet/models/tiny-mlp.onnx, the model behind the `neural.classify` and `neural.embed` handlers of the
// local fleet. Nothing is downloaded: the graph is built here with onnx-proto from seeded weights
// (agent/fleet/models/tiny-mlp-weights.ts), so every run produces the same bytes.
//
//   node_modules/.bin/node scripts/generate-model.ts           write the file if it is missing or different
//   node_modules/.bin/node scripts/generate-model.ts --check   exit 1 if the file is missing or different
//
// Graph (opset 13): input[batch, 8] -> MatMul W1[8, 16] -> Add b1 -> Relu = hidden[batch, 16]
//                   -> MatMul W2[16, 3] -> Add b2 -> Softmax(axis -1) = probabilities[batch, 3]
// Both `hidden` (the embedding) and `probabilities` are graph outputs.
import { existsSync, readFileSync, realpathSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

import onnxProto, { type onnx } from "onnx-proto";

import { TINY_MLP, tinyMlpWeights } from "../agent/fleet/models/tiny-mlp-weights.ts";

// onnx-proto is CommonJS: its classes come through the default import; `onnx` above names only its types.
const proto = onnxProto.onnx;
const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Where the handlers load the model from. */
export const TINY_MLP_PATH = join(root, "agent", "fleet", "models", "tiny-mlp.onnx");

const FLOAT = proto.TensorProto.DataType.FLOAT;

/** Little-endian float32 bytes, whatever the machine's byte order, as ONNX raw_data requires. */
function floatTensor(name: string, dims: readonly number[], values: Float32Array): onnx.ITensorProto {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  values.forEach((value, i) => view.setFloat32(i * 4, value, true));
  return { name, dims: [...dims], dataType: FLOAT, rawData: bytes };
}

function floatValueInfo(name: string, dims: readonly (number | string)[]): onnx.IValueInfoProto {
  const dim = dims.map((d) => (typeof d === "string" ? { dimParam: d } : { dimValue: d }));
  return { name, type: { tensorType: { elemType: FLOAT, shape: { dim } } } };
}

function node(opType: string, inputs: string[], outputs: string[], attribute: onnx.IAttributeProto[] = []): onnx.INodeProto {
  return { opType, input: inputs, output: outputs, name: outputs[0], attribute };
}

/** The serialized model. Pure: the same bytes on every call. */
export function buildTinyMlpModel(): Uint8Array {
  const { inputSize, hiddenSize, classes } = TINY_MLP;
  const { w1, b1, w2, b2 } = tinyMlpWeights();
  const graph: onnx.IGraphProto = {
    name: TINY_MLP.name,
    docString: `2-layer MLP, ${inputSize} -> ${hiddenSize} (ReLU) -> ${classes} (softmax), seeded weights (seed ${TINY_MLP.seed})`,
    initializer: [
      floatTensor("W1", [inputSize, hiddenSize], w1),
      floatTensor("b1", [hiddenSize], b1),
      floatTensor("W2", [hiddenSize, classes], w2),
      floatTensor("b2", [classes], b2),
    ],
    input: [floatValueInfo("input", ["batch", inputSize])],
    output: [floatValueInfo("probabilities", ["batch", classes]), floatValueInfo("hidden", ["batch", hiddenSize])],
    node: [
      node("MatMul", ["input", "W1"], ["hidden_matmul"]),
      node("Add", ["hidden_matmul", "b1"], ["hidden_pre"]),
      node("Relu", ["hidden_pre"], ["hidden"]),
      node("MatMul", ["hidden", "W2"], ["logits_matmul"]),
      node("Add", ["logits_matmul", "b2"], ["logits"]),
      node("Softmax", ["logits"], ["probabilities"], [{ name: "axis", type: proto.AttributeProto.AttributeType.INT, i: -1 }]),
    ],
  };
  const model: onnx.IModelProto = {
    irVersion: 8,
    opsetImport: [{ domain: "", version: 13 }],
    producerName: "daa-mesh scripts/generate-model.ts",
    producerVersion: "1",
    modelVersion: 1,
    docString: "Demonstration model for the local fleet: untrained, deterministic.",
    graph,
  };
  const error = proto.ModelProto.verify(model);
  if (error) throw new Error(`invalid ONNX model: ${error}`);
  return proto.ModelProto.encode(proto.ModelProto.create(model)).finish();
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function main(args: string[]): number {
  const bytes = buildTinyMlpModel();
  const shown = relative(process.cwd(), TINY_MLP_PATH) || TINY_MLP_PATH;
  const current = existsSync(TINY_MLP_PATH) ? readFileSync(TINY_MLP_PATH) : undefined;
  if (current && sameBytes(current, bytes)) {
    console.log(`${shown} is up to date (${bytes.length} bytes)`);
    return 0;
  }
  if (args.includes("--check")) {
    console.error(`${shown} is ${current ? "out of date" : "missing"}: run node_modules/.bin/node scripts/generate-model.ts`);
    return 1;
  }
  // Write then rename, so a concurrent reader never sees half a model.
  const temporary = `${TINY_MLP_PATH}.${process.pid}.tmp`;
  writeFileSync(temporary, bytes);
  renameSync(temporary, TINY_MLP_PATH);
  console.log(`wrote ${shown} (${bytes.length} bytes)`);
  return 0;
}

const entry = process.argv[1];
if (entry && existsSync(entry) && realpathSync(entry) === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));
