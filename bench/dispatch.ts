// The mesh against BullMQ on Redis (issue 6), side by side in one run on one machine.
//
//   mesh         wrangler dev; agent processes from the SDK (in-process no-op handler) on WebSockets;
//                tasks submitted with POST /v1/tasks/batch
//   bullmq       a local redis-server without persistence; Worker processes with a no-op processor;
//                jobs added with Queue.addBulk
//   bullmq_aof   the same with appendonly yes, appendfsync everysec (the durability closest to the mesh's)
// Same task count, same number of worker processes and concurrency, same batch size for every system.
//   submit       N tasks into a queue nobody consumes: tasks/s of submission alone;
//   end to end   N tasks submitted by 4 client loops while the workers run: tasks/s from the first submit to
//                the last task handled (the workers count what they handled);
//   latency      the same absolute offered load for all (half of the lower peak of mesh and bullmq), sent in small
//                batches every 20 ms: submit-to-start = the handler's start minus the client's send time
//                (both Date.now() on this machine).
//   cpu          during the end-to-end run, the CPU of each part as a share of one core (from /proc on Linux):
//                the mesh's workerd (its Worker and Durable Objects share one thread) or redis-server, the worker
//                processes, this client, and the whole machine.
//
//   node bench/dispatch.ts [--quick] [--tasks N] [--workers W] [--concurrency C] [--batch B] [--pools P]
//   --pools P    the work spread over P pools (P coordinators; for BullMQ, P queues), worker i serving pool i mod P
//
// The last line printed is one JSON object with the results.
import { fork, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Queue } from "bullmq";
import { freePort, ROOT, startDevServer, type DevServer } from "../scripts/dev-server.ts";
import { machineBusyMs, processesCpu, serverCpu } from "./lib/cpu.ts";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    tasks: { type: "string" },
    workers: { type: "string", default: "2" },
    concurrency: { type: "string", default: "100" },
    batch: { type: "string", default: "500" },
    pools: { type: "string", default: "1" },
  },
});
const QUICK = values.quick;
const TASKS = Number(values.tasks ?? (QUICK ? 5000 : 20000));
const WORKERS = Number(values.workers);
const CONCURRENCY = Number(values.concurrency);
// The work spread over several pools (the mesh: as many coordinators; BullMQ: as many queues), worker i serving
// pool i mod P: what sharding a hot pool over several coordinators could give on this machine.
const POOLS = Number(values.pools);
if (!Number.isInteger(POOLS) || POOLS < 1 || POOLS > WORKERS) throw new Error(`--pools must be an integer from 1 to the number of workers (${WORKERS})`);
const BATCH = Number(values.batch);
const LATENCY_SECONDS = QUICK ? 4 : 8;
const SUBMITTERS = 4;

type System = "mesh" | "bullmq" | "bullmq_aof";

interface Driver {
  submit(queue: string, tasks: object[]): Promise<void>;
  /** Worker i serves queue i mod the number of queues. */
  startWorkers(queues: string[]): Promise<ChildProcess[]>;
  /** CPU milliseconds its server side has used so far, by part (the mesh's workerd, redis-server, ...). */
  serverCpu(): Map<string, number>;
  stop(): Promise<void>;
}

const children: ChildProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];

// ---- helpers ----------------------------------------------------------------------------------------------

function percentile(sorted: number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

function forkWorker(script: string, args: string[]): Promise<ChildProcess> {
  const child = fork(join(ROOT, "bench", "lib", script), args, { execPath: process.execPath, stdio: ["ignore", "ignore", "inherit", "ipc"] });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once("message", () => resolve(child));
    child.once("exit", (code) => reject(new Error(`${script} exited with ${code} before it was ready`)));
  });
}

function report(worker: ChildProcess): Promise<{ delays: number[]; done: number }> {
  return new Promise((resolve) => {
    worker.once("message", (m) => resolve(m as { delays: number[]; done: number }));
    worker.send({ cmd: "report" });
  });
}

