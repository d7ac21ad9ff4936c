import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { get, inObject, schedule, tasksInPool, tenantAt } from "./helpers";

describe("schedules: firing by the alarm", () => {
  it("a slot submits the task, with the schedule creator's tenant, once", async () => {
    const t = await tenantAt("2036-01-01T00:10:00Z");
    const s = await schedule(t, { cron: "0 * * * *", task: { type: `${t.pool}.work`, payload: { report: "daily" }, priority: 7 } });
    // Before the slot: the alarm finds nothing due.
    expect(await t.clock.to("2036-01-01T00:59:59Z")).toBe(true);
    expect(await tasksInPool(t)).toEqual([]);
    expect(await t.clock.to("2036-01-01T01:00:00.500Z")).toBe(true);
    const after = await get(t, s.id);
    expect(after.nextRunAt).toBe("2036-01-01T02:00:00.000Z");
    expect(after.lastRunAt).toBe("2036-01-01T01:00:00.500Z");
    expect(after.runs).toEqual([
      { slot: "2036-01-01T01:00:00.000Z", trigger: false, status: "submitted", reason: null, taskId: expect.any(String), workflowId: null, at: "2036-01-01T01:00:00.500Z" },
    ]);
    const tasks = await tasksInPool(t);
    expect(tasks.map((x) => x.id)).toEqual([after.runs[0].taskId]);
    expect(tasks[0]).toMatchObject({ tenant: t.tenant, type: `${t.pool}.work`, priority: 7, payload: { report: "daily" }, idempotencyKey: `schedule:${s.id}:${Date.parse("2036-01-01T01:00:00Z")}` });
    // The alarm again at the same time: nothing more.
    expect(await t.clock.to("2036-01-01T01:00:01Z")).toBe(true);
    expect((await get(t, s.id)).runs.length).toBe(1);
    // The next slot (overlap allow is not set: the first task is still queued, so it is skipped).
    expect(await t.clock.to("2036-01-01T02:00:00Z")).toBe(true);
    const third = await get(t, s.id);
    expect(third.runs.map((r: any) => [r.slot, r.status, r.reason])).toEqual([
      ["2036-01-01T02:00:00.000Z", "skipped", "overlap"],
      ["2036-01-01T01:00:00.000Z", "submitted", null],
    ]);
    expect((await tasksInPool(t)).length).toBe(1);
  });

  it("across a restart no slot fires twice: a submission that went through before the crash is found by its key", async () => {
    const t = await tenantAt("2036-01-01T00:10:00Z");
    const s = await schedule(t, { cron: "0 * * * *", overlap: "allow" });
    // The submission reaches the pool, then the object dies before recording it.
    let submitted = 0;
    await inObject(t.clock.stub, (instance) => {
      instance.firing.host.mesh = () => ({
        submitTask: async (caller: unknown, task: unknown) => {
          await (env.MESH as any).submitTask(caller, task);
          submitted++;
          throw new Error("lost on the way back");
        },
        taskFinal: async () => true,
      });
    });
    expect(await t.clock.to("2036-01-01T01:00:00Z")).toBe(true);
    expect(submitted).toBe(1);
    const pending = await get(t, s.id);
    expect(pending.runs.map((r: any) => r.status)).toEqual(["pending"]);
    expect(pending.nextRunAt).toBe("2036-01-01T02:00:00.000Z");
    expect((await tasksInPool(t)).length).toBe(1);

    await t.clock.restart();
    // Restarted: the alarm is re-armed from the rows (the pending run's retry), and the retry finds the first task.
    expect(await t.clock.to("2036-01-01T01:00:05Z")).toBe(true);
    const done = await get(t, s.id);
    const tasks = await tasksInPool(t);
    expect(tasks.length).toBe(1);
    expect(done.runs).toMatchObject([{ slot: "2036-01-01T01:00:00.000Z", status: "submitted", taskId: tasks[0].id }]);

    // Restart again and run the alarm repeatedly inside the same hour: the claimed slot stays claimed.
    for (let i = 0; i < 3; i++) {
      await t.clock.restart();
      expect(await t.clock.to(`2036-01-01T01:3${i}:00Z`)).toBe(true);
    }
    expect((await get(t, s.id)).runs.length).toBe(1);
    expect((await tasksInPool(t)).length).toBe(1);
    // The next slot fires once more, after yet another restart.
    await t.clock.restart();
    expect(await t.clock.to("2036-01-01T02:00:00Z")).toBe(true);
    expect(await t.clock.to("2036-01-01T02:00:01Z")).toBe(true);
    expect((await get(t, s.id)).runs.map((r: any) => r.slot)).toEqual(["2036-01-01T02:00:00.000Z", "2036-01-01T01:00:00.000Z"]);
    expect((await tasksInPool(t)).length).toBe(2);
  });

  it("re-arms the alarm from the rows on every start, and claims more than one batch of due schedules in one alarm", async () => {
    const t = await tenantAt("2036-01-01T00:10:00Z");
    const ids: string[] = [];
    for (let i = 0; i < 105; i++) ids.push((await schedule(t, { cron: "0 * * * *", overlap: "allow", task: { type: `${t.pool}.n${i}` } })).id);
    await inObject(t.clock.stub, (_instance, state) => state.storage.deleteAlarm());
    expect(await inObject(t.clock.stub, (_instance, state) => state.storage.getAlarm())).toBeNull();
    await t.clock.restart();
    expect(await inObject(t.clock.stub, (_instance, state) => state.storage.getAlarm())).toBe(Date.parse("2036-01-01T01:00:00Z"));
    expect(await t.clock.to("2036-01-01T01:00:00Z")).toBe(true);
    const runs = await Promise.all(ids.map(async (id) => (await get(t, id)).runs));
    expect(runs.every((r) => r.length === 1 && r[0].status === "submitted")).toBe(true);
    expect((await tasksInPool(t)).length).toBe(105);
    expect(await inObject(t.clock.stub, (_instance, state) => state.storage.getAlarm())).toBe(Date.parse("2036-01-01T02:00:00Z"));
  });

  it("a submission that keeps failing is retried with backoff, then recorded as skipped with the error", async () => {
    const t = await tenantAt("2036-01-01T00:10:00Z");
    // The mesh refuses every submission (a pool that cannot be reached).
    const s = await schedule(t, { cron: "0 * * * *", overlap: "allow" });
    let calls = 0;
    await inObject(t.clock.stub, (instance) => {
      instance.firing.host.mesh = () => ({
        submitTask: async () => {
          calls++;
          throw new Error("pool unreachable");
        },
        taskFinal: async () => true,
      });
    });
    let at = Date.parse("2036-01-01T01:00:00Z");
    expect(await t.clock.to(at)).toBe(true);
    for (const wait of [1_000, 2_000, 4_000, 8_000]) {
      expect((await get(t, s.id)).runs[0].status).toBe("pending");
      // Not yet due: the alarm runs, the run waits.
      expect(await t.clock.to(at + wait - 1)).toBe(true);
      at += wait;
      expect(await t.clock.to(at)).toBe(true);
    }
    expect(calls).toBe(5);
    expect((await get(t, s.id)).runs).toMatchObject([{ status: "skipped", reason: "failed: pool unreachable", taskId: null }]);
  });

  it("overlap skip waits for the previous task to be final; allow does not", async () => {
    const t = await tenantAt("2036-01-01T00:00:30Z");
    const skip = await schedule(t, { cron: "* * * * *", overlap: "skip", task: { type: `${t.pool}.skip` } });
    const allow = await schedule(t, { cron: "* * * * *", overlap: "allow", task: { type: `${t.pool}.allow` } });
    for (const minute of ["01", "02", "03"]) expect(await t.clock.to(`2036-01-01T00:${minute}:00Z`)).toBe(true);
    const s1 = await get(t, skip.id);
    expect(s1.runs.map((r: any) => r.status)).toEqual(["skipped", "skipped", "submitted"]);
    expect(s1.runs.slice(0, 2).map((r: any) => r.reason)).toEqual(["overlap", "overlap"]);
    expect((await get(t, allow.id)).runs.map((r: any) => r.status)).toEqual(["submitted", "submitted", "submitted"]);
    // A trigger is subject to overlap too.
    const trig = await t.call("POST", `/v1/schedules/${skip.id}/trigger`);
    expect(trig.body.run).toMatchObject({ trigger: true, status: "skipped", reason: "overlap", taskId: null });
    // The first task ends (cancelled is final): the next slot runs.
    const first = s1.runs[2].taskId;
    expect((await t.call("POST", `/v1/tasks/${first}/cancel`)).status).toBe(200);
    expect(await t.clock.to("2036-01-01T00:04:00Z")).toBe(true);
    const s2 = await get(t, skip.id);
    expect(s2.runs[0]).toMatchObject({ slot: "2036-01-01T00:04:00.000Z", status: "submitted" });
    expect(s2.runs[0].taskId).not.toBe(first);
    const types = (await tasksInPool(t)).map((x) => x.type);
    expect(types.filter((x) => x.endsWith(".skip")).length).toBe(2);
    expect(types.filter((x) => x.endsWith(".allow")).length).toBe(4);
  });

  it("overlap skip counts a run still being retried as not final", async () => {
    const t = await tenantAt("2036-01-01T00:00:30Z");
    const s = await schedule(t, { cron: "* * * * *", overlap: "skip" });
    let fail = true;
    await inObject(t.clock.stub, (instance) => {
      const real = instance.firing.host.mesh;
      instance.firing.host.mesh = () => ({
        submitTask: async (caller: unknown, task: unknown) => {
          if (fail) throw new Error("pool unreachable");
          return real().submitTask(caller, task);
        },
        taskFinal: (caller: unknown, id: string) => real().taskFinal(caller, id),
      });
    });
    expect(await t.clock.to("2036-01-01T00:01:00Z")).toBe(true);
    expect(await t.clock.to("2036-01-01T00:02:00Z")).toBe(true);
    expect((await get(t, s.id)).runs.map((r: any) => [r.slot, r.status, r.reason])).toEqual([
      ["2036-01-01T00:02:00.000Z", "skipped", "overlap"],
      ["2036-01-01T00:01:00.000Z", "pending", null],
    ]);
    fail = false;
    expect(await t.clock.to("2036-01-01T00:02:02Z")).toBe(true);
    const runs = (await get(t, s.id)).runs;
    expect(runs.map((r: any) => [r.slot, r.status])).toEqual([
      ["2036-01-01T00:02:00.000Z", "skipped"],
      ["2036-01-01T00:01:00.000Z", "submitted"],
    ]);
    expect((await tasksInPool(t)).map((x) => x.id)).toEqual([runs[1].taskId]);
  });

  it("catch-up after downtime: one runs the latest missed slot once, skip runs none", async () => {
    const t = await tenantAt("2036-01-01T00:10:00Z");
    const one = await schedule(t, { cron: "0 * * * *", catchUp: "one", overlap: "allow", task: { type: `${t.pool}.one` } });
    const skip = await schedule(t, { cron: "0 * * * *", catchUp: "skip", overlap: "allow", task: { type: `${t.pool}.skip` } });
    // Down from 00:10 to 05:30: five slots missed.
    await t.clock.restart();
    expect(await t.clock.to("2036-01-01T05:30:00Z")).toBe(true);
    const o = await get(t, one.id);
    expect(o.runs).toMatchObject([{ slot: "2036-01-01T05:00:00.000Z", status: "submitted", taskId: expect.any(String) }]);
    expect(o.nextRunAt).toBe("2036-01-01T06:00:00.000Z");
    const k = await get(t, skip.id);
    expect(k.runs).toMatchObject([{ slot: "2036-01-01T05:00:00.000Z", status: "skipped", reason: "missed", taskId: null }]);
    expect(k.nextRunAt).toBe("2036-01-01T06:00:00.000Z");
    expect((await tasksInPool(t)).map((x) => x.type)).toEqual([`${t.pool}.one`]);
    // Back on time: both run the next slot (skip runs a slot up to a minute late).
    expect(await t.clock.to("2036-01-01T06:00:40Z")).toBe(true);
    expect((await get(t, one.id)).runs[0]).toMatchObject({ slot: "2036-01-01T06:00:00.000Z", status: "submitted" });
    expect((await get(t, skip.id)).runs[0]).toMatchObject({ slot: "2036-01-01T06:00:00.000Z", status: "submitted" });
    expect((await tasksInPool(t)).length).toBe(3);
  });

  it("daylight saving in New York: the 02:30 of spring forward is skipped, the 01:30 of fall back fires once", async () => {
    const t = await tenantAt("2036-03-08T12:00:00Z");
    const spring = await schedule(t, { cron: "30 2 * * *", timezone: "America/New_York", overlap: "allow", task: { type: `${t.pool}.spring` } });
    // 2036-03-09 is the change: 02:00 EST jumps to 03:00 EDT, so there is no 02:30 that day.
    expect(spring.nextRunAt).toBe("2036-03-10T06:30:00.000Z");
    for (const iso of ["2036-03-09T06:30:00Z", "2036-03-09T07:30:00Z", "2036-03-10T06:29:59Z"]) {
      expect(await t.clock.to(iso)).toBe(true);
      expect((await get(t, spring.id)).runs).toEqual([]);
    }
    expect(await t.clock.to("2036-03-10T06:30:00Z")).toBe(true);
    expect((await get(t, spring.id)).runs).toMatchObject([{ slot: "2036-03-10T06:30:00.000Z", status: "submitted" }]);

    const u = await tenantAt("2036-11-01T12:00:00Z");
    const fall = await schedule(u, { cron: "30 1 * * *", timezone: "America/New_York", overlap: "allow", task: { type: `${u.pool}.fall` } });
    // 2036-11-02: 01:30 EDT (05:30Z), then clocks go back and 01:30 EST (06:30Z) comes again.
    expect(fall.nextRunAt).toBe("2036-11-02T05:30:00.000Z");
    expect(await u.clock.to("2036-11-02T05:30:00Z")).toBe(true);
    expect((await get(u, fall.id)).nextRunAt).toBe("2036-11-03T06:30:00.000Z");
    expect(await u.clock.to("2036-11-02T06:30:00Z")).toBe(true);
    expect(await u.clock.to("2036-11-02T06:30:30Z")).toBe(true);
    const runs = (await get(u, fall.id)).runs;
    expect(runs.map((r: any) => r.slot)).toEqual(["2036-11-02T05:30:00.000Z"]);
    expect((await tasksInPool(u)).length).toBe(1);
  });
});
