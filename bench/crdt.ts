// CRDT merge: the WebAssembly module (build/crdt.wasm) versus the TypeScript reference, Yjs and Automerge, on the
// equivalent merge (bench/crdt-scenario.ts): two replicas diverge from a common state of N elements, each applies
// its own changes; what is timed is decode both replicas' encodings, merge, encode the result. Three CRDTs: OR-Set
// (N elements), OR-Map (N keys), PN-Counter (1,000 replicas). Every implementation's merged output is decoded
// afterwards and must give the same logical state as the others and as the plan; wasm and the reference must give
// identical bytes.
//
//   wasm       CrdtWasm.merge(a, b): copy both into the module, one checking pass over both, copy the result out
//   ts         encode(mergeCrdt(decode(a), decode(b))): the codec of src/crdt/ and the reference of test/crdt/
//   yjs        the faster of Y.mergeUpdates([a, b]) and applyUpdate(a), applyUpdate(b), encodeStateAsUpdate
//   automerge  the faster of save(loadIncremental(load(a), b)) and save(merge(load(a), load(b)))
//
// Each measurement is the median of several runs after warm-up runs, with a garbage collection before each run
// (so no implementation pays for another's garbage). Runs that take under 20 ms are repeated and averaged.
//
//   node bench/crdt.ts [--quick] [--elements N] [--replicas R]
//
// The last line printed is one JSON object with the results (totals over the three CRDTs).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { registerHooks } from "node:module";
import { cpus, loadavg, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

// Garbage collections between runs need --expose-gc: run again with it.
const gc = (globalThis as { gc?: () => void }).gc;
if (typeof gc !== "function") {
  const res = spawnSync(process.execPath, ["--expose-gc", fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(res.status ?? 1);
}

// src/crdt/ imports its siblings as "./x.js" (which the Worker's bundler and tsc map to x.ts); Node runs the .ts.
registerHooks({
  resolve(specifier, context, next) {
    try {
      return next(specifier, context);
    } catch (err) {
      if (specifier.startsWith(".") && specifier.endsWith(".js")) return next(`${specifier.slice(0, -3)}.ts`, context);
      throw err;
    }
  },
});

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    elements: { type: "string", default: "100000" },
    replicas: { type: "string", default: "1000" },
  },
});
const QUICK = values.quick;
const ELEMENTS = Number(values.elements);
const REPLICAS = Number(values.replicas);
const RUNS = QUICK ? { warmup: 1, runs: 3, slowWarmup: 0, slowRuns: 1 } : { warmup: 2, runs: 7, slowWarmup: 1, slowRuns: 3 };

const { orsetScenario, ormapScenario, pncounterScenario } = await import("./crdt-scenario.ts");
type Scenario = ReturnType<typeof orsetScenario>;
const { compileCrdtModule, CrdtWasm } = await import("../lib/wasm/crdt.ts");
const { decode, encode } = await import("../lib/crdt/index.ts");
const { mergeCrdt } = await import("../test/crdt/reference.ts");
const Y = await import("yjs");
const Automerge = await import("@automerge/automerge");

const root = fileURLToPath(new URL("..", import.meta.url));
const wasm = new CrdtWasm(compileCrdtModule(readFileSync(`${root}build/crdt.wasm`)));

type Pair = { readonly a: Uint8Array; readonly b: Uint8Array };
interface Variant {
  readonly impl: "wasm" | "ts" | "yjs" | "automerge";
  readonly name: string;
  readonly input: "ours" | "yjs" | "automerge";
  readonly slow?: boolean;
  run(p: Pair): Uint8Array;
}

const VARIANTS: readonly Variant[] = [
  { impl: "wasm", name: "wasm", input: "ours", run: (p) => wasm.merge(p.a, p.b) },
  { impl: "ts", name: "ts reference", input: "ours", run: (p) => encode(mergeCrdt(decode(p.a), decode(p.b))) },
  { impl: "yjs", name: "yjs mergeUpdates", input: "yjs", run: (p) => Y.mergeUpdates([p.a, p.b]) },
  {
    impl: "yjs",
    name: "yjs Y.Doc",
    input: "yjs",
    run: (p) => {
      const d = new Y.Doc();
      Y.applyUpdate(d, p.a);
      Y.applyUpdate(d, p.b);
      return Y.encodeStateAsUpdate(d);
    },
  },
  {
    impl: "automerge",
    name: "automerge loadIncremental",
    input: "automerge",
    slow: true,
    run: (p) => Automerge.save(Automerge.loadIncremental(Automerge.load(p.a), p.b)),
  },
  // the quick run skips the slower Automerge path (it is slower in every full run recorded in bench/RESULTS.md)
  ...(QUICK
    ? []
    : [
        {
          impl: "automerge",
          name: "automerge merge",
          input: "automerge",
          slow: true,
          run: (p: Pair) => Automerge.save(Automerge.merge(Automerge.load(p.a), Automerge.load(p.b))),
        } as const,
      ]),
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median ms of one run, and the output of the last run. */
function measure(v: Variant, p: Pair): { ms: number; out: Uint8Array } {
  let out: Uint8Array | null = null;
  let last = Infinity;
  for (let i = 0; i < (v.slow ? RUNS.slowWarmup : RUNS.warmup); i++) {
    gc!();
    const t = performance.now();
    out = v.run(p);
    last = performance.now() - t;
  }
  // runs shorter than 20 ms are repeated within one sample, for the timer's sake
  const repeat = last < 20 ? Math.min(200, Math.ceil(20 / Math.max(last, 0.001))) : 1;
  const samples: number[] = [];
  for (let i = 0; i < (v.slow ? RUNS.slowRuns : RUNS.runs); i++) {
    gc!();
    const t = performance.now();
    for (let k = 0; k < repeat; k++) out = v.run(p);
    samples.push((performance.now() - t) / repeat);
  }
  return { ms: median(samples), out: out! };
}

const fmt = (ms: number): string => (ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0));
const kb = (n: number): string => `${(n / 1024).toFixed(0)} KiB`;

