// The CRDT codec: build, read and write the state synchronizer's CRDTs in the binary format of
// docs/crdt-format.md, byte for byte what the WebAssembly module (src/wasm/crdt.ts) reads and writes.
// Imports between these files end in ".js", which tsc, wrangler and vite resolve to the .ts file, so that Node can
// run them as they are too (bench/crdt.ts maps ".js" to ".ts" with a resolve hook).
export { bytesToKey, type BytesLike, compareBytes, type Key, keyOf, keyToBytes, keyToText, toBytes } from "./bytes.js";
export { decode, decodeAs, encode, type Crdt, typeOf, typeOfCrdt } from "./codec.js";
export { CausalContext, compareDots, type Dot } from "./context.js";
export { CRDT_ERROR_MESSAGES, CrdtError, CrdtErrorCode } from "./errors.js";
export { type ClockOrder, CRDT_TYPE_NAMES, CrdtType, FORMAT_VERSION, MAX_REPLICA, MAX_SAFE } from "./format.js";
export { GSet } from "./gset.js";
export { type MapEntry, ORMap, wins } from "./ormap.js";
export { ORSet } from "./orset.js";
export { type CounterEntry, PNCounter } from "./pncounter.js";
export { type Embedding, embeddingElement, parseEmbeddingElement, SemanticState } from "./semantic.js";
export { VectorClock } from "./vclock.js";
