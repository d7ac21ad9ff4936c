// The agent SDK against a real mesh (`wrangler dev`) over the HTTP transport: long-poll leases, settle batches,
// heartbeats, failures, memory limits, time limits, lease extension and a graceful stop.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, type DevServer } from "../../scripts/dev-server.ts";
import { MeshAgent } from "../../agent/sdk/agent.ts";
import { MeshClient, MeshError } from "../../agent/sdk/api.ts";
import type { AgentOptions } from "../../agent/sdk/types.ts";
import type { Task } from "../../agent/sdk/wire.ts";

let server: DevServer;
let client: MeshClient;
let dir: string;
let handlers: string;

const HANDLERS = `
const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  signal?.addEventListener("abort", () => { clearTimeout(t); reject(signal.reason); });
});
export default {
  "work.echo": async (payload, ctx) => { await sleep(payload.ms ?? 0); return { echo: payload, attempt: ctx.attempt }; },
  "work.flaky": async (payload, ctx) => { throw new Error("upstream failed (attempt " + ctx.attempt + ")"); },
  "work.invalid": async () => { throw Object.assign(new Error("payload has no image"), { retryable: false }); },
  "work.hog": async () => { const keep = []; for (;;) keep.push(new Array(100_000).fill(Math.random())); },
  "work.slow": async (payload, { signal }) => { await sleep(payload.ms, signal); return "done"; },
};
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "daa-agent-http-"));
  handlers = join(dir, "handlers.mjs");
  writeFileSync(handlers, HANDLERS);
  server = await startDevServer();
  client = new MeshClient({ url: server.url, token: server.adminKey });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

function agent(pool: string, options: Partial<AgentOptions> = {}): { agent: MeshAgent; logs: string[] } {
  const logs: string[] = [];
  const a = new MeshAgent({ url: server.url, token: server.adminKey, pool, handlers, transport: "http", log: (l) => logs.push(l), ...options }, { pollWaitMs: 2_000 });
  return { agent: a, logs };
}

async function final(id: string): Promise<Task> {
  for (let i = 0; i < 3; i++) {
    const { final, task } = await client.waitForResult(id, 5_000);
    if (final) return task;
  }
  throw new Error(`task ${id} did not finish`);
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("agent over HTTP against the mesh", () => {
  it("processes submitted tasks, reports measured load in heartbeats and honours a new heartbeat interval", async () => {
    expect((await api("PUT", "/v1/pools/basic/config", { heartbeatIntervalMs: 300 })).status).toBe(200);
    const { agent: a } = agent("basic", { maxConcurrency: 4, agentId: "basic-1", capabilities: ["echo"] });
    await a.start();
    try {
      expect(a.stats()).toMatchObject({ phase: "running", transport: "http", heartbeatIntervalMs: 300 });
      const tasks = Array.from({ length: 20 }, (_, n) => ({ type: "work.echo", pool: "basic", payload: { n, ms: 20 } }));
      const submitted = await api("POST", "/v1/tasks/batch", { tasks });
      const ids = (submitted.body as { tasks: { id: string }[] }).tasks.map((t) => t.id);
      const done = await Promise.all(ids.map(final));
      expect(done.map((t) => t.status)).toEqual(ids.map(() => "succeeded"));
      expect(done[3]?.result).toEqual({ echo: { n: 3, ms: 20 }, attempt: 1 });
      await until(() => a.stats().completed === 20);

      // The mesh sees the agent's own numbers: average handler time of about 20 ms, from heartbeats.
      await until(async () => (await client.listAgents("basic"))[0]?.load.avgLatencyMs !== 0, 5_000);
      const [listed] = await client.listAgents("basic");
      expect(listed).toMatchObject({ agentId: "basic-1", state: "running", capabilities: ["echo"], maxConcurrency: 4 });
      expect(listed?.load.avgLatencyMs).toBeGreaterThanOrEqual(15);
      expect(listed?.load.currentLoad).toBeGreaterThan(0); // memory alone is above zero

      await api("PUT", "/v1/pools/basic/config", { heartbeatIntervalMs: 450 });
      await until(() => a.stats().heartbeatIntervalMs === 450, 3_000);
    } finally {
      await a.stop();
    }
  });

  it("a handler that throws fails its task: retried unless the error says retryable: false", async () => {
    const { agent: a } = agent("fails", { maxConcurrency: 2 });
    await a.start();
    try {
      const flaky = await client.submitTask({ type: "work.flaky", pool: "fails", maxAttempts: 2 });
      const invalid = await client.submitTask({ type: "work.invalid", pool: "fails", maxAttempts: 3 });
      const unknown = await client.submitTask({ type: "work.unknown", pool: "fails", maxAttempts: 3 });
      const [f, i, u] = await Promise.all([final(flaky.id), final(invalid.id), final(unknown.id)]);
      // Retried once (after the mesh's backoff), then dead with the second attempt's error.
      expect(f).toMatchObject({ status: "dead", attempts: 2, error: { message: "upstream failed (attempt 2)", attempt: 2 } });
      expect(i).toMatchObject({ status: "dead", attempts: 1, error: { message: "payload has no image" } });
      expect(u).toMatchObject({ status: "dead", attempts: 1, error: { code: "no_handler", message: expect.stringMatching(/no handler for task type "work.unknown"/) } });
    } finally {
      await a.stop();
    }
  });

  it("a handler that exhausts its worker's memory fails its task, and the agent keeps working", async () => {
    const { agent: a } = agent("memory", { memoryLimitMb: 32 });
    await a.start();
    try {
      const hog = await client.submitTask({ type: "work.hog", pool: "memory", maxAttempts: 1 });
      expect(await final(hog.id)).toMatchObject({ status: "dead", error: { code: "out_of_memory", message: expect.stringMatching(/ran out of memory/) } });
      const after = await client.submitTask({ type: "work.echo", pool: "memory", payload: { after: "oom" } });
      expect(await final(after.id)).toMatchObject({ status: "succeeded", result: { echo: { after: "oom" } } });
      expect(a.stats().phase).toBe("running");
    } finally {
      await a.stop();
    }
  }, 30_000);

  it("fails a task that exceeds the per-task time limit, as retryable, with a clear message", async () => {
    const { agent: a } = agent("timeouts", { taskTimeoutMs: 400 });
    await a.start();
    try {
      const slow = await client.submitTask({ type: "work.slow", pool: "timeouts", payload: { ms: 10_000 }, maxAttempts: 2 });
      const task = await final(slow.id);
      expect(task).toMatchObject({ status: "dead", attempts: 2, error: { code: "timeout", message: "the task timed out after 400 ms; its handler was aborted" } });
      expect(a.stats().timedOut).toBe(2);
    } finally {
      await a.stop();
    }
  });

  it("extends the lease of a task that outlasts its timeoutMs", async () => {
    const { agent: a } = agent("extend", { taskTimeoutMs: 10_000 });
    await a.start();
    try {
      const long = await client.submitTask({ type: "work.slow", pool: "extend", payload: { ms: 2_600 }, timeoutMs: 1_000 });
      // Without extensions the lease would expire after 1 s and the attempt would count as failed.
      expect(await final(long.id)).toMatchObject({ status: "succeeded", attempts: 1, result: "done" });
    } finally {
      await a.stop();
    }
  });

  it("aborts a handler whose lease is lost (task cancelled) when its extension is refused", async () => {
    const { agent: a, logs } = agent("lost", { taskTimeoutMs: 20_000 });
    await a.start();
    try {
      const task = await client.submitTask({ type: "work.slow", pool: "lost", payload: { ms: 15_000 }, timeoutMs: 1_000 });
      await until(() => a.stats().inFlight === 1);
      expect((await api("POST", `/v1/tasks/${task.id}/cancel`)).status).toBe(200);
      // The extension at half of the 1 s lease answers lease_lost; the handler is aborted and its slot freed.
      await until(() => a.stats().inFlight === 0, 5_000);
      expect(a.stats().leaseLost).toBe(1);
      expect(logs.some((l) => l.startsWith(`task ${task.id}: lease lost`))).toBe(true);
      expect((await client.getTask(task.id)).status).toBe("cancelled");
    } finally {
      await a.stop();
    }
  });

  it("stops gracefully: takes no new work, finishes what is in flight, then deregisters", async () => {
    const { agent: a, logs } = agent("drain", { maxConcurrency: 2, agentId: "drainer" });
    await a.start();
    const ids = [];
    for (let i = 0; i < 2; i++) ids.push((await client.submitTask({ type: "work.echo", pool: "drain", payload: { i, ms: 1_500 } })).id);
    await until(() => a.stats().inFlight === 2);
    const stopping = a.stop();
    await until(() => a.stats().phase === "stopping");
    const later = await client.submitTask({ type: "work.echo", pool: "drain", payload: { late: true } });
    await stopping;
    expect(a.stats()).toMatchObject({ phase: "stopped", inFlight: 0, completed: 2 });
    for (const id of ids) expect((await client.getTask(id)).status).toBe("succeeded");
    expect((await client.getTask(later.id)).status).toBe("queued");
    await expect(client.listAgents("drain")).resolves.toEqual([]);
    const gone = await api("GET", "/v1/pools/drain/agents/drainer");
    expect(gone.status).toBe(404);
    expect(logs.some((l) => l.startsWith("stopping: no new tasks; waiting for 2 in flight"))).toBe(true);
    await a.closed;
  });

  it("fails start() when the mesh refuses the registration, and leaves nothing behind", async () => {
    const { agent: a } = agent("refused", { token: "not-a-credential" });
    const err: unknown = await a.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeshError);
    expect(err).toMatchObject({ status: 401, code: "unauthorized" });
    expect(a.stats().phase).toBe("stopped");
  });
});
