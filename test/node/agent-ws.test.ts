// The agent SDK against a real mesh over the WebSocket transport: pushed tasks, credits, reconnects.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, type DevServer } from "../../scripts/dev-server.ts";
import { MeshAgent, type AgentInternals } from "../../agent/sdk/agent.ts";
import { MeshClient } from "../../agent/sdk/api.ts";
import { nodeSocket, type SocketFactory, type SocketLike } from "../../agent/sdk/transport-ws.ts";
import type { AgentOptions, HandlerMap } from "../../agent/sdk/types.ts";
import type { Task } from "../../agent/sdk/wire.ts";

let server: DevServer;
let client: MeshClient;
let dir: string;
let handlersModule: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "daa-agent-ws-"));
  handlersModule = join(dir, "handlers.mjs");
  writeFileSync(
    handlersModule,
    `export default {
  "ws.echo": async (payload, ctx) => { if (payload.ms) await new Promise((r) => setTimeout(r, payload.ms)); return { n: payload.n, attempt: ctx.attempt }; },
};`,
  );
  server = await startDevServer();
  client = new MeshClient({ url: server.url, token: server.adminKey });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function agent(pool: string, options: Partial<AgentOptions> = {}, internals: AgentInternals = {}): { agent: MeshAgent; logs: string[] } {
  const logs: string[] = [];
  const a = new MeshAgent({ url: server.url, token: server.adminKey, pool, handlers: handlersModule, transport: "websocket", log: (l) => logs.push(l), ...options }, internals);
  return { agent: a, logs };
}

async function submitMany(pool: string, n: number, payload: (i: number) => unknown = (i) => ({ n: i })): Promise<string[]> {
  const res = await fetch(`${server.url}/v1/tasks/batch`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" },
    body: JSON.stringify({ tasks: Array.from({ length: n }, (_, i) => ({ type: "ws.echo", pool, payload: payload(i) })) }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { tasks: { id: string }[] }).tasks.map((t) => t.id);
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

describe("agent over WebSocket against the mesh", () => {
  it("receives pushed tasks and completes them in batches", async () => {
    const { agent: a } = agent("push", { maxConcurrency: 8 });
    await a.start();
    try {
      expect(a.stats().transport).toBe("websocket");
      const ids = await submitMany("push", 200);
      const done = await Promise.all(ids.map(final));
      expect(done.filter((t) => t.status === "succeeded")).toHaveLength(200);
      expect(done[17]?.result).toEqual({ n: 17, attempt: 1 });
      await until(() => a.stats().completed === 200);
      expect(a.stats().leaseLost).toBe(0);
    } finally {
      await a.stop();
    }
    await expect(client.listAgents("push")).resolves.toEqual([]);
  });

  it("never holds more tasks than its credits (free slots)", async () => {
    let running = 0;
    let most = 0;
    const gates: (() => void)[] = [];
    const handlers: HandlerMap = {
      "ws.echo": async (payload) => {
        running++;
        most = Math.max(most, running);
        await new Promise<void>((r) => gates.push(r));
        running--;
        return payload;
      },
    };
    const { agent: a } = agent("credits", { maxConcurrency: 2, handlers, agentId: "credit-1" });
    await a.start();
    try {
      const ids = await submitMany("credits", 6);
      await until(() => gates.length === 2);
      await new Promise((r) => setTimeout(r, 300)); // time for the mesh to push more, if it would
      const [listed] = await client.listAgents("credits");
      expect(listed).toMatchObject({ agentId: "credit-1", inFlight: 2, credits: 0 });
      const stats = (await (await fetch(`${server.url}/v1/pools/credits`, { headers: { authorization: `Bearer ${server.adminKey}` } })).json()) as { queue: Record<string, number> };
      expect(stats.queue).toMatchObject({ leased: 2, queued: 4 });
      expect(a.stats().inFlight).toBe(2);
      // Release tasks one by one: each completion gives one credit back, and the next task arrives.
      while (gates.length > 0 || a.stats().inFlight > 0) {
        gates.shift()?.();
        await new Promise((r) => setTimeout(r, 20));
      }
      await Promise.all(ids.map(final));
      expect(most).toBe(2);
    } finally {
      gates.forEach((g) => g());
      await a.stop();
    }
  });

  it("reconnects after the socket drops, keeps its leases, and goes on receiving tasks", async () => {
    const sockets: SocketLike[] = [];
    const socketFactory: SocketFactory = (url, events) => {
      const s = nodeSocket(url, events);
      sockets.push(s);
      return s;
    };
    const { agent: a, logs } = agent("reconnect", { maxConcurrency: 2 }, { socketFactory });
    await a.start();
    try {
      const [inFlight] = await submitMany("reconnect", 1, () => ({ n: 0, ms: 800 }));
      await until(() => a.stats().inFlight === 1);
      sockets[0]?.close(4002, "test: drop the connection");
      await until(() => logs.includes("WebSocket reconnected"), 10_000);
      expect(sockets).toHaveLength(2);
      // The task that ran across the drop completes on its first attempt: the lease was kept.
      expect(await final(inFlight ?? "")).toMatchObject({ status: "succeeded", attempts: 1 });
      const after = await submitMany("reconnect", 20);
      const done = await Promise.all(after.map(final));
      expect(done.every((t) => t.status === "succeeded" && t.attempts === 1)).toBe(true);
      expect(a.stats().transport).toBe("websocket");
    } finally {
      await a.stop();
    }
  });

  it("extends leases over the socket while a long task runs", async () => {
    const { agent: a } = agent("ws-extend", { taskTimeoutMs: 10_000 });
    await a.start();
    try {
      const task = await client.submitTask({ type: "ws.echo", pool: "ws-extend", payload: { n: 1, ms: 2_200 }, timeoutMs: 1_000 });
      expect(await final(task.id)).toMatchObject({ status: "succeeded", attempts: 1, result: { n: 1, attempt: 1 } });
      expect(a.stats()).toMatchObject({ transport: "websocket", leaseLost: 0 });
    } finally {
      await a.stop();
    }
  });

  it("with transport auto, falls back to HTTP long polling when the socket cannot be opened", async () => {
    const refused: SocketFactory = (_url, events) => {
      setTimeout(() => events.onClose(1006, ""), 10);
      return { send: () => {}, close: () => {} };
    };
    const { agent: a, logs } = agent("fallback", { transport: "auto" }, { socketFactory: refused, pollWaitMs: 1_000 });
    await a.start();
    try {
      expect(a.stats().transport).toBe("http");
      expect(logs.some((l) => /cannot open the WebSocket: closed \(1006\); using HTTP long polling instead/.test(l))).toBe(true);
      const [id] = await submitMany("fallback", 1);
      expect(await final(id ?? "")).toMatchObject({ status: "succeeded" });
    } finally {
      await a.stop();
    }
  });

  it("stops gracefully over the socket: in-flight tasks finish, then the agent is gone", async () => {
    const { agent: a } = agent("ws-drain", { maxConcurrency: 2 });
    await a.start();
    const ids = await submitMany("ws-drain", 2, (i) => ({ n: i, ms: 700 }));
    await until(() => a.stats().inFlight === 2);
    await a.stop();
    for (const id of ids) expect((await client.getTask(id)).status).toBe("succeeded");
    await expect(client.listAgents("ws-drain")).resolves.toEqual([]);
  });
});
