// Throughput through one pool, over HTTP against `wrangler dev` (issue 2).
//
// For each batch size B (1, 10, 100) a fresh pool takes N tasks through three phases, each timed on its own:
//   submit   B = 1: POST /v1/tasks, one task per request; B > 1: POST /v1/tasks/batch with B tasks
//   lease    POST /v1/pools/:pool/agents/:agentId/lease {"max": B}
//   complete B = 1: POST /v1/tasks/:id/complete; B > 1: POST /v1/tasks/settle with the B leases of one lease call
// `concurrency` client loops run each phase. Every answer is checked; any unexpected status, lease or final count fails the run (exit 1).
//
//   node bench/throughput.ts [--quick] [--tasks N] [--concurrency C] [--batches 1,10,100] [--snapshot]
//
// The last line printed is one JSON object with the results.
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ROOT, startDevServer, type DevServer } from "../scripts/dev-server.ts";
import { machineBusyMs, serverCpu } from "./lib/cpu.ts";
import { commitOf, cpuModel, osName, packageVersion } from "./lib/machine.ts";

// ---- options ------------------------------------------------------------------------------------------------

const USAGE = `usage: node bench/throughput.ts [--quick] [--tasks N] [--concurrency C] [--batches 1,10,100] [--snapshot]
  --quick        fewer tasks (a run of well under a minute)
  --tasks N      tasks per batch size (rounded up to a multiple of the batch size); default 1000 at batch 1,
                 5000 at batch 10 and 10000 at batch 100 (with --quick: 200 at batch 1, 600 at 10 and 100)
  --concurrency  client loops per phase (default 4)
  --batches      batch sizes to measure (default 1,10,100; each 1..100)
  --snapshot     measure the committed HEAD from a temporary copy of it: wrangler dev reloads the Worker
                 whenever a source file changes, so edits made in the work tree during a run would break it`;

interface Options {
  quick: boolean;
  tasks: number | null;
  concurrency: number;
  batches: number[];
  snapshot: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      tasks: { type: "string" },
      concurrency: { type: "string", default: "4" },
      batches: { type: "string", default: "1,10,100" },
      snapshot: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const int = (name: string, text: string, min: number, max: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) usageError(`--${name} must be an integer from ${min} to ${max}, not ${text}`);
    return n;
  };
  return {
    quick: values.quick,
    tasks: values.tasks === undefined ? null : int("tasks", values.tasks, 1, 1_000_000),
    concurrency: int("concurrency", values.concurrency, 1, 64),
    batches: values.batches.split(",").map((b) => int("batches", b.trim(), 1, 100)),
    snapshot: values.snapshot,
  };
}

