// Similarity search in WebAssembly (issue 5, part 5): top-k scans over N x 384 float32 and int8 corpora, measured
// against a memory-bandwidth probe and plain JavaScript loops in the same process.
//
// For each corpus size N (100,000 and 1,000,000; --quick: 100,000) one instance of the module holds a float32 and
// an int8 corpus of the same clustered vectors (bench/similarity-data.ts), and JavaScript holds the same vectors in
// plain typed arrays. Measured, interleaved, median of several repetitions:
//   probe      a Wasm SIMD streaming sum (i32x4 adds) over exactly the row bytes a scan reads: what one core can
//              read from memory here
//   wasm       top-10 of one query (cosine), f32x4 / i32x4.dot_i16x8_s kernels and the bounded heap
//   js         the same top-10 with plain JavaScript loops (a dot product per row, an insertion into the best 10)
//   batch      top-10 of 16 queries in one pass (each row is read once and scored against all 16)
// Measurements come in rounds (each at least ~0.1 s); a round during which other processes kept more than 0.3
// cores busy is discarded and repeated, and the load of the kept rounds is printed: the machine is shared.
// GB/s = bytes of row data / time; vectors/s = N / time. Verification (exit 1 on failure): Wasm and JavaScript
// find the same neighbours with the same scores, probe sums repeat, recall is computed against exact float32.
// recall@10 of int8: the int8 top-10 against the float32 top-10 of 100 queries (--quick: 50).
//
// Memory: the Worker build (build/similarity.wasm) is capped at 64 MiB, far below 1M x 384 float32 (1.5 GB), so the
// benchmark builds the same source with --maximumMemory 65536 (4 GiB, the wasm32 limit) into
// build/similarity.node.wasm; the capacity table at the end measures the Worker build itself.
//
//   node bench/similarity.ts [--quick] [--n 100000,1000000] [--queries Q] [--no-wait]
//
// The last line printed is one JSON object with the results of the largest N.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { compileModule, instantiateSimilarity, type Corpus, type Similarity, type TopK } from "../lib/wasm/similarity.ts";
import { ClusteredData, recallAtK } from "./similarity-data.ts";
import { machineBusyMs } from "./lib/cpu.ts";
import { commitOf, cpuModel, osName, packageVersion } from "./lib/machine.ts";

const ROOT = join(fileURLToPath(import.meta.url), "..", "..");
const DIM = 384;
const K = 10;

// ---- options ------------------------------------------------------------------------------------------------

const USAGE = `usage: node bench/similarity.ts [--quick] [--n 100000,1000000] [--queries Q] [--no-wait]
  --quick     N = 100,000 only, fewer repetitions (well under a minute)
  --n         corpus sizes (default 100000,1000000)
  --queries   queries for recall@10 (default 100; --quick 50)
  --no-wait   do not wait for the machine to be idle before measuring`;

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    n: { type: "string" },
    queries: { type: "string" },
    "no-wait": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const QUICK = values.quick;
const SIZES = (values.n ?? (QUICK ? "100000" : "100000,1000000")).split(",").map(Number);
const RECALL_QUERIES = Number(values.queries ?? (QUICK ? 50 : 100));
if (SIZES.some((n) => !Number.isInteger(n) || n < 1000 || n > 2_000_000) || !Number.isInteger(RECALL_QUERIES) || RECALL_QUERIES < 1) {
  console.error(USAGE);
  process.exit(2);
}

// ---- machine --------------------------------------------------------------------------------------------------

function describeMachine(): string {
  const code = commitOf(["assembly/similarity.ts", "assembly/similarity", "src/wasm/similarity.ts", "bench/similarity.ts"]);
  const asc = packageVersion("assemblyscript");
  return `${cpuModel()}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${osName()}; Node ${process.version} (V8 ${process.versions.v8}), AssemblyScript ${asc}; code ${code}`;
}

function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Measures, over `fn`, how many cores other processes kept busy on average. */
class OtherLoad {
  #wall = performance.now();
  #machine = machineBusyMs();
  #own = ownCpuMs();

