// The output cache and vector search (issue 14), against one `wrangler dev` with a real content agent.
//
//   stream     a Zipf(1.1) stream over 10,000 distinct content tasks (seeded), submitted by 8 client loops through 8
//              isolates' worth of L1 (the test hook x-daa-test-isolate gives each request the L1 of one of 8
//              simulated isolates: one local process has one isolate, Cloudflare has many); misses run on an SDK
//              agent process and are waited for (GET /v1/tasks/:id/result). Per level: the share of requests it
//              answered, and the p50 / p99 time to the result (a hit: the submit's answer; a miss: the submit plus
//              the run plus the result). Every answer's text is checked against the content the agent writes.
//              Time is compressed: L1 lives 10 s, KV 60 s (its minimum), so that entries fall to L3 within the
//              run as they would over hours with the seed's TTLs (1 h, 24 h).
//   semantic   100 base embeddings of 384 run and are cached; then 100 near-duplicates (the base plus noise, cosine
//              0.97-0.995) and 100 unrelated vectors are submitted with other payloads: a hit is right when it
//              answers with the result of the near-duplicate's own base. Precision and recall at the default 0.95.
//   index      top-10 queries per second over 10k and 40k vectors of 384: the Wasm similarity module the VectorIndex
//              objects run, against a plain JavaScript scan of the same vectors, in this process.
//
//   node bench/cache.ts [--quick]
//
// The last line printed is one JSON object:
//   {"bench":"cache","hit_ratio":{"l1","l2","l3","semantic"},"p50_ms":{"l1","l2","l3","miss"},"speedup_l1",
//    "semantic_precision","semantic_recall","index_qps":{"wasm","js"}, ...}
import { fork, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { compileModule, instantiateSimilarity } from "../lib/wasm/similarity.ts";
import { ROOT, startDevServer, type DevServer } from "../scripts/dev-server.ts";
import { commitOf, cpuModel, osName } from "./lib/machine.ts";
import { Random, uniformVectors } from "./similarity-data.ts";

const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, phases: { type: "string", default: "stream,latency,semantic,index" } }, strict: true });
const phases = new Set(values.phases.split(","));
const quick = values.quick;
const DISTINCT = 10_000;
const REQUESTS = quick ? 6_000 : 30_000;
const ISOLATES = 8;
const LOOPS = 8;
const TTL = { l1: 10_000, l2: 60_000, l3: 7 * 24 * 3600 * 1000 };
const SEMANTIC = 100;
const DIM = 384;
const POOL = "content";

const started = performance.now();
let server: DevServer;

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminKey}`, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

async function ok(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<any> {
  const res = await call(method, path, body, headers);
  if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]! * 100) / 100;
};

/** What the agent writes for a prompt (bench/lib/cache-agent.ts), to check every answer. */
function contentFor(prompt: string): string {
  let out = "";
  for (let i = 0; out.length < 2048; i++) out += createHash("sha256").update(`${prompt}#${i}`).digest("hex");
  return out;
}

async function startAgent(): Promise<ChildProcess> {
  const agent = fork(join(ROOT, "bench", "lib", "cache-agent.ts"), [server.url, server.adminKey, POOL, "content-agent", "64"], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
  await new Promise<void>((resolve, reject) => {
    agent.once("message", () => resolve());
    agent.once("exit", (code) => reject(new Error(`agent exited (${code})`)));
  });
  return agent;
}

async function agentRuns(agent: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    agent.once("message", (m: { runs: number }) => resolve(m.runs));
    agent.send({ cmd: "report" });
  });
}