function usageError(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

function tasksFor(opts: Options, batch: number): number {
  const full = batch === 1 ? 1000 : batch < 100 ? 5000 : 10000;
  const quick = batch === 1 ? 200 : 600;
  const wanted = opts.tasks ?? (opts.quick ? quick : full);
  return Math.ceil(wanted / batch) * batch;
}

// ---- machine ------------------------------------------------------------------------------------------------

interface Machine {
  cpu: string;
  cores: number;
  ramGiB: number;
  os: string;
  node: string;
  wrangler: string;
  /** The commit measured, with "+dirty" when the Worker's sources differ from it in the work tree. */
  code: string;
}

function describeMachine(): Machine {
  // A snapshot run is told its commit; otherwise ask git, and say when the Worker's sources have local changes.
  const code = process.env.DAA_BENCH_CODE ?? commitOf(["src", "durable-objects", "wrangler.toml", "package.json"]);
  return { cpu: cpuModel(), cores: cpus().length, ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10, os: osName(), node: process.version, wrangler: packageVersion("wrangler"), code };
}

// ---- --snapshot: run from a copy of HEAD ------------------------------------------------------------------------

/**
 * Extracts HEAD into a temporary directory (with this benchmark file and a link to node_modules), runs the
 * benchmark there with the same arguments but --snapshot, and answers its exit code.
 */
async function runFromSnapshot(argv: string[]): Promise<number> {
  const git = (...args: string[]) => execFileSync("git", args, { cwd: ROOT, encoding: "utf8" }).trim();
  const commit = git("rev-parse", "--short", "HEAD");
  const dir = mkdtempSync(join(tmpdir(), "daa-bench-"));
  try {
    const tar = execFileSync("git", ["archive", "--format=tar", "HEAD"], { cwd: ROOT, maxBuffer: 1 << 30 });
    execFileSync("tar", ["-x", "-C", dir], { input: tar });
    mkdirSync(join(dir, "bench"), { recursive: true });
    copyFileSync(fileURLToPath(import.meta.url), join(dir, "bench", "throughput.ts"));
    symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
    console.log(`snapshot of ${commit} in ${dir}`);
    const child = spawn(process.execPath, [join(dir, "bench", "throughput.ts"), ...argv.filter((a) => a !== "--snapshot")], {
      stdio: "inherit",
      env: { ...process.env, DAA_BENCH_CODE: `${commit} (snapshot)` },
    });
    // A signal goes on to the child, which stops its dev server (a second one is harmless); this process waits
    // for it and then removes the copy.
    const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
    process.on("SIGINT", forward);
    process.on("SIGTERM", forward);
    const code = await new Promise<number>((resolve) => child.on("exit", (status) => resolve(status ?? 1)));
    process.off("SIGINT", forward);
    process.off("SIGTERM", forward);
    return code;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- CPU time of the client and of the server's processes (bench/lib/cpu.ts) -----------------------------------

interface CpuMark {
  client: number;
  server: Map<string, number>;
  /** The workerd processes; wrangler dev replaces them when it reloads the Worker after a source change. */
  workerds: string;
  machine: number;
}

function cpuMark(server: DevServer): CpuMark {
  const u = process.cpuUsage();
  const { cpu, workerds } = serverCpu(server.process.pid, new URL(server.url).port);
  return { client: (u.user + u.system) / 1000, server: cpu, workerds, machine: machineBusyMs() };
}

/**
 * CPU used between two marks as a share of one core: the client, each part of the server, and `other`: what
 * the rest of the machine used meanwhile (other people's processes; it should be near 0%).
 */
function cpuShare(a: CpuMark, b: CpuMark, wallMs: number): Record<string, number> {
  const share: Record<string, number> = { client: (b.client - a.client) / wallMs };
  let ours = b.client - a.client;
  for (const [name, ms] of b.server) {
    share[name] = (ms - (a.server.get(name) ?? 0)) / wallMs;
    ours += ms - (a.server.get(name) ?? 0);
  }
  const machine = b.machine - a.machine;
  if (Number.isFinite(machine)) share.other = Math.max(0, machine - ours) / wallMs;
  return share;
}

// ---- HTTP -----------------------------------------------------------------------------------------------------

class BenchError extends Error {}

interface Answer {
  status: number;
  body: any;
  ms: number;
}

let baseUrl = "";
let authHeader = "";

async function call(method: string, path: string, body: unknown, expect: readonly number[]): Promise<Answer> {
  const headers: Record<string, string> = { authorization: authHeader };
  if (body !== undefined) headers["content-type"] = "application/json";
  const t0 = performance.now();
  let res: Response;
  let text: string;
  try {
    res = await fetch(`${baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    text = await res.text();
  } catch (err) {
    throw new BenchError(`${method} ${path}: request failed: ${(err as Error).message}${(err as Error).cause ? ` (${String((err as Error).cause)})` : ""}`);
  }
  const ms = performance.now() - t0;
  if (!expect.includes(res.status)) {
    const hint =
      res.status === 503 && text.includes("restarted")
        ? "\n(wrangler dev reloaded the Worker, most likely because a source file changed during the run; the numbers would mix two builds: rerun when the sources are quiet, or with --snapshot)"
        : "";
    throw new BenchError(`${method} ${path}: expected ${expect.join("/")}, got ${res.status}: ${text.slice(0, 500)}${hint}`);
  }
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (healthz answers JSON; nothing else here should not)
  }
  return { status: res.status, body: parsed, ms };
}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new BenchError(message);
}

/** Runs `jobs` with `loops` workers pulling from one list; the first error stops every worker and is thrown. */
async function runLoops<J>(jobs: readonly J[], loops: number, work: (job: J) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < jobs.length) {
      const job = jobs[next++]!;
      try {
        await work(job);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(loops, jobs.length) }, worker));
}

// ---- statistics -------------------------------------------------------------------------------------------------

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

interface Latency {
  p50: number;
  p99: number;
  max: number;
}

function latencyOf(samples: number[]): Latency {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: round(percentile(sorted, 0.5), 2), p99: round(percentile(sorted, 0.99), 2), max: round(sorted[sorted.length - 1] ?? NaN, 2) };
}

const round = (x: number, digits = 0): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

// ---- phases ---------------------------------------------------------------------------------------------------

/** Leases an agent may hold at once (the API's maximum `maxConcurrency`). */
const AGENT_CAPACITY = 1000;
/** Lease length of the benchmark's tasks: long enough that no lease expires between the lease and complete phases. */
const TASK_TIMEOUT_MS = 600_000;

interface PhaseResult {
  phase: "submit" | "lease" | "complete";
  tasks: number;
  requests: number;
  seconds: number;
  tps: number;
  rps: number;
  latency: Latency;
  cpu: Record<string, number>;
}

interface Leased {
  id: string;
  leaseToken: string;
}

interface CellResult {
  batch: number;
  tasks: number;
  agents: number;
  phases: PhaseResult[];
  cycleTps: number;
}

async function timed(
  server: DevServer,
  phase: PhaseResult["phase"],
  tasks: number,
  requests: number,
  body: (latencies: number[]) => Promise<void>,
): Promise<PhaseResult> {
  const latencies: number[] = [];
  const before = cpuMark(server);
  const t0 = performance.now();
  await body(latencies);
  const wall = performance.now() - t0;
  const after = cpuMark(server);
  // A reload restarts workerd: requests then pay a cold start (or fail with 503), so the phase measured
  // something else. wrangler dev reloads whenever a source file changes; nothing here can switch that off.
  check(
    after.workerds === before.workerds,
    `wrangler dev restarted workerd during the ${phase} phase (${before.workerds} -> ${after.workerds}), most likely because a ` +
      `source file changed; the numbers would include a reload: rerun when the sources are quiet, or with --snapshot`,
  );
  check(latencies.length === requests, `${phase}: ${latencies.length} requests answered, expected ${requests}`);
  return {
    phase,
    tasks,
    requests,
    seconds: wall / 1000,
    tps: tasks / (wall / 1000),
    rps: requests / (wall / 1000),
    latency: latencyOf(latencies),
    cpu: cpuShare(before, after, wall),
  };
}

function chunks(total: number, size: number): number[] {
  return Array.from({ length: Math.ceil(total / size) }, (_, k) => Math.min(size, total - k * size));
}

/** One pool, N tasks through submit, lease and complete at batch size B. */
async function runCell(server: DevServer, pool: string, batch: number, total: number, loops: number): Promise<CellResult> {
  // Agents hold their leases between the lease and the complete phase without heartbeating, so the pool gets a
  // heartbeat interval longer than the run (written before the agents register; this also creates the pool).
  await call("PUT", `/v1/pools/${pool}/config`, { heartbeatIntervalMs: 600_000, missedHeartbeats: 3 }, [200]);
  const agentCount = Math.ceil(total / AGENT_CAPACITY);
  const agents: string[] = [];
  for (let a = 0; a < agentCount; a++) {
    const r = await call("POST", `/v1/pools/${pool}/agents`, { agentId: `bench-${a}`, maxConcurrency: AGENT_CAPACITY }, [201]);
    check(r.body?.state === "running", `agent ${a} registered as ${r.body?.state}, expected running`);
    agents.push(r.body.agentId as string);
  }

  // submit
  const submitted = new Set<string>();
  const submitJobs = chunks(total, batch).map((n, k) => ({ n, first: k * batch }));
  const task = (i: number) => ({ type: "bench.noop", pool, payload: { i }, timeoutMs: TASK_TIMEOUT_MS });
  const submit = await timed(server, "submit", total, submitJobs.length, (lat) =>
    runLoops(submitJobs, loops, async ({ n, first }) => {
      if (batch === 1) {
        const r = await call("POST", "/v1/tasks", task(first), [201]);
        lat.push(r.ms);
        check(r.body?.status === "queued" && r.body?.pool === pool, `submit answered a task in ${r.body?.pool} with status ${r.body?.status}`);
        submitted.add(r.body.id as string);
      } else {
        const r = await call("POST", "/v1/tasks/batch", { tasks: Array.from({ length: n }, (_, j) => task(first + j)) }, [201]);
        lat.push(r.ms);
        const tasks = r.body?.tasks as { id: string; status: string; pool: string }[] | undefined;
        check(Array.isArray(tasks) && tasks.length === n, `batch submit of ${n} answered ${tasks?.length} tasks`);
        for (const t of tasks) {
          check(t.status === "queued" && t.pool === pool, `batch submit answered a task in ${t.pool} with status ${t.status}`);
          submitted.add(t.id);
        }
      }
    }),
  );
  check(submitted.size === total, `submitted ${submitted.size} distinct task ids, expected ${total}`);

  // lease: each request claims its share up front, so with exactly `total` tasks queued every lease must
  // answer exactly what it asked for; a claim never straddles two agents because B divides their capacity or
  // the claim is cut at the boundary.
  const leaseJobs: { agent: string; max: number }[] = [];
  for (let start = 0; start < total; ) {
    const room = AGENT_CAPACITY - (start % AGENT_CAPACITY);
    const max = Math.min(batch, total - start, room);
    leaseJobs.push({ agent: agents[Math.floor(start / AGENT_CAPACITY)]!, max });
    start += max;
  }
  const leasedBatches: Leased[][] = [];
  const leasedIds = new Set<string>();
  const lease = await timed(server, "lease", total, leaseJobs.length, (lat) =>
    runLoops(leaseJobs, loops, async ({ agent, max }) => {
      const r = await call("POST", `/v1/pools/${pool}/agents/${agent}/lease`, { max }, [200]);
      lat.push(r.ms);
      const tasks = r.body?.tasks as { id: string; status: string; leaseToken: string; agentId: string }[] | undefined;
      check(Array.isArray(tasks) && tasks.length === max, `lease of max ${max} for ${agent} answered ${tasks?.length} tasks`);
      for (const t of tasks) {
        check(t.status === "leased" && typeof t.leaseToken === "string" && t.agentId === agent, `lease answered ${JSON.stringify(t).slice(0, 300)}`);
        check(submitted.has(t.id), `lease answered task ${t.id}, which this run did not submit to ${pool}`);
        check(!leasedIds.has(t.id), `task ${t.id} was leased twice`);
        leasedIds.add(t.id);
      }
      leasedBatches.push(tasks.map((t) => ({ id: t.id, leaseToken: t.leaseToken })));
    }),
  );
  check(leasedIds.size === total, `leased ${leasedIds.size} tasks, expected ${total}`);

  // complete: B = 1: POST /v1/tasks/:id/complete; B > 1: each leased batch in one POST /v1/tasks/settle
  const complete = await timed(server, "complete", total, batch === 1 ? total : Math.ceil(total / batch), (lat) =>
    runLoops(leasedBatches, loops, async (tasks) => {
      if (tasks.length === 1) {
        const { id, leaseToken } = tasks[0]!;
        const r = await call("POST", `/v1/tasks/${id}/complete`, { leaseToken, result: { ok: true } }, [200]);
        lat.push(r.ms);
        check(r.body?.id === id && r.body?.status === "succeeded", `complete of ${id} answered status ${r.body?.status}`);
        return;
      }
      const items = tasks.map(({ id, leaseToken }) => ({ action: "complete", id, leaseToken, result: { ok: true } }));
      const r = await call("POST", "/v1/tasks/settle", { items }, [200]);
      lat.push(r.ms);
      const results = (r.body?.results ?? []) as { id: string; status?: string }[];
      check(results.length === tasks.length, `settle answered ${results.length} results for ${tasks.length} items`);
      results.forEach((res, i) => check(res.id === tasks[i]!.id && res.status === "succeeded", `settle of ${tasks[i]!.id} answered ${JSON.stringify(res)}`));
    }),
  );

  // the pool agrees
  const stats = await call("GET", `/v1/pools/${pool}`, undefined, [200]);
  const q = stats.body?.queue as Record<string, number> | undefined;
  check(q !== undefined, `GET /v1/pools/${pool} answered no queue: ${JSON.stringify(stats.body).slice(0, 300)}`);
  const expected = { waiting: 0, queued: 0, leased: 0, succeeded: total, dead: 0, cancelled: 0 };
  for (const [status, n] of Object.entries(expected)) {
    check(q[status] === n, `pool ${pool} has queue.${status} = ${q[status]}, expected ${n} (queue ${JSON.stringify(q)})`);
  }
  check(stats.body?.agents?.running === agentCount, `pool ${pool} has ${stats.body?.agents?.running} running agents, expected ${agentCount}`);

  const seconds = submit.seconds + lease.seconds + complete.seconds;
  return { batch, tasks: total, agents: agentCount, phases: [submit, lease, complete], cycleTps: total / seconds };
}

/** Serial requests to one route: the floor that one request costs. */
async function probe(path: string, n: number): Promise<Latency> {
  const lat: number[] = [];
  for (let i = 0; i < n; i++) lat.push((await call("GET", path, undefined, [200])).ms);
  return latencyOf(lat);
}

interface Ceiling {
  rps: number;
  /** CPU milliseconds per request, by process role. */
  cpuMsPerRequest: Record<string, number>;
}

/** Requests per second one route takes with `loops` in flight (the ceiling of the stack for it), and its CPU cost. */
async function rate(server: DevServer, path: string, n: number, loops: number): Promise<Ceiling> {
  const before = cpuMark(server);
  const t0 = performance.now();
  await runLoops(Array.from({ length: n }, (_, i) => i), loops, async () => void (await call("GET", path, undefined, [200])));
  const wall = performance.now() - t0;
  const share = cpuShare(before, cpuMark(server), wall);
  const cpuMsPerRequest = Object.fromEntries(Object.entries(share).map(([role, x]) => [role, round((x * wall) / n, 2)]));
  return { rps: round(n / (wall / 1000)), cpuMsPerRequest };
}

const cpuCost = (c: Record<string, number>): string =>
  ["client", "workerd-proxy", "workerd-mesh"].map((r) => `${r} ${c[r] ?? "-"}`).join(", ");

// ---- output ---------------------------------------------------------------------------------------------------

function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => r[c]!.length)));
  const line = (r: string[]) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join("  ");
  return [line(cells[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

const pct = (share: number | undefined): string => (share === undefined ? "-" : `${Math.round(share * 100)}%`);

// ---- main -----------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.snapshot) process.exit(await runFromSnapshot(process.argv.slice(2)));
  const machine = describeMachine();
  console.log("DAA Mesh throughput benchmark: one pool, over HTTP, against wrangler dev (local)");
  console.log(`date     ${new Date().toISOString()}`);
  console.log(`machine  ${machine.cpu}, ${machine.cores} cores, ${machine.ramGiB} GiB RAM`);
  console.log(`os       ${machine.os}`);
  console.log(`software node ${machine.node}, wrangler ${machine.wrangler}, code ${machine.code}`);
  const snapshot = process.env.DAA_BENCH_CODE?.endsWith("(snapshot)") ? ["--snapshot"] : [];
  console.log(`command  node bench/throughput.ts ${[...process.argv.slice(2), ...snapshot].join(" ")}`.trimEnd());
  console.log(
    `plan     batches ${opts.batches.join(", ")}; tasks ${opts.batches.map((b) => `${tasksFor(opts, b)} at ${b}`).join(", ")}; ` +
      `${opts.concurrency} client loops per phase (complete: ${opts.concurrency} x B requests in flight)`,
  );

  const loadStart = loadavg().map((x) => round(x, 2));
  console.log(`load     ${loadStart.join(" ")} (1, 5, 15 min load average before starting)`);
  const started = performance.now();
  const server = await startDevServer();
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => (stopping ??= server.stop());
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping === null) console.error(`\n${signal}: stopping the dev server`);
    void stop().finally(() => process.exit(130));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  try {
    baseUrl = server.url;
    authHeader = `Bearer ${server.adminKey}`;
    console.log(`server   ${server.url} (started in ${round((performance.now() - started) / 1000, 1)} s)`);

    // warm up: code paths, connections, SQLite, the directory; on a throwaway pool
    const w0 = performance.now();
    await probe("/healthz", 50);
    await runCell(server, "bench-warmup-1", 1, 100, opts.concurrency);
    await runCell(server, "bench-warmup-10", 10, 300, opts.concurrency);
    await runCell(server, "bench-warmup-100", 100, 300, opts.concurrency);
    console.log(`warm-up  ${round((performance.now() - w0) / 1000, 1)} s (700 tasks on throwaway pools)`);

    // the floor: what one request costs with nothing else going on
    const floor = {
      healthz: await probe("/healthz", 200),
      poolStats: await probe("/v1/pools/bench-warmup-1", 200),
    };
    const ceiling = {
      healthz: await rate(server, "/healthz", 1000, opts.concurrency * 4),
      poolStats: await rate(server, "/v1/pools/bench-warmup-1", 1000, opts.concurrency * 4),
    };
    console.log(
      `floor    serial GET /healthz (no auth, no Durable Object) p50 ${floor.healthz.p50} ms p99 ${floor.healthz.p99} ms; ` +
        `GET /v1/pools/:pool (auth + one DO read) p50 ${floor.poolStats.p50} ms p99 ${floor.poolStats.p99} ms`,
    );
    console.log(
      `ceiling  with ${opts.concurrency * 4} in flight: GET /healthz ${ceiling.healthz.rps} req/s (CPU ms per request: ${cpuCost(ceiling.healthz.cpuMsPerRequest)}); ` +
        `GET /v1/pools/:pool ${ceiling.poolStats.rps} req/s (${cpuCost(ceiling.poolStats.cpuMsPerRequest)})`,
    );

    const results: CellResult[] = [];
    for (const batch of opts.batches) {
      const cell = await runCell(server, `bench-b${batch}`, batch, tasksFor(opts, batch), opts.concurrency);
      results.push(cell);
      const [s, l, c] = cell.phases;
      console.log(
        `batch ${String(batch).padStart(3)}: ${cell.tasks} tasks, submit ${round(s!.tps)}/s, lease ${round(l!.tps)}/s, ` +
          `complete ${round(c!.tps)}/s, cycle ${round(cell.cycleTps)}/s; verified`,
      );
    }

    console.log(`\nTasks per second through one pool (${opts.concurrency} client loops per phase; complete: B requests at once per loop)\n`);
    console.log(
      table(
        ["batch", "tasks", "submit/s", "lease/s", "complete/s", "cycle/s"],
        results.map((r) => [r.batch, r.tasks, round(r.phases[0]!.tps), round(r.phases[1]!.tps), round(r.phases[2]!.tps), round(r.cycleTps)]),
      ),
    );

    const seen = new Set(results.flatMap((r) => r.phases.flatMap((p) => Object.keys(p.cpu))));
    const procNames = ["wrangler", "esbuild", "workerd-proxy", "workerd-mesh", "other"].filter((n) => seen.has(n));
    console.log(
      `\nPer phase: HTTP requests, request latency under this load (ms), CPU used as a share of one core ` +
        `(wrangler: its Node processes; workerd-proxy: the proxy on the public port; workerd-mesh: the Worker and ` +
        `Durable Objects; other: the rest of the machine)\n`,
    );
    console.log(
      table(
        ["batch", "phase", "requests", "seconds", "req/s", "p50 ms", "p99 ms", "max ms", "cpu client", ...procNames.map((n) => `cpu ${n}`), "mesh ms/req"],
        results.flatMap((r) =>
          r.phases.map((p) => [
            r.batch,
            p.phase,
            p.requests,
            round(p.seconds, 2),
            round(p.rps),
            p.latency.p50,
            p.latency.p99,
            p.latency.max,
            pct(p.cpu.client),
            ...procNames.map((n) => pct(p.cpu[n])),
            round(((p.cpu["workerd-mesh"] ?? NaN) * p.seconds * 1000) / p.requests, 2),
          ]),
        ),
      ),
    );
    const one = results.find((r) => r.batch === 1);
    if (one) {
      console.log(
        `\nSingle-request latency at batch 1 (${opts.concurrency} in flight): ` +
          one.phases.map((p) => `${p.phase} p50 ${p.latency.p50} ms p99 ${p.latency.p99} ms`).join("; "),
      );
    }
    console.log(`load     ${loadavg().map((x) => round(x, 2)).join(" ")} (load average at the end)`);
    const codeNow = describeMachine().code;
    if (codeNow !== machine.code) console.log(`WARNING  the code changed during the run (${machine.code} -> ${codeNow}); wrangler dev may have reloaded it`);
    console.log(`total    ${round((performance.now() - started) / 1000, 1)} s\n`);

    const json = {
      bench: "throughput",
      date: new Date().toISOString(),
      machine,
      concurrency: opts.concurrency,
      floorMs: floor,
      ceiling,
      loadavg: { start: loadStart, end: loadavg().map((x) => round(x, 2)) },
      results: results.map((r) => {
        const [s, l, c] = r.phases as [PhaseResult, PhaseResult, PhaseResult];
        return {
          batch: r.batch,
          tasks: r.tasks,
          submit_tps: round(s.tps),
          lease_tps: round(l.tps),
          complete_tps: round(c.tps),
          cycle_tps: round(r.cycleTps),
          latency_ms: { submit: s.latency, lease: l.latency, complete: c.latency },
        };
      }),
    };
    console.log(JSON.stringify(json));
  } finally {
    await stop();
  }
}

main().catch((err: unknown) => {
  console.error(`\nbenchmark FAILED: ${err instanceof BenchError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