  /** Average number of cores busy with other processes since construction. */
  cores(): number {
    const wall = performance.now() - this.#wall;
    return Math.max(0, (machineBusyMs() - this.#machine - (ownCpuMs() - this.#own)) / wall);
  }
}

async function waitForIdle(): Promise<void> {
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    const probe = new OtherLoad();
    await new Promise((r) => setTimeout(r, 3000));
    const busy = probe.cores();
    if (busy < 0.3 || values["no-wait"]) {
      console.log(`idle     other processes used ${busy.toFixed(2)} cores over 3 s (load average ${loadavg().map((l) => l.toFixed(2)).join(" ")})`);
      return;
    }
    if (Date.now() > deadline) {
      console.log(`idle     NOT idle after 15 min: other processes use ${busy.toFixed(2)} cores; measuring anyway`);
      return;
    }
    console.log(`waiting  other processes use ${busy.toFixed(2)} cores (load average ${loadavg()[0]!.toFixed(2)}); waiting for an idle machine ...`);
    await new Promise((r) => setTimeout(r, 20_000));
  }
}

// ---- the large-memory build -------------------------------------------------------------------------------------

function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

/**
 * build/similarity.node.wasm: the release target of assembly/similarity.ts with the flags of its entry in
 * scripts/build-wasm.mjs (--runtime minimal) and --maximumMemory 65536 (4 GiB) instead of the Worker's 1024 (64 MiB).
 * --debug adds a name section (function names in the profile); the code section is byte for byte the release
 * build's.
 */
function largeMemoryModule(): string {
  const out = join("build", "similarity.node.wasm");
  const sources = Math.max(statSync(join(ROOT, "assembly", "similarity.ts")).mtimeMs, newest(join(ROOT, "assembly", "similarity")), statSync(join(ROOT, "assembly", "asconfig.json")).mtimeMs);
  if (existsSync(join(ROOT, out)) && statSync(join(ROOT, out)).mtimeMs >= sources) return join(ROOT, out);
  const asc = join(ROOT, "node_modules", "assemblyscript", "bin", "asc.js");
  const args = [asc, "assembly/similarity.ts", "--config", "assembly/asconfig.json", "--target", "release", "--runtime", "minimal", "--maximumMemory", "65536", "--debug", "--outFile", out];
  const res = spawnSync(process.execPath, args, { cwd: ROOT, stdio: "inherit" });
  if (res.status !== 0) throw new Error("building build/similarity.node.wasm failed");
  console.log(`built    ${out} (maximumMemory 65536 pages = 4 GiB)`);
  return join(ROOT, out);
}

// ---- plain JavaScript ---------------------------------------------------------------------------------------------

/** The vectors as JavaScript holds them: chunks of rows, with the inverse norms and (int8) the scales. */
interface JsCorpus {
  f32: Float32Array[];
  i8: Int8Array[];
  scales: Float32Array[];
  invNorms: Float32Array[];
  invNormsI8: Float32Array[];
}

function quantizeRows(rows: Float32Array, dim: number): { q: Int8Array; scales: Float32Array; invNorms: Float32Array } {
  const n = rows.length / dim;
  const q = new Int8Array(rows.length);
  const scales = new Float32Array(n);
  const invNorms = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    let max = 0;
    for (let i = 0; i < dim; i++) max = Math.max(max, Math.abs(rows[r * dim + i]!));
    const inv = max > 0 ? 127 / max : 0;
    let ss = 0;
    for (let i = 0; i < dim; i++) {
      const v = Math.round(rows[r * dim + i]! * inv);
      q[r * dim + i] = v;
      ss += v * v;
    }
    scales[r] = max / 127;
    invNorms[r] = ss > 0 ? 1 / Math.sqrt(ss) : 0;
  }
  return { q, scales, invNorms };
}

function inverseNorms(rows: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(rows.length / dim);
  for (let r = 0; r < out.length; r++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += rows[r * dim + i]! ** 2;
    out[r] = ss > 0 ? 1 / Math.sqrt(ss) : 0;
  }
  return out;
}

/** Top-k by cosine over float32 rows with plain loops. */
function jsTopKF32(js: JsCorpus, dim: number, query: Float32Array, k: number): { indices: number[]; scores: number[] } {
  let qs = 0;
  for (let i = 0; i < dim; i++) qs += query[i]! * query[i]!;
  const qInv = 1 / Math.sqrt(qs);
  const scores = new Float64Array(k).fill(-Infinity);
  const indices = new Int32Array(k).fill(-1);
  let index = 0;
  for (let c = 0; c < js.f32.length; c++) {
    const rows = js.f32[c]!;
    const inv = js.invNorms[c]!;
    const n = inv.length;
    for (let r = 0; r < n; r++, index++) {
      let s = 0;
      const o = r * dim;
      for (let i = 0; i < dim; i++) s += rows[o + i]! * query[i]!;
      s = s * inv[r]! * qInv;
      if (s > scores[k - 1]!) insert(scores, indices, k, s, index);
    }
  }
  return { indices: Array.from(indices), scores: Array.from(scores) };
}