async function handled(workers: ChildProcess[]): Promise<{ done: number; delays: number[] }> {
  const reports = await Promise.all(workers.map(report));
  return { done: reports.reduce((a, r) => a + r.done, 0), delays: reports.flatMap((r) => r.delays) };
}

async function stopWorkers(workers: ChildProcess[]): Promise<void> {
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            w.kill("SIGKILL");
            resolve();
          }, 10_000);
          w.once("exit", () => {
            clearTimeout(timer);
            resolve();
          });
          w.send({ cmd: "stop" });
        }),
    ),
  );
}

function batches(n: number, make: (i: number) => object): object[][] {
  const out: object[][] = [];
  for (let i = 0; i < n; i += BATCH) out.push(Array.from({ length: Math.min(BATCH, n - i) }, (_, j) => make(i + j)));
  return out;
}

async function submitAll(driver: Driver, queues: string[], n: number): Promise<number> {
  const todo = batches(n, () => ({}));
  const started = performance.now();
  await Promise.all(
    Array.from({ length: SUBMITTERS }, async () => {
      for (let b = todo.pop(); b !== undefined; b = todo.pop()) await driver.submit(queues[todo.length % queues.length]!, b);
    }),
  );
  return n / ((performance.now() - started) / 1000);
}

// ---- the mesh ---------------------------------------------------------------------------------------------

async function meshDriver(): Promise<Driver> {
  const server: DevServer = await startDevServer();
  cleanups.push(() => server.stop());
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
    return res.json();
  };
  return {
    submit: async (pool, tasks) => {
      await call("POST", "/v1/tasks/batch", { tasks: tasks.map((payload) => ({ type: "bench.noop", pool, payload })) });
    },
    startWorkers: async (pools) => {
      for (const pool of pools) await call("PUT", `/v1/pools/${pool}/config`, { heartbeatIntervalMs: 10_000 });
      return Promise.all(
        Array.from({ length: WORKERS }, (_, i) => {
          const pool = pools[i % pools.length]!;
          return forkWorker("mesh-agent.ts", [server.url, server.adminKey, pool, `${pool}-${i}`, String(CONCURRENCY)]);
        }),
      );
    },
    serverCpu: () => serverCpu(server.process.pid, new URL(server.url).port).cpu,
    stop: async () => undefined,
  };
}

// ---- BullMQ -----------------------------------------------------------------------------------------------

