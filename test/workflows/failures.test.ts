import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, expectError, freshPool, poolStub } from "../helpers";
import { agents, round, runUntilFinal, type Handler } from "./agents";

/** runInDurableObject without its deep generic types (the test reaches into the objects' parts). */
const inObject = runInDurableObject as unknown as (stub: unknown, fn: (instance: any, state: DurableObjectState) => unknown) => Promise<any>;

const start = async (body: unknown) => {
  const res = await api("POST", "/v1/workflows", body);
  if (res.status !== 201) throw new Error(`start answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
};
const statuses = (w: any) => Object.fromEntries(w.steps.map((s: any) => [s.key, s.status]));
const task = async (id: string) => (await api("GET", `/v1/tasks/${id}`)).body;

/** A handler that fails tasks whose payload says so, holds those that say `hold`, and echoes the rest. */
const scripted: Handler = (p) => (p.hold ? null : p.fail ? { fail: "scripted failure" } : { result: { echo: p } });

describe("workflow failures, cancel and retry", () => {
  it("fail_fast: a failed step cancels what runs (and its tasks) and skips the rest", async () => {
    const pool = freshPool("wff");
    const pools = { [pool]: scripted };
    await agents(pools);
    const w = await start({
      steps: [
        { key: "bad", type: `${pool}.x`, payload: { fail: true }, maxAttempts: 1 },
        { key: "slow", type: `${pool}.x`, payload: { hold: true } },
        { key: "after", type: `${pool}.x`, dependsOn: ["bad"] },
      ],
    });
    const done = await runUntilFinal(w.id, pools);
    expect(done.status).toBe("failed");
    expect(statuses(done)).toEqual({ bad: "failed", slow: "cancelled", after: "skipped" });
    expect(done.steps[0].error.message).toBe("scripted failure");
    // The cascade reached the held task (cancelled after the commit, through the entrypoint).
    for (let i = 0; i < 50 && (await task(done.steps[1].taskIds[0])).status !== "cancelled"; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await task(done.steps[1].taskIds[0])).status).toBe("cancelled");
    expect(done.steps[2].taskIds).toEqual([]);
  });

  it("continue: only the failed step's dependents are skipped; continueOnFailure lets its dependents run", async () => {
    const pool = freshPool("wfc");
    const pools = { [pool]: scripted };
    await agents(pools);
    const w = await start({
      onFailure: "continue",
      steps: [
        { key: "bad", type: `${pool}.x`, payload: { fail: true }, maxAttempts: 1 },
        { key: "good", type: `${pool}.x`, payload: { n: 1 } },
        { key: "after-bad", type: `${pool}.x`, dependsOn: ["bad"] },
        { key: "after-good", type: `${pool}.x`, dependsOn: ["good"], input: { g: { $ref: "good.result.echo.n" } } },
        { key: "tolerated", type: `${pool}.x`, payload: { fail: true }, maxAttempts: 1, continueOnFailure: true },
        { key: "after-tolerated", type: `${pool}.x`, dependsOn: ["tolerated"], input: { t: { $ref: "tolerated.result" } } },
      ],
    });
    const done = await runUntilFinal(w.id, pools);
    expect(done.status).toBe("failed");
    expect(statuses(done)).toEqual({ bad: "failed", good: "succeeded", "after-bad": "skipped", "after-good": "succeeded", tolerated: "failed", "after-tolerated": "succeeded" });
    expect(done.steps[3].result).toEqual({ echo: { g: 1 } });
    expect(done.steps[5].result).toEqual({ echo: { t: null } });
  });

  it("cancel cascades to unfinished tasks; a final run answers 409", async () => {
    const pool = freshPool("wfx");
    const pools = { [pool]: scripted };
    await agents(pools);
    const w = await start({
      steps: [
        { key: "list", type: `${pool}.x`, payload: { items: [1, 2, 3, 4, 5] } },
        { key: "each", type: `${pool}.x`, dependsOn: ["list"], forEach: { $ref: "list.result.echo.items" }, payload: { hold: true } },
        { key: "join", type: `${pool}.x`, dependsOn: ["each"] },
      ],
    });
    let view = w;
    for (let i = 0; i < 100 && view.steps[1].taskIds.length < 5; i++) {
      await round(pools);
      view = (await api("GET", `/v1/workflows/${w.id}`)).body;
    }
    expect(view.steps[1].taskIds).toHaveLength(5);
    const cancelled = await api("POST", `/v1/workflows/${w.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe("cancelled");
    expect(statuses(cancelled.body)).toEqual({ list: "succeeded", each: "cancelled", join: "cancelled" });
    for (const id of view.steps[1].taskIds) expect((await task(id)).status).toBe("cancelled");
    expectError(await api("POST", `/v1/workflows/${w.id}/cancel`), 409, "conflict");
    expect((await api("GET", `/v1/workflows/${w.id}/result`)).status).toBe(200);
  });

  it("retries a failed step and the steps skipped because of it; 409 for a step that has not failed", async () => {
    const pool = freshPool("wfr");
    let failNext = true;
    const pools: Record<string, Handler> = {
      [pool]: (p) => {
        if (p.flaky && failNext) return (failNext = false), { fail: "first time" };
        return { result: { echo: p } };
      },
    };
    await agents(pools);
    const w = await start({
      steps: [
        { key: "flaky", type: `${pool}.x`, payload: { flaky: true }, maxAttempts: 1 },
        { key: "next", type: `${pool}.x`, dependsOn: ["flaky"], input: { f: { $ref: "flaky.result.echo.flaky" } } },
      ],
    });
    const failed = await runUntilFinal(w.id, pools);
    expect(statuses(failed)).toEqual({ flaky: "failed", next: "skipped" });
    expectError(await api("POST", `/v1/workflows/${w.id}/steps/next/retry`), 409, "conflict");
    expectError(await api("POST", `/v1/workflows/${w.id}/steps/nope/retry`), 404, "not_found");
    const again = await api("POST", `/v1/workflows/${w.id}/steps/flaky/retry`);
    expect(again.status).toBe(200);
    expect(again.body.status).toBe("running");
    const done = await runUntilFinal(w.id, pools);
    expect(done.status).toBe("succeeded");
    expect(done.steps[0].attempts).toBe(2);
    expect(done.steps[0].taskIds).toHaveLength(1);
    expect(done.steps[0].taskIds[0]).not.toBe(failed.steps[0].taskIds[0]);
    expect(done.result).toEqual({ next: { echo: { f: true } } });
    expectError(await api("POST", `/v1/workflows/${w.id}/steps/flaky/retry`), 409, "conflict");
  });

  it("fails a forEach step over more than 10,000 elements", async () => {
    const pool = freshPool("wfe");
    const pools: Record<string, Handler> = { [pool]: (p) => ({ result: p.big ? Array.from({ length: 10_001 }, (_, i) => i) : p }) };
    await agents(pools);
    const w = await start({ steps: [{ key: "big", type: `${pool}.x`, payload: { big: true } }, { key: "each", type: `${pool}.x`, dependsOn: ["big"], forEach: { $ref: "big.result" } }] });
    const done = await runUntilFinal(w.id, pools);
    expect(statuses(done)).toEqual({ big: "succeeded", each: "failed" });
    expect(done.steps[1].error.message).toMatch(/10001 elements; at most 10000/);
    expect(done.steps[1].taskIds).toEqual([]);
  });

  it("keeps a task's end in the pool's outbox while the run cannot be told, and delivers it on the retry", async () => {
    const pool = freshPool("wfo");
    const pools = { [pool]: scripted };
    await agents(pools);
    const w = await start({ steps: [{ key: "one", type: `${pool}.x`, payload: { n: 1 } }] });
    const shard = poolStub(pool);
    let calls = 0;
    await inObject(shard, (instance: any) => {
      const host = instance.parts.workflows.host;
      host.original = host.deliver;
      host.deliver = async () => {
        calls++;
        throw new Error("the run is unreachable");
      };
    });
    await round(pools);
    await new Promise((r) => setTimeout(r, 100));
    expect(calls).toBe(1);
    expect((await api("GET", `/v1/workflows/${w.id}`)).body.steps[0].status).toBe("running");
    const pending = await inObject(shard, (instance: any) => instance.parts.shell.core.workflowCallbacks.pending());
    expect(pending).toBe(1);
    await inObject(shard, (instance: any) => {
      const host = instance.parts.workflows.host;
      host.deliver = host.original;
    });
    // The first retry waits 1 s on the "workflows" timer kind.
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await runDurableObjectAlarm(shard)).toBe(true);
    const done = await api("GET", `/v1/workflows/${w.id}/result?waitMs=5000`);
    expect(done.status).toBe(200);
    expect(done.body.steps[0].result).toEqual({ echo: { n: 1 } });
    expect(await inObject(shard, (instance: any) => instance.parts.shell.core.workflowCallbacks.pending())).toBe(0);
  });

  it("survives its object being reset mid-run: everything is read back from SQLite", async () => {
    const a = freshPool("wfs");
    const b = freshPool("wft");
    const pools: Record<string, Handler> = { [a]: (p) => ({ result: { items: p.items } }), [b]: (p) => ({ result: (p.item ?? 0) * 2 }) };
    await agents(pools);
    const w = await start({
      steps: [
        { key: "list", type: `${a}.x`, payload: { items: [1, 2, 3] } },
        { key: "double", type: `${b}.x`, dependsOn: ["list"], forEach: { $ref: "list.result.items" } },
      ],
    });
    await round({ [a]: pools[a]! });
    await new Promise((r) => setTimeout(r, 200));
    // Abort the run's object: its in-memory state (opened results, waiters) is gone; SQLite stays.
    const stub = env.WORKFLOWS.getByName(w.id);
    await inObject(stub, (_instance, state) => state.abort("test restart")).catch(() => undefined);
    const done = await runUntilFinal(w.id, pools);
    expect(done.status).toBe("succeeded");
    expect(done.steps[1].result).toEqual([2, 4, 6]);
  });

  it("answers 404 for unknown and malformed ids", async () => {
    expectError(await api("GET", "/v1/workflows/wf_doesnotexist"), 404, "not_found");
    expectError(await api("GET", "/v1/workflows/wf_doesnotexist/result"), 404, "not_found");
    expectError(await api("POST", "/v1/workflows/wf_doesnotexist/steps/a/retry"), 404, "not_found");
    expectError(await api("GET", "/v1/workflows/not-an-id"), 404, "not_found");
  });
});