/** Submits and, on a miss, waits for the result; answers how it went and the time to the result. */
async function request(body: Record<string, unknown>, isolate: number): Promise<{ outcome: string; ms: number; text: string; source: string }> {
  const t0 = performance.now();
  const res = await call("POST", "/v1/tasks", body, { "x-daa-test-isolate": `bench-${isolate}` });
  if (res.status === 200) return { outcome: res.headers.get("x-daa-cache") ?? "?", ms: performance.now() - t0, text: res.body.result?.text, source: res.body.cache?.sourceTaskId ?? res.body.id };
  if (res.status !== 201) throw new Error(`submit answered ${res.status}: ${JSON.stringify(res.body)}`);
  for (;;) {
    const done = await call("GET", `/v1/tasks/${res.body.id}/result?waitMs=30000`);
    if (done.status === 200) {
      if (done.body.status !== "succeeded") throw new Error(`task ${res.body.id} ended ${done.body.status}`);
      return { outcome: "miss", ms: performance.now() - t0, text: done.body.result?.text, source: res.body.id };
    }
  }
}

// ---- the Zipf stream ----------------------------------------------------------------------------------------

function zipfSampler(n: number, s: number, rng: Random): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 1; k <= n; k++) cdf[k - 1] = sum += 1 / k ** s;
  return () => {
    const u = rng.next() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

async function stream(): Promise<{ counts: Record<string, number>; ms: Record<string, number[]>; wrong: number; seconds: number; firstItems: number[] }> {
  await ok("PUT", `/v1/pools/${POOL}/config`, { cache: { types: ["content.generate"], ttlMs: TTL } });
  const rng = new Random(1101);
  const zipf = zipfSampler(DISTINCT, 1.1, rng);
  const plan = Array.from({ length: REQUESTS }, () => ({ item: zipf(), isolate: rng.int(ISOLATES) }));
  const counts: Record<string, number> = {};
  const ms: Record<string, number[]> = {};
  let wrong = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: LOOPS }, async () => {
      for (let i = next++; i < plan.length; i = next++) {
        const { item, isolate } = plan[i]!;
        const prompt = `item-${item}`;
        const r = await request({ type: "content.generate", pool: POOL, payload: { prompt } }, isolate);
        counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
        (ms[r.outcome] ??= []).push(r.ms);
        if (r.text !== contentFor(prompt)) wrong++;
      }
    }),
  );
  // Distinct items of the first tenth of the stream: their KV values are over 60 s old by the latency phase.
  const firstItems = [...new Set(plan.slice(0, Math.floor(plan.length / 10)).map((p) => p.item))];
  return { counts, ms, wrong, seconds: (performance.now() - t0) / 1000, firstItems };
}

// ---- semantic precision and recall -----------------------------------------------------------------------------

function unit(v: Float64Array): number[] {
  const n = Math.hypot(...v);
  return Array.from(v, (x) => x / n);
}

/** How long after the last base succeeded the index held every base (the fills' lag). */
let fillWaitMs = 0;

