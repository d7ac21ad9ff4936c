// Large payloads and results in the agent SDK (docs/payloads.md): a payload the mesh left out of a push is fetched
// under the lease token before the handler runs, a result too large for a frame goes over HTTP, and nothing makes a
// task wait forever. The fetch and routing logic against fakes, then an agent against a real mesh.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, type DevServer } from "../../scripts/dev-server.ts";
import { MeshAgent } from "../../agent/sdk/agent.ts";
import { MeshClient, MeshError, type SettleItem } from "../../agent/sdk/api.ts";
import { Backoff } from "../../agent/sdk/backoff.ts";
import { MAX_RESULT_BYTES, outcomeOf } from "../../agent/sdk/outcome.ts";
import { PAYLOAD_FETCH_TRIES, payloadOf } from "../../agent/sdk/payloads.ts";
import type { Settler, TransportHost } from "../../agent/sdk/transport.ts";
import { WsTransport, type SocketEvents, type SocketLike } from "../../agent/sdk/transport-ws.ts";
import type { LeasedTask } from "../../agent/sdk/wire.ts";

const MIB = 1024 * 1024;

function leased(fields: Partial<LeasedTask> = {}): LeasedTask {
  return { id: "p.0.AAAAAAAAAAAAAAAAAAAAAA", type: "p.work", pool: "p", payload: { n: 1 }, attempt: 1, timeoutMs: 30_000, leaseToken: "tok", leaseExpiresAt: new Date(Date.now() + 30_000).toISOString(), ...fields };
}

const quick = () => new Backoff({ baseMs: 1, maxMs: 1, random: () => 0 });

describe("fetching a payload that was left out", () => {
  it("passes an inline payload through without a call", async () => {
    const client = { leasedPayload: async () => Promise.reject(new Error("must not be called")) };
    expect(await payloadOf(client, leased(), new AbortController().signal)).toEqual({ ok: true, payload: { n: 1 } });
  });

  it("fetches it under the lease token, trying again after transient errors", async () => {
    const calls: [string, string][] = [];
    const client = {
      leasedPayload: async (id: string, token: string) => {
        calls.push([id, token]);
        if (calls.length < 3) throw new MeshError(calls.length === 1 ? 0 : 503, "unavailable", "try later");
        return { big: true };
      },
    };
    const got = await payloadOf(client, leased({ payload: null, payloadOmitted: true }), new AbortController().signal, quick());
    expect(got).toEqual({ ok: true, payload: { big: true } });
    expect(calls).toEqual(Array(3).fill(["p.0.AAAAAAAAAAAAAAAAAAAAAA", "tok"]));
  });

  it("reports a lost lease (409, 404) at once, and gives up after a few tries otherwise", async () => {
    const lost = { leasedPayload: async () => Promise.reject(new MeshError(409, "lease_lost", "not the current lease")) };
    expect(await payloadOf(lost, leased({ payloadOmitted: true }), new AbortController().signal, quick())).toMatchObject({ ok: false, lost: true });
    let tries = 0;
    const down = { leasedPayload: async () => (tries++, Promise.reject(new MeshError(500, "internal", "boom"))) };
    expect(await payloadOf(down, leased({ payloadOmitted: true }), new AbortController().signal, quick())).toMatchObject({ ok: false, lost: false });
    expect(tries).toBe(PAYLOAD_FETCH_TRIES);
  });
});

