// WebSocket push versus HTTP lease polling (issue 4), side by side in one run on one mesh under wrangler dev.
//
// For each transport, real agent processes (the daa CLI, SDK inside, a no-op handler) serve one pool:
//   throughput  N tasks submitted in batches of 100 (4 client loops); tasks/s from the first submit to the last
//               completion, read from the pool's counts;
//   latency     the same absolute offered load for both transports (half of the lower of the two peaks), sent in
//               small batches every 20 ms for a few seconds; submit-to-start = the handler's start minus the
//               client's send time (both Date.now() on this machine), written by the handler to a log file.
//
//   node bench/push.ts [--quick] [--tasks N] [--agents A] [--concurrency C]
//
// The last line printed is one JSON object with the results.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT, startDevServer, type DevServer } from "../scripts/dev-server.ts";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    tasks: { type: "string" },
    agents: { type: "string", default: "2" },
    concurrency: { type: "string", default: "64" },
  },
});
const QUICK = values.quick;
const TASKS = Number(values.tasks ?? (QUICK ? 2000 : 6000));
const AGENTS = Number(values.agents);
const CONCURRENCY = Number(values.concurrency);
const LATENCY_SECONDS = QUICK ? 4 : 8;
const TRANSPORTS = ["websocket", "http"] as const;
type Transport = (typeof TRANSPORTS)[number];

const HANDLERS = `
import { appendFileSync } from "node:fs";
export default {
  "bench.noop": async (payload, { taskId }) => {
    appendFileSync(process.env.BENCH_LOG, taskId + " " + payload.sentAt + " " + Date.now() + "\\n");
    return null;
  },
};
`;

let server: DevServer | null = null;
const agents: ChildProcess[] = [];
const work = mkdtempSync(join(tmpdir(), "daa-bench-push-"));

async function call(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${server!.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server!.adminKey}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

function startAgents(pool: string, transport: Transport, log: string): ChildProcess[] {
  return Array.from({ length: AGENTS }, (_, i) => {
    const child = spawn(
      process.execPath,
      [join(ROOT, "agent", "bin", "daa.mjs"), "agent", "--pool", pool, "--handlers", join(work, "handlers.mjs"), "--agent-id", `${pool}-${i}`, "--concurrency", String(CONCURRENCY), "--transport", transport],
      { cwd: ROOT, env: { ...process.env, DAA_URL: server!.url, DAA_TOKEN: server!.adminKey, BENCH_LOG: log }, stdio: ["ignore", "ignore", "pipe"] },
    );
    child.stderr?.on("data", () => undefined);
    agents.push(child);
    return child;
  });
}

async function waitFor(what: string, probe: () => Promise<boolean>, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const succeeded = async (pool: string): Promise<number> => (await call("GET", `/v1/pools/${pool}`)).queue.succeeded;

function percentile(sorted: number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

function latencies(log: string, ids: Set<string>): number[] {
  return readFileSync(log, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split(" "))
    .filter(([id]) => ids.has(id!))
    .map(([, sent, started]) => Number(started) - Number(sent))
    .sort((a, b) => a - b);
}

async function submitBatch(pool: string, n: number): Promise<string[]> {
  const sentAt = Date.now();
  const res = await call("POST", "/v1/tasks/batch", { tasks: Array.from({ length: n }, () => ({ type: "bench.noop", pool, payload: { sentAt } })) });
  return res.tasks.map((t: { id: string }) => t.id);
}

async function throughput(pool: string): Promise<number> {
  const batches = Array.from({ length: Math.ceil(TASKS / 100) }, (_, i) => Math.min(100, TASKS - i * 100));
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let b = batches.pop(); b !== undefined; b = batches.pop()) await submitBatch(pool, b);
    }),
  );
  await waitFor(`${TASKS} tasks done in ${pool}`, async () => (await succeeded(pool)) >= TASKS);
  return TASKS / ((performance.now() - started) / 1000);
}

