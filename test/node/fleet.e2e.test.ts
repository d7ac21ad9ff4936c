// Real agent processes (the daa CLI) against the mesh under wrangler dev: crashes, drains and mesh restarts.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, startDevServer, type DevServer } from "../../scripts/dev-server.ts";

let server: DevServer;
let persistDir: string;
let work: string;
const agents: ChildProcess[] = [];

/** A handler module whose every result is also written down by the agent that produced it. */
const HANDLERS = `
import { appendFileSync } from "node:fs";
export default {
  "e2e.work": async (payload, { taskId, signal }) => {
    await new Promise((resolve, reject) => {
      const t = setTimeout(resolve, payload.ms ?? 0);
      signal.addEventListener("abort", () => { clearTimeout(t); reject(signal.reason); });
    });
    const result = { by: process.env.E2E_AGENT, taskId };
    appendFileSync(process.env.E2E_LOG, JSON.stringify(result) + "\\n");
    return result;
  },
};
`;

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

function startAgent(pool: string, agentId: string, concurrency = 1): ChildProcess {
  const child = spawn(process.execPath, [join(ROOT, "agent", "bin", "daa.mjs"), "agent", "--pool", pool, "--handlers", join(work, "handlers.mjs"), "--agent-id", agentId, "--concurrency", String(concurrency)], {
    cwd: ROOT,
    env: { ...process.env, DAA_URL: server.url, DAA_TOKEN: server.adminKey, E2E_AGENT: agentId, E2E_LOG: join(work, "results.log") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stderr?.on("data", () => undefined);
  child.stdout?.on("data", () => undefined);
  agents.push(child);
  return child;
}

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const running = (pool: string, agentId: string) => async () => (await call("GET", `/v1/pools/${pool}/agents/${agentId}`)).body?.state === "running";
const producedBy = () =>
  readFileSync(join(work, "results.log"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { by: string; taskId: string });

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "daa-fleet-"));
  writeFileSync(join(work, "handlers.mjs"), HANDLERS);
  writeFileSync(join(work, "results.log"), "");
  persistDir = mkdtempSync(join(tmpdir(), "daa-fleet-state-"));
  server = await startDevServer({ persistDir });
}, 120_000);

afterAll(async () => {
  for (const a of agents) if (a.exitCode === null) a.kill("SIGKILL");
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
  rmSync(persistDir, { recursive: true, force: true });
});

describe("a fleet of real agent processes", () => {
  it("finishes a task on another agent, with one accepted result, after its agent is SIGKILLed mid-task", async () => {
    const pool = "crash";
    await call("PUT", `/v1/pools/${pool}/config`, { heartbeatIntervalMs: 500, missedHeartbeats: 3 });
    const victim = startAgent(pool, "victim");
    await until("the victim to run", running(pool, "victim"));
    const task = (await call("POST", "/v1/tasks", { type: "e2e.work", pool, payload: { ms: 4000 }, timeoutMs: 60_000 })).body;
    await until("the victim to hold the task", async () => (await call("GET", `/v1/tasks/${task.id}`)).body.agentId === "victim");
    victim.kill("SIGKILL");
    const started = Date.now();
    startAgent(pool, "survivor");
    const done = await until("the task to finish", async () => {
      const t = (await call("GET", `/v1/tasks/${task.id}`)).body;
      return t.status === "succeeded" ? t : null;
    });
    expect(done.result).toEqual({ by: "survivor", taskId: task.id });
    expect(done.attempts).toBe(2);
    // The victim died before producing anything; the survivor produced exactly one result, the accepted one.
    expect(producedBy().filter((r) => r.taskId === task.id)).toEqual([{ by: "survivor", taskId: task.id }]);
    // Detected within missedHeartbeats x heartbeatIntervalMs (1.5 s), plus the 4 s of work on the survivor.
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 60_000);

  it("drains on SIGTERM: the task in hand finishes and the agent deregisters", async () => {
    const pool = "drain";
    const agent = startAgent(pool, "drainer");
    await until("the agent to run", running(pool, "drainer"));
    const task = (await call("POST", "/v1/tasks", { type: "e2e.work", pool, payload: { ms: 1500 } })).body;
    await until("the agent to hold the task", async () => (await call("GET", `/v1/tasks/${task.id}`)).body.status === "leased");
    const exited = new Promise<number | null>((resolve) => agent.once("exit", (code) => resolve(code)));
    agent.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect((await call("GET", `/v1/tasks/${task.id}`)).body).toMatchObject({ status: "succeeded", result: { by: "drainer" } });
    expect((await call("GET", `/v1/pools/${pool}/agents/drainer`)).status).toBe(404);
  }, 60_000);

  it("reconnects after the mesh process restarts and keeps working", async () => {
    const pool = "restart";
    startAgent(pool, "steady", 2);
    await until("the agent to run", running(pool, "steady"));
    const before = (await call("POST", "/v1/tasks", { type: "e2e.work", pool, payload: { ms: 10 } })).body;
    await until("the first task", async () => (await call("GET", `/v1/tasks/${before.id}`)).body.status === "succeeded");

    const { adminKey, masterKey } = server;
    const port = Number(new URL(server.url).port);
    await server.stop();
    // The same address: the agents keep retrying it with backoff while the mesh is down.
    server = await startDevServer({ persistDir, adminKey, masterKey, port });

    const after = (await call("POST", "/v1/tasks", { type: "e2e.work", pool, payload: { ms: 10 } })).body;
    const done = await until(
      "a task submitted after the restart",
      async () => {
        const t = (await call("GET", `/v1/tasks/${after.id}`)).body;
        return t.status === "succeeded" ? t : null;
      },
      30_000,
    );
    expect(done.result).toEqual({ by: "steady", taskId: after.id });
    expect((await call("GET", `/v1/tasks/${before.id}`)).body.status).toBe("succeeded");
  }, 90_000);
});
