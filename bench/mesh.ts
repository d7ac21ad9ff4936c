// The mesh over several shards (issue 13), against one `wrangler dev` (every shard's Durable Object runs in its one
// workerd thread here; on Cloudflare each runs on its own machine).
//
//   dispatch   N no-op tasks through one pool of 1, 2 and 4 shards: agent processes from the SDK on WebSockets (one
//              socket per shard), 4 client loops submitting batches; tasks/s from the first submit to the last
//              success. Goal here: no loss from sharding (4 shards >= 0.9x of 1 shard).
//   routing    three shards made 0 / 20 / 50 ms away with the test-only delay hook (DAA_TEST_HOOKS=1): tasks
//              submitted one at a time and taken by an agent at home on the near shard; the share sent to the best
//              shard (goal >= 0.8) and the p50 of submit-to-start (the lease answer that carried the task, minus the
//              submit's send time) against random placement of the same tasks (the x-daa-test-route hook).
//   hop        what pulling a task from another shard would add per task: the p50 of an HTTP lease that finds its
//              task on the agent's home shard (one shard call) against one that finds it on the other shard (two);
//              pull forwarding between shards costs at least that hop per task, which is why agents hold a socket
//              to every shard instead (docs/mesh.md, "Agents across shards").
//   gossip     convergence after a partition for star, ring and mesh at 4, 16 and 64 shards: the same exchange code
//              as the coordinators, over the Wasm merge, in this Node process (bench/mesh-gossip.ts).
//
//   node bench/mesh.ts [--quick] [--tasks N]
//
// The last line printed is one JSON object:
//   {"bench":"mesh","tps_by_shards":{"1","2","4"},"routing_best_share","routing_p50_ms","random_p50_ms",
//    "gossip":[{"topology","shards","rounds","bytes","merge_ms"}], ...}
import { fork, type ChildProcess } from "node:child_process";
import { registerHooks } from "node:module";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { ROOT, startDevServer, type DevServer } from "../scripts/dev-server.ts";
import { processesCpu, serverCpu } from "./lib/cpu.ts";
import { commitOf, cpuModel, osName } from "./lib/machine.ts";

// lib/crdt imports its siblings as "./x.js" (which the Worker's bundler and tsc map to x.ts); Node runs the .ts.
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
const { gossipBench } = await import("./mesh-gossip.ts");

const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, tasks: { type: "string" } }, strict: true });
const quick = values.quick;
const TASKS = values.tasks ? Number(values.tasks) : quick ? 3_000 : 10_000;
const ROUTED = quick ? 120 : 400;
const HOPS = quick ? 60 : 200;
const AGENTS = 2;
const CONCURRENCY = 100;
const BATCH = 100;
const DELAYS = "1=20,2=50";

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

const p50 = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : Math.round(s[Math.floor((s.length - 1) / 2)]! * 10) / 10;
};

async function shardedPool(pool: string, shards: number): Promise<void> {
  await ok("PUT", `/v1/pools/${pool}/config`, { heartbeatIntervalMs: 5_000 });
  for (let i = 1; i < shards; i++) await ok("POST", `/v1/pools/${pool}/shards`, {});
}

// ---- dispatch through 1, 2 and 4 shards ------------------------------------------------------------------------

async function startAgents(pool: string): Promise<ChildProcess[]> {
  const agents = Array.from({ length: AGENTS }, (_, i) =>
    fork(join(ROOT, "bench", "lib", "mesh-agent.ts"), [server.url, server.adminKey, pool, `${pool}-agent-${i}`, String(CONCURRENCY)], { stdio: ["ignore", "ignore", "inherit", "ipc"] }),
  );
  await Promise.all(agents.map((a) => new Promise<void>((resolve, reject) => {
    a.once("message", () => resolve());
    a.once("exit", (code) => reject(new Error(`agent exited (${code})`)));
  })));
  return agents;
}

async function stopAgents(agents: ChildProcess[]): Promise<void> {
  await Promise.all(agents.map((a) => new Promise<void>((resolve) => {
    a.once("exit", () => resolve());
    a.send({ cmd: "stop" });
    setTimeout(() => a.kill("SIGKILL"), 20_000).unref();
  })));
}

interface DispatchRun {
  shards: number;
  tps: number;
  perShard: Record<string, number>;
  /** CPU per task, microseconds: the mesh's workerd (every shard's object shares its one thread) and the agents. */
  meshUsPerTask: number;
  agentsUsPerTask: number;
  /** The workerd's CPU as a share of one core over the run. */
  meshCore: number;
}

