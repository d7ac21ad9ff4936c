// Typed loader of the CRDT WebAssembly module (build/crdt.wasm, from assembly/crdt/). Runtime-agnostic: it takes
// a compiled module (in a Worker, `import crdtModule from "../../build/crdt.wasm"`; in Node,
// `compileCrdtModule(readFileSync("build/crdt.wasm"))`) and instantiates it synchronously, so it never
// compiles bytes at run time (which workerd forbids).
//
// Every call copies its inputs into blocks it takes from the module, calls, copies the result out and gives every
// block back; the module keeps nothing between calls. A malformed input comes back as a `CrdtError` with the code
// and offset of the codec's. If the module traps (only running out of its memory, on a very large input), the
// loader replaces the instance with a fresh one, which loses nothing, and throws `OUT_OF_MEMORY`.
import { CrdtError, CrdtErrorCode } from "../crdt/errors.js";
import type { ClockOrder, CrdtType } from "../crdt/format.js";

// The few parts of the WebAssembly JavaScript API the loader uses, declared here: the Worker's types have them,
// Node's (tsconfig.node.json) do not.
/** A compiled module (`WebAssembly.Module`). */
export type WasmModule = object;
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
type WasmImports = Record<string, Record<string, (...args: number[]) => unknown>>;
interface WasmApi {
  Module: { new (bytes: Uint8Array): WasmModule; imports(module: WasmModule): { module: string; name: string }[] };
  Instance: new (module: WasmModule, imports: WasmImports) => { exports: unknown };
  RuntimeError: new () => Error;
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/**
 * Compiles the module from its bytes: for Node (workerd forbids compiling at run time; the Worker imports the
 * .wasm file, which its bundler compiles).
 *
 * @example
 * const crdt = new CrdtWasm(compileCrdtModule(readFileSync("build/crdt.wasm")));
 */
export function compileCrdtModule(bytes: Uint8Array): WasmModule {
  return new wasmApi.Module(bytes);
}

/** An element, key or value: bytes, or text (UTF-8). */
export type WasmBytes = Uint8Array | string;

/** The result of an operation: the new state and the delta to send to the other replicas. */
export interface Update {
  readonly state: Uint8Array;
  readonly delta: Uint8Array;
}

interface Exports {
  readonly memory: WasmMemory;
  readonly FORMAT_VERSION: { readonly value: unknown };
  alloc(size: number): number;
  free(ptr: number): void;
  resultLength(): number;
  errorCode(): number;
  errorOffset(): number;
  errorInput(): number;
  errorMessage(code: number): number;
  merge(pa: number, la: number, pb: number, lb: number): number;
  validate(p: number, l: number): number;
  compareClocks(pa: number, la: number, pb: number, lb: number): number;
  gsetAdd(ep: number, el: number): number;
  orsetAdd(sp: number, sl: number, ep: number, el: number, replica: number): number;
  orsetRemove(sp: number, sl: number, ep: number, el: number): number;
  ormapSet(sp: number, sl: number, kp: number, kl: number, vp: number, vl: number, timestamp: number, replica: number): number;
  ormapRemove(sp: number, sl: number, kp: number, kl: number): number;
  pncounterAdd(sp: number, sl: number, replica: number, amount: number): number;
  vclockTick(sp: number, sl: number, replica: number): number;
}

const ORDERS: readonly ClockOrder[] = ["equal", "before", "after", "concurrent"];
const utf8 = new TextEncoder();

function toBytes(x: WasmBytes): Uint8Array {
  return typeof x === "string" ? utf8.encode(x) : x;
}

/** Reads an AssemblyScript string (UTF-16, its byte length in the 4 bytes before it). */
function readString(memory: WasmMemory, ptr: number): string {
  if (ptr === 0) return "";
  const bytes = new Uint32Array(memory.buffer, ptr - 4, 1)[0]!;
  return String.fromCharCode(...new Uint16Array(memory.buffer, ptr, bytes >>> 1));
}

/**
 * What a trap becomes once the instance is replaced: running out of memory (the allocator traps when memory cannot
 * grow, or aborts on a block above 1 GiB) is `OUT_OF_MEMORY`; anything else is a bug and is rethrown as it is.
 */
function trapError(err: unknown): unknown {
  if (err instanceof wasmApi.RuntimeError) return new CrdtError(CrdtErrorCode.OUT_OF_MEMORY);
  if (err instanceof Error && err.message.includes("Allocation too large")) return new CrdtError(CrdtErrorCode.OUT_OF_MEMORY);
  return err;
}

/**
 * Memory accounting for a debug build compiled with rtrace (`--use ASC_RTRACE=1`): every block the allocator
 * hands out and takes back, and every store, checked against the live blocks. A test asserts that `live` is 0
 * between calls and that `errors` stays empty.
 */
export class MemoryTrace {
  /** block address -> payload size */
  readonly blocks = new Map<number, number>();
  readonly errors: string[] = [];
  allocations = 0;
  frees = 0;
  stores = 0;
  private heapBase = 0;
  private memory: WasmMemory | null = null;
  private hit = -1;

