// Shared by the similarity tests: loading the release and debug builds, a minimal rtrace for the debug build, and
// float64 references.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../../scripts/dev-server.ts";
import { compileModule, instantiateSimilarity, type Similarity, type WasmMemory, type WasmModule } from "../../lib/wasm/similarity.ts";

const compiled = new Map<string, WasmModule>();

function compile(file: string): WasmModule {
  let module = compiled.get(file);
  if (module === undefined) {
    module = compileModule(readFileSync(join(ROOT, "build", file)));
    compiled.set(file, module);
  }
  return module;
}

/** A fresh instance of the release build (what the Worker loads). */
export function releaseInstance(): Similarity {
  return instantiateSimilarity(compile("similarity.wasm"));
}

/** A fresh instance of the debug build, with an rtrace watching it. */
export function debugInstance(): { sim: Similarity; rtrace: Rtrace } {
  const rtrace = new Rtrace();
  const sim = instantiateSimilarity(compile("similarity.debug.wasm"), { imports: rtrace.imports() });
  rtrace.memory = sim.raw.memory;
  return { sim, rtrace };
}

/**
 * The `rtrace` imports of a build compiled with `--use ASC_RTRACE=1` (AssemblyScript 0.28 ships the hooks, not the
 * @assemblyscript/rtrace helper): the allocator reports every block it hands out, moves, resizes and frees, and
 * every store outside the runtime calls `onstore`. This one keeps the live blocks and checks that each block is
 * allocated once and freed once, and that every store lands inside a live block or the static data below the
 * heap (this module's registry), that is, that no export writes memory it does not own.
 */
export class Rtrace {
  memory: WasmMemory | null = null;
  heapBase = 0;
  /** Live blocks: header address -> payload bytes. */
  readonly blocks = new Map<number, number>();
  readonly errors: string[] = [];
  allocations = 0;
  frees = 0;
  stores = 0;
  #lastBlock = 0;

  imports(): Record<string, Record<string, unknown>> {
    return {
      rtrace: {
        oninit: (heapBase: number) => {
          this.heapBase = heapBase;
        },
        onalloc: (block: number) => {
          if (this.blocks.has(block)) this.errors.push(`block ${block} allocated twice`);
          this.blocks.set(block, this.#size(block));
          this.allocations++;
        },
        onresize: (block: number) => {
          if (!this.blocks.has(block)) this.errors.push(`resize of unknown block ${block}`);
          this.blocks.set(block, this.#size(block));
        },
        onmove: (from: number, to: number) => {
          if (!this.blocks.has(from) || !this.blocks.has(to)) this.errors.push(`move of unknown block ${from} -> ${to}`);
        },
        onfree: (block: number) => {
          if (!this.blocks.delete(block)) this.errors.push(`free of unknown block ${block}`);
          if (this.#lastBlock === block) this.#lastBlock = 0;
          this.frees++;
        },
        onvisit: () => 1,
        oncollect: () => {},
        oninterrupt: () => {},
        onyield: () => {},
        onstore: (ptr: number, offset: number, bytes: number, isRT: number) => {
          this.stores++;
          if (!isRT) this.#checkStore((ptr >>> 0) + offset, bytes);
          return ptr;
        },
      },
    };
  }

  /** Bytes in live blocks (payload). */
  get liveBytes(): number {
    let total = 0;
    for (const size of this.blocks.values()) total += size;
    return total;
  }

  #size(block: number): number {
    if (this.memory === null) return 0;
    return (new Uint32Array(this.memory.buffer, block, 1)[0] ?? 0) & ~3;
  }

  #checkStore(address: number, bytes: number): void {
    if (address + bytes <= this.heapBase || this.heapBase === 0) return; // static data (or before the heap exists)
    const inside = (block: number): boolean => {
      const size = this.blocks.get(block);
      return size !== undefined && address >= block + 4 && address + bytes <= block + 4 + size;
    };
    if (this.#lastBlock !== 0 && inside(this.#lastBlock)) return;
    for (const block of this.blocks.keys()) {
      if (inside(block)) {
        this.#lastBlock = block;
        return;
      }
    }
    if (this.errors.length < 20) this.errors.push(`store of ${bytes} bytes at ${address}: not inside a live block`);
  }
}

/** Float64 dot product and the sum of |a_i b_i| (for the rounding bound). */
export function dot64(a: ArrayLike<number>, b: ArrayLike<number>): { dot: number; absSum: number } {
  let dot = 0;
  let absSum = 0;
  for (let i = 0; i < a.length; i++) {
    const p = a[i]! * b[i]!;
    dot += p;
    absSum += Math.abs(p);
  }
  return { dot, absSum };
}

export function norm64(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

const U = 2 ** -24; // unit roundoff of float32

/**
 * The worst-case error of the module's float32 dot product against the exact value: each product is rounded
 * once and passes through at most ceil(dim / 16) + 12 additions (lane accumulation, the 4-lane remainder, the
 * horizontal sum, the scalar tail), so |error| <= (ceil(dim / 16) + 13) * u * sum|a_i b_i|, plus dim smallest
 * subnormals for products that underflow. Near zero (cancellation) this is the meaningful tolerance; elsewhere
 * the tests demand a relative error below 1e-5.
 */
export function dotErrorBound(dim: number, absSum: number): number {
  return (Math.ceil(dim / 16) + 13) * U * absSum + dim * 2 ** -149;
}

/** Round half to even (what the module's `nearest` does). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The module's int8 quantisation in float64: q_i = round(x_i * 127 / max|x|), scale = float32(max|x| / 127). */
export function quantize64(x: ArrayLike<number>): { q: Int8Array; scale: number } {
  let maxAbs = 0;
  for (let i = 0; i < x.length; i++) maxAbs = Math.max(maxAbs, Math.abs(x[i]!));
  const inv = maxAbs > 0 ? 127 / maxAbs : 0;
  const q = new Int8Array(x.length);
  for (let i = 0; i < x.length; i++) q[i] = Math.min(127, Math.max(-127, roundHalfEven(x[i]! * inv)));
  return { q, scale: Math.fround(Math.fround(maxAbs) / 127) };
}

/** Indices 0..n-1 sorted by score (higher first), equal scores by index (lower first); NaN counts as -Infinity. */
export function fullSort(scores: ArrayLike<number>): number[] {
  const key = (i: number) => (Number.isNaN(scores[i]) ? -Infinity : scores[i]!);
  return Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => key(b) - key(a) || a - b);
}