describe("results too large for a frame", () => {
  it("are completions up to 10 MB; beyond, the attempt fails as not retryable", () => {
    const big = { s: "x".repeat(5 * MIB) };
    expect(outcomeOf(leased(), { ok: true, result: big })).toMatchObject({ action: "complete", result: big });
    const huge = outcomeOf(leased(), { ok: true, result: { s: "x".repeat(MAX_RESULT_BYTES) } });
    expect(huge).toMatchObject({ action: "fail", retryable: false, error: { code: "result_too_large" } });
  });

  it("go over HTTP while the socket carries the small ones", async () => {
    let socket: { sent: string[]; events: SocketEvents } | null = null;
    const factory = (_url: string, events: SocketEvents): SocketLike => {
      socket = { sent: [], events };
      const s = socket;
      return { send: (text: string) => s.sent.push(text), close: () => {} };
    };
    const viaHttp: SettleItem[] = [];
    const settler: Settler = { send: (item) => viaHttp.push(item), drain: async () => {} };
    const host: TransportHost = { freeSlots: () => 1, onTask: () => {}, onSettled: () => {}, onAgentInfo: () => {}, onAgentGone: () => {}, log: () => {} };
    const client = { baseUrl: "http://mesh.test", lease: async () => [], heartbeat: async () => Promise.reject(new Error("no")) };
    const transport = new WsTransport({ pool: "p", agentId: "a1", host, client, token: "t", settler, socketFactory: factory, batchMaxDelayMs: 0 });
    const started = transport.start();
    socket!.events.onMessage(JSON.stringify({ type: "hello", agentId: "a1", heartbeatIntervalMs: 5000 }));
    await started;
    const task = leased();
    transport.send({ action: "complete", id: task.id, leaseToken: "small", result: { ok: 1 } });
    transport.send({ action: "complete", id: task.id, leaseToken: "big", result: { s: "x".repeat(2 * MIB) } });
    await new Promise((r) => setTimeout(r, 20));
    expect(viaHttp.map((i) => i.leaseToken)).toEqual(["big"]);
    expect(socket!.sent.join("")).toContain('"leaseToken":"small"');
    expect(socket!.sent.every((frame) => Buffer.byteLength(frame) < 1_000_000)).toBe(true);
    socket!.events.onMessage(JSON.stringify({ type: "ack", id: task.id, status: "succeeded" }));
    await transport.close();
  });
});

describe("an agent against the mesh, with large payloads and results", () => {
  let server: DevServer;
  let client: MeshClient;
  let dir: string;
  let handlers: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "daa-agent-payloads-"));
    handlers = join(dir, "handlers.mjs");
    // Answers the payload's size and echoes a result of the size it asks for.
    writeFileSync(handlers, `export default { "big.echo": async (payload) => ({ got: payload.s.length, mark: payload.mark, back: "r".repeat(payload.back) }) };`);
    server = await startDevServer();
    client = new MeshClient({ url: server.url, token: server.adminKey });
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(transport: "websocket" | "http", pool: string, sizes: { s: number; back: number }[]): Promise<void> {
    const logs: string[] = [];
    const agent = new MeshAgent({ url: server.url, token: server.adminKey, pool, handlers, transport, maxConcurrency: 4, log: (l) => logs.push(l) });
    await agent.start();
    try {
      const ids: string[] = [];
      for (const [i, { s, back }] of sizes.entries()) ids.push((await client.submitTask({ type: "big.echo", pool, payload: { s: "p".repeat(s), mark: `m${i}`, back } })).id);
      for (const [i, id] of ids.entries()) {
        let task = null;
        for (let k = 0; k < 6 && task === null; k++) {
          const { final, task: t } = await client.waitForResult(id, 5_000);
          if (final) task = t;
        }
        expect(task, logs.join("\n")).toMatchObject({ status: "succeeded" });
        const result = task!.result as { got: number; mark: string; back: string };
        expect(result.got).toBe(sizes[i]!.s);
        expect(result.mark).toBe(`m${i}`);
        expect(result.back.length).toBe(sizes[i]!.back);
      }
      expect(agent.stats().leaseLost).toBe(0);
      expect(agent.stats().failed).toBe(0);
    } finally {
      await agent.stop();
    }
  }

  it("over the WebSocket: a 300 KiB payload pushed inline, a 2 MiB one fetched, a 2 MiB result over HTTP", async () => {
    await run("websocket", "bigws", [
      { s: 300 * 1024, back: 300 * 1024 },
      { s: 2 * MIB, back: 2 * MIB },
      { s: 10, back: 10 },
    ]);
  }, 60_000);

  it("over HTTP long polling: 300 KiB and 2 MiB payloads and results", async () => {
    await run("http", "bighttp", [
      { s: 300 * 1024, back: 300 * 1024 },
      { s: 2 * MIB, back: 2 * MIB },
    ]);
  }, 60_000);
});