  get live(): number {
    return this.blocks.size;
  }

  attach(memory: WasmMemory): void {
    this.memory = memory;
  }

  private size(block: number): number {
    // mmInfo, the word at the block's address: the payload size, two flag bits below it
    return this.memory ? new Uint32Array(this.memory.buffer, block, 1)[0]! & ~3 : 0;
  }

  private inBlock(addr: number, bytes: number): boolean {
    const hit = this.hit;
    if (hit >= 0) {
      const size = this.blocks.get(hit);
      if (size !== undefined && addr >= hit + 4 && addr + bytes <= hit + 4 + size) return true;
    }
    for (const [block, size] of this.blocks) {
      if (addr >= block + 4 && addr + bytes <= block + 4 + size) {
        this.hit = block;
        return true;
      }
    }
    return false;
  }

  imports(): Record<string, (...args: number[]) => unknown> {
    return {
      oninit: (heapBase: number) => {
        this.heapBase = heapBase;
      },
      onalloc: (block: number) => {
        this.allocations++;
        if (this.blocks.has(block)) this.errors.push(`block ${block} allocated twice`);
        this.blocks.set(block, this.size(block));
      },
      onresize: (block: number) => {
        if (!this.blocks.has(block)) this.errors.push(`resize of unknown block ${block}`);
        this.blocks.set(block, this.size(block));
      },
      onmove: (from: number) => {
        if (!this.blocks.has(from)) this.errors.push(`move of unknown block ${from}`);
      },
      onfree: (block: number) => {
        this.frees++;
        if (!this.blocks.delete(block)) this.errors.push(`free of unknown block ${block}`);
      },
      onvisit: () => true,
      oncollect: () => undefined,
      onstore: (ptr: number, offset: number, bytes: number, isRT: number) => {
        this.stores++;
        const addr = ptr + offset;
        if (!isRT && addr >= this.heapBase && !this.inBlock(addr, bytes)) {
          this.errors.push(`store of ${bytes} bytes at ${addr}, outside every live block`);
        }
        return ptr;
      },
    };
  }
}

export interface CrdtWasmOptions {
  /** Required when the module is a debug build with rtrace; records its allocations and stores. */
  trace?: MemoryTrace;
}

/**
 * The CRDT module. States and deltas are encodings (`Uint8Array`) in the format of docs/crdt-format.md; read and
 * build them with the codec in src/crdt/.
 *
 * @example
 * const crdt = new CrdtWasm(crdtModule);
 * const { state, delta } = crdt.orsetAdd(queue, "task-1", 7);
 * const merged = crdt.merge(state, remoteState);
 */
export class CrdtWasm {
  readonly module: WasmModule;
  readonly trace: MemoryTrace | null;
  /** How many times a trap made the loader replace the instance. */
  replacements = 0;
  private x: Exports;

  constructor(module: WasmModule, { trace }: CrdtWasmOptions = {}) {
    this.module = module;
    const wantsTrace = wasmApi.Module.imports(module).some((i) => i.module === "rtrace");
    if (wantsTrace && !trace) throw new Error("this CRDT module is a debug build with rtrace: pass a MemoryTrace");
    this.trace = wantsTrace ? trace! : null;
    this.x = this.instantiate();
  }

  private instantiate(): Exports {
    let memory: WasmMemory | null = null;
    const imports: WasmImports = {
      env: {
        abort: (msg: number, file: number, line: number, column: number) => {
          const where = memory ? `${readString(memory, msg)} at ${readString(memory, file)}:${line}:${column}` : "";
          throw new Error(`CRDT module aborted: ${where}`);
        },
      },
    };
    if (this.trace) imports.rtrace = this.trace.imports();
    const instance = new wasmApi.Instance(this.module, imports);
    const x = instance.exports as unknown as Exports;
    memory = x.memory;
    this.trace?.attach(memory);
    return x;
  }

  /** The format version the module reads and writes. */
  get formatVersion(): number {
    return this.x.FORMAT_VERSION.value as number;
  }

  /** The module's message for an error code (the codec has the same table). */
  errorMessage(code: number): string {
    return readString(this.x.memory, this.x.errorMessage(code));
  }

  /** Bytes of linear memory the instance has grown to. */
  get memoryBytes(): number {
    return this.x.memory.buffer.byteLength;
  }

  private error(): CrdtError {
    const x = this.x;
    return new CrdtError(x.errorCode() as CrdtErrorCode, x.errorOffset(), x.errorInput());
  }

  /** Copies the inputs in, calls, copies the result out; every block is given back. */
  private call(inputs: readonly Uint8Array[], fn: (x: Exports, ptrs: number[]) => number): Uint8Array {
    return this.withInputs(inputs, (x, ptrs) => {
      const out = fn(x, ptrs);
      if (out === 0) throw this.error();
      const bytes = new Uint8Array(x.memory.buffer, out, x.resultLength()).slice();
      x.free(out);
      return bytes;
    });
  }