async function latency(pool: string, rate: number, log: string): Promise<{ p50: number; p99: number; max: number; samples: number }> {
  const ids = new Set<string>();
  const perTick = Math.max(1, Math.round((rate * 20) / 1000));
  const before = await succeeded(pool);
  const end = Date.now() + LATENCY_SECONDS * 1000;
  const pending: Promise<void>[] = [];
  for (let next = Date.now(); next < end; next += 20) {
    await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
    pending.push(submitBatch(pool, perTick).then((got) => got.forEach((id) => ids.add(id))));
  }
  await Promise.all(pending);
  await waitFor("the latency phase to drain", async () => (await succeeded(pool)) >= before + ids.size);
  await new Promise((r) => setTimeout(r, 200));
  const l = latencies(log, ids);
  return { p50: percentile(l, 0.5), p99: percentile(l, 0.99), max: l[l.length - 1] ?? NaN, samples: l.length };
}

async function main(): Promise<void> {
  writeFileSync(join(work, "handlers.mjs"), HANDLERS);
  console.log(`machine  ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; node ${process.version}`);
  console.log(`plan     ${TASKS} tasks per transport, ${AGENTS} agent processes x concurrency ${CONCURRENCY}, latency phase ${LATENCY_SECONDS} s`);
  server = await startDevServer();
  const peak: Record<Transport, number> = { websocket: 0, http: 0 };
  const logs: Record<Transport, string> = { websocket: join(work, "ws.log"), http: join(work, "http.log") };
  for (const transport of TRANSPORTS) {
    writeFileSync(logs[transport], "");
    const pool = `bench-${transport}`;
    await call("POST", "/v1/tasks", { type: "bench.noop", pool, payload: { sentAt: Date.now() } });
    startAgents(pool, transport, logs[transport]);
    await waitFor(`agents of ${pool}`, async () => (await succeeded(pool)) >= 1);
    peak[transport] = await throughput(pool);
    console.log(`${transport.padEnd(9)} throughput ${Math.round(peak[transport])} tasks/s`);
  }
  const rate = 0.5 * Math.min(peak.websocket, peak.http);
  console.log(`offered  ${Math.round(rate)} tasks/s to both (half of the lower peak)`);
  const lat = {} as Record<Transport, Awaited<ReturnType<typeof latency>>>;
  for (const transport of TRANSPORTS) {
    lat[transport] = await latency(`bench-${transport}`, rate, logs[transport]);
    console.log(`${transport.padEnd(9)} submit-to-start p50 ${lat[transport].p50} ms p99 ${lat[transport].p99} ms (${lat[transport].samples} tasks)`);
  }
  console.log("\ntransport  tasks/s  p50 ms  p99 ms  max ms");
  for (const t of TRANSPORTS) {
    console.log(`${t.padEnd(9)}  ${String(Math.round(peak[t])).padStart(7)}  ${String(lat[t].p50).padStart(6)}  ${String(lat[t].p99).padStart(6)}  ${String(lat[t].max).padStart(6)}`);
  }
  console.log(
    JSON.stringify({
      bench: "push",
      date: new Date().toISOString(),
      tasks: TASKS,
      agents: AGENTS,
      concurrency: CONCURRENCY,
      offered_tps: Math.round(rate),
      websocket_tps: Math.round(peak.websocket),
      http_tps: Math.round(peak.http),
      websocket_p50_ms: lat.websocket.p50,
      websocket_p99_ms: lat.websocket.p99,
      http_p50_ms: lat.http.p50,
      http_p99_ms: lat.http.p99,
    }),
  );
}

async function cleanup(): Promise<void> {
  for (const a of agents) if (a.exitCode === null) a.kill("SIGKILL");
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
}

try {
  await main();
  await cleanup();
} catch (err) {
  console.error(err);
  await cleanup();
  process.exit(1);
}
