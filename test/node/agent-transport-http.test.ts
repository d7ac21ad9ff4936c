// The HTTP transport's long-poll loop and the settle batching, against fake API calls.
import { describe, expect, it } from "vitest";
import { MeshError, type SettleItem, type SettleResult } from "../../agent/sdk/api.ts";
import { HttpSettler } from "../../agent/sdk/settler-http.ts";
import { HttpTransport } from "../../agent/sdk/transport-http.ts";
import type { AgentApi, Settler, TransportHost } from "../../agent/sdk/transport.ts";
import type { AgentInfo, LeasedTask } from "../../agent/sdk/wire.ts";

function leased(id: string): LeasedTask {
  return { id, type: "p.work", pool: "p", payload: {}, attempt: 1, timeoutMs: 30_000, leaseToken: `tok-${id}`, leaseExpiresAt: new Date(Date.now() + 30_000).toISOString() };
}

async function until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface FakeHost extends TransportHost {
  capacity: number;
  running: number;
  tasks: LeasedTask[];
  settled: [SettleItem, SettleResult][];
  gone: string[];
  logs: string[];
}

function host(capacity: number): FakeHost {
  const h: FakeHost = {
    capacity,
    running: 0,
    tasks: [],
    settled: [],
    gone: [],
    logs: [],
    freeSlots: () => h.capacity - h.running,
    onTask: (task) => {
      h.tasks.push(task);
      h.running++;
    },
    onSettled: (item, result) => void h.settled.push([item, result]),
    onAgentInfo: () => {},
    onAgentGone: (reason) => void h.gone.push(reason),
    log: (line) => void h.logs.push(line),
  };
  return h;
}

const noSettler: Settler = { send: () => {}, drain: async () => {} };
const info = { agentId: "a1", pool: "p", state: "running", capabilities: [], maxConcurrency: 1, inFlight: 0, load: { currentLoad: 0, queueDepth: 0, avgLatencyMs: 0 }, lastHeartbeatAt: "" } satisfies AgentInfo;

describe("HTTP transport: the lease loop", () => {
  it("asks for as many tasks as there are free slots, and waits for a freed slot when there are none", async () => {
    const h = host(3);
    const calls: { max: number; waitMs: number }[] = [];
    const queue = [[leased("t1"), leased("t2")], [leased("t3")]];
    const client: AgentApi = {
      baseUrl: "http://mesh.test",
      heartbeat: async () => info,
      lease: async (_pool, _agent, max, waitMs, signal) => {
        calls.push({ max, waitMs });
        const next = queue.shift();
        if (next) return next;
        // Nothing more: behave like a long poll that is cut short by pause().
        await new Promise((r) => signal?.addEventListener("abort", r));
        return [];
      },
    };
    const t = new HttpTransport({ pool: "p", agentId: "a1", host: h, client, settler: noSettler, pollWaitMs: 20_000 });
    await t.start();
    await until(() => h.tasks.length === 3);
    expect(calls).toEqual([
      { max: 3, waitMs: 20_000 },
      { max: 1, waitMs: 20_000 },
    ]);
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toHaveLength(2); // no slot free: no lease call
    h.running--;
    t.wake();
    await until(() => calls.length === 3);
    expect(calls[2]).toEqual({ max: 1, waitMs: 20_000 });
    await t.close();
  });

  it("backs off when the mesh answers empty at once (agent paused or failed) and after errors; 404 means the agent is gone", async () => {
    const h = host(1);
    const times: number[] = [];
    let n = 0;
    const client: AgentApi = {
      baseUrl: "http://mesh.test",
      heartbeat: async () => info,
      lease: async () => {
        times.push(Date.now());
        n++;
        if (n <= 2) return [];
        if (n === 3) throw new MeshError(503, "http_503", "unavailable");
        throw new MeshError(404, "not_found", "agent a1 not found");
      },
    };
    const t = new HttpTransport({ pool: "p", agentId: "a1", host: h, client, settler: noSettler, pollWaitMs: 20_000 });
    await t.start();
    await until(() => h.gone.length === 1, 5_000);
    expect(times).toHaveLength(4);
    // Each quick empty answer or error waited at least half the 250 ms base step.
    for (let i = 1; i < times.length; i++) expect((times[i] ?? 0) - (times[i - 1] ?? 0)).toBeGreaterThanOrEqual(120);
    expect(h.gone[0]).toBe("lease answered 404: agent a1 not found");
    expect(h.logs.some((l) => l.startsWith("lease failed (http_503: unavailable); retrying in"))).toBe(true);
    await t.close();
  });
});

describe("HTTP settler: outcomes in batches", () => {
  const complete = (id: string): SettleItem => ({ action: "complete", id, leaseToken: `tok-${id}`, result: null });

  it("sends what arrives within a few ms in one request and answers each item", async () => {
    const h = host(1);
    const requests: SettleItem[][] = [];
    const settler = new HttpSettler(
      {
        settle: async (items) => {
          requests.push([...items]);
          return items.map((i): SettleResult => (i.id === "t2" ? { id: i.id, ok: false, code: "lease_lost", message: "not current" } : { id: i.id, ok: true, status: "succeeded", leaseExpiresAt: null }));
        },
      },
      h,
    );
    for (const id of ["t1", "t2", "t3"]) settler.send(complete(id));
    await settler.drain(1_000);
    expect(requests.map((r) => r.map((i) => i.id))).toEqual([["t1", "t2", "t3"]]);
    expect(h.settled.map(([item, result]) => [item.id, result.ok])).toEqual([
      ["t1", true],
      ["t2", false],
      ["t3", true],
    ]);
  });

  it("retries while the mesh cannot be reached, and reports a refused request on every item", async () => {
    const h = host(1);
    let attempts = 0;
    const flaky = new HttpSettler(
      {
        settle: async (items) => {
          attempts++;
          if (attempts < 3) throw new MeshError(0, "unreachable", "cannot reach http://mesh.test: ECONNREFUSED");
          return items.map((i): SettleResult => ({ id: i.id, ok: true, status: "succeeded", leaseExpiresAt: null }));
        },
      },
      h,
    );
    flaky.send(complete("t1"));
    await until(() => h.settled.length === 1, 5_000);
    expect(attempts).toBe(3);
    expect(h.logs.filter((l) => l.startsWith("settling 1 outcome(s) failed (unreachable"))).toHaveLength(2);

    const refused = new HttpSettler({ settle: async () => Promise.reject(new MeshError(400, "invalid_request", "items.0.leaseToken: Required")) }, h);
    refused.send(complete("t9"));
    await refused.drain(1_000);
    expect(h.settled.at(-1)).toEqual([complete("t9"), { id: "t9", ok: false, code: "invalid_request", message: "items.0.leaseToken: Required" }]);
  });
});