  /**
   * Copies the inputs into the module's memory and runs `fn` on their addresses; the blocks are given back after.
   * A trap replaces the instance (its memory may be inconsistent) and is reported as a CrdtError.
   */
  private withInputs<T>(inputs: readonly Uint8Array[], fn: (x: Exports, ptrs: number[]) => T): T {
    const x = this.x;
    const ptrs: number[] = [];
    let trapped = false;
    try {
      for (const input of inputs) {
        const ptr = x.alloc(input.length);
        ptrs.push(ptr);
        new Uint8Array(x.memory.buffer, ptr, input.length).set(input);
      }
      return fn(x, ptrs);
    } catch (err) {
      if (err instanceof CrdtError) throw err;
      trapped = true;
      this.x = this.instantiate();
      this.replacements++;
      throw trapError(err);
    } finally {
      if (!trapped) for (const ptr of ptrs) x.free(ptr);
    }
  }

  /**
   * The merge (join) of two encodings of the same type, states or deltas alike; both are checked completely.
   *
   * @example
   * const merged = crdt.merge(local, remote);
   */
  merge(a: Uint8Array, b: Uint8Array): Uint8Array {
    return this.call([a, b], (x, [pa, pb]) => x.merge(pa!, a.length, pb!, b.length));
  }

  /** Merges any number of encodings of one type, left to right. */
  mergeAll(states: readonly Uint8Array[]): Uint8Array {
    if (states.length === 0) throw new CrdtError(CrdtErrorCode.BAD_ARGUMENT);
    let acc = states[0]!;
    for (let i = 1; i < states.length; i++) acc = this.merge(acc, states[i]!);
    return states.length === 1 ? this.merge(acc, acc) : acc;
  }

  /** Checks an encoding completely; returns its type, or throws the `CrdtError` the codec would. */
  validate(bytes: Uint8Array): CrdtType {
    const t = this.withInputs([bytes], (x, [p]) => x.validate(p!, bytes.length));
    if (t === 0) throw this.error();
    return t as CrdtType;
  }

  /** How vector clock `a` compares with `b`. */
  compareClocks(a: Uint8Array, b: Uint8Array): ClockOrder {
    const c = this.withInputs([a, b], (x, [pa, pb]) => x.compareClocks(pa!, a.length, pb!, b.length));
    if (c < 0) throw this.error();
    return ORDERS[c]!;
  }

  private update(state: Uint8Array, delta: Uint8Array): Update {
    return { state: this.merge(state, delta), delta };
  }

  /** G-Set: adds an element. */
  gsetAdd(state: Uint8Array, element: WasmBytes): Update {
    const e = toBytes(element);
    return this.update(state, this.call([e], (x, [pe]) => x.gsetAdd(pe!, e.length)));
  }

  /** OR-Set: adds an element at a replica (add wins over a concurrent remove). */
  orsetAdd(state: Uint8Array, element: WasmBytes, replica: number): Update {
    const e = toBytes(element);
    return this.update(state, this.call([state, e], (x, [ps, pe]) => x.orsetAdd(ps!, state.length, pe!, e.length, replica)));
  }

  /** OR-Set: removes an element (the adds this state has seen). */
  orsetRemove(state: Uint8Array, element: WasmBytes): Update {
    const e = toBytes(element);
    return this.update(state, this.call([state, e], (x, [ps, pe]) => x.orsetRemove(ps!, state.length, pe!, e.length)));
  }

  /** OR-Map: sets a key at a replica; the value of a key is its write with the largest (timestamp, replica, counter). */
  ormapSet(state: Uint8Array, key: WasmBytes, value: WasmBytes, timestamp: number, replica: number): Update {
    const k = toBytes(key);
    const v = toBytes(value);
    return this.update(
      state,
      this.call([state, k, v], (x, [ps, pk, pv]) => x.ormapSet(ps!, state.length, pk!, k.length, pv!, v.length, timestamp, replica)),
    );
  }

  /** OR-Map: removes a key (the writes this state has seen). */
  ormapRemove(state: Uint8Array, key: WasmBytes): Update {
    const k = toBytes(key);
    return this.update(state, this.call([state, k], (x, [ps, pk]) => x.ormapRemove(ps!, state.length, pk!, k.length)));
  }

  /** PN-Counter: adds a nonzero whole `amount` at a replica (negative subtracts). */
  pncounterAdd(state: Uint8Array, replica: number, amount: number): Update {
    return this.update(state, this.call([state], (x, [ps]) => x.pncounterAdd(ps!, state.length, replica, amount)));
  }

  /** Vector clock: counts one event of a replica. */
  vclockTick(clock: Uint8Array, replica: number): Update {
    return this.update(clock, this.call([clock], (x, [ps]) => x.vclockTick(ps!, clock.length, replica)));
  }
}
