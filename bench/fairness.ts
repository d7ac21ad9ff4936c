// npm run bench:fairness: fair scheduling (docs/scheduling.md, issue 15) against a local mesh started here
// (wrangler dev), with real HTTP agents (register, long-poll lease, complete in batches with /v1/tasks/settle).
//
//   flood    tenant A submits FLOOD tasks (batches of 1,000), then tenant B submits 100 in one batch, into a
//            fresh pool with `scheduling: "fair"` and into another fresh pool with `scheduling: "fifo"`; the
//            agents run all along. B's start delay is what the mesh recorded: the task's createdAt to its lease
//            (the leased task's updatedAt, which the lease sets to the lease time). Goal: B's p99 10x lower
//            with fair than with fifo.
//   shares   tenants W2 (weight 2) and W1 (weight 1) each queue SHARE_BACKLOG tasks in a fresh fair pool before
//            the agents start; the agents then lease SHARE_SERVED while each tenant keeps its backlog topped up
//            (so both have backlog over every lease counted). share_error = max over the tenants of |served share -
//            weight share|, as a fraction. Goal: within 0.05.
//   workflow the workflow engine's overhead per step (bench/lib/workflow-chain.ts, as bench:workflows).
//
//   node bench/fairness.ts [--quick] [--flood N] [--no-record]
//   --no-record  leave bench/RESULTS.md alone (trial runs)
//
// Appends a row to the fairness section of bench/RESULTS.md (creating the section the first time). The last line
// printed is one JSON object with the results.
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT, startDevServer } from "../scripts/dev-server.ts";
import { commitOf, cpuModel, osName, packageVersion } from "./lib/machine.ts";
import { workflowOverheadPerStep } from "./lib/workflow-chain.ts";

const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, flood: { type: "string" }, "no-record": { type: "boolean", default: false } } });
const QUICK = values.quick;
const FLOOD = Number(values.flood ?? 10_000);
if (!Number.isInteger(FLOOD) || FLOOD < 100) throw new Error("--flood must be an integer of at least 100");
const PROBES = 100;
const SHARE_BACKLOG = 2000;
const SHARE_SERVED = QUICK ? 3000 : 9000;
const WORKFLOW_RUNS = QUICK ? 5 : 10;
/** Fair and fifo pools run alternately this many times (each a fresh pair of pools); B's delays are pooled. */
const FLOOD_REPEATS = QUICK ? 1 : 3;
const AGENTS = 2;
const LEASE_MAX = 100;
const BATCH = 1000;
const CODE_PATHS = ["src", "durable-objects", "contract", "lib", "bench/fairness.ts"];

type Api = (method: string, path: string, body?: unknown) => Promise<any>;