/** Top-k by cosine over int8 rows (integer dot products) with plain loops. */
function jsTopKI8(js: JsCorpus, dim: number, query: Float32Array, k: number): { indices: number[]; scores: number[] } {
  const { q, invNorms } = quantizeRows(query, dim);
  const qInv = invNorms[0]!;
  const scores = new Float64Array(k).fill(-Infinity);
  const indices = new Int32Array(k).fill(-1);
  let index = 0;
  for (let c = 0; c < js.i8.length; c++) {
    const rows = js.i8[c]!;
    const inv = js.invNormsI8[c]!;
    const n = inv.length;
    for (let r = 0; r < n; r++, index++) {
      let s = 0;
      const o = r * dim;
      for (let i = 0; i < dim; i++) s += rows[o + i]! * q[i]!;
      const score = s * inv[r]! * qInv;
      if (score > scores[k - 1]!) insert(scores, indices, k, score, index);
    }
  }
  return { indices: Array.from(indices), scores: Array.from(scores) };
}

function insert(scores: Float64Array, indices: Int32Array, k: number, s: number, index: number): void {
  let j = k - 1;
  while (j > 0 && scores[j - 1]! < s) {
    scores[j] = scores[j - 1]!;
    indices[j] = indices[j - 1]!;
    j--;
  }
  scores[j] = s;
  indices[j] = index;
}

// ---- measuring -------------------------------------------------------------------------------------------------

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function timed(fn: () => void): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

function fail(message: string): never {
  console.error(`FAILED: ${message}`);
  process.exit(1);
}

/** Wasm and JS must agree: the same neighbours, with scores equal to float32 rounding. */
function verify(label: string, wasm: TopK, js: { indices: number[]; scores: number[] }, tolerance: number): void {
  const w = Array.from(wasm.indices);
  const missing = js.indices.filter((i) => !w.includes(i));
  // A neighbour may differ only where two scores tie to within the rounding of the two computations.
  for (const i of missing) {
    const jsScore = js.scores[js.indices.indexOf(i)]!;
    if (Math.abs(jsScore - wasm.scores[K - 1]!) > tolerance) fail(`${label}: JavaScript finds ${i} (${jsScore}) that Wasm does not (${w.join(",")})`);
  }
  w.forEach((index, j) => {
    const at = js.indices.indexOf(index);
    if (at >= 0 && Math.abs(js.scores[at]! - wasm.scores[j]!) > tolerance) fail(`${label}: score of ${index}: Wasm ${wasm.scores[j]} vs JavaScript ${js.scores[at]}`);
  });
}

interface KindResult {
  scanMs: number;
  probeMs: number;
  jsMs: number;
  batchMs: number;
  bytes: number;
}

interface SizeResult {
  n: number;
  f32: KindResult;
  i8: KindResult;
  recall: number;
  otherCores: number;
  rounds: { kept: number; discarded: number; otherCores: number };
  profile: string[];
  inCache: { wasm: number; js: number };
}

const gbps = (bytes: number, ms: number) => bytes / ms / 1e6;