interface Row {
  scenario: string;
  elements: number;
  ms: Record<string, number>;
  best: Record<Variant["impl"], number>;
}

async function main(): Promise<void> {
  const started = performance.now();
  console.log(`machine  ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; node ${process.version}`);
  console.log(`load     ${loadavg().map((l) => l.toFixed(2)).join(" ")} (1, 5, 15 min) at the start`);
  console.log(
    `plan     OR-Set and OR-Map of ${ELEMENTS} elements, PN-Counter of ${REPLICAS} replicas; ` +
      `runs: ${RUNS.warmup} warm-up + median of ${RUNS.runs} (Automerge ${RUNS.slowWarmup} + ${RUNS.slowRuns})`,
  );
  const builders: [string, () => Scenario][] = [
    ["OR-Set", () => orsetScenario(ELEMENTS)],
    ["OR-Map", () => ormapScenario(ELEMENTS)],
    ["PN-Counter", () => pncounterScenario(REPLICAS)],
  ];
  const rows: Row[] = [];
  for (const [name, build] of builders) {
    const t = performance.now();
    const sc = build();
    const sizes = (["ours", "yjs", "automerge"] as const).map((k) => `${k} ${kb(sc.inputs[k].a.length)} + ${kb(sc.inputs[k].b.length)}`).join(", ");
    console.log(`\n${name}: ${sc.elements} elements, ${sc.changes} changes per replica; set up in ${((performance.now() - t) / 1000).toFixed(1)} s; inputs ${sizes}`);
    const row: Row = { scenario: name, elements: sc.elements, ms: {}, best: { wasm: Infinity, ts: Infinity, yjs: Infinity, automerge: Infinity } };
    const outputs = new Map<string, Uint8Array>();
    for (const v of VARIANTS) {
      const { ms, out } = measure(v, sc.inputs[v.input]);
      row.ms[v.name] = ms;
      row.best[v.impl] = Math.min(row.best[v.impl], ms);
      outputs.set(v.name, out);
      console.log(`  ${v.name.padEnd(26)} ${fmt(ms).padStart(8)} ms   output ${kb(out.length)}`);
    }
    // verification: one logical state for all, the planned one; wasm and the reference byte for byte
    for (const v of VARIANTS) {
      const got = sc.logical[v.input](outputs.get(v.name)!);
      if (got !== sc.expected) throw new Error(`${name}: ${v.name} merged to a different state than planned`);
    }
    if (Buffer.compare(outputs.get("wasm")!, outputs.get("ts reference")!) !== 0) throw new Error(`${name}: wasm and the reference differ`);
    console.log(`  verified: the ${VARIANTS.length} outputs decode to the same state (${sc.expected.length} chars of JSON); wasm = reference byte for byte`);
    rows.push(row);
  }

  const total = (impl: Variant["impl"]): number => rows.reduce((s, r) => s + r.best[impl], 0);
  const totals = { wasm: total("wasm"), ts: total("ts"), yjs: total("yjs"), automerge: total("automerge") };
  console.log("\nmerge incl. decode and encode, ms (yjs, automerge: their faster path per CRDT)");
  console.log(`${"CRDT".padEnd(12)} ${"wasm".padStart(8)} ${"ts".padStart(8)} ${"yjs".padStart(8)} ${"automerge".padStart(10)}   yjs/wasm  automerge/wasm`);
  for (const r of [...rows, { scenario: "total", best: totals } as Row]) {
    const b = r.best;
    console.log(
      `${r.scenario.padEnd(12)} ${fmt(b.wasm).padStart(8)} ${fmt(b.ts).padStart(8)} ${fmt(b.yjs).padStart(8)} ${fmt(b.automerge).padStart(10)}   ` +
        `${(b.yjs / b.wasm).toFixed(1).padStart(7)}x  ${(b.automerge / b.wasm).toFixed(0).padStart(13)}x`,
    );
  }
  const yjsRatio = totals.yjs / totals.wasm;
  const amRatio = totals.automerge / totals.wasm;
  console.log(`goals    >= 3x Yjs: ${yjsRatio.toFixed(1)}x ${yjsRatio >= 3 ? "met" : "MISSED"}; >= 10x Automerge: ${amRatio.toFixed(0)}x ${amRatio >= 10 ? "met" : "MISSED"}`);
  console.log(`load     ${loadavg().map((l) => l.toFixed(2)).join(" ")} at the end; ${((performance.now() - started) / 1000).toFixed(1)} s in all; module memory ${kb(wasm.memoryBytes)}`);
  console.log(
    JSON.stringify({
      bench: "crdt",
      date: new Date().toISOString(),
      elements: ELEMENTS,
      replicas: REPLICAS,
      quick: QUICK,
      wasm_ms: Number(totals.wasm.toFixed(2)),
      ts_ms: Number(totals.ts.toFixed(1)),
      yjs_ms: Number(totals.yjs.toFixed(1)),
      automerge_ms: Number(totals.automerge.toFixed(1)),
      per_crdt: Object.fromEntries(rows.map((r) => [r.scenario, Object.fromEntries(Object.entries(r.ms).map(([k, v]) => [k, Number(v.toFixed(2))]))])),
    }),
  );
}

try {
  await main();
} catch (err) {
  console.error(err);
  process.exit(1);
}
