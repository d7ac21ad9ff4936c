// The chaos run (issue 6), run by `npm run chaos` (test/chaos/run.ts) and, in short, by test/node/chaos.test.ts
// through runChaos(). N tasks flow through real agent processes (the daa CLI over WebSocket) while a driver,
// on a schedule drawn from a seed, SIGKILLs agents and starts new ones, and restarts the whole mesh process
// (`wrangler dev --persist-to`, same port and keys, so the agents reconnect by themselves). Tasks are submitted in
// batches all along, with idempotency keys, and a batch that failed (the mesh was down) is sent again until it is
// acknowledged. At the end, once every task is final, it lists every task of the pool and checks:
//
//   submitted = succeeded + dead + cancelled    counted from GET /v1/pools/:pool/tasks (every page), not counters
//   lost                                        acknowledged ids missing from the listing, or not final
//   stuck                                       tasks left leased, waiting or queued
//   double_accepted                             tasks with evidence of two accepted results: an agent that was never
//                                               killed produced two results that the mesh did not refuse, or one
//                                               that it did not refuse while the mesh holds another; plus
//                                               succeeded_total beyond the succeeded tasks listed
//   unproduced                                  accepted results that no agent wrote down (every agent logs each
//                                               result it produces, with a nonce, before handing it over)
//   stale_accepted                              an accepted result from an attempt older than the task's last lease
//
// and reports the time to recover after each mesh restart (from the signal to the old process: to the new one
// answering, to the first task completed, and to every agent being connected and running again), the agent kills, and how many tasks had more than one result produced
// (at-least-once: allowed, but the mesh keeps exactly one).
//
//   node test/chaos/run.ts [--quick] [--tasks N] [--seed S] [--agents A] [--concurrency C] [--keep]
//
// The last line printed is one JSON object with the report; the exit status is 1 if any check failed. When a check
// fails, the work directory (each agent's result log and stderr, the mesh's state) is kept and its path printed.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { freePort, ROOT, startDevServer, type DevServer } from "../../scripts/dev-server.ts";

export interface ChaosOptions {
  /** Tasks to submit (default 10,000). */
  tasks: number;
  /** Seed of the task plan and the fault schedule (default: random, printed). */
  seed: number;
  /** Agent processes running at any time (default 4), each with this concurrency (default 8). */
  agents: number;
  concurrency: number;
  /** Mesh restarts (default 2) and agent kills (default 8), each when a planned share of the tasks is final. */
  restarts: number;
  kills: number;
  /**
   * Shards of the pool at the start (default 2); with `shardChanges` (default true) a shard is added at about a
   * third of the run and the oldest active one drained at about two thirds, while agents work and tasks flow.
   */
  shards: number;
  shardChanges: boolean;
  /** The client keeps at most this many of its tasks unfinished, submitting as others finish (default: a fifth of the tasks, 100-1,000). */
  window: number;
  /** Tasks per POST /v1/tasks/batch (default 100). */
  batchSize: number;
  /** How long to wait for every task to be final after the last submission and fault (default 5 minutes). */
  finalTimeoutMs: number;
  /** Keep the work directory (logs, mesh state) even when every check passed. */
  keep: boolean;
  /** Where progress lines go (default console.log). */
  log: (line: string) => void;
}

export interface RestartRecovery {
  restart: number;
  signal: "SIGKILL" | "SIGTERM";
  /** All from the restart (the signal to the old mesh process): to the new process answering /healthz, */
  down_ms: number;
  /** to the first task that succeeded after the old process was gone (finishedAt in the listing), */
  first_task_ms: number | null;
  /**
   * and to every agent process that lived through the restart (and was not killed since) having connected again
   * and being running; null if none was left.
   */
  fleet_ms: number | null;
  /** Agent processes running when the mesh went down. */
  fleet_agents: number;
}

interface RestartMark {
  n: number;
  signal: "SIGKILL" | "SIGTERM";
  /** The signal; the old process gone; the new one answering /healthz. */
  down: number;
  exited: number;
  up: number;
  survivors: number;
  fleetAt: number | null;
  monitored: boolean;
}

export interface ChaosReport {
  chaos: true;
  seed: number;
  tasks: number;
  submitted: number;
  listed: number;
  succeeded: number;
  dead: number;
  cancelled: number;
  lost: number;
  stuck: number;
  extra: number;
  double_accepted: number;
  unproduced: number;
  stale_accepted: number;
  multi_produced: number;
  /** Succeeded tasks whose held result is the one an agent that was never killed saw acknowledged. */
  verified_by_ack: number;
  /** Agent processes whose acknowledgements could be checked (stopped gracefully, every result sent). */
  ack_checked_agents: number;
  retried: number;
  dead_by_cause: Record<string, number>;
  planned_dead: number;
  restarts: number;
  agent_kills: number;
  agent_restarts_same_id: number;
  /** Shard changes done mid-run, and every shard's state at the end. */
  shards_added: number;
  shards_drained: number;
  shard_states: Record<string, string>;
  agent_unexpected_exits: number;
  submit_retries: number;
  /** Agents' "WebSocket no hello within ..." lines: dials that hung until the SDK's hello timeout. */
  ws_hello_timeouts: number;
  recovery_ms: RestartRecovery[];
  counters: Record<string, number>;
  leases_vs_attempts: { leased_total: number; sum_attempts: number };
  duration_ms: number;
  failures: string[];
  ok: boolean;
  work_dir: string | null;
}

const POOL = "chaos";
const TYPE = "chaos.work";
/** Lease length of every task: lost work comes back within this (plus a backoff) when its agent lives on. */
const TASK_TIMEOUT_MS = 4_000;
const POOL_CONFIG = {
  heartbeatIntervalMs: 500,
  missedHeartbeats: 3,
  // Expired leases after a mesh restart count against each agent's breaker; a short cooldown keeps the fleet busy.
  breaker: { failureThreshold: 5, cooldownMs: 1_000 },
};

/**
 * Every agent writes down each result it produces (task, agent, process, attempt, a nonce) before returning it,
 * and the planned failures; the result carries the same fields, so the accepted result can be traced.
 */
