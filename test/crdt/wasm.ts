// The CRDT module's two builds inside workerd, imported as compiled modules like the Worker does.
import debugModule from "../../build/crdt.debug.wasm";
import { CrdtWasm, MemoryTrace } from "../../lib/wasm/crdt";

export { crdtWasm } from "../../lib/wasm/crdt-module";

/** A fresh instance of the debug build (assertions on), with every allocation, free and store traced. */
export function debugCrdt(): { wasm: CrdtWasm; trace: MemoryTrace } {
  const trace = new MemoryTrace();
  return { wasm: new CrdtWasm(debugModule, { trace }), trace };
}
