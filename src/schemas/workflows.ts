import { z } from "zod";
import { MAX_STEPS, STEP_KEY, STEP_STATUSES, WORKFLOW_STATUSES } from "../../contract/workflows.ts";
import { intIn, PoolName, queryIntIn, Timestamp, wellFormed } from "./common.ts";
import { Requirements, TaskType } from "./tasks.ts";

const Ref = z.strictObject({ $ref: z.string().min(1).max(512).describe("<step>.result with an optional dotted path") }).meta({ id: "WorkflowRef" });
const StepKey = z.string().regex(STEP_KEY, "a step key matches ^[a-z0-9_-]{1,64}$");

export const WorkflowStep = z
  .strictObject({
    key: StepKey,
    type: TaskType,
    pool: PoolName.optional(),
    payload: z.record(z.string(), z.unknown()).optional().describe("an object; `input` fields and forEach's `item`, `index` are set on it"),
    input: z.record(z.string().min(1).max(128), Ref).optional(),
    forEach: Ref.optional().describe("one task per element of the array it names (at most 10,000)"),
    dependsOn: z.array(StepKey).max(MAX_STEPS).default([]),
    requires: Requirements.optional(),
    priority: intIn(0, 9).optional(),
    maxAttempts: intIn(1, 100).optional(),
    timeoutMs: intIn(1000, 3_600_000).optional(),
    continueOnFailure: z.boolean().default(false),
  })
  .meta({ id: "WorkflowStep" });

export const StartWorkflow = z
  .strictObject({
    name: z.string().min(1).max(200).nullish(),
    idempotencyKey: wellFormed(z.string().min(1).max(255)).nullish(),
    onFailure: z.enum(["fail_fast", "continue"]).default("fail_fast"),
    steps: z.array(WorkflowStep).min(1).max(MAX_STEPS),
  })
  .meta({ id: "StartWorkflow" });

const StepView = z.object({
  key: z.string(),
  type: z.string(),
  status: z.enum(STEP_STATUSES),
  taskIds: z.array(z.string()),
  result: z.unknown(),
  error: z.unknown(),
  attempts: z.number().int(),
  startedAt: Timestamp.nullable(),
  finishedAt: Timestamp.nullable(),
  agent: z.string().nullable(),
});

export const Workflow = z
  .object({
    id: z.string(),
    name: z.string().nullable(),
    tenant: z.string(),
    status: z.enum(WORKFLOW_STATUSES),
    onFailure: z.enum(["fail_fast", "continue"]),
    steps: z.array(StepView),
    result: z.record(z.string(), z.unknown()).nullable(),
    createdAt: Timestamp,
    finishedAt: Timestamp.nullable(),
  })
  .meta({ id: "Workflow" });

export const WorkflowsResponse = z.object({ workflows: z.array(Workflow), cursor: z.string().nullable() }).meta({ id: "Workflows" });

export const WorkflowIdParams = z.object({ id: z.string().regex(/^wf_[A-Za-z0-9_-]{1,64}$/, "not a workflow id") });
export const StepParams = WorkflowIdParams.extend({ key: StepKey });
export const WorkflowResultQuery = z.object({ waitMs: queryIntIn(0, 30_000).default(0) });
export const ListWorkflowsQuery = z.object({
  status: z.enum(WORKFLOW_STATUSES).optional(),
  limit: queryIntIn(1, 100).default(20),
  cursor: z.string().max(200).optional(),
});
