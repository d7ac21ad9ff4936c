import { describe, expect, it } from "vitest";
import { agentMessage, AgentMessage, parseFrame } from "../../contract/wire/agent";
import { MeshMessage, meshFrame, meshMessage } from "../../contract/wire/mesh";
import { ApiError, ERRORS, attempt, unwrap } from "../../contract/errors";
import { PoolEvents } from "../../durable-objects/pool-coordinator/events";
import { allows, TASK_TRANSITIONS, TaskMoves } from "../../durable-objects/pool-coordinator/tasks/transitions";
import { StatusCountDeltas } from "../../durable-objects/pool-coordinator/tasks/counts";
import { Timers } from "../../durable-objects/shared/timers";
import type { PoolEvent } from "../../contract/events";

describe("the error table", () => {
  it("gives every code one status and a canonical message, used when none is given", () => {
    expect(new ApiError("not_found").message).toBe(ERRORS.not_found.message);
    expect(new ApiError("rate_limited").status).toBe(429);
    const out = attempt(() => {
      throw new ApiError("conflict", "already final");
    });
    expect(out).toEqual({ ok: false, error: { code: "conflict", message: "already final" } });
    expect(() => unwrap(out)).toThrow(ApiError);
    expect(() => attempt(() => { throw new TypeError("bug"); })).toThrow(TypeError);
  });
});

describe("the wire builders", () => {
  it("build agent messages the mesh's schema reads back unchanged", () => {
    const sent = [agentMessage.ready(3), agentMessage.complete("t", "l", { a: 1 }), agentMessage.fail("t", "l", { message: "m" }, false), agentMessage.extend("t", "l", 5000), agentMessage.heartbeat({ currentLoad: 0.5, queueDepth: 1, avgLatencyMs: 2 })];
    for (const m of sent) expect(AgentMessage.parse(m)).toEqual(m);
    const parsed = parseFrame(JSON.stringify({ type: "batch", messages: sent }));
    expect(parsed).toEqual({ ok: true, messages: sent });
  });

  it("build mesh messages the agent's schema reads", () => {
    const messages = [meshMessage.hello("a", 5000), meshMessage.ack("t", "succeeded"), meshMessage.ack("t", "leased", 0), meshMessage.error(null, { code: "forbidden", message: "no" }), meshMessage.heartbeat("running", 5000)];
    for (const m of messages) expect(MeshMessage.safeParse(m).success).toBe(true);
    expect(JSON.parse(meshFrame(messages))).toEqual({ type: "batch", messages: JSON.parse(JSON.stringify(messages)) });
    expect(JSON.parse(meshFrame([messages[0]!]))).toEqual(messages[0]);
  });
});

describe("the task transitions", () => {
  it("are one table: what it lists is allowed, anything else throws before it is counted", () => {
    const emitted: PoolEvent[] = [];
    const counts = { moved: (..._: unknown[]) => undefined } as unknown as StatusCountDeltas;
    const moves = new TaskMoves(counts, (e) => emitted.push(e));
    const task = { id: "t", tenant: "x", agent_id: "a1" };
    for (const [name, rule] of Object.entries(TASK_TRANSITIONS)) {
      for (const from of rule.from) for (const to of rule.to) expect(allows(name as keyof typeof TASK_TRANSITIONS, from, to)).toBe(true);
    }
    expect(() => moves.move("lease", task, "waiting", "leased")).toThrow(/lease does not go from waiting/);
    expect(() => moves.move("complete", task, "queued", "succeeded")).toThrow();
    expect(() => moves.move("purge", task, "queued", null)).toThrow();
    expect(emitted).toEqual([]);
    moves.move("complete", task, "leased", "succeeded");
    expect(emitted).toEqual([
      { type: "lease_released", agentId: "a1" },
      { type: "task_finished", id: "t", tenant: "x", status: "succeeded" },
    ]);
  });
});

describe("pool events", () => {
  it("are acted on once per operation; a rolled-back change's events are dropped, earlier ones kept", () => {
    const log: string[] = [];
    const events = new PoolEvents({
      reapTerminating: (ids) => log.push(`reap ${[...ids].join(",")}`),
      pushRound: () => (log.push("push round"), null),
      send: () => log.push("send"),
      pokeLeaseWaiters: () => log.push("poke"),
      signalFinished: (ids) => log.push(`finished ${ids.join(",")}`),
    });
    events.emit({ type: "task_finished", id: "t1", tenant: "x", status: "succeeded" });
    events.beforeCommit();
    events.committed();
    events.emit({ type: "task_finished", id: "t2", tenant: "x", status: "cancelled" });
    events.emit({ type: "lease_released", agentId: "a1" });
    events.rolledBack();
    events.settle();
    expect(log).toEqual(["finished t1"]);
    log.length = 0;
    events.emit({ type: "lease_released", agentId: "a2" });
    events.beforeCommit();
    events.committed();
    events.settle();
    events.settle();
    expect(log).toEqual(["reap a2", "push round", "poke"]);
  });
});

describe("named timer kinds", () => {
  it("share one alarm: the earliest deadline of any kind, each kind's due work run, no kind twice", async () => {
    const armed: number[] = [];
    const timers = new Timers({ setAlarm: async (at: number | Date) => void armed.push(Number(at)) });
    const ran: string[] = [];
    timers.register({ name: "a", next: () => 50, run: (now, limit) => (ran.push(`a ${now} ${limit}`), 0) });
    timers.register({ name: "b", next: () => null, run: () => (ran.push("b"), 7) });
    expect(() => timers.register({ name: "a", next: () => null, run: () => 0 })).toThrow(/twice/);
    expect(timers.next(0)).toBe(50);
    expect(timers.runDue(10, 100)).toBe(7);
    expect(ran).toEqual(["a 10 100", "b"]);
    timers.set(80);
    timers.set(null);
    await timers.commit();
    timers.set(90);
    await timers.commit();
    await timers.rearm(0);
    expect(armed).toEqual([80, 50]);
    timers.fired();
    await timers.rearm(0);
    expect(armed).toEqual([80, 50, 50]);
  });
});