function client(url: string, key: string): Api {
  return async (method, path, body) => {
    const res = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`);
    return JSON.parse(text);
  };
}

function percentile(sorted: number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

interface Lease {
  tenant: string;
  /** ms from the task's createdAt to its lease, both the mesh's clock */
  startDelay: number;
  /** the lease time (the mesh's clock) and the order inside one lease answer, to order leases across agents */
  leasedAt: number;
  index: number;
}

/**
 * AGENTS real HTTP agents on one pool, each registered with the bootstrap key (so serving every tenant): lease up
 * to LEASE_MAX (long poll), complete them all in one /v1/tasks/settle request, repeat until stopped.
 */
function runAgents(api: Api, pool: string, onLease: (leases: Lease[]) => void): { stop: () => Promise<void> } {
  let stopped = false;
  const loops = Array.from({ length: AGENTS }, async (_, i) => {
    const agentId = `${pool}-agent-${i}`;
    await api("POST", `/v1/pools/${pool}/agents`, { agentId, maxConcurrency: LEASE_MAX });
    while (!stopped) {
      const { tasks } = (await api("POST", `/v1/pools/${pool}/agents/${agentId}/lease`, { max: LEASE_MAX, waitMs: 500 })) as {
        tasks: { id: string; tenant: string; createdAt: string; updatedAt: string; leaseToken: string }[];
      };
      if (tasks.length === 0) continue;
      onLease(tasks.map((t, index) => ({ tenant: t.tenant, startDelay: Date.parse(t.updatedAt) - Date.parse(t.createdAt), leasedAt: Date.parse(t.updatedAt), index })));
      await api("POST", "/v1/tasks/settle", { items: tasks.map((t) => ({ action: "complete", id: t.id, leaseToken: t.leaseToken, result: null })) });
    }
  });
  return {
    stop: async () => {
      stopped = true;
      const outcomes = await Promise.allSettled(loops);
      for (const o of outcomes) if (o.status === "rejected") throw o.reason;
    },
  };
}

async function submit(api: Api, pool: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += BATCH) {
    const size = Math.min(BATCH, n - i);
    await api("POST", "/v1/tasks/batch", { tasks: Array.from({ length: size }, (_, j) => ({ type: "fairbench.noop", pool, payload: { i: i + j } })) });
  }
}

async function tenantKey(admin: Api, tenant: string): Promise<string> {
  const { key } = (await admin("POST", `/v1/tenants/${tenant}/keys`, { name: `bench-fairness-${tenant}`, roles: ["client"] })) as { key: string };
  return key;
}

async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface FloodResult {
  /** B's start delays, sorted */
  delays: number[];
  p50: number;
  p99: number;
  max: number;
  /** tasks leased in the pool until B's last one started (A's included) */
  leasedBefore: number;
  /** A's tasks still queued when B submitted (the agents drain while A floods) */
  backlog: number;
  seconds: number;
}

/** A floods, then B submits PROBES, in a fresh pool with this scheduling; the agents run from before the flood. */
async function flood(admin: Api, a: Api, b: Api, scheduling: "fair" | "fifo", tag: string): Promise<FloodResult> {
  const pool = `fairbench-${scheduling}-${tag}`;
  await admin("PUT", `/v1/pools/${pool}/config`, { scheduling, heartbeatIntervalMs: 30_000 });
  const bDelays: number[] = [];
  let leased = 0;
  let leasedBefore = 0;
  let backlog = 0;
  const agents = runAgents(admin, pool, (leases) => {
    if (process.env.FAIRBENCH_DEBUG) console.error(scheduling, leases[0]?.leasedAt, leases.map((l) => (l.tenant === "bench-b" ? "B" : "a")).join(""), leases.filter((l) => l.tenant === "bench-b").map((l) => l.startDelay).join(","));
    for (const l of leases) {
      leased++;
      if (l.tenant === "bench-b") {
        bDelays.push(l.startDelay);
        if (bDelays.length === PROBES) leasedBefore = leased;
      }
    }
  });
  const started = performance.now();
  try {
    await submit(a, pool, FLOOD);
    backlog = ((await admin("GET", `/v1/pools/${pool}`)) as { queue: { queued: number } }).queue.queued;
    await submit(b, pool, PROBES);
    await until(`${scheduling}: B's ${PROBES} tasks leased`, () => bDelays.length >= PROBES, 120_000);
  } finally {
    await agents.stop();
  }
  bDelays.sort((x, y) => x - y);
  return { delays: bDelays, p50: percentile(bDelays, 0.5), p99: percentile(bDelays, 0.99), max: bDelays[bDelays.length - 1]!, leasedBefore, backlog, seconds: (performance.now() - started) / 1000 };
}

interface ShareResult {
  shareError: number;
  served: Record<string, number>;
  counted: number;
  /** The least a tenant had queued (as this client saw it: answered submits minus leases seen) over the count. */
  minBacklog: number;
}

const TENANT_WEIGHTS: Record<string, number> = { "bench-w2": 2, "bench-w1": 1 };

/**
 * Two tenants of weights 2 and 1 each queue SHARE_BACKLOG tasks, then the agents start and lease SHARE_SERVED
 * while each tenant keeps its backlog topped up (a batch of 1,000 whenever it has fewer than SHARE_BACKLOG
 * queued), so both have backlog at every lease counted.
 */