const HANDLERS = `
import { appendFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
const AGENT = process.env.CHAOS_AGENT, PROC = process.env.CHAOS_PROC, LOG = process.env.CHAOS_LOG;
const write = (record) => appendFileSync(LOG, JSON.stringify(record) + "\\n");
export default {
  "${TYPE}": async (payload, { taskId, attempt, signal }) => {
    const ms = Math.max(1, Math.round(payload.ms * (0.5 + Math.random())));
    await new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener("abort", () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
    });
    if (attempt <= payload.failUntil) {
      write({ k: "fail", taskId, agent: AGENT, proc: PROC, attempt, at: Date.now() });
      throw Object.assign(new Error("planned failure of attempt " + attempt), { code: "planned_failure" });
    }
    const result = { taskId, agent: AGENT, proc: PROC, attempt, nonce: randomBytes(8).toString("hex") };
    write({ k: "result", ...result, at: Date.now() });
    return result;
  },
};
`;

// ---- seeded randomness ----------------------------------------------------------------------------------------

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type TaskKind = "normal" | "flaky" | "poison" | "single";

interface PlannedTask {
  index: number;
  kind: TaskKind;
  body: { type: string; pool: string; payload: { i: number; ms: number; failUntil: number }; maxAttempts: number; timeoutMs: number; idempotencyKey: string };
}

/**
 * The plan: most tasks succeed at the first attempt; 4% fail their first attempt or two (retried); 0.5% always fail
 * (the dead letter queue after 3 attempts); 1% have maxAttempts 1, half of them failing it (dead at once).
 * Work takes a few ms, 2% of tasks a few hundred, so that kills catch some of them in flight.
 */
function planTasks(n: number, seed: number, rnd: () => number): PlannedTask[] {
  return Array.from({ length: n }, (_, index) => {
    const r = rnd();
    const kind: TaskKind = r < 0.01 ? "single" : r < 0.015 ? "poison" : r < 0.055 ? "flaky" : "normal";
    const failUntil = kind === "poison" ? 100 : kind === "flaky" ? 1 + Math.floor(rnd() * 2) : kind === "single" ? (rnd() < 0.5 ? 1 : 0) : 0;
    const maxAttempts = kind === "single" ? 1 : kind === "poison" ? 3 : 5;
    const ms = rnd() < 0.02 ? 100 + Math.floor(rnd() * 500) : 2 + Math.floor(rnd() * 10);
    return {
      index,
      kind,
      body: { type: TYPE, pool: POOL, payload: { i: index, ms, failUntil }, maxAttempts, timeoutMs: TASK_TIMEOUT_MS, idempotencyKey: `chaos-${seed}-${index}` },
    };
  });
}

/** `at`: the share of the tasks final when the fault strikes, so faults fall while work flows at any speed. */
type ChaosEvent =
  | { at: number; kind: "restart"; n: number; signal: "SIGKILL" | "SIGTERM" }
  | { at: number; kind: "kill"; pick: number; delayMs: number; sameId: boolean }
  | { at: number; kind: "add_shard" }
  | { at: number; kind: "drain_shard" };

/** Mesh restarts evenly through the run (with jitter), agent kills anywhere in it. */
function planEvents(o: ChaosOptions, rnd: () => number): ChaosEvent[] {
  const events: ChaosEvent[] = [];
  for (let r = 0; r < o.restarts; r++) {
    const at = (r + 1) / (o.restarts + 1) + (rnd() - 0.5) * 0.1;
    events.push({ at, kind: "restart", n: r + 1, signal: r % 2 === 0 ? "SIGKILL" : "SIGTERM" });
  }
  for (let k = 0; k < o.kills; k++) {
    const at = 0.03 + 0.92 * rnd();
    events.push({ at, kind: "kill", pick: Math.floor(rnd() * 1_000_000), delayMs: 200 + Math.floor(rnd() * 1800), sameId: rnd() < 0.5 });
  }
  // Drawn after the others, so a seed keeps its restarts and kills.
  if (o.shardChanges) {
    events.push({ at: 0.3 + (rnd() - 0.5) * 0.1, kind: "add_shard" });
    events.push({ at: 0.6 + (rnd() - 0.5) * 0.1, kind: "drain_shard" });
  }
  return events.sort((a, b) => a.at - b.at);
}

// ---- the run --------------------------------------------------------------------------------------------------

interface AgentProc {
  slot: number;
  agentId: string;
  proc: string;
  child: ChildProcess;
  resultLog: string;
  stderrLog: string;
  startedAt: number;
  /** Times at which it connected: its registration, and each "WebSocket reconnected". */
  connects: number[];
  killed: boolean;
  stopping: boolean;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null;
}

interface TaskView {
  id: string;
  status: string;
  attempts: number;
  maxAttempts: number;
  agentId: string | null;
  result: { taskId?: string; agent?: string; proc?: string; attempt?: number; nonce?: string } | null;
  error: unknown;
  payload: { i: number };
  finishedAt: string | null;
  leaseExpiresAt: string | null;
  idempotencyKey: string | null;
}

