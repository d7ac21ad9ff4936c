// The CRDT module as the Worker loads it: wrangler's bundler turns the .wasm import into a compiled
// WebAssembly.Module (workerd does not compile bytes at run time). One instance per isolate.
import crdtModule from "../../build/crdt.wasm";
import { CrdtWasm } from "./crdt";

let shared: CrdtWasm | null = null;

/**
 * The isolate's CRDT module.
 *
 * @example
 * const merged = crdtWasm().merge(local, remote);
 */
export function crdtWasm(): CrdtWasm {
  shared ??= new CrdtWasm(crdtModule);
  return shared;
}
