import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { get, inObject, schedule, tasksInPool, tenantAt } from "./helpers";

describe("schedules: a workflow target", () => {
  it("each slot starts the workflow once; overlap skip waits for it to be final", async () => {
    const t = await tenantAt("2036-01-01T00:10:00Z");
    const workflow = { name: "nightly", steps: [{ key: "collect", type: `${t.pool}.collect`, payload: { day: 1 } }, { key: "report", type: `${t.pool}.report`, dependsOn: ["collect"] }] };
    const s = await schedule(t, { cron: "0 * * * *", task: undefined, workflow });
    expect(s.workflow).toMatchObject({ name: "nightly", onFailure: "fail_fast" });
    expect(s.task).toBeUndefined();

    expect(await t.clock.to("2036-01-01T01:00:00Z")).toBe(true);
    const run = (await get(t, s.id)).runs[0];
    expect(run).toMatchObject({ status: "submitted", taskId: null, workflowId: expect.stringMatching(/^wf_/) });
    const w = await t.call("GET", `/v1/workflows/${run.workflowId}`);
    expect(w.status).toBe(200);
    expect(w.body).toMatchObject({ name: "nightly", tenant: t.tenant, status: "running" });
    expect(w.body.steps.map((x: any) => [x.key, x.status])).toEqual([["collect", "running"], ["report", "pending"]]);
    const listed = await t.call("GET", "/v1/workflows");
    expect(listed.body.workflows.map((x: any) => x.id)).toEqual([run.workflowId]);
    expect((await tasksInPool(t)).map((x) => x.type)).toEqual([`${t.pool}.collect`]);

    // Still running at the next slot: skipped.
    expect(await t.clock.to("2036-01-01T02:00:00Z")).toBe(true);
    expect((await get(t, s.id)).runs[0]).toMatchObject({ slot: "2036-01-01T02:00:00.000Z", status: "skipped", reason: "overlap" });
    // Cancelled (final): the next slot starts a new one.
    expect((await t.call("POST", `/v1/workflows/${run.workflowId}/cancel`)).status).toBe(200);
    expect(await t.clock.to("2036-01-01T03:00:00Z")).toBe(true);
    const next = (await get(t, s.id)).runs[0];
    expect(next).toMatchObject({ status: "submitted", workflowId: expect.stringMatching(/^wf_/) });
    expect(next.workflowId).not.toBe(run.workflowId);
    expect((await t.call("GET", "/v1/workflows")).body.workflows.length).toBe(2);
    // A trigger while it runs: skipped; nextRunAt unchanged.
    const trig = await t.call("POST", `/v1/schedules/${s.id}/trigger`);
    expect(trig.body.run).toMatchObject({ status: "skipped", reason: "overlap", workflowId: null });
    expect(trig.body.schedule.nextRunAt).toBe("2036-01-01T04:00:00.000Z");
  });

  it("a start that went through before a crash is found by the run's key: one workflow per slot", async () => {
    const t = await tenantAt("2036-01-01T00:10:00Z");
    const s = await schedule(t, { cron: "0 * * * *", overlap: "allow", task: undefined, workflow: { steps: [{ key: "only", type: `${t.pool}.x` }] } });
    let started = 0;
    await inObject(t.clock.stub, (instance) => {
      const real = env.WORKFLOWS;
      instance.firing.host.workflows = {
        getByName: (name: string) =>
          name.startsWith("tenant:")
            ? real.getByName(name)
            : {
                start: async (...args: unknown[]) => {
                  await (real.getByName(name) as any).start(...args);
                  started++;
                  throw new Error("lost on the way back");
                },
              },
      };
    });
    expect(await t.clock.to("2036-01-01T01:00:00Z")).toBe(true);
    expect(started).toBe(1);
    expect((await get(t, s.id)).runs[0].status).toBe("pending");
    await t.clock.restart();
    expect(await t.clock.to("2036-01-01T01:00:02Z")).toBe(true);
    const run = (await get(t, s.id)).runs[0];
    expect(run).toMatchObject({ status: "submitted", workflowId: expect.stringMatching(/^wf_/) });
    const listed = (await t.call("GET", "/v1/workflows")).body.workflows;
    expect(listed.map((x: any) => x.id)).toEqual([run.workflowId]);
    expect((await tasksInPool(t)).length).toBe(1);
  });
});