interface Produced {
  taskId: string;
  agent: string;
  proc: string;
  attempt: number;
  nonce: string;
  at: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

export function defaultOptions(quick = false): ChaosOptions {
  const tasks = quick ? 2_000 : 10_000;
  return {
    tasks,
    seed: randomBytes(4).readUInt32BE(0) % 1_000_000,
    agents: 4,
    concurrency: 8,
    restarts: quick ? 1 : 2,
    kills: quick ? 4 : 8,
    shards: 2,
    shardChanges: true,
    window: windowFor(tasks),
    batchSize: 100,
    finalTimeoutMs: quick ? 120_000 : 300_000,
    keep: false,
    log: (line) => console.log(line),
  };
}

/** A fifth of the tasks (100-1,000): submissions go on until most of the work is done, through the faults. */
function windowFor(tasks: number): number {
  return Math.min(1_000, Math.max(100, Math.round(tasks / 5)));
}

export async function runChaos(partial: Partial<ChaosOptions> = {}): Promise<ChaosReport> {
  const base = defaultOptions();
  const o: ChaosOptions = { ...base, window: windowFor(partial.tasks ?? base.tasks), ...partial };
  const log = o.log;
  const t0 = Date.now();
  const rel = () => `${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s`;
  const say = (line: string) => log(`${rel()}  ${line}`);

  const work = mkdtempSync(join(tmpdir(), "daa-chaos-"));
  const persistDir = join(work, "state");
  writeFileSync(join(work, "handlers.mjs"), HANDLERS);
  const rnd = prng(o.seed);
  const plan = planTasks(o.tasks, o.seed, rnd);
  const events = planEvents(o, rnd);

  log(`machine  ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; node ${process.version}; load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  log(`seed     ${o.seed} (again with --seed ${o.seed})`);
  log(
    `plan     ${o.tasks} tasks in batches of ${o.batchSize}, at most ${o.window} unfinished ` +
      `(${plan.filter((t) => t.kind === "flaky").length} flaky, ${plan.filter((t) => t.kind === "poison").length} always failing, ` +
      `${plan.filter((t) => t.kind === "single").length} with maxAttempts 1); ${o.agents} agents x concurrency ${o.concurrency}; ` +
      `${o.restarts} mesh restart(s), ${o.kills} agent kill(s); ${o.shards} shard(s)${o.shardChanges ? ", one added and one drained mid-run" : ""}`,
  );
  const describe = (e: ChaosEvent) => (e.kind === "restart" ? `mesh ${e.signal}` : e.kind === "kill" ? `kill${e.sameId ? " (same id)" : ""}` : e.kind === "add_shard" ? "shard added" : "shard drained");
  log(`faults   ${events.map((e) => `${describe(e)} at ${(e.at * 100).toFixed(0)}%`).join(", ")} of the tasks final`);
  log(`work     ${work}`);

  const port = await freePort();
  let server: DevServer | null = null;
  let meshUp: Promise<void> = Promise.resolve();
  const procs: AgentProc[] = [];
  const slots: (AgentProc | null)[] = Array.from({ length: o.agents }, () => null);
  const recovery: RestartRecovery[] = [];
  const restartMarks: RestartMark[] = [];
  let procSeq = 0;
  let agentKills = 0;
  let sameIdRestarts = 0;
  let unexpectedExits = 0;
  let submitRetries = 0;
  let finished = false;
  /** Set at each mesh restart: the client's next batch goes at once, into the outage, whatever its window. */
  let submitNow = false;

  const url = () => `http://127.0.0.1:${port}`;
  const auth = () => ({ authorization: `Bearer ${server!.adminKey}`, "content-type": "application/json" });

  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(`${url()}${path}`, { method, headers: auth(), body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  /** Retries through mesh restarts (connection refused, 5xx, 429) until the request is answered. */
  async function callRetrying(method: string, path: string, body?: unknown, deadlineMs = 180_000): Promise<any> {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      try {
        await meshUp;
        const res = await call(method, path, body);
        if (res.status < 300) return res.body;
        if (res.status !== 429 && res.status < 500) throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
      } catch (err) {
        if (err instanceof Error && err.message.includes(" answered ")) throw err;
      }
      if (Date.now() > deadline) throw new Error(`${method} ${path}: no answer within ${deadlineMs} ms`);
      await sleep(200);
    }
  }

  function startAgent(slot: number, agentId: string): AgentProc {
    const proc = `p${++procSeq}`;
    const resultLog = join(work, `${agentId}.${proc}.results.log`);
    const stderrLog = join(work, `${agentId}.${proc}.stderr.log`);
    writeFileSync(resultLog, "");
    const child = spawn(
      process.execPath,
      [join(ROOT, "agent", "bin", "daa.mjs"), "agent", "--pool", POOL, "--handlers", join(work, "handlers.mjs"), "--agent-id", agentId, "--concurrency", String(o.concurrency), "--transport", "websocket"],
      {
        cwd: ROOT,
        env: { ...process.env, DAA_URL: url(), DAA_TOKEN: server!.adminKey, CHAOS_AGENT: agentId, CHAOS_PROC: proc, CHAOS_LOG: resultLog },
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    const p: AgentProc = {
      slot,
      agentId,
      proc,
      child,
      resultLog,
      stderrLog,
      startedAt: Date.now(),
      connects: [],
      killed: false,
      stopping: false,
      exitInfo: null,
      exit: new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal }))),
    };
    let partialLine = "";
    child.stderr?.on("data", (d: Buffer) => {
      const now = Date.now();
      appendFileSync(stderrLog, d);
      const lines = (partialLine + d.toString()).split("\n");
      partialLine = lines.pop() ?? "";
      for (const line of lines) {
        if (/registered in pool .* over websocket|WebSocket reconnected/.test(line)) p.connects.push(now);
      }
    });
    void p.exit.then((info) => {
      p.exitInfo = info;
      if (p.killed || p.stopping || finished) return;
      // Not ours: an agent that gave up (e.g. it could not register). Note it, and put a new one in its slot.
      unexpectedExits++;
      say(`agent ${agentId} (${proc}) exited by itself (code ${info.code}, signal ${info.signal}); starting it again`);
      if (slots[slot] === p) {
        slots[slot] = null;
        void meshUp.then(async () => {
          await sleep(500);
          if (!finished && slots[slot] === null) slots[slot] = startAgent(slot, agentId);
        });
      }
    });
    procs.push(p);
    return p;
  }

  const alive = () => slots.filter((p): p is AgentProc => p !== null && p.exitInfo === null);

  async function killAgent(e: Extract<ChaosEvent, { kind: "kill" }>): Promise<void> {
    // The planned pick among the agents running now (a slot whose replacement has not started yet is skipped over).
    const candidates = alive();
    const victim = candidates[e.pick % Math.max(1, candidates.length)];
    if (!victim) {
      say("kill: no agent is running right now; skipped");
      return;
    }
    victim.killed = true;
    victim.child.kill("SIGKILL");
    const slot = victim.slot;
    slots[slot] = null;
    agentKills++;
    const nextId = e.sameId ? victim.agentId : `chaos-${slot}-${procSeq + 1}`;
    if (e.sameId) sameIdRestarts++;
    say(`SIGKILL agent ${victim.agentId} (${victim.proc}); a new process as ${nextId} in ${e.delayMs} ms`);
    await victim.exit;
    void (async () => {
      await sleep(e.delayMs);
      await meshUp;
      if (!finished && slots[slot] === null) slots[slot] = startAgent(slot, nextId);
    })();
  }

  async function restartMesh(e: Extract<ChaosEvent, { kind: "restart" }>): Promise<void> {
    const old = server!;
    let release!: () => void;
    meshUp = new Promise<void>((r) => (release = r));
    const survivors = alive();
    const down = Date.now();
    say(`mesh restart ${e.n}: ${e.signal} to wrangler dev (pid ${old.process.pid})`);
    if (e.signal === "SIGKILL") {
      const gone = new Promise<void>((r) => (old.process.exitCode !== null || old.process.signalCode !== null ? r() : old.process.once("exit", () => r())));
      try {
        process.kill(-old.process.pid!, "SIGKILL");
      } catch {
        old.process.kill("SIGKILL");
      }
      await gone;
    }
    // SIGTERM: wrangler shuts down (and is SIGKILLed after 5 s if it has not); after SIGKILL this only tidies up.
    await old.stop();
    const exited = Date.now();
    submitNow = true;
    server = await startDevServer({ persistDir, adminKey: old.adminKey, masterKey: old.masterKey, port });
    const up = Date.now();
    release();
    const mark: RestartMark = { n: e.n, signal: e.signal, down, exited, up, survivors: survivors.length, fleetAt: null, monitored: false };
    restartMarks.push(mark);
    say(`mesh restart ${e.n}: up again after ${up - down} ms (the old process was gone after ${exited - down} ms)`);
    // In the background: when has every agent process that lived through the restart (and still lives) connected
    // again (its log) and is running (the mesh)? Replacements of agents killed meanwhile are not waited for.
    void (async () => {
      const deadline = up + 90_000;
      while (!finished && Date.now() < deadline) {
        const live = survivors.filter((p) => p.exitInfo === null && !p.killed);
        if (live.length === 0) break;
        if (live.every((p) => p.connects.some((t) => t > down))) {
          try {
            const res = await call("GET", `/v1/pools/${POOL}/agents`);
            const states = new Map<string, string>((res.body?.agents ?? []).map((a: { agentId: string; state: string }) => [a.agentId, a.state]));
            if (res.status === 200 && live.every((p) => states.get(p.agentId) === "running")) {
              mark.fleetAt = Date.now();
              say(`mesh restart ${e.n}: the ${live.length} agent(s) that lived through it are connected and running, ${mark.fleetAt - down} ms after the restart`);
              break;
            }
          } catch {
            // the mesh may be restarting again
          }
        }
        await sleep(50);
      }
      mark.monitored = true;
    })();
  }

  const ids: (string | null)[] = Array.from({ length: o.tasks }, () => null);
  let shardsAdded = 0;
  let shardsDrained = 0;
  const failures: string[] = [];
  let report: ChaosReport | null = null;

  try {
    server = await startDevServer({ persistDir, port });
    say(`mesh up on ${url()}`);
    await callRetrying("PUT", `/v1/pools/${POOL}/config`, POOL_CONFIG);
    for (let s = 1; s < o.shards; s++) await callRetrying("POST", `/v1/pools/${POOL}/shards`, {});
    for (let s = 0; s < o.agents; s++) slots[s] = startAgent(s, `chaos-${s}`);
    // Wait until the fleet runs, so the first faults hit agents that work.
    const deadline = Date.now() + 60_000;
    while (!procs.every((p) => p.connects.length > 0)) {
      if (Date.now() > deadline) throw new Error("the agents did not connect within 60 s");
      await sleep(50);
    }
    say(`${o.agents} agents connected`);

    // Progress (tasks final) from the pool's counts, a few times a second: it paces the client and times the
    // faults. Only that; the checks at the end count the listing.
    const start = Date.now();
    let progress = 0;
    let progressAt = start;
    /** Tasks the mesh acknowledged so far. */
    let acked = 0;
    void (async () => {
      while (!finished) {
        try {
          const res = await call("GET", `/v1/pools/${POOL}`);
          if (res.status === 200) {
            const q = res.body.queue as Record<string, number>;
            const now = q.succeeded! + q.dead! + q.cancelled!;
            if (now !== progress) progressAt = Date.now();
            progress = now;
          }
        } catch {
          // the mesh is down
        }
        await sleep(100);
      }
    })();
    /** Waits until `done()`; throws if the pool's counts showed no task becoming final for a minute. */
    const waitProgress = async (done: () => boolean, what: string) => {
      while (!done()) {
        if (finished) throw new Error(`the run ended while waiting for ${what}`);
        if (Date.now() - progressAt > 60_000 && Date.now() - lastRestartUp() > 60_000) {
          throw new Error(`the pool's counts (GET /v1/pools/${POOL}) showed no task becoming final for 60 s (at ${progress} final, ${acked} acknowledged) while waiting for ${what}`);
        }
        await sleep(20);
      }
    };
    const lastRestartUp = () => Math.max(start, ...restartMarks.map((m) => m.up));

    // Submissions: the client keeps at most `window` of its tasks unfinished; a batch that fails (the mesh is
    // down) is sent again, with the same idempotency keys, until it is acknowledged.
    const batches = Math.ceil(o.tasks / o.batchSize);
    const submitter = (async () => {
      for (let b = 0; b < batches; b++) {
        const chunk = plan.slice(b * o.batchSize, (b + 1) * o.batchSize);
        await waitProgress(() => submitNow || acked - progress + chunk.length <= o.window, `room to submit batch ${b}`);
        submitNow = false;
        const since = Date.now();
        for (let attempt = 1; ; attempt++) {
          try {
            // The client does not know when the mesh is down: it sends, fails, and sends the same batch again.
            const res = await call("POST", "/v1/tasks/batch", { tasks: chunk.map((t) => t.body) });
            if (res.status === 201) {
              res.body.tasks.forEach((t: { id: string; idempotencyKey: string }, i: number) => {
                const planned = chunk[i]!;
                if (t.idempotencyKey !== planned.body.idempotencyKey) failures.push(`batch ${b}: answer ${i} is for key ${t.idempotencyKey}, not ${planned.body.idempotencyKey}`);
                const before = ids[planned.index];
                if (before !== null && before !== t.id) failures.push(`task ${planned.index}: acknowledged as ${before}, then as ${t.id}`);
                ids[planned.index] = t.id;
              });
              acked += chunk.length;
              if (attempt > 1) say(`batch ${b} acknowledged at attempt ${attempt}`);
              break;
            }
            if (res.status !== 429 && res.status < 500) throw new Error(`POST /v1/tasks/batch answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
          } catch (err) {
            if (err instanceof Error && err.message.includes(" answered ")) throw err;
          }
          submitRetries++;
          if (attempt === 1) say(`batch ${b} not acknowledged (mesh down?); sending it again until it is`);
          if (Date.now() - since > 300_000) throw new Error(`batch ${b} not acknowledged after 5 minutes`);
          if (finished) return;
          await sleep(250);
        }
      }
      say(`all ${batches} batches acknowledged`);
    })();

    // Faults, each when its share of the tasks is final. A restart takes a few seconds and the kills due meanwhile
    // happen meanwhile; but while the agents reconnect after a restart kills wait, so recovery is measured cleanly.
    const driver = (async () => {
      let restarting: Promise<void> = Promise.resolve();
      let restartFailed: unknown = null;
      for (const e of events) {
        await waitProgress(() => restartFailed !== null || progress >= e.at * o.tasks, `${Math.round(e.at * 100)}% of the tasks final (the next fault)`);
        if (restartFailed !== null) break;
        if (e.kind === "restart") {
          restarting = restarting.then(() => restartMesh(e)).catch((err: unknown) => {
            restartFailed ??= err;
          });
          continue;
        }
        if (e.kind === "add_shard") {
          const added = await callRetrying("POST", `/v1/pools/${POOL}/shards`, {});
          shardsAdded++;
          say(`shard ${added.id} added`);
          continue;
        }
        if (e.kind === "drain_shard") {
          const { shards } = await callRetrying("GET", `/v1/pools/${POOL}/shards`);
          const oldest = (shards as { id: string; state: string }[]).find((s) => s.state === "active")!;
          const drained = await callRetrying("POST", `/v1/pools/${POOL}/shards/${oldest.id}/drain`);
          shardsDrained++;
          say(`shard ${drained.id} draining (${drained.queue.queued} queued there)`);
          continue;
        }
        const quietBy = Date.now() + 30_000;
        while (restartMarks.some((m) => !m.monitored) && Date.now() < quietBy) await sleep(50);
        await killAgent(e);
      }
      await restarting;
      if (restartFailed !== null) throw restartFailed;
    })();
    await Promise.all([submitter, driver]);

    // Wait for every task to be final: the pool's counts first (cheap), the listing decides afterwards.
    const finalDeadline = Date.now() + o.finalTimeoutMs;
    let lastLine = 0;
    for (;;) {
      const stats = await callRetrying("GET", `/v1/pools/${POOL}`);
      const q = stats.queue as Record<string, number>;
      const open = q.waiting! + q.queued! + q.leased!;
      if (open === 0) {
        say(`every task is final (${q.succeeded} succeeded, ${q.dead} dead, ${q.cancelled} cancelled)`);
        break;
      }
      if (Date.now() - lastLine > 5_000) {
        say(`waiting for ${open} tasks (${q.waiting} waiting, ${q.queued} queued, ${q.leased} leased)`);
        lastLine = Date.now();
      }
      if (Date.now() > finalDeadline) {
        failures.push(`tasks not final after ${o.finalTimeoutMs} ms: ${JSON.stringify(q)}`);
        break;
      }
      await sleep(250);
    }
    // Let the restart monitors finish before the fleet stops.
    const monitorDeadline = Date.now() + 30_000;
    while (restartMarks.some((m) => !m.monitored) && Date.now() < monitorDeadline) await sleep(100);
    finished = true;

    // Stop the fleet gracefully: each agent finishes what it holds and waits for the answers to its outcomes, so
    // its stderr tells which of its results the mesh refused.
    for (const p of alive()) {
      p.stopping = true;
      p.child.kill("SIGTERM");
    }
    await Promise.all(
      alive().map(async (p) => {
        const t = setTimeout(() => p.child.kill("SIGKILL"), 20_000);
        await p.exit;
        clearTimeout(t);
      }),
    );
    // Give the stderr pipes a moment to drain.
    await sleep(200);

    // ---- the listing, every page ----
    const listed: TaskView[] = [];
    let cursor: string | null = null;
    do {
      const q = new URLSearchParams({ limit: "1000", ...(cursor ? { cursor } : {}) });
      const page: { tasks: TaskView[]; cursor: string | null } = await callRetrying("GET", `/v1/pools/${POOL}/tasks?${q}`);
      listed.push(...page.tasks);
      cursor = page.cursor;
    } while (cursor !== null);
    // For a post-mortem: the listing as the API gave it (the work directory is kept when a check fails).
    writeFileSync(join(work, "tasks.json"), JSON.stringify(listed));
    const metricsText: string = await (await fetch(`${url()}/metrics`, { headers: auth() })).text();
    const counters: Record<string, number> = {};
    for (const m of metricsText.matchAll(new RegExp(`^daa_tasks_(\\w+)_total\\{pool="${POOL}"\\} (\\d+)$`, "gm"))) counters[m[1]!] = Number(m[2]);

    report = verify({ o, plan, ids, listed, procs, counters, restartMarks, recovery, failures, say });
    report.restarts = restartMarks.length;
    report.shards_added = shardsAdded;
    report.shards_drained = shardsDrained;
    report.shard_states = Object.fromEntries(((await callRetrying("GET", `/v1/pools/${POOL}/shards`)).shards as { id: string; state: string }[]).map((s) => [s.id, s.state]));
    if (o.shardChanges && (shardsAdded !== 1 || shardsDrained !== 1)) failures.push(`${shardsAdded} shard(s) added and ${shardsDrained} drained, 1 and 1 planned`);
    report.agent_kills = agentKills;
    report.agent_restarts_same_id = sameIdRestarts;
    report.agent_unexpected_exits = unexpectedExits;
    report.submit_retries = submitRetries;
    report.duration_ms = Date.now() - t0;
    if (restartMarks.length !== o.restarts) failures.push(`${restartMarks.length} mesh restarts done, ${o.restarts} planned`);
    report.ok = failures.length === 0;
  } catch (err) {
    failures.push(`the run failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  } finally {
    finished = true;
    for (const p of procs) if (p.exitInfo === null) p.child.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exit));
    await server?.stop().catch(() => undefined);
  }

  const ok = report !== null && failures.length === 0;
  const keep = o.keep || !ok;
  if (!keep) rmSync(work, { recursive: true, force: true });
  const final: ChaosReport = report ?? emptyReport(o, failures);
  final.failures = failures;
  final.ok = ok;
  final.work_dir = keep ? work : null;
  printReport(final, log);
  return final;
}

function emptyReport(o: ChaosOptions, failures: string[]): ChaosReport {
  return {
    chaos: true, seed: o.seed, tasks: o.tasks, submitted: 0, listed: 0, succeeded: 0, dead: 0, cancelled: 0, lost: 0, stuck: 0, extra: 0,
    double_accepted: 0, unproduced: 0, stale_accepted: 0, multi_produced: 0, verified_by_ack: 0, ack_checked_agents: 0, retried: 0, dead_by_cause: {}, planned_dead: 0, restarts: 0, agent_kills: 0,
    agent_restarts_same_id: 0, shards_added: 0, shards_drained: 0, shard_states: {}, agent_unexpected_exits: 0, submit_retries: 0, ws_hello_timeouts: 0, recovery_ms: [], counters: {},
    leases_vs_attempts: { leased_total: 0, sum_attempts: 0 }, duration_ms: 0, failures, ok: false, work_dir: null,
  };
}

// ---- the checks -----------------------------------------------------------------------------------------------

function readProduced(p: AgentProc): { results: Produced[]; torn: number } {
  const results: Produced[] = [];
  let torn = 0;
  if (!existsSync(p.resultLog)) return { results, torn };
  for (const line of readFileSync(p.resultLog, "utf8").split("\n")) {
    if (!line) continue;
    try {
      const r = JSON.parse(line) as Produced & { k: string };
      if (r.k === "result") results.push(r);
    } catch {
      // A line cut short by a SIGKILL; its result never left the process.
      torn++;
    }
  }
  return { results, torn };
}

/** Completions the mesh refused, per task, from an agent's stderr ("complete of task <id> refused: ..."). */
function readRefusals(p: AgentProc): Map<string, number> {
  const out = new Map<string, number>();
  if (!existsSync(p.stderrLog)) return out;
  for (const m of readFileSync(p.stderrLog, "utf8").matchAll(/complete of task (\S+) refused: /g)) out.set(m[1]!, (out.get(m[1]!) ?? 0) + 1);
  return out;
}

function verify(x: {
  o: ChaosOptions;
  plan: PlannedTask[];
  ids: (string | null)[];
  listed: TaskView[];
  procs: AgentProc[];
  counters: Record<string, number>;
  restartMarks: RestartMark[];
  recovery: RestartRecovery[];
  failures: string[];
  say: (line: string) => void;
}): ChaosReport {
  const { o, plan, ids, listed, procs, counters, restartMarks, recovery, failures, say } = x;
  const detail = (line: string) => say(`  ${line}`);
  const byId = new Map(listed.map((t) => [t.id, t]));
  const acked = ids.filter((id): id is string => id !== null);
  const ackedSet = new Set(acked);
  if (acked.length !== o.tasks) failures.push(`${o.tasks - acked.length} tasks were never acknowledged`);
  if (ackedSet.size !== acked.length) failures.push(`${acked.length - ackedSet.size} acknowledged ids repeat (two indexes, one id)`);

  // Everything the agents produced; and, from agents that were never killed, what the mesh accepted. Such an agent
  // stopped gracefully, having waited for the answer to each outcome, and its stderr names every completion the
  // mesh refused; a completion it does not name was acknowledged. (A completion applied whose answer was lost with
  // a socket is sent again and refused: so this undercounts acceptances, never overcounts them.)
  const produced = new Map<string, Produced[]>();
  /** Per task: how many results were acknowledged at least, and which one when that is known for sure. */
  const accepted = new Map<string, { count: number; known: Produced[] }>();
  let torn = 0;
  let ackChecked = 0;
  const unverifiable: string[] = [];
  for (const p of procs) {
    const { results, torn: t } = readProduced(p);
    torn += t;
    const perTask = new Map<string, Produced[]>();
    for (const r of results) {
      produced.set(r.taskId, [...(produced.get(r.taskId) ?? []), r]);
      perTask.set(r.taskId, [...(perTask.get(r.taskId) ?? []), r]);
    }
    // A process that was SIGKILLed (or died) may have had results in flight: no conclusion from its silence.
    if (p.killed || p.exitInfo?.code !== 0) continue;
    const refusals = readRefusals(p);
    // Each result it sent got one answer, an ack or a refusal; but a result that came after its task timed out or
    // lost its lease was never sent. Its own count of acknowledged completions (its last line) tells whether
    // that happened: if so, silence proves nothing about this process.
    const stopped = /stopped \((\d+) completed, \d+ failed\)/.exec(existsSync(p.stderrLog) ? readFileSync(p.stderrLog, "utf8") : "");
    const refused = [...refusals.values()].reduce((a, b) => a + b, 0);
    if (!stopped || Number(stopped[1]) !== results.length - refused) {
      unverifiable.push(`${p.agentId} (${p.proc}): ${results.length} results, ${refused} refused, ${stopped ? stopped[1] : "?"} acknowledged`);
      continue;
    }
    ackChecked++;
    for (const [taskId, rs] of perTask) {
      const count = rs.length - (refusals.get(taskId) ?? 0);
      if (count <= 0) continue;
      const entry = accepted.get(taskId) ?? { count: 0, known: [] };
      entry.count += count;
      // With one result and no refusal, that very result was acknowledged.
      if (rs.length === 1) entry.known.push(rs[0]!);
      accepted.set(taskId, entry);
    }
  }

  const counts: Record<string, number> = { succeeded: 0, dead: 0, cancelled: 0, waiting: 0, queued: 0, leased: 0 };
  for (const t of listed) counts[t.status] = (counts[t.status] ?? 0) + 1;

  const lost: string[] = [];
  for (const id of ackedSet) {
    const t = byId.get(id);
    if (!t || !["succeeded", "dead", "cancelled"].includes(t.status)) lost.push(id);
  }
  const extra = listed.filter((t) => !ackedSet.has(t.id));
  const stuck = listed.filter((t) => t.status === "leased" || t.status === "waiting" || t.status === "queued");

  const doubleAccepted = new Set<string>();
  const unproduced: string[] = [];
  const stale: string[] = [];
  let multiProduced = 0;
  let verifiedByAck = 0;
  let retried = 0;
  let sumAttempts = 0;
  for (const t of listed) {
    sumAttempts += t.attempts;
    if (t.attempts > 1) retried++;
    const mine = produced.get(t.id) ?? [];
    if (mine.length > 1) multiProduced++;
    if (t.status === "succeeded") {
      const r = t.result;
      const match = r ? mine.find((p) => p.nonce === r.nonce && p.agent === r.agent && p.proc === r.proc && p.attempt === r.attempt) : undefined;
      if (!r || r.taskId !== t.id || !match) unproduced.push(t.id);
      else if (r.attempt !== t.attempts) stale.push(t.id);
      const acks = accepted.get(t.id);
      if (acks && (acks.count > 1 || acks.known.some((k) => k.nonce !== r?.nonce))) doubleAccepted.add(t.id);
      else if (acks?.known.length === 1) verifiedByAck++;
    } else if (accepted.has(t.id)) {
      // A completion the mesh acknowledged, on a task that did not succeed.
      doubleAccepted.add(t.id);
    }
    if (t.status !== "succeeded" && t.result !== null) unproduced.push(t.id);
  }
  // Why tasks ended dead (the error code the mesh gave, or "planned_failure" from the handler).
  const deadByCause: Record<string, number> = {};
  for (const t of listed) {
    if (t.status !== "dead") continue;
    const code = (t.error as { code?: string } | null)?.code ?? "unknown";
    deadByCause[code] = (deadByCause[code] ?? 0) + 1;
  }
  const counterExcess = Math.max(0, (counters.succeeded ?? 0) - counts.succeeded!);
  const doubleCount = doubleAccepted.size + counterExcess;

  const submitted = ackedSet.size;
  const finals = counts.succeeded! + counts.dead! + counts.cancelled!;
  if (submitted !== finals) failures.push(`submitted ${submitted} != succeeded ${counts.succeeded} + dead ${counts.dead} + cancelled ${counts.cancelled} (= ${finals})`);
  if (listed.length !== submitted) failures.push(`the pool lists ${listed.length} tasks, ${submitted} were submitted`);
  if (lost.length > 0) failures.push(`${lost.length} tasks lost (acknowledged, but missing or not final)`);
  if (stuck.length > 0) failures.push(`${stuck.length} tasks stuck in leased/waiting/queued`);
  if (extra.length > 0) failures.push(`${extra.length} tasks in the pool that no submission acknowledged (duplicates?)`);
  if (doubleCount > 0) failures.push(`${doubleCount} double accepted results (${doubleAccepted.size} tasks from the agents' logs, ${counterExcess} from succeeded_total)`);
  if (unproduced.length > 0) failures.push(`${unproduced.length} accepted results that no agent produced`);
  if (stale.length > 0) failures.push(`${stale.length} accepted results from an attempt older than the task's last lease`);
  for (const name of ["submitted", "dead"] as const) {
    const listedCount = name === "submitted" ? listed.length : counts.dead!;
    if (counters[name] !== undefined && counters[name] !== listedCount) failures.push(`counter ${name}_total is ${counters[name]}, the listing has ${listedCount}`);
  }

  // Details for a bug report: what the API shows and what the agents wrote down.
  const show = (label: string, list: string[]) => {
    for (const id of list.slice(0, 10)) {
      const t = byId.get(id);
      detail(`${label} ${id}: ${t ? JSON.stringify({ status: t.status, attempts: t.attempts, maxAttempts: t.maxAttempts, agentId: t.agentId, result: t.result, error: t.error, finishedAt: t.finishedAt, leaseExpiresAt: t.leaseExpiresAt }) : "not in the listing"}`);
      for (const p of produced.get(id) ?? []) detail(`    produced by ${p.agent} (${p.proc}) attempt ${p.attempt} nonce ${p.nonce} at ${new Date(p.at).toISOString()}`);
      for (const p of procs) {
        if (!existsSync(p.stderrLog)) continue;
        for (const line of readFileSync(p.stderrLog, "utf8").split("\n")) if (line.includes(id)) detail(`    ${p.agentId} (${p.proc}) stderr: ${line}`);
      }
    }
  };
  show("lost", lost);
  show("stuck", stuck.map((t) => t.id));
  show("double accepted", [...doubleAccepted]);
  show("unproduced", unproduced);
  show("stale", stale);
  for (const t of extra.slice(0, 10)) detail(`extra ${t.id}: key ${t.idempotencyKey}, status ${t.status}`);

  // Recovery after each restart: the first success after the mesh came back, from the listing's finishedAt.
  const successes = listed.filter((t) => t.status === "succeeded" && t.finishedAt).map((t) => Date.parse(t.finishedAt!)).sort((a, b) => a - b);
  for (const m of restartMarks) {
    const first = successes.find((at) => at > m.exited);
    recovery.push({
      restart: m.n,
      signal: m.signal,
      down_ms: m.up - m.down,
      first_task_ms: first === undefined ? null : first - m.down,
      fleet_ms: m.fleetAt === null ? null : m.fleetAt - m.down,
      fleet_agents: m.survivors,
    });
  }
  if (torn > 0) say(`note: ${torn} torn line(s) in the result logs (written as a process was killed)`);
  for (const u of unverifiable) say(`note: acknowledgements not checked for ${u}`);

  const plannedDead = plan.filter((t) => t.kind === "poison" || (t.kind === "single" && t.body.payload.failUntil >= 1));
  const plannedDeadNotDead = plannedDead.filter((t) => {
    const id = ids[t.index];
    return id !== null && byId.get(id!)?.status !== "dead";
  });
  if (plannedDeadNotDead.length > 0) failures.push(`${plannedDeadNotDead.length} tasks that always fail are not dead`);

  return {
    chaos: true,
    seed: o.seed,
    tasks: o.tasks,
    submitted,
    listed: listed.length,
    succeeded: counts.succeeded!,
    dead: counts.dead!,
    cancelled: counts.cancelled!,
    lost: lost.length,
    stuck: stuck.length,
    extra: extra.length,
    double_accepted: doubleCount,
    unproduced: unproduced.length,
    stale_accepted: stale.length,
    multi_produced: multiProduced,
    verified_by_ack: verifiedByAck,
    ack_checked_agents: ackChecked,
    retried,
    dead_by_cause: deadByCause,
    planned_dead: plannedDead.length,
    restarts: 0,
    agent_kills: 0,
    agent_restarts_same_id: 0,
    shards_added: 0,
    shards_drained: 0,
    shard_states: {},
    agent_unexpected_exits: 0,
    submit_retries: 0,
    ws_hello_timeouts: procs.reduce((n, p) => n + (existsSync(p.stderrLog) ? (readFileSync(p.stderrLog, "utf8").match(/WebSocket no hello within/g)?.length ?? 0) : 0), 0),
    recovery_ms: recovery,
    counters,
    leases_vs_attempts: { leased_total: counters.leased ?? 0, sum_attempts: sumAttempts },
    duration_ms: 0,
    failures,
    ok: false,
    work_dir: null,
  };
}

function printReport(r: ChaosReport, log: (line: string) => void): void {
  log("");
  log(`submitted ${r.submitted} = succeeded ${r.succeeded} + dead ${r.dead} + cancelled ${r.cancelled}   (listed ${r.listed})`);
  log(`lost ${r.lost}, stuck ${r.stuck}, extra ${r.extra}, double accepted ${r.double_accepted}, unproduced ${r.unproduced}, stale accepted ${r.stale_accepted}`);
  log(`retried ${r.retried} tasks; ${r.multi_produced} tasks had more than one result produced (at-least-once), each holds exactly one`);
  log(`${r.verified_by_ack} held results are the very result an agent saw acknowledged (${r.ack_checked_agents} agent processes checked); dead by cause ${JSON.stringify(r.dead_by_cause)} (${r.planned_dead} planned)`);
  log(
    `faults: ${r.restarts} mesh restart(s), ${r.agent_kills} agent kill(s) (${r.agent_restarts_same_id} restarted under the same id); ` +
      `${r.agent_unexpected_exits} agent process(es) exited by themselves (e.g. started as the mesh went down), ${r.submit_retries} submit retries, ` +
      `${r.ws_hello_timeouts} WebSocket dial(s) given up after the 10 s hello timeout`,
  );
  log(`shards: ${r.shards_added} added and ${r.shards_drained} drained mid-run; at the end ${Object.entries(r.shard_states).map(([id, state]) => `${id} ${state}`).join(", ")}`);
  for (const m of r.recovery_ms) {
    log(
      `restart ${m.restart} (${m.signal}), from the signal: the mesh answered after ${m.down_ms} ms, the first task succeeded after ${m.first_task_ms ?? "-"} ms, ` +
        `the agents that lived through it (${m.fleet_agents} running at the signal) were connected and running after ${m.fleet_ms ?? "-"} ms`,
    );
  }
  log(`counters ${JSON.stringify(r.counters)}; leases ${r.leases_vs_attempts.leased_total} vs sum of attempts ${r.leases_vs_attempts.sum_attempts}`);
  log(r.ok ? `PASS in ${(r.duration_ms / 1000).toFixed(1)} s` : `FAIL:\n  ${r.failures.join("\n  ")}`);
  if (r.work_dir) log(`logs and mesh state kept in ${r.work_dir}`);
  const { failures: _f, ok, work_dir: _w, counters: _c, leases_vs_attempts: _l, ...rest } = r;
  log(JSON.stringify({ ...rest, ok, date: new Date().toISOString() }));
}

// ---- the command line -----------------------------------------------------------------------------------------

/** `node test/chaos/run.ts [--quick] [--tasks N] [--seed S] [--agents A] [--concurrency C] [--keep]`; exits 1 on failure. */
export async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      tasks: { type: "string" },
      seed: { type: "string" },
      agents: { type: "string" },
      concurrency: { type: "string" },
      keep: { type: "boolean", default: false },
    },
  });
  const defaults = defaultOptions(values.quick);
  const tasks = values.tasks === undefined ? defaults.tasks : Number(values.tasks);
  const options: ChaosOptions = {
    ...defaults,
    tasks,
    window: windowFor(tasks),
    seed: values.seed === undefined ? defaults.seed : Number(values.seed),
    agents: values.agents === undefined ? defaults.agents : Number(values.agents),
    concurrency: values.concurrency === undefined ? defaults.concurrency : Number(values.concurrency),
    keep: values.keep,
  };
  const report = await runChaos(options);
  process.exit(report.ok ? 0 : 1);
}