async function semantic(): Promise<{ precision: number | null; recall: number; hits: number; rightHits: number; unrelatedHits: number; cosines: [number, number] }> {
  await ok("PUT", `/v1/pools/${POOL}/config`, { cache: { semantic: { types: ["content.semantic"], index: "bench-semantic", threshold: 0.95 } } });
  const rng = new Random(2024);
  const gaussian = () => Float64Array.from({ length: DIM }, () => rng.gaussian());
  const bases = Array.from({ length: SEMANTIC }, () => unit(gaussian()));
  const groupOf = new Map<string, number>();
  // The bases run first, one after another, so each one's fill is in the index before the queries.
  for (const [i, embedding] of bases.entries()) {
    const r = await request({ type: "content.semantic", pool: POOL, payload: { prompt: `base-${i}` }, embedding }, 0);
    if (r.outcome !== "miss") throw new Error(`base ${i} was a ${r.outcome}`);
    groupOf.set(r.source, i);
  }
  // Fills run after each success, behind any backlog the stream left: wait until the index holds every base.
  const waitStarted = performance.now();
  for (;;) {
    const listed = (await ok("GET", "/v1/indexes")).indexes.find((x: any) => x.index === "bench-semantic");
    if ((listed?.vectors ?? 0) >= SEMANTIC) break;
    if (performance.now() - waitStarted > 120_000) throw new Error(`the index holds ${listed?.vectors ?? 0} of ${SEMANTIC} bases after 120 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  fillWaitMs = Math.round(performance.now() - waitStarted);
  const near = bases.map((b, i) => {
    // Noise of 0.1 to 0.25 of the base's length: cosine 0.995 down to 0.97.
    const scale = (0.1 + (0.15 * i) / SEMANTIC) / Math.sqrt(DIM);
    return unit(Float64Array.from(b, (x) => x + scale * rng.gaussian()));
  });
  const cosine = (a: number[], b: number[]) => a.reduce((s, x, k) => s + x * b[k]!, 0);
  const cosines = near.map((v, i) => cosine(v, bases[i]!));
  let rightHits = 0;
  let hits = 0;
  const missed: string[] = [];
  for (const [i, embedding] of near.entries()) {
    const r = await request({ type: "content.semantic", pool: POOL, payload: { prompt: `near-${i}` }, embedding }, 0);
    if (r.outcome === "hit-semantic") {
      hits++;
      if (groupOf.get(r.source) === i) rightHits++;
    } else {
      groupOf.set(r.source, i);
      missed.push(`${i}@${cosines[i]!.toFixed(3)}`);
    }
  }
  let unrelatedHits = 0;
  for (let i = 0; i < SEMANTIC; i++) {
    const r = await request({ type: "content.semantic", pool: POOL, payload: { prompt: `unrelated-${i}` }, embedding: unit(gaussian()) }, 0);
    if (r.outcome === "hit-semantic") unrelatedHits++;
  }
  const allHits = hits + unrelatedHits;
  if (missed.length > 0) console.log(`semantic near-duplicates that missed (index@cosine): ${missed.join(" ")}`);
  return {
    precision: allHits === 0 ? null : Math.round((rightHits / allHits) * 1000) / 1000,
    recall: Math.round((rightHits / SEMANTIC) * 1000) / 1000,
    hits,
    rightHits,
    unrelatedHits,
    cosines: [Math.round(Math.min(...cosines) * 1000) / 1000, Math.round(Math.max(...cosines) * 1000) / 1000],
  };
}

// ---- index queries: Wasm against a JavaScript scan ---------------------------------------------------------------

function normalizeRows(flat: Float32Array, dim: number): Float32Array {
  for (let r = 0; r < flat.length / dim; r++) {
    let n = 0;
    for (let k = 0; k < dim; k++) n += flat[r * dim + k]! ** 2;
    n = Math.sqrt(n);
    for (let k = 0; k < dim; k++) flat[r * dim + k]! /= n;
  }
  return flat;
}

function jsTopK(rows: Float32Array, dim: number, query: Float32Array, k: number): number[] {
  const best: { i: number; s: number }[] = [];
  const n = rows.length / dim;
  for (let r = 0; r < n; r++) {
    let s = 0;
    const o = r * dim;
    for (let j = 0; j < dim; j++) s += rows[o + j]! * query[j]!;
    if (best.length < k || s > best[best.length - 1]!.s) {
      best.push({ i: r, s });
      best.sort((a, b) => b.s - a.s);
      if (best.length > k) best.pop();
    }
  }
  return best.map((b) => b.i);
}

function indexQps(vectors: number): { wasm: number; js: number; agree: number } {
  const rows = normalizeRows(uniformVectors(vectors, DIM, 11), DIM);
  const queries = normalizeRows(uniformVectors(100, DIM, 12), DIM);
  const sim = instantiateSimilarity(compileModule(readFileSync(join(ROOT, "build", "similarity.wasm"))));
  const corpus = sim.createCorpus({ dim: DIM, kind: "float32" });
  corpus.add(rows);
  const q = (i: number) => queries.subarray(i * DIM, (i + 1) * DIM);
  const time = (fn: (i: number) => unknown) => {
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < (quick ? 1_000 : 3_000)) fn(n++ % 100);
    return Math.round(n / ((performance.now() - t0) / 1000));
  };
  let agree = 0;
  for (let i = 0; i < 20; i++) {
    const a = Array.from(corpus.topK(q(i), 10).indices);
    const b = jsTopK(rows, DIM, q(i), 10);
    if (a.join() === b.join()) agree++;
  }
  const wasm = time((i) => corpus.topK(q(i), 10));
  const js = time((i) => jsTopK(rows, DIM, q(i), 10));
  return { wasm, js, agree: agree / 20 };
}

// ---- latency, one request at a time --------------------------------------------------------------------------

/**
 * Time to the result of one request with nothing else running, per level: a miss (a new item, run by the agent),
 * an L2 hit (the same item from an isolate that has not seen it), an L1 hit (the same isolate again), and an L3 hit
 * (an item whose KV value expired: one of the stream's first items, over 60 s old, from a fresh isolate).
 */
async function latency(oldItems: number[]): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = { miss: [], "hit-l1": [], "hit-l2": [], "hit-l3": [], healthz: [] };
  const n = quick ? 60 : 200;
  // The local HTTP round trip (client, wrangler's proxy, the Worker) of a route that does nothing.
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await (await fetch(`${server.url}/healthz`)).text();
    out.healthz!.push(performance.now() - t0);
  }
  for (let i = 0; i < n; i++) {
    const body = { type: "content.generate", pool: POOL, payload: { prompt: `latency-${i}` } };
    const first = await request(body, 100 + 2 * i);
    // The fill runs after the task's success: wait until the entry can be read from KV by another isolate.
    let second = await request(body, 101 + 2 * i);
    for (let t = 0; t < 50 && second.outcome === "miss"; t++) {
      await new Promise((r) => setTimeout(r, 20));
      second = await request(body, 1_000 + 50 * i + t);
    }
    const third = await request(body, 101 + 2 * i);
    for (const r of [first, second, third]) out[r.outcome]?.push(r.ms);
  }
  for (const [k, item] of oldItems.slice(0, n).entries()) {
    const r = await request({ type: "content.generate", pool: POOL, payload: { prompt: `item-${item}` } }, 10_000 + k);
    out[r.outcome]?.push(r.ms);
  }
  return out;
}

// ---- the run -------------------------------------------------------------------------------------------------

console.log(`machine  ${cpuModel()}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; ${osName()}; node ${process.version}; load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
console.log(`commit   ${commitOf(["src", "durable-objects", "contract", "lib", "agent"])}`);
console.log(`command  node bench/cache.ts${quick ? " --quick" : ""}`);
server = await startDevServer({ extraArgs: ["--var", "DAA_TEST_HOOKS:1"] });
let result: Record<string, unknown> = { bench: "cache" };
let agent: ChildProcess | null = null;
const share = (counts: Record<string, number>, o: string, of: number) => Math.round(((counts[o] ?? 0) / of) * 1000) / 1000;
const p50 = (ms: Record<string, number[]>, o: string) => quantile(ms[o] ?? [], 0.5);
const p99 = (ms: Record<string, number[]>, o: string) => quantile(ms[o] ?? [], 0.99);
try {
  agent = await startAgent();
  if (phases.has("stream")) {
    const s = await stream();
    const runs = await agentRuns(agent);
    for (const o of ["hit-l1", "hit-l2", "hit-l3", "miss"]) {
      console.log(`stream   ${o.padEnd(7)} ${String(s.counts[o] ?? 0).padStart(6)} (${(share(s.counts, o, REQUESTS) * 100).toFixed(1)}%)  under load: p50 ${p50(s.ms, o)} ms, p99 ${p99(s.ms, o)} ms`);
    }
    console.log(`stream   ${REQUESTS} requests over ${DISTINCT} items in ${s.seconds.toFixed(1)} s (${LOOPS} client loops); the agent ran ${runs} tasks; ${s.wrong} answers differed from the content`);
    result = {
      ...result,
      hit_ratio: { l1: share(s.counts, "hit-l1", REQUESTS), l2: share(s.counts, "hit-l2", REQUESTS), l3: share(s.counts, "hit-l3", REQUESTS) },
      miss_ratio: share(s.counts, "miss", REQUESTS),
      loaded_p50_ms: { l1: p50(s.ms, "hit-l1"), l2: p50(s.ms, "hit-l2"), l3: p50(s.ms, "hit-l3"), miss: p50(s.ms, "miss") },
      wrong_answers: s.wrong,
      agent_runs: runs,
      requests: REQUESTS,
      stream_s: Math.round(s.seconds * 10) / 10,
    };
    if (phases.has("latency")) {
      const l = await latency(s.firstItems);
      for (const o of ["healthz", "hit-l1", "hit-l2", "hit-l3", "miss"]) console.log(`latency  ${o.padEnd(7)} ${String(l[o]?.length ?? 0).padStart(4)} requests one at a time: p50 ${p50(l, o)} ms, p99 ${p99(l, o)} ms`);
      result = {
        ...result,
        p50_ms: { l1: p50(l, "hit-l1"), l2: p50(l, "hit-l2"), l3: p50(l, "hit-l3"), miss: p50(l, "miss") },
        p99_ms: { l1: p99(l, "hit-l1"), l2: p99(l, "hit-l2"), l3: p99(l, "hit-l3"), miss: p99(l, "miss") },
        speedup_l1: p50(l, "miss") && p50(l, "hit-l1") ? Math.round((p50(l, "miss")! / p50(l, "hit-l1")!) * 10) / 10 : null,
        healthz_p50_ms: p50(l, "healthz"),
      };
    }
  }
  if (phases.has("semantic")) {
    const sem = await semantic();
    console.log(`semantic the index held all ${SEMANTIC} bases ${fillWaitMs} ms after the last one succeeded`);
    console.log(`semantic near-duplicates at cosine ${sem.cosines[0]}-${sem.cosines[1]}: ${sem.rightHits} of ${SEMANTIC} answered by their base, ${sem.hits - sem.rightHits} by another; ${sem.unrelatedHits} of ${SEMANTIC} unrelated hit; precision ${sem.precision}, recall ${sem.recall}`);
    result = { ...result, hit_ratio: { ...(result.hit_ratio as object), semantic: Math.round((sem.hits / SEMANTIC) * 1000) / 1000 }, semantic_precision: sem.precision, semantic_recall: sem.recall, semantic_fill_wait_ms: fillWaitMs };
  }
  if (phases.has("index")) {
    const q10 = indexQps(10_000);
    const q40 = indexQps(40_000);
    console.log(`index    10k x ${DIM}: Wasm ${q10.wasm} queries/s, JS ${q10.js} (${(q10.wasm / q10.js).toFixed(1)}x); 40k: Wasm ${q40.wasm}, JS ${q40.js} (${(q40.wasm / q40.js).toFixed(1)}x); top-10 equal in ${q10.agree * 100}% / ${q40.agree * 100}% of checked queries`);
    result = { ...result, index_qps: { wasm: q10.wasm, js: q10.js, wasm_40k: q40.wasm, js_40k: q40.js } };
  }
  result = { ...result, quick, commit: commitOf(["src", "durable-objects", "contract", "lib", "agent"]), duration_s: Math.round((performance.now() - started) / 100) / 10 };
} finally {
  if (agent) {
    const a = agent;
    await new Promise<void>((resolve) => {
      a.once("exit", () => resolve());
      a.send({ cmd: "stop" });
      setTimeout(() => a.kill("SIGKILL"), 10_000).unref();
    });
  }
  await server.stop();
}
console.log(JSON.stringify(result));