async function runSize(sim: Similarity, n: number): Promise<SizeResult> {
  const load = new OtherLoad();
  const gen = new ClusteredData({ dim: DIM, clusters: Math.max(100, Math.round(n / 100)), seed: 42 });
  const f32 = sim.createCorpus({ dim: DIM, kind: "float32" });
  const i8 = sim.createCorpus({ dim: DIM, kind: "int8" });
  const js: JsCorpus = { f32: [], i8: [], scales: [], invNorms: [], invNormsI8: [] };
  const tGen = performance.now();
  f32.reserve(n);
  i8.reserve(n);
  const CHUNK = 10_000;
  for (let first = 0; first < n; first += CHUNK) {
    const rows = gen.vectors(Math.min(CHUNK, n - first));
    f32.add(rows);
    i8.add(rows);
    const q = quantizeRows(rows, DIM);
    js.f32.push(rows);
    js.i8.push(q.q);
    js.scales.push(q.scales);
    js.invNorms.push(inverseNorms(rows, DIM));
    js.invNormsI8.push(q.invNorms);
  }
  console.log(`\nN = ${n.toLocaleString("en")} x ${DIM}: generated and loaded in ${((performance.now() - tGen) / 1000).toFixed(1)} s; float32 corpus ${(f32.bytes / 2 ** 20).toFixed(0)} MiB, int8 ${(i8.bytes / 2 ** 20).toFixed(0)} MiB, linear memory ${(sim.stats().memoryBytes / 2 ** 20).toFixed(0)} MiB`);

  const queries = gen.vectors(16);
  const query = (r: number) => queries.subarray((r % 16) * DIM, ((r % 16) + 1) * DIM);
  const reps = QUICK ? 9 : n >= 1_000_000 ? 7 : 15;
  const jsReps = QUICK ? 3 : n >= 1_000_000 ? 3 : 5;

  // Rounds of probe, scan (and, in the first rounds, JS and a batch), each repeated to last at least ~0.1 s. A round
  // during which other processes kept more than 0.3 cores busy (other engineers' tests on this shared machine) is
  // discarded and measured again after a pause, up to 5 times the rounds wanted.
  const perRound = Math.max(1, Math.round(1_000_000 / n));
  let discarded = 0;
  const otherInRounds: number[] = [];
  const result = async (c: Corpus, jsScan: (q: Float32Array) => { indices: number[]; scores: number[] }, tolerance: number, label: string): Promise<KindResult> => {
    // warm-up (also compiles the JavaScript loop)
    c.topK(query(0), K);
    c.probe();
    jsScan(query(0));
    const probeSum = c.probe();
    const scan: number[] = [];
    const probe: number[] = [];
    const jsTimes: number[] = [];
    const batch: number[] = [];
    for (let attempt = 0; scan.length < reps && attempt < (QUICK ? 3 : 5) * reps; attempt++) {
      const r = scan.length;
      const others = new OtherLoad();
      const p = timed(() => {
        for (let i = 0; i < perRound; i++) if (c.probe() !== probeSum) fail(`${label}: the probe's sum changed`);
      }) / perRound;
      let top: TopK | null = null;
      const t = timed(() => {
        for (let i = 0; i < perRound; i++) top = c.topK(query(r), K);
      }) / perRound;
      let j = NaN;
      if (r < jsReps) {
        let ref: { indices: number[]; scores: number[] } | null = null;
        j = timed(() => {
          ref = jsScan(query(r));
        });
        verify(`${label}, query ${r}`, top!, ref!, tolerance);
      }
      const b = r < 3 ? timed(() => c.topKBatch(queries, K)) / 16 : NaN;
      const busy = others.cores();
      if (busy > 0.3) {
        discarded++;
        await new Promise((resolve) => setTimeout(resolve, QUICK ? 500 : 2000));
        continue;
      }
      otherInRounds.push(busy);
      probe.push(p);
      scan.push(t);
      if (!Number.isNaN(j)) jsTimes.push(j);
      if (!Number.isNaN(b)) batch.push(b);
    }
    if (scan.length < reps || jsTimes.length === 0 || batch.length === 0) console.log(`  ${label}: only ${scan.length} of ${reps} rounds with an idle machine (${discarded} discarded)`);
    if (scan.length === 0) fail(`${label}: the machine was never idle enough to measure`);
    return { scanMs: median(scan), probeMs: median(probe), jsMs: median(jsTimes), batchMs: median(batch), bytes: c.scanBytes };
  };
  const f32Result = await result(f32, (q) => jsTopKF32(js, DIM, q, K), 2e-6, "float32");
  // int8 scores: Wasm multiplies in float32, JavaScript in float64, both from the same integers.
  const i8Result = await result(i8, (q) => jsTopKI8(js, DIM, q, K), 2e-6, "int8");

  // recall@10 of int8 against exact float32 (the float32 scan's own top-10), cosine
  const recallQueries = gen.vectors(RECALL_QUERIES);
  const truth: Uint32Array[] = [];
  const found: Uint32Array[] = [];
  for (let first = 0; first < RECALL_QUERIES; first += 64) {
    const part = recallQueries.subarray(first * DIM, Math.min(RECALL_QUERIES, first + 64) * DIM);
    truth.push(...f32.topKBatch(part, K).map((r) => r.indices));
    found.push(...i8.topKBatch(part, K).map((r) => r.indices));
  }
  const recall = recallAtK(found, truth);

  // Where the time goes: the V8 CPU profile of a few float32 scans.
  // And the kernels' speed when memory is not the limit: the first 2,000 vectors (3 MB float32), scanned 200 times.
  const inCache = inCacheSpeed(sim, js.f32[0]!.subarray(0, 2000 * DIM), query(0));
  const profile = await profileScans(() => {
    for (let r = 0; r < 5; r++) f32.topK(query(r), K);
  });

  const otherCores = load.cores();
  const rounds = { kept: otherInRounds.length, discarded, otherCores: otherInRounds.reduce((a, b) => a + b, 0) / Math.max(1, otherInRounds.length) };
  f32.free();
  i8.free();
  return { n, f32: f32Result, i8: i8Result, recall, otherCores, rounds, profile, inCache };
}