async function shares(admin: Api, clients: Record<string, Api>, tag: string): Promise<ShareResult> {
  const pool = `fairbench-share-${tag}`;
  const tenants = Object.keys(TENANT_WEIGHTS);
  await admin("PUT", `/v1/pools/${pool}/config`, { scheduling: "fair", heartbeatIntervalMs: 30_000 });
  for (const t of tenants) await admin("PUT", `/v1/pools/${pool}/tenants/${t}`, { weight: TENANT_WEIGHTS[t] });
  const submitted: Record<string, number> = Object.fromEntries(tenants.map((t) => [t, 0]));
  const seen: Record<string, number> = Object.fromEntries(tenants.map((t) => [t, 0]));
  // Interleaved batches, so neither backlog is simply older than the other.
  for (let i = 0; i < SHARE_BACKLOG; i += BATCH) {
    for (const t of tenants) {
      const n = Math.min(BATCH, SHARE_BACKLOG - i);
      await submit(clients[t]!, pool, n);
      submitted[t]! += n;
    }
  }
  const leases: Lease[] = [];
  let minBacklog = Infinity;
  const agents = runAgents(admin, pool, (ls) => {
    leases.push(...ls);
    for (const l of ls) seen[l.tenant] = (seen[l.tenant] ?? 0) + 1;
    for (const t of tenants) minBacklog = Math.min(minBacklog, submitted[t]! - seen[t]!);
  });
  let done = false;
  const producers = tenants.map(async (t) => {
    while (!done) {
      if (submitted[t]! - seen[t]! < SHARE_BACKLOG) {
        await submit(clients[t]!, pool, BATCH);
        submitted[t]! += BATCH;
      } else await new Promise((r) => setTimeout(r, 10));
    }
  });
  try {
    await until(`shares: ${SHARE_SERVED} leases`, () => leases.length >= SHARE_SERVED, 120_000);
  } finally {
    done = true;
    await agents.stop();
    await Promise.all(producers);
  }
  // The first SHARE_SERVED leases in the mesh's order (lease time, then the order inside one answer).
  leases.sort((x, y) => x.leasedAt - y.leasedAt || x.index - y.index);
  const counted = leases.slice(0, SHARE_SERVED);
  const served: Record<string, number> = Object.fromEntries(tenants.map((t) => [t, counted.filter((l) => l.tenant === t).length]));
  const total = tenants.reduce((a, t) => a + TENANT_WEIGHTS[t]!, 0);
  const shareError = Math.max(...tenants.map((t) => Math.abs(served[t]! / counted.length - TENANT_WEIGHTS[t]! / total)));
  return { shareError, served, counted: counted.length, minBacklog };
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
const fmtLoad = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");

/** Adds a row for this run to the fairness section of bench/RESULTS.md, creating the section (newest first). */
function record(row: string): void {
  const file = join(ROOT, "bench", "RESULTS.md");
  let text = readFileSync(file, "utf8");
  const heading = "## Fair scheduling: a flood against a newcomer, and weighted shares (issue 15)";
  const header = [
    "| date (UTC) | code | command | machine | load before / after | flood | B start p50 / p99 fair | B start p50 / p99 fifo | p99 fifo / fair | share error (2:1) | workflow ms/step | run |",
    "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
  ].join("\n");
  if (!text.includes(heading)) {
    const intro = [
      heading,
      "",
      "`npm run bench:fairness` appends a row per run (`-- --quick`: the same flood, one fair/fifo pair instead of",
      "three, 3,000 share leases instead of 9,000, 5 workflow runs instead of 10). Tenant A floods (batches of 1,000),",
      `then tenant B submits ${PROBES} tasks, into a fresh \`scheduling: "fair"\` pool and a fresh \`"fifo"\` one, while ${AGENTS} HTTP`,
      `agents (bootstrap key, long-poll lease of up to ${LEASE_MAX}, one /v1/tasks/settle per lease) drain it from before the`,
      "flood; B's start delay is the mesh's createdAt to its lease time. Goal: B's p99 10x lower with fair. Shares:",
      "tenants of weights 2 and 1 queue a backlog each and keep it topped up while the agents lease; the error is the",
      "largest |served share - weight share| over the first leases in the mesh's order. Goal: 0.05. Workflow:",
      "bench/lib/workflow-chain.ts (5-step chain over 2 pools, as `bench:workflows`).",
      "",
      header,
      "",
    ].join("\n");
    const at = text.indexOf("\n## ");
    text = at < 0 ? `${text.trimEnd()}\n\n${intro}` : `${text.slice(0, at + 1)}${intro}\n${text.slice(at + 1)}`;
  }
  // The row goes after the last row of the section's table.
  const start = text.indexOf(heading);
  const tableAt = text.indexOf(header, start) + header.length;
  let end = tableAt;
  while (text.startsWith("\n|", end)) end = text.indexOf("\n", end + 1) < 0 ? text.length : text.indexOf("\n", end + 1);
  text = `${text.slice(0, end)}\n${row}${text.slice(end)}`;
  writeFileSync(file, text);
}

async function main(): Promise<void> {
  const loadBefore = loadavg();
  const machine = `${cpus().length}-core ${cpuModel()}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ${osName()}, Node ${process.version}, wrangler ${packageVersion("wrangler")}`;
  const commit = commitOf(CODE_PATHS);
  console.log(`machine  ${machine}; load ${fmtLoad(loadBefore)}`);
  console.log(`commit   ${commit}`);
  console.log(`plan     flood ${FLOOD} + ${PROBES} probes per scheduling, ${FLOOD_REPEATS}x, shares ${SHARE_SERVED} leases over backlogs of ${SHARE_BACKLOG}+ each, ${WORKFLOW_RUNS} workflow runs, ${AGENTS} HTTP agents`);
  const started = performance.now();
  const date = new Date().toISOString().slice(0, 16).replace("T", " ");
  const server = await startDevServer();
  let out: Record<string, unknown>;
  try {
    const admin = client(server.url, server.adminKey);
    const tag = Date.now().toString(36);
    const [a, b, w2, w1] = await Promise.all(["bench-a", "bench-b", "bench-w2", "bench-w1"].map(async (t) => client(server.url, await tenantKey(admin, t))));
    const runs: Record<"fair" | "fifo", FloodResult[]> = { fair: [], fifo: [] };
    for (let r = 0; r < FLOOD_REPEATS; r++) {
      for (const scheduling of ["fair", "fifo"] as const) {
        const x = await flood(admin, a!, b!, scheduling, `${tag}-${r}`);
        runs[scheduling].push(x);
        console.log(
          `${scheduling.padEnd(8)} B start p50 ${x.p50} ms, p99 ${x.p99} ms, max ${x.max} ms; A's backlog at B's submit ${x.backlog}; B's last started after ${x.leasedBefore} leases (${x.seconds.toFixed(1)} s)`,
        );
      }
    }
    // B's delays of all repeats together, per scheduling.
    const pooled = (xs: FloodResult[]) => {
      const d = xs.flatMap((x) => x.delays).sort((p, q) => p - q);
      return { p50: percentile(d, 0.5), p99: percentile(d, 0.99), samples: d.length };
    };
    const fair = pooled(runs.fair);
    const fifo = pooled(runs.fifo);
    const ratio = fifo.p99 / Math.max(1, fair.p99);
    console.log(`ratio    B p99 fifo / fair ${ratio.toFixed(1)}x over ${fair.samples} probes each (goal >= 10x; fair p99 counted as at least 1 ms)`);
    const share = await shares(admin, { "bench-w2": w2!, "bench-w1": w1! }, tag);
    console.log(
      `shares   weight 2: ${share.served["bench-w2"]} (${((share.served["bench-w2"]! / share.counted) * 100).toFixed(2)}%), weight 1: ${share.served["bench-w1"]} (${((share.served["bench-w1"]! / share.counted) * 100).toFixed(2)}%) of ${share.counted} leases (least backlog of a tenant meanwhile: ${share.minBacklog}); share error ${share.shareError.toFixed(4)} (goal <= 0.05)`,
    );
    const wf = await workflowOverheadPerStep(server.url, server.adminKey, WORKFLOW_RUNS);
    console.log(`workflow ${wf.ms_per_step} ms per step (${wf.runs} runs of ${wf.steps} steps)`);
    const loadAfter = loadavg();
    const seconds = (performance.now() - started) / 1000;
    console.log(`load     before ${fmtLoad(loadBefore)}, after ${fmtLoad(loadAfter)}; ${seconds.toFixed(0)} s`);
    const command = `npm run bench:fairness${QUICK ? " -- --quick" : ""}${values.flood ? ` --flood ${FLOOD}` : ""}`;
    if (!values["no-record"]) record(
      `| ${date} | \`${commit}\` | \`${command}\` | ${machine} | ${loadBefore[0]!.toFixed(2)} / ${loadAfter[0]!.toFixed(2)} | ${FLOOD.toLocaleString("en")} | ${fair.p50} / **${fair.p99}** ms | ${fifo.p50} / **${fifo.p99}** ms | **${ratio.toFixed(1)}x** | **${share.shareError.toFixed(4)}** (${share.served["bench-w2"]} : ${share.served["bench-w1"]}) | ${wf.ms_per_step} | ${seconds.toFixed(0)} s |`,
    );
    out = {
      bench: "fairness",
      flood: FLOOD,
      b_p99_start_ms_fair: fair.p99,
      b_p99_start_ms_fifo: fifo.p99,
      share_error: round(share.shareError, 4),
      workflow_overhead_ms_per_step: wf.ms_per_step,
      quick: QUICK,
      probes: PROBES,
      flood_repeats: FLOOD_REPEATS,
      b_p50_start_ms_fair: fair.p50,
      b_p50_start_ms_fifo: fifo.p50,
      p99_ratio: round(ratio, 1),
      share_served: share.served,
      share_counted: share.counted,
      commit,
      loadavg_before: loadBefore.map((l) => round(l, 2)),
      loadavg_after: loadAfter.map((l) => round(l, 2)),
      duration_s: round(seconds),
    };
  } finally {
    await server.stop();
  }
  console.log(JSON.stringify(out));
}

await main();