async function redisDriver(aof: boolean): Promise<Driver> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "daa-redis-"));
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--daemonize", "no", "--loglevel", "warning"];
  args.push(...(aof ? ["--appendonly", "yes", "--appendfsync", "everysec"] : ["--appendonly", "no"]));
  const redis = spawn("redis-server", args, { stdio: ["ignore", "ignore", "inherit"] });
  children.push(redis);
  cleanups.push(async () => {
    if (redis.exitCode === null && redis.signalCode === null) {
      const exited = new Promise((r) => redis.once("exit", r));
      redis.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  // Connect only once redis listens (a Queue that dials too early logs ECONNREFUSED).
  for (let i = 0; !(await canConnect(port)); i++) {
    if (i > 100) throw new Error(`redis-server did not listen on port ${port} within 10 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const queues = new Map<string, Queue>();
  const queueOf = (name: string): Queue => {
    let q = queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: { host: "127.0.0.1", port } });
      queues.set(name, q);
    }
    return q;
  };
  for (let i = 0; ; i++) {
    try {
      await queueOf("probe").waitUntilReady();
      break;
    } catch (err) {
      if (i > 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    submit: async (queue, tasks) => {
      await queueOf(queue).addBulk(tasks.map((data) => ({ name: "bench.noop", data, opts: { removeOnComplete: { count: 1000 } } })));
    },
    startWorkers: (queues) =>
      Promise.all(Array.from({ length: WORKERS }, (_, i) => forkWorker("bullmq-worker.ts", [String(port), queues[i % queues.length]!, String(CONCURRENCY)]))),
    serverCpu: () => new Map([["redis-server", processesCpu([redis.pid])]]),
    stop: async () => {
      await Promise.all([...queues.values()].map((q) => q.close()));
    },
  };
}

// ---- the run ----------------------------------------------------------------------------------------------

interface Result {
  submitTps: number;
  endToEndTps: number;
  /** Where the CPU went during the end-to-end run, as shares of one core (1 = one core busy all along). */
  cpu: Record<string, number>;
  latency?: { p50: number; p99: number; max: number; samples: number };
}

/** CPU used so far by the server side, the worker processes, this client and the whole machine. */
function cpuMark(driver: Driver, workers: ChildProcess[]): Map<string, number> {
  const u = process.cpuUsage();
  const mark = new Map(driver.serverCpu());
  mark.set("workers", processesCpu(workers.map((w) => w.pid)));
  mark.set("client", (u.user + u.system) / 1000);
  mark.set("machine", machineBusyMs());
  return mark;
}

async function endToEnd(driver: Driver, workers: ChildProcess[], queues: string[]): Promise<Pick<Result, "endToEndTps" | "cpu">> {
  const before = (await handled(workers)).done;
  const cpuBefore = cpuMark(driver, workers);
  const started = performance.now();
  const submitting = submitAll(driver, queues, TASKS);
  for (;;) {
    await new Promise((r) => setTimeout(r, 50));
    if ((await handled(workers)).done - before >= TASKS) break;
    if (performance.now() - started > 600_000) throw new Error(`${queues.join(", ")}: not all tasks handled within 10 minutes`);
  }
  await submitting;
  const wall = performance.now() - started;
  const cpuAfter = cpuMark(driver, workers);
  const cpu: Record<string, number> = {};
  for (const [part, ms] of cpuAfter) cpu[part] = Math.round(((ms - (cpuBefore.get(part) ?? 0)) / wall) * 100) / 100;
  return { endToEndTps: TASKS / (wall / 1000), cpu };
}

async function latency(driver: Driver, workers: ChildProcess[], queues: string[], rate: number): Promise<NonNullable<Result["latency"]>> {
  await handled(workers);
  const before = (await handled(workers)).done;
  const perTick = Math.max(1, Math.round((rate * 20) / 1000));
  const end = Date.now() + LATENCY_SECONDS * 1000;
  const pending: Promise<void>[] = [];
  let sent = 0;
  for (let next = Date.now(); next < end; next += 20) {
    await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
    const sentAt = Date.now();
    pending.push(driver.submit(queues[(sent / perTick) % queues.length]!, Array.from({ length: perTick }, () => ({ sentAt, probe: true }))));
    sent += perTick;
  }
  await Promise.all(pending);
  const delays: number[] = [];
  for (let done = 0; done < sent; ) {
    await new Promise((r) => setTimeout(r, 100));
    const r = await handled(workers);
    delays.push(...r.delays);
    done = r.done - before;
  }
  delays.sort((a, b) => a - b);
  return { p50: percentile(delays, 0.5), p99: percentile(delays, 0.99), max: delays[delays.length - 1] ?? NaN, samples: delays.length };
}

/** The queues (pools) of one phase: one, or POOLS with --pools. */
function queuesOf(name: string): string[] {
  return POOLS === 1 ? [name] : Array.from({ length: POOLS }, (_, k) => `${name}-${k}`);
}

async function main(): Promise<void> {
  if (spawnSync("redis-server", ["--version"]).error) {
    throw new Error("redis-server is not installed; BullMQ needs it (Debian: apt-get install redis-server)");
  }
  console.log(`machine  ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; node ${process.version}; load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  console.log(`plan     ${TASKS} tasks per system, batches of ${BATCH}, ${SUBMITTERS} submitting loops, ${WORKERS} worker processes x concurrency ${CONCURRENCY}${POOLS > 1 ? `, spread over ${POOLS} pools (queues)` : ""}`);
  const systems: System[] = ["mesh", "bullmq", "bullmq_aof"];
  const drivers = {} as Record<System, Driver>;
  const workers = {} as Record<System, ChildProcess[]>;
  const results = {} as Record<System, Result>;
  for (const system of systems) {
    const driver = system === "mesh" ? await meshDriver() : await redisDriver(system === "bullmq_aof");
    drivers[system] = driver;
    const submitTps = await submitAll(driver, queuesOf(`${system}-submit`), TASKS);
    workers[system] = await driver.startWorkers(queuesOf(`${system}-e2e`));
    const { endToEndTps, cpu } = await endToEnd(driver, workers[system], queuesOf(`${system}-e2e`));
    results[system] = { submitTps, endToEndTps, cpu };
    console.log(`${system.padEnd(10)} submit ${Math.round(submitTps)} tasks/s, end to end ${Math.round(endToEndTps)} tasks/s`);
    const parts = Object.entries(cpu).filter(([part]) => part !== "machine" && part !== "esbuild" && part !== "wrangler");
    console.log(`${"".padEnd(10)} cpu (cores) ${parts.map(([part, x]) => `${part} ${x.toFixed(2)}`).join(", ")}; machine ${cpu.machine!.toFixed(2)} of ${cpus().length}`);
  }
  const rate = 0.5 * Math.min(results.mesh.endToEndTps, results.bullmq.endToEndTps);
  console.log(`offered  ${Math.round(rate)} tasks/s to each (half of the lower end-to-end peak of mesh and bullmq)`);
  for (const system of systems) {
    results[system].latency = await latency(drivers[system], workers[system], queuesOf(`${system}-e2e`), rate);
    const l = results[system].latency!;
    console.log(`${system.padEnd(10)} submit-to-start p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms (${l.samples} tasks)`);
  }
  console.log("\nsystem      submit/s  end-to-end/s  p50 ms  p99 ms");
  for (const s of systems) {
    const r = results[s];
    console.log(`${s.padEnd(10)}  ${String(Math.round(r.submitTps)).padStart(8)}  ${String(Math.round(r.endToEndTps)).padStart(12)}  ${String(r.latency!.p50).padStart(6)}  ${String(r.latency!.p99).padStart(6)}`);
  }
  for (const s of systems) await stopWorkers(workers[s]);
  for (const s of systems) await drivers[s].stop();
  const ratio = results.mesh.endToEndTps / results.bullmq.endToEndTps;
  console.log(`\nmesh / bullmq end to end: ${ratio.toFixed(2)}x (goal 2x); mesh p99 / bullmq p99: ${(results.mesh.latency!.p99 / results.bullmq.latency!.p99).toFixed(2)} (goal <= 2)`);
  console.log(
    JSON.stringify({
      bench: "dispatch",
      tasks: TASKS,
      ...(POOLS > 1 ? { pools: POOLS } : {}),
      mesh_tps: Math.round(results.mesh.endToEndTps),
      bullmq_tps: Math.round(results.bullmq.endToEndTps),
      bullmq_aof_tps: Math.round(results.bullmq_aof.endToEndTps),
      ratio: Math.round(ratio * 100) / 100,
      mesh_p99_ms: results.mesh.latency!.p99,
      bullmq_p99_ms: results.bullmq.latency!.p99,
      mesh_submit_tps: Math.round(results.mesh.submitTps),
      bullmq_submit_tps: Math.round(results.bullmq.submitTps),
      mesh_p50_ms: results.mesh.latency!.p50,
      bullmq_p50_ms: results.bullmq.latency!.p50,
      offered_tps: Math.round(rate),
      // Shares of one core during the end-to-end runs: the mesh's one busy workerd against redis-server.
      mesh_workerd_cores: results.mesh.cpu["workerd-mesh"],
      bullmq_redis_cores: results.bullmq.cpu["redis-server"],
      mesh_machine_cores: results.mesh.cpu.machine,
      bullmq_machine_cores: results.bullmq.cpu.machine,
    }),
  );
}

async function cleanup(): Promise<void> {
  // Whatever happens while stopping, the results are printed and the process ends.
  setTimeout(() => process.exit(process.exitCode ?? 0), 15_000).unref();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
}

try {
  await main();
  await cleanup();
  process.exit(0);
} catch (err) {
  console.error(err);
  await cleanup();
  process.exit(1);
}
