// Scale curves (issue 6): what one operation costs as a pool's queue grows (1k, 100k, 1M queued tasks) and as
// more agents hold WebSockets to it (10, 100, 1000), with the memory of the mesh's workerd process at each point.
//
//   node bench/scale.ts [--quick]
//
// Per point, serial requests (one in flight, so each measures the operation, not queueing): submit one task,
// lease one and complete it, read one task, read the pool's stats; with agents connected, the time from submitting
// a task to its arrival on one of the sockets. The last line printed is one JSON object with the results.
import { readdirSync, readFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { startDevServer, type DevServer } from "../scripts/dev-server.ts";

const { values } = parseArgs({ options: { quick: { type: "boolean", default: false } } });
const QUICK = values.quick;
const DEPTHS = process.env.SCALE_DEPTHS ? process.env.SCALE_DEPTHS.split(",").map(Number) : QUICK ? [1_000, 100_000] : [1_000, 100_000, 1_000_000];
const AGENT_COUNTS = QUICK ? [10, 100] : [10, 100, 1_000];
const SAMPLES = QUICK ? 100 : 200;

let server: DevServer;

async function call(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : null;
}

/** Resident memory (MiB) of the workerd process that runs the Worker and the Durable Objects. */
function meshRssMiB(): number {
  const port = new URL(server.url).port;
  const root = server.process.pid!;
  const parent = new Map<number, number>();
  const comm = new Map<number, string>();
  for (const d of readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      parent.set(Number(d), Number(stat.slice(close + 2).split(" ")[1]));
      comm.set(Number(d), stat.slice(stat.indexOf("(") + 1, close));
    } catch {
      // gone
    }
  }
  const inTree = (pid: number): boolean => {
    for (let p = pid; p > 1; p = parent.get(p) ?? 0) if (p === root) return true;
    return false;
  };
  let rss = 0;
  for (const [pid, name] of comm) {
    if (name !== "workerd" || !inTree(pid)) continue;
    // The other workerd is wrangler's proxy on the public port.
    if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(`entry=127.0.0.1:${port}`)) continue;
    const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
    rss = Math.max(rss, Number(line?.split(/\s+/)[1] ?? 0) / 1024);
  }
  return Math.round(rss);
}

async function timeMs(fn: () => Promise<unknown>, n: number): Promise<{ p50: number; p99: number }> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => Math.round(samples[Math.min(samples.length - 1, Math.ceil(q * samples.length) - 1)]! * 100) / 100;
  return { p50: at(0.5), p99: at(0.99) };
}

async function fill(pool: string, target: number, have: number): Promise<void> {
  const todo: number[] = [];
  for (let n = have; n < target; n += 1000) todo.push(Math.min(1000, target - n));
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let n = todo.pop(); n !== undefined; n = todo.pop()) {
        await call("POST", "/v1/tasks/batch", { tasks: Array.from({ length: n }, () => ({ type: "scale.fill", pool, priority: 0 })) });
      }
    }),
  );
}

