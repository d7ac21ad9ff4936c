#!/usr/bin/env node
// Writes build/embed-model.onnx, the embedding model of the edge embedder in the tests and the local fleet
// (lib/embed/hash-model.ts says what it computes and why it serves a semantic cache). Nothing is downloaded: the
// graph is built here with onnx-proto from the seeded table, so every run produces the same bytes.
//
//   node scripts/make-embed-model.mjs            write the file if it is missing or different
//   node scripts/make-embed-model.mjs --check    exit 1 if the file is missing or different
//
// The model goes into R2 (bucket daa-models, key models/hash-embed-384.onnx) through scripts/seed-models.mjs.
import { existsSync, mkdirSync, readFileSync, realpathSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

import onnxProto from "onnx-proto";

import { HASH_EMBED_MODEL, hashEmbedTable } from "../lib/embed/hash-model.ts";

// onnx-proto is CommonJS: its classes come through the default import.
const proto = onnxProto.onnx;
const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Where the seeding script and the tests read the model from. */
export const EMBED_MODEL_PATH = join(root, "build", "embed-model.onnx");

const { FLOAT, INT8, INT64 } = proto.TensorProto.DataType;
const INT = proto.AttributeProto.AttributeType.INT;

function tensor(name, dataType, dims, rawData) {
  return { name, dims: [...dims], dataType, rawData };
}

function int64s(name, values) {
  const bytes = new Uint8Array(values.length * 8);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  return tensor(name, INT64, [values.length], bytes);
}

/** A float32 scalar (dims []), little-endian as ONNX raw_data requires. */
function float32(name, value) {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setFloat32(0, value, true);
  return tensor(name, FLOAT, [], bytes);
}

function valueInfo(name, elemType, dims) {
  const dim = dims.map((d) => (typeof d === "string" ? { dimParam: d } : { dimValue: d }));
  return { name, type: { tensorType: { elemType, shape: { dim } } } };
}

function node(opType, inputs, outputs, attribute = []) {
  return { opType, input: inputs, output: outputs, name: outputs[0], attribute };
}

/** The serialized model. Pure: the same bytes on every call. */
export function buildEmbedModel(spec = HASH_EMBED_MODEL) {
  const { vocabSize, dimensions } = spec;
  const table = hashEmbedTable(spec);
  const graph = {
    name: spec.name,
    docString: `hashed bag of words: int8 table [${vocabSize}, ${dimensions}] (seed ${spec.seed}), masked mean, L2 norm`,
    initializer: [
      tensor("embedding_table", INT8, [vocabSize, dimensions], new Uint8Array(table.buffer, table.byteOffset, table.byteLength)),
      int64s("axis_sequence", [1]),
      int64s("axis_last", [2]),
      float32("one", 1),
      float32("epsilon", 1e-12),
    ],
    input: [valueInfo("input_ids", INT64, ["batch", "sequence"]), valueInfo("attention_mask", INT64, ["batch", "sequence"])],
    output: [valueInfo("sentence_embedding", FLOAT, ["batch", dimensions])],
    node: [
      node("Gather", ["embedding_table", "input_ids"], ["token_vectors_int8"], [{ name: "axis", type: INT, i: 0 }]),
      node("Cast", ["token_vectors_int8"], ["token_vectors"], [{ name: "to", type: INT, i: FLOAT }]),
      node("Cast", ["attention_mask"], ["mask"], [{ name: "to", type: INT, i: FLOAT }]),
      node("Unsqueeze", ["mask", "axis_last"], ["mask_3d"]),
      node("Mul", ["token_vectors", "mask_3d"], ["masked_vectors"]),
      node("ReduceSum", ["masked_vectors", "axis_sequence"], ["summed"], [{ name: "keepdims", type: INT, i: 0 }]),
      node("ReduceSum", ["mask", "axis_sequence"], ["token_count"], [{ name: "keepdims", type: INT, i: 1 }]),
      node("Max", ["token_count", "one"], ["divisor"]),
      node("Div", ["summed", "divisor"], ["mean"]),
      node("ReduceL2", ["mean"], ["norm_raw"], [
        { name: "axes", type: proto.AttributeProto.AttributeType.INTS, ints: [1] },
        { name: "keepdims", type: INT, i: 1 },
      ]),
      node("Max", ["norm_raw", "epsilon"], ["norm"]),
      node("Div", ["mean", "norm"], ["sentence_embedding"]),
    ],
  };
  const model = {
    irVersion: 8,
    opsetImport: [{ domain: "", version: 13 }],
    producerName: "daa-mesh scripts/make-embed-model.mjs",
    producerVersion: "1",
    modelVersion: 1,
    docString: "Generated embedding model for tests and local development: untrained, deterministic (lib/embed/hash-model.ts).",
    graph,
  };
  const error = proto.ModelProto.verify(model);
  if (error) throw new Error(`invalid ONNX model: ${error}`);
  return proto.ModelProto.encode(proto.ModelProto.create(model)).finish();
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** Writes the model when missing or different; returns its path. `check`: only report. */
export function ensureEmbedModel({ check = false, quiet = false } = {}) {
  const bytes = buildEmbedModel();
  const shown = relative(process.cwd(), EMBED_MODEL_PATH) || EMBED_MODEL_PATH;
  const current = existsSync(EMBED_MODEL_PATH) ? readFileSync(EMBED_MODEL_PATH) : undefined;
  if (current && sameBytes(current, bytes)) {
    if (!quiet) console.log(`${shown} is up to date (${bytes.length} bytes)`);
    return { path: EMBED_MODEL_PATH, ok: true, written: false };
  }
  if (check) {
    console.error(`${shown} is ${current ? "out of date" : "missing"}: run node scripts/make-embed-model.mjs`);
    return { path: EMBED_MODEL_PATH, ok: false, written: false };
  }
  mkdirSync(dirname(EMBED_MODEL_PATH), { recursive: true });
  // Write then rename, so a concurrent reader never sees half a model.
  const temporary = `${EMBED_MODEL_PATH}.${process.pid}.tmp`;
  writeFileSync(temporary, bytes);
  renameSync(temporary, EMBED_MODEL_PATH);
  if (!quiet) console.log(`wrote ${shown} (${bytes.length} bytes)`);
  return { path: EMBED_MODEL_PATH, ok: true, written: true };
}

const entry = process.argv[1];
if (entry && existsSync(entry) && realpathSync(entry) === fileURLToPath(import.meta.url)) {
  process.exitCode = ensureEmbedModel({ check: process.argv.includes("--check") }).ok ? 0 : 1;
}