/** float32 scan speed in GB/s of Wasm and of plain JavaScript on a corpus small enough to stay in cache. */
function inCacheSpeed(sim: Similarity, rows: Float32Array, query: Float32Array): { wasm: number; js: number } {
  const corpus = sim.createCorpus({ dim: DIM });
  corpus.add(rows);
  const js: JsCorpus = { f32: [rows], i8: [], scales: [], invNorms: [inverseNorms(rows, DIM)], invNormsI8: [] };
  const reps = 200;
  const wasm: number[] = [];
  const plain: number[] = [];
  for (let round = 0; round < 5; round++) {
    wasm.push(timed(() => {
      for (let r = 0; r < reps; r++) corpus.topK(query, K);
    }));
    plain.push(timed(() => {
      for (let r = 0; r < reps; r++) jsTopKF32(js, DIM, query, K);
    }));
  }
  const bytes = rows.byteLength * reps;
  corpus.free();
  return { wasm: gbps(bytes, median(wasm)), js: gbps(bytes, median(plain)) };
}

/** Self time by function (V8 sampling profiler), as "share name" lines. */
async function profileScans(fn: () => void): Promise<string[]> {
  const session = new Session();
  session.connect();
  try {
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 100 });
    await session.post("Profiler.start");
    fn();
    const { profile } = await session.post("Profiler.stop");
    const self = new Map<string, number>();
    let total = 0;
    for (const node of profile.nodes) {
      const hits = node.hitCount ?? 0;
      const name = node.callFrame.functionName || `(${node.callFrame.url ? "anonymous" : "program"})`;
      const key = node.callFrame.url.startsWith("wasm://") ? `wasm ${name.replace(/^\$/, "")}` : name;
      self.set(key, (self.get(key) ?? 0) + hits);
      total += hits;
    }
    return [...self.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([name, hits]) => `${((100 * hits) / total).toFixed(1).padStart(5)}% ${name}`);
  } finally {
    session.disconnect();
  }
}

// ---- capacity of the Worker build --------------------------------------------------------------------------------

/** How many vectors fit in the Worker build's 64 MiB: filled in adds of 1000, then one at a time. */
function capacity(moduleBytes: Uint8Array, dim: number, kind: "float32" | "int8"): number {
  const sim = instantiateSimilarity(compileModule(moduleBytes));
  const corpus = sim.createCorpus({ dim, kind });
  const chunk = new Float32Array(1000 * dim).fill(0.5);
  const one = chunk.subarray(0, dim);
  for (const block of [chunk, one]) {
    try {
      for (;;) corpus.add(block);
    } catch (err) {
      if ((err as { code?: string }).code !== "out_of_memory") throw err;
    }
  }
  return corpus.size;
}