async function queueDepth(): Promise<object[]> {
  const pool = "scale-queue";
  // The default quota of a tenant (1M unfinished tasks) would refuse the probes at the deepest point.
  await call("PUT", `/v1/pools/${pool}/config`, { heartbeatIntervalMs: 3_600_000, maxUnfinishedPerTenant: 2_000_000 });
  await call("POST", `/v1/pools/${pool}/agents`, { agentId: "probe", maxConcurrency: 1000 });
  const rows: object[] = [];
  let have = 0;
  for (const depth of DEPTHS) {
    const t0 = performance.now();
    await fill(pool, depth, have);
    have = depth;
    const fillSeconds = (performance.now() - t0) / 1000;
    let lastId = "";
    const submit = await timeMs(async () => {
      lastId = (await call("POST", "/v1/tasks", { type: "scale.probe", pool, priority: 9 })).id;
    }, SAMPLES);
    const leaseComplete = await timeMs(async () => {
      const [t] = (await call("POST", `/v1/pools/${pool}/agents/probe/lease`, { max: 1 })).tasks;
      await call("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: t.leaseToken });
    }, SAMPLES);
    const get = await timeMs(() => call("GET", `/v1/tasks/${lastId}`), SAMPLES);
    const stats = await timeMs(() => call("GET", `/v1/pools/${pool}`), SAMPLES);
    const queued = (await call("GET", `/v1/pools/${pool}`)).queue.queued;
    const row = { queued, submit_ms: submit, lease_complete_ms: leaseComplete, get_ms: get, stats_ms: stats, rss_mib: meshRssMiB(), fill_s: Math.round(fillSeconds) };
    console.log(`queued ${String(queued).padStart(8)}: submit p50 ${submit.p50} ms, lease+complete p50 ${leaseComplete.p50} ms, get p50 ${get.p50} ms, stats p50 ${stats.p50} ms, mesh RSS ${row.rss_mib} MiB (filled in ${row.fill_s} s)`);
    rows.push(row);
  }
  return rows;
}

async function connectedAgents(): Promise<object[]> {
  const pool = "scale-agents";
  await call("PUT", `/v1/pools/${pool}/config`, { heartbeatIntervalMs: 3_600_000 });
  const sockets: WebSocket[] = [];
  const arrived = new Map<string, () => void>();
  // A pushed task can arrive before the answer to its submit: remember what came early.
  const early = new Set<string>();
  const rows: object[] = [];
  for (const count of AGENT_COUNTS) {
    while (sockets.length < count) {
      const agentId = `a-${sockets.length}`;
      await call("POST", `/v1/pools/${pool}/agents`, { agentId, maxConcurrency: 1000 });
      const url = new URL(`/v1/pools/${pool}/agents/${agentId}/connect`, server.url);
      url.protocol = "ws:";
      url.searchParams.set("token", server.adminKey);
      const ws = new WebSocket(url);
      await new Promise<void>((resolve, reject) => {
        ws.addEventListener("message", function hello() {
          ws.removeEventListener("message", hello);
          resolve();
        });
        ws.addEventListener("error", () => reject(new Error(`socket of ${agentId} failed`)));
      });
      ws.addEventListener("message", (e) => {
        const msg = JSON.parse(String(e.data));
        for (const m of msg.type === "batch" ? msg.messages : [msg]) {
          if (m.type !== "task") continue;
          const waiting = arrived.get(m.task.id);
          if (waiting) waiting();
          else early.add(m.task.id);
          // Complete at once and give the credit back, so the agent keeps taking work.
          ws.send(JSON.stringify({ type: "batch", messages: [{ type: "complete", id: m.task.id, leaseToken: m.task.leaseToken }, { type: "ready", credits: 1 }] }));
        }
      });
      ws.send(JSON.stringify({ type: "ready", credits: 1 }));
      sockets.push(ws);
    }
    await new Promise((r) => setTimeout(r, 500));
    const push = await timeMs(async () => {
      // From sending the submit to the task's arrival on a socket, whichever of the answer and the push comes last.
      const submitted = new Promise<void>((resolve) => {
        void call("POST", "/v1/tasks", { type: "scale.push", pool }).then((t) => {
          if (early.delete(t.id)) resolve();
          else arrived.set(t.id, resolve);
        });
      });
      await submitted;
    }, SAMPLES);
    const stats = await timeMs(() => call("GET", `/v1/pools/${pool}`), SAMPLES);
    const row = { agents: count, submit_to_push_ms: push, stats_ms: stats, rss_mib: meshRssMiB() };
    console.log(`agents ${String(count).padStart(5)}: submit-to-push p50 ${push.p50} ms p99 ${push.p99} ms, stats p50 ${stats.p50} ms, mesh RSS ${row.rss_mib} MiB`);
    rows.push(row);
  }
  for (const ws of sockets) ws.close();
  return rows;
}

console.log(`machine  ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; node ${process.version}; load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
server = await startDevServer();
try {
  const depth = await queueDepth();
  const agents = await connectedAgents();
  console.log(JSON.stringify({ bench: "scale", samples: SAMPLES, queue_depth: depth, connected_agents: agents }));
} catch (err) {
  console.error(err);
  console.error(`last output of wrangler dev:\n${server.output().slice(-4000)}`);
  process.exitCode = 1;
} finally {
  await server.stop();
}
