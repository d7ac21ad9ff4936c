/** Schedules: cron-driven tasks and workflows (API.md, "Workflows, fairness and schedules"; docs/schedules.md). */
import { z } from "zod";
import { ApiError, unwrap, type FieldProblem, type Outcome } from "../../contract/errors.ts";
import type { ScheduleRun, ScheduleSpec, ScheduleTarget, ScheduleView } from "../../contract/schedules.ts";
import { randomToken } from "../../lib/random.ts";
import { cronProblems } from "../../lib/schedules/cron.ts";
import { checkPlan } from "../../lib/workflows/plan.ts";
import type { Routes } from "../openapi/route.ts";
import { ErrorSchema, ValidationErrorSchema } from "../schemas/common.ts";
import { CreateSchedule, ListSchedulesQuery, Schedule, ScheduleIdParams, SchedulesResponse, TriggerResponse } from "../schemas/schedules.ts";

const err = (description: string) => ({ description, schema: ErrorSchema });
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

const presentRun = (r: ScheduleRun) => ({ ...r, slot: iso(r.slot)!, at: iso(r.at)! });

/** Timestamps as ISO 8601, like every answer of the API. */
export function presentSchedule(s: ScheduleView) {
  return { ...s, nextRunAt: iso(s.nextRunAt), lastRunAt: iso(s.lastRunAt), createdAt: iso(s.createdAt)!, runs: s.runs.map(presentRun) };
}

/** A Scheduler's answer over RPC (its `unknown` payload fields lose their type on the way). */
const opened = <T>(outcome: unknown): T => unwrap(outcome as Outcome<T>);

function targetOf(body: z.output<typeof CreateSchedule>): ScheduleTarget {
  const problems: FieldProblem[] = [];
  if ((body.task === undefined) === (body.workflow === undefined)) problems.push({ field: "task", message: "exactly one of task and workflow" });
  if (body.workflow) problems.push(...checkPlan(body.workflow.steps).map((p) => ({ ...p, field: `workflow.${p.field}` })));
  if (problems.length > 0) throw new ApiError("invalid_request", "the schedule is not valid", problems);
  if (body.task) return { kind: "task", task: body.task };
  const w = body.workflow!;
  return { kind: "workflow", workflow: { name: w.name ?? null, idempotencyKey: null, onFailure: w.onFailure, steps: w.steps } };
}

export function scheduleRoutes(routes: Routes): void {
  const idRoute = { params: ScheduleIdParams, tag: "Schedules" } as const;

  routes.add(
    {
      method: "post",
      path: "/v1/schedules",
      summary: "Create a schedule: a task or a workflow on a cron pattern",
      tag: "Schedules",
      audit: "schedule.create",
      body: CreateSchedule,
      responses: { 201: { description: "created", schema: Schedule }, 400: { description: "invalid (details name `cron` or `timezone`)", schema: ValidationErrorSchema } },
    },
    async (c, { body }) => {
      const problems = cronProblems(body.cron, body.timezone);
      if (problems.length > 0) throw new ApiError("invalid_request", "the schedule is not valid", problems);
      const spec: ScheduleSpec = { name: body.name ?? null, cron: body.cron.trim(), timezone: body.timezone, target: targetOf(body), overlap: body.overlap, catchUp: body.catchUp };
      const caller = c.var.caller;
      const id = `sch_${randomToken(16)}`;
      const view = await c.env.SCHEDULER.getByName(caller.tenant).create(id, caller.tenant, spec, caller);
      c.set("audit", { target: id });
      return c.json(presentSchedule(view as ScheduleView), 201);
    },
  );

  routes.add(
    {
      method: "get",
      path: "/v1/schedules",
      summary: "List the tenant's schedules, oldest first",
      tag: "Schedules",
      query: ListSchedulesQuery,
      responses: { 200: { description: "a page of schedules", schema: SchedulesResponse } },
    },
    async (c, { query }) => {
      const page = (await c.env.SCHEDULER.getByName(c.var.caller.tenant).list(query.limit, query.cursor ?? null)) as { schedules: ScheduleView[]; cursor: string | null };
      return c.json({ schedules: page.schedules.map(presentSchedule), cursor: page.cursor });
    },
  );

  routes.add(
    { ...idRoute, method: "get", path: "/v1/schedules/:id", summary: "Get a schedule with its recent runs", responses: { 200: { description: "the schedule", schema: Schedule }, 404: err("no such schedule") } },
    async (c, { params }) => c.json(presentSchedule(opened<ScheduleView>(await c.env.SCHEDULER.getByName(c.var.caller.tenant).get(params.id)))),
  );

  for (const [action, paused] of [["pause", true], ["resume", false]] as const) {
    routes.add(
      {
        ...idRoute,
        method: "post",
        path: `/v1/schedules/:id/${action}`,
        summary: paused ? "Pause a schedule: its cron slots do not run" : "Resume a schedule from now on",
        audit: `schedule.${action}`,
        responses: { 200: { description: `the schedule, ${paused ? "paused" : "running"}`, schema: Schedule }, 404: err("no such schedule") },
      },
      async (c, { params }) => {
        c.set("audit", { target: params.id });
        return c.json(presentSchedule(opened<ScheduleView>(await c.env.SCHEDULER.getByName(c.var.caller.tenant).setPaused(params.id, paused))));
      },
    );
  }

  routes.add(
    {
      ...idRoute,
      method: "post",
      path: "/v1/schedules/:id/trigger",
      summary: "Run a schedule now (subject to its overlap policy; nextRunAt unchanged)",
      audit: "schedule.trigger",
      responses: { 200: { description: "the schedule and the run", schema: TriggerResponse }, 404: err("no such schedule") },
    },
    async (c, { params }) => {
      c.set("audit", { target: params.id });
      const out = opened<{ schedule: ScheduleView; run: ScheduleRun }>(await c.env.SCHEDULER.getByName(c.var.caller.tenant).trigger(params.id));
      return c.json({ schedule: presentSchedule(out.schedule), run: presentRun(out.run) });
    },
  );

  routes.add(
    {
      ...idRoute,
      method: "delete",
      path: "/v1/schedules/:id",
      summary: "Delete a schedule and its runs (tasks and workflows it started stay)",
      audit: "schedule.delete",
      responses: { 200: { description: "deleted", schema: z.object({ deleted: z.literal(true), id: z.string() }) }, 404: err("no such schedule") },
    },
    async (c, { params }) => {
      c.set("audit", { target: params.id });
      opened<null>(await c.env.SCHEDULER.getByName(c.var.caller.tenant).remove(params.id));
      return c.json({ deleted: true as const, id: params.id });
    },
  );
}
