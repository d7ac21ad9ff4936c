import { z } from "zod";
import { CATCH_UP_POLICIES, OVERLAP_POLICIES } from "../../contract/schedules.ts";
import { queryIntIn, Timestamp } from "./common.ts";
import { SubmitTask } from "./tasks.ts";
import { StartWorkflow } from "./workflows.ts";

export const CreateSchedule = z
  .strictObject({
    name: z.string().min(1).max(200).nullish(),
    cron: z.string().min(1).max(200).describe("5 fields: minute hour day-of-month month day-of-week"),
    timezone: z.string().min(1).max(64).default("UTC").describe("an IANA time zone name"),
    task: SubmitTask.optional().describe("a POST /v1/tasks body; its idempotencyKey is replaced by the run's"),
    workflow: StartWorkflow.optional().describe("a POST /v1/workflows body; its idempotencyKey is replaced by the run's"),
    overlap: z.enum(OVERLAP_POLICIES).default("skip").describe("skip: no run while the previous one's task or workflow is not final"),
    catchUp: z.enum(CATCH_UP_POLICIES).default("skip").describe("after downtime: skip the missed slots, or run one of them"),
  })
  .meta({ id: "CreateSchedule" });

const Run = z.object({
  slot: Timestamp.describe("the cron slot, or the time of a trigger"),
  trigger: z.boolean(),
  status: z.enum(["pending", "submitted", "skipped"]),
  reason: z.string().nullable().describe("why it was skipped: overlap, missed, failed: <error>"),
  taskId: z.string().nullable(),
  workflowId: z.string().nullable(),
  at: Timestamp,
});

export const Schedule = z
  .object({
    id: z.string(),
    name: z.string().nullable(),
    tenant: z.string(),
    cron: z.string(),
    timezone: z.string(),
    task: z.record(z.string(), z.unknown()).optional().describe("the task each run submits (defaults applied)"),
    workflow: z.record(z.string(), z.unknown()).optional().describe("the workflow each run starts"),
    overlap: z.enum(OVERLAP_POLICIES),
    catchUp: z.enum(CATCH_UP_POLICIES),
    paused: z.boolean(),
    nextRunAt: Timestamp.nullable(),
    lastRunAt: Timestamp.nullable(),
    createdAt: Timestamp,
    runs: z.array(Run).describe("the last 20, newest first"),
  })
  .meta({ id: "Schedule" });

export const SchedulesResponse = z.object({ schedules: z.array(Schedule), cursor: z.string().nullable() }).meta({ id: "Schedules" });
export const TriggerResponse = z.object({ schedule: Schedule, run: Run }).meta({ id: "ScheduleTrigger" });
export const ScheduleIdParams = z.object({ id: z.string().regex(/^sch_[A-Za-z0-9_-]{1,64}$/, "not a schedule id") });
export const ListSchedulesQuery = z.object({ limit: queryIntIn(1, 100).default(50), cursor: z.string().max(200).optional() });