// ---- main ----------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  console.log(`similarity benchmark${QUICK ? " (--quick)" : ""}: N = ${SIZES.join(", ")} x ${DIM}, top-${K}, cosine`);
  console.log(`machine  ${describeMachine()}`);
  const modulePath = largeMemoryModule();
  const moduleBytes = readFileSync(modulePath);
  await waitForIdle();
  const loadStart = loadavg();

  const results: SizeResult[] = [];
  for (const n of SIZES) {
    // A fresh instance per size: linear memory never shrinks.
    const sim = instantiateSimilarity(compileModule(moduleBytes));
    results.push(await runSize(sim, n));
  }

  console.log("\n| N | kind | probe GB/s | Wasm scan GB/s | of probe | Wasm vectors/s | JS GB/s | Wasm / JS | batch of 16: vectors x queries/s |");
  console.log("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of results) {
    for (const [kind, k] of [["float32", r.f32], ["int8", r.i8]] as const) {
      const scan = gbps(k.bytes, k.scanMs);
      console.log(
        `| ${r.n.toLocaleString("en")} | ${kind} | ${gbps(k.bytes, k.probeMs).toFixed(2)} | ${scan.toFixed(2)} | ${((100 * k.probeMs) / k.scanMs).toFixed(0)}% | ${(r.n / k.scanMs / 1e3).toFixed(2)} M | ${gbps(k.bytes, k.jsMs).toFixed(2)} | ${(k.jsMs / k.scanMs).toFixed(1)}x | ${(r.n / k.batchMs / 1e3).toFixed(1)} M |`,
      );
    }
  }
  console.log("");
  for (const r of results) {
    console.log(`N = ${r.n.toLocaleString("en")}: int8 / float32 vectors/s ${(r.f32.scanMs / r.i8.scanMs).toFixed(2)}x; recall@10 of int8 ${r.recall.toFixed(3)} (${RECALL_QUERIES} queries)`);
    console.log(`  other processes: ${r.rounds.otherCores.toFixed(2)} cores on average in the ${r.rounds.kept} rounds kept (${r.rounds.discarded} rounds discarded for load over 0.3 cores), ${r.otherCores.toFixed(2)} over the whole size`);
    console.log(`  profile of 5 float32 scans (self time): ${r.profile.join("; ")}`);
    console.log(`  in cache (2,000 x ${DIM} float32, 3 MB): Wasm ${r.inCache.wasm.toFixed(1)} GB/s, JS ${r.inCache.js.toFixed(2)} GB/s (${(r.inCache.wasm / r.inCache.js).toFixed(1)}x)`);
  }

  const worker = readFileSync(join(ROOT, "build", "similarity.wasm"));
  console.log("\nCapacity of the Worker build (build/similarity.wasm, maximumMemory 64 MiB), vectors per instance:");
  console.log("| dim | float32 | int8 |");
  console.log("|---:|---:|---:|");
  for (const dim of [128, 384, 768, 1536]) {
    console.log(`| ${dim} | ${capacity(worker, dim, "float32").toLocaleString("en")} | ${capacity(worker, dim, "int8").toLocaleString("en")} |`);
  }
  console.log(`\nload     ${loadStart.map((l) => l.toFixed(2)).join(" ")} at the start, ${loadavg().map((l) => l.toFixed(2)).join(" ")} at the end (load averages)`);

  const last = results.at(-1)!;
  const wasmGbps = gbps(last.f32.bytes, last.f32.scanMs);
  const probeGbps = gbps(last.f32.bytes, last.f32.probeMs);
  const jsGbps = gbps(last.f32.bytes, last.f32.jsMs);
  const ratio = last.f32.scanMs / last.i8.scanMs;
  const goals = [
    [`float32 scan >= 75% of the probe`, wasmGbps / probeGbps >= 0.75, `${((100 * wasmGbps) / probeGbps).toFixed(0)}%`],
    [`float32 scan >= 4x plain JS`, wasmGbps / jsGbps >= 4, `${(wasmGbps / jsGbps).toFixed(2)}x`],
    [`int8 scan >= 2x float32 (vectors/s)`, ratio >= 2, `${ratio.toFixed(2)}x`],
    [`int8 recall@10 >= 0.95`, last.recall >= 0.95, last.recall.toFixed(3)],
  ] as const;
  console.log(`\nGoals at N = ${last.n.toLocaleString("en")}:`);
  for (const [goal, met, value] of goals) console.log(`  ${met ? "met    " : "MISSED "} ${goal}: ${value}`);
  const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
  console.log(
    JSON.stringify({
      bench: "similarity",
      n: last.n,
      dim: DIM,
      wasm_gbps: round(wasmGbps),
      int8_vps_ratio: round(ratio),
      probe_gbps: round(probeGbps),
      js_gbps: round(jsGbps),
      recall_at_10: round(last.recall, 3),
    }),
  );
}

await main();