const meshCpuMs = () => serverCpu(server.process.pid, new URL(server.url).port).cpu.get("workerd-mesh") ?? 0;

async function dispatch(shards: number, run: number): Promise<DispatchRun> {
  const pool = `mesh-d${shards}-${run}`;
  await shardedPool(pool, shards);
  const agents = await startAgents(pool);
  // Every socket said hello: each agent holds one per shard (the pool's counts show them running).
  await new Promise((r) => setTimeout(r, 500));
  const batches = Math.ceil(TASKS / BATCH);
  let next = 0;
  const t0 = performance.now();
  const cpu0 = { mesh: meshCpuMs(), agents: processesCpu(agents.map((a) => a.pid)) };
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let b = next++; b < batches; b = next++) {
        const n = Math.min(BATCH, TASKS - b * BATCH);
        await ok("POST", "/v1/tasks/batch", { tasks: Array.from({ length: n }, () => ({ type: "bench.noop", pool, payload: {} })) });
      }
    }),
  );
  for (;;) {
    const q = (await ok("GET", `/v1/pools/${pool}`)).queue;
    if (q.succeeded >= TASKS) break;
    if (performance.now() - t0 > 300_000) throw new Error(`pool ${pool}: ${JSON.stringify(q)} after 300 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const seconds = (performance.now() - t0) / 1000;
  const mesh = meshCpuMs() - cpu0.mesh;
  const agentsCpu = processesCpu(agents.map((a) => a.pid)) - cpu0.agents;
  await stopAgents(agents);
  const perShard = Object.fromEntries((await ok("GET", `/v1/pools/${pool}/shards`)).shards.map((s: any) => [s.id, s.queue.succeeded]));
  return {
    shards,
    tps: Math.round(TASKS / seconds),
    perShard,
    meshUsPerTask: Math.round((mesh * 1000) / TASKS),
    agentsUsPerTask: Math.round((agentsCpu * 1000) / TASKS),
    meshCore: Math.round((mesh / (seconds * 1000)) * 100) / 100,
  };
}

// ---- routing with injected delays, against random placement ------------------------------------------------------

async function routing(random: boolean): Promise<{ share: number; p50: number | null; picks: Record<string, number> }> {
  const pool = `mesh-route-${random ? "random" : "latency"}`;
  await ok("PUT", `/v1/pools/${pool}/config`, {});
  // The agent registers while the pool has one shard: its home is shard 0, the near one.
  await ok("POST", `/v1/pools/${pool}/agents`, { agentId: "near", maxConcurrency: 1_000 });
  await shardedPool(pool, 3);
  const headers = { "x-daa-test-shard-delay": DELAYS, ...(random ? { "x-daa-test-route": "random" } : {}) };
  const startMs: number[] = [];
  const order: string[] = [];
  for (let i = 0; i < ROUTED; i++) {
    const sent = performance.now();
    const res = await call("POST", "/v1/tasks", { type: "bench.noop", pool, payload: { i } }, headers);
    if (res.status !== 201) throw new Error(`submit answered ${res.status}`);
    order.push(res.headers.get("x-daa-shard")!);
    for (let tries = 0; ; tries++) {
      const leased = await ok("POST", `/v1/pools/${pool}/agents/near/lease`, { max: 10, waitMs: 0 }, headers);
      if (leased.tasks.some((t: any) => t.id === res.body.id)) startMs.push(performance.now() - sent);
      if (leased.tasks.length > 0) await ok("POST", "/v1/tasks/settle", { items: leased.tasks.map((t: any) => ({ action: "complete", id: t.id, leaseToken: t.leaseToken, result: null })) }, headers);
      if (leased.tasks.some((t: any) => t.id === res.body.id) || tries > 20) break;
    }
  }
  // The first tasks teach the router the round trips: share and latency count from the tenth task on.
  const counted = order.slice(10);
  const picks: Record<string, number> = {};
  for (const s of counted) picks[s] = (picks[s] ?? 0) + 1;
  return { share: Math.round(((picks["0"] ?? 0) / counted.length) * 1000) / 1000, p50: p50(startMs.slice(10)), picks };
}

// ---- one shard hop ------------------------------------------------------------------------------------------------

async function hop(): Promise<{ home_ms: number | null; other_ms: number | null; hop_ms: number | null }> {
  const pool = "mesh-hop";
  await ok("PUT", `/v1/pools/${pool}/config`, {});
  await ok("POST", `/v1/pools/${pool}/agents`, { agentId: "h", maxConcurrency: 1_000 });
  await shardedPool(pool, 2);
  const home: number[] = [];
  const other: number[] = [];
  while (home.length < HOPS || other.length < HOPS) {
    const res = await call("POST", "/v1/tasks", { type: "bench.noop", pool }, { "x-daa-test-route": "random" });
    const t0 = performance.now();
    const leased = await ok("POST", `/v1/pools/${pool}/agents/h/lease`, { max: 1, waitMs: 0 });
    const ms = performance.now() - t0;
    if (leased.tasks.length !== 1) throw new Error("the lease found nothing");
    (res.headers.get("x-daa-shard") === "0" ? home : other).push(ms);
    await ok("POST", "/v1/tasks/settle", { items: [{ action: "complete", id: leased.tasks[0].id, leaseToken: leased.tasks[0].leaseToken, result: null }] });
  }
  const h = p50(home);
  const o = p50(other);
  return { home_ms: h, other_ms: o, hop_ms: h === null || o === null ? null : Math.round((o - h) * 10) / 10 };
}

// ---- the run ---------------------------------------------------------------------------------------------------

console.log(`machine  ${cpuModel()}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; ${osName()}; node ${process.version}; load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
console.log(`commit   ${commitOf(["src", "durable-objects", "contract", "lib", "agent"])}`);
console.log(`command  node bench/mesh.ts${quick ? " --quick" : ""}${values.tasks ? ` --tasks ${values.tasks}` : ""}`);
server = await startDevServer({ extraArgs: ["--var", "DAA_TEST_HOOKS:1"] });
let result: Record<string, unknown>;
try {
  const runs: Awaited<ReturnType<typeof dispatch>>[] = [];
  // Interleaved, so a slow spell of the machine does not fall on one shard count alone.
  const order = quick ? [1, 2, 4] : [1, 2, 4, 4, 2, 1];
  for (const [i, shards] of order.entries()) {
    const r = await dispatch(shards, i);
    runs.push(r);
    console.log(`dispatch ${shards} shard(s): ${r.tps} tasks/s (${TASKS} tasks; succeeded per shard ${JSON.stringify(r.perShard)}); CPU per task: mesh ${r.meshUsPerTask} µs (${r.meshCore} of a core), agents ${r.agentsUsPerTask} µs`);
  }
  const tps = (n: number) => Math.round(runs.filter((r) => r.shards === n).reduce((s, r) => s + r.tps, 0) / runs.filter((r) => r.shards === n).length);
  const latency = await routing(false);
  const random = await routing(true);
  console.log(`routing  0 / 20 / 50 ms: ${latency.share} of the tasks to the best shard ${JSON.stringify(latency.picks)}; p50 submit-to-start ${latency.p50} ms, random placement ${random.p50} ms ${JSON.stringify(random.picks)}`);
  const hops = await hop();
  console.log(`hop      lease finding its task at home p50 ${hops.home_ms} ms, on the other shard ${hops.other_ms} ms: one shard hop ${hops.hop_ms} ms`);
  const gossipStarted = performance.now();
  const gossip = await gossipBench({ quick });
  for (const g of gossip) console.log(`gossip   ${g.topology.padEnd(4)} ${String(g.shards).padStart(2)} shards: ${g.rounds} rounds, ${g.bytes} bytes, ${g.merge_ms} ms of Wasm merge per round`);
  result = {
    bench: "mesh",
    tps_by_shards: { "1": tps(1), "2": tps(2), "4": tps(4) },
    ratio_4_to_1: Math.round((tps(4) / tps(1)) * 100) / 100,
    routing_best_share: latency.share,
    routing_p50_ms: latency.p50,
    random_p50_ms: random.p50,
    hop_ms: hops.hop_ms,
    gossip,
    gossip_s: Math.round((performance.now() - gossipStarted) / 100) / 10,
    tasks: TASKS,
    quick,
    commit: commitOf(["src", "durable-objects", "contract", "lib", "agent"]),
    duration_s: Math.round((performance.now() - started) / 100) / 10,
  };
} finally {
  await server.stop();
}
console.log(JSON.stringify(result));
