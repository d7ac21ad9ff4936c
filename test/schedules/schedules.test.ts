import { describe, expect, it } from "vitest";
import { expectError } from "../helpers";
import { as } from "../security/fixtures";
import { get, schedule, tasksInPool, tenantAt } from "./helpers";

const START = "2036-01-01T00:10:00Z";

describe("schedules: the routes", () => {
  it("creates, lists, gets, pauses, resumes and deletes", async () => {
    const t = await tenantAt(START);
    const s = await schedule(t, { name: "hourly", cron: "0 * * * *", timezone: "UTC" });
    expect(s).toMatchObject({ name: "hourly", tenant: t.tenant, cron: "0 * * * *", timezone: "UTC", overlap: "skip", catchUp: "skip", paused: false });
    expect(s.id).toMatch(/^sch_/);
    expect(s.nextRunAt).toBe("2036-01-01T01:00:00.000Z");
    expect(s.lastRunAt).toBeNull();
    expect(s.runs).toEqual([]);
    expect(s.task).toMatchObject({ type: `${t.pool}.work`, payload: { n: 1 }, priority: 5, maxAttempts: 3 });

    t.clock.now += 1_000;
    await t.clock.install();
    const second = await schedule(t, { cron: "30 9 * * 1-5", timezone: "Europe/Paris", overlap: "allow", catchUp: "one" });
    expect(second.nextRunAt).toBe("2036-01-01T08:30:00.000Z");
    const list = await t.call("GET", "/v1/schedules");
    expect(list.status).toBe(200);
    expect(list.body.schedules.map((x: any) => x.id)).toEqual([s.id, second.id]);
    const page = await t.call("GET", "/v1/schedules?limit=1");
    expect(page.body.schedules.map((x: any) => x.id)).toEqual([s.id]);
    const rest = await t.call("GET", `/v1/schedules?limit=1&cursor=${encodeURIComponent(page.body.cursor)}`);
    expect(rest.body.schedules.map((x: any) => x.id)).toEqual([second.id]);
    expect(rest.body.cursor).toBeNull();

    expect(await get(t, s.id)).toEqual(s);

    const paused = await t.call("POST", `/v1/schedules/${s.id}/pause`);
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ paused: true, nextRunAt: null });
    // A paused schedule's slot passes without a run.
    await t.clock.to("2036-01-01T01:00:01Z");
    expect((await get(t, s.id)).runs).toEqual([]);
    const resumed = await t.call("POST", `/v1/schedules/${s.id}/resume`);
    expect(resumed.body).toMatchObject({ paused: false, nextRunAt: "2036-01-01T02:00:00.000Z" });
    expect(await tasksInPool(t)).toEqual([]);

    const del = await t.call("DELETE", `/v1/schedules/${s.id}`);
    expect(del.status).toBe(200);
    expect(del.body).toEqual({ deleted: true, id: s.id });
    expectError(await t.call("GET", `/v1/schedules/${s.id}`), 404, "not_found");
    expectError(await t.call("DELETE", `/v1/schedules/${s.id}`), 404, "not_found");
    // A deleted schedule does not fire.
    await t.clock.to("2036-01-01T02:00:01Z");
    expect(await tasksInPool(t)).toEqual([]);
    expect((await t.call("GET", "/v1/schedules")).body.schedules.map((x: any) => x.id)).toEqual([second.id]);
  });

  it("triggers a run now: the task is submitted, nextRunAt unchanged", async () => {
    const t = await tenantAt(START);
    const s = await schedule(t, { overlap: "allow" });
    t.clock.now = Date.parse("2036-01-01T00:20:00Z");
    await t.clock.install();
    const res = await t.call("POST", `/v1/schedules/${s.id}/trigger`);
    expect(res.status).toBe(200);
    expect(res.body.run).toMatchObject({ trigger: true, status: "submitted", slot: "2036-01-01T00:20:00.000Z", workflowId: null });
    expect(res.body.schedule.nextRunAt).toBe(s.nextRunAt);
    expect(res.body.schedule.lastRunAt).toBe("2036-01-01T00:20:00.000Z");
    const task = await t.call("GET", `/v1/tasks/${res.body.run.taskId}`);
    expect(task.status).toBe(200);
    expect(task.body).toMatchObject({ type: `${t.pool}.work`, tenant: t.tenant, payload: { n: 1 }, status: "queued" });
    // Twice in the same millisecond: two runs, two tasks.
    const again = await t.call("POST", `/v1/schedules/${s.id}/trigger`);
    expect(again.body.run.taskId).not.toBe(res.body.run.taskId);
    expect((await tasksInPool(t)).length).toBe(2);
    expect((await get(t, s.id)).runs.map((r: any) => r.taskId).sort()).toEqual([res.body.run.taskId, again.body.run.taskId].sort());
    expectError(await t.call("POST", "/v1/schedules/sch_nosuch/trigger"), 404, "not_found");
  });

  it("answers 400 naming cron or timezone, and creates nothing", async () => {
    const t = await tenantAt(START);
    const bad = async (fields: Record<string, unknown>, field: string) => {
      const res = await t.call("POST", "/v1/schedules", { cron: "0 * * * *", task: { type: `${t.pool}.work` }, ...fields });
      expectError(res, 400, "invalid_request");
      expect(JSON.stringify(res.body.error.details), JSON.stringify(fields)).toContain(`"${field}`);
    };
    await bad({ cron: "61 * * * *" }, "cron");
    await bad({ cron: "* * * *" }, "cron");
    await bad({ cron: "0 0 * * * *" }, "cron");
    await bad({ cron: "@hourly" }, "cron");
    await bad({ cron: "0 0 30 2 *" }, "cron");
    await bad({ timezone: "Mars/Olympus_Mons" }, "timezone");
    await bad({ timezone: "not a zone" }, "timezone");
    await bad({ timezone: 5 }, "timezone");
    await bad({ task: undefined }, "task");
    await bad({ workflow: { steps: [{ key: "a", type: `${t.pool}.x` }] } }, "task");
    await bad({ task: { type: "bad type!" } }, "task");
    await bad({ overlap: "queue" }, "overlap");
    await bad({ catchUp: "all" }, "catchUp");
    await bad({ task: undefined, workflow: { steps: [{ key: "a", type: `${t.pool}.x`, dependsOn: ["b"] }] } }, "workflow");
    expect((await t.call("GET", "/v1/schedules")).body.schedules).toEqual([]);
    expect(await t.clock.to("2036-01-01T01:00:01Z")).toBe(false);
  });

  it("keeps tenants apart and clients read-only", async () => {
    const a = await tenantAt(START);
    const b = await tenantAt(START);
    const s = await schedule(a, {});
    for (const [method, suffix] of [["GET", ""], ["POST", "/pause"], ["POST", "/resume"], ["POST", "/trigger"], ["DELETE", ""]] as const) {
      expectError(await b.call(method, `/v1/schedules/${s.id}${suffix}`), 404, "not_found");
    }
    expect((await b.call("GET", "/v1/schedules")).body.schedules).toEqual([]);
    expect((await as(a.client, "GET", `/v1/schedules/${s.id}`)).status).toBe(200);
    expect((await as(a.client, "GET", "/v1/schedules")).body.schedules.length).toBe(1);
    expectError(await as(a.client, "POST", "/v1/schedules", { cron: "0 * * * *", task: { type: `${a.pool}.work` } }), 403, "forbidden");
    expectError(await as(a.client, "POST", `/v1/schedules/${s.id}/trigger`), 403, "forbidden");
    expect((await get(a, s.id)).runs).toEqual([]);
  });
});
