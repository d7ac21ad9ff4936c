/**
 * onnxruntime-web inside workerd. Two constraints shape this file:
 * - workerd refuses to compile WebAssembly from bytes at run time (no `WebAssembly.instantiate(bytes)`); a Wasm
 *   file must be imported as a module, which the bundler turns into a `WebAssembly.Module` compiled at deploy.
 * - onnxruntime-web 1.30 has no option for handing it a module: `env.wasm` takes `wasmPaths` (fetched, then
 *   compiled from bytes) or `wasmBinary` (compiled from bytes). Its Emscripten glue calls
 *   `WebAssembly.instantiate(new Uint8Array(wasmBinary), imports)`.
 * So `wasmBinary` is set to a placeholder buffer of our own, and `WebAssembly.instantiate` is wrapped once: a call
 * whose bytes are a view of that placeholder instantiates the imported module instead (instantiating a Module is
 * allowed); every other call goes to the original untouched. One thread (workerd has no worker threads), no proxy
 * worker, no SIMD probe (the probe validates a few bytes of Wasm; the simd build is what is imported).
 */
import * as ort from "onnxruntime-web/wasm";
import ortWasm from "onnxruntime-web/ort-wasm-simd-threaded.wasm";

export { ort };

const placeholder = new ArrayBuffer(8);
let configured = false;

function isPlaceholder(source: unknown): boolean {
  return ArrayBuffer.isView(source) && source.buffer === placeholder;
}

function configure(): void {
  if (configured) return;
  configured = true;
  const original = WebAssembly.instantiate.bind(WebAssembly) as (source: unknown, imports?: WebAssembly.Imports) => Promise<unknown>;
  const instantiate = async (source: unknown, imports?: WebAssembly.Imports): Promise<unknown> => {
    if (!isPlaceholder(source)) return original(source, imports);
    const instance = await WebAssembly.instantiate(ortWasm, imports);
    return { instance, module: ortWasm };
  };
  WebAssembly.instantiate = instantiate as typeof WebAssembly.instantiate;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.wasm.simd = false;
  ort.env.wasm.wasmBinary = placeholder;
  ort.env.logLevel = "error";
}

/** onnxruntime-web's version, for health answers. */
export const RUNTIME_VERSION = `onnxruntime-web ${ort.env.versions.web ?? "?"}`;

/** A session over model bytes; the first call also starts the runtime (instantiates its Wasm). */
export function createSession(model: Uint8Array): Promise<ort.InferenceSession> {
  configure();
  return ort.InferenceSession.create(model, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
}
