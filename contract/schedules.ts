/** Schedules (API.md, "Workflows, fairness and schedules"; docs/schedules.md): the types the Scheduler and the Worker share. */
import type { Principal } from "./records.ts";
import type { WorkflowSpec } from "./workflows.ts";

export const OVERLAP_POLICIES = ["skip", "allow"] as const;
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];
export const CATCH_UP_POLICIES = ["skip", "one"] as const;
export type CatchUpPolicy = (typeof CATCH_UP_POLICIES)[number];

/** How many runs GET shows (newest first); older ones are dropped from storage. */
export const RECENT_RUNS = 20;

/** A task as POST /v1/tasks takes it, validated (defaults applied); its idempotency key is the run's. */
export interface ScheduledTask {
  type: string;
  payload?: unknown;
  priority: number;
  pool?: string | undefined;
  requires?: { capabilities: string[]; cpu: number; memoryMb: number; gpu: number } | undefined;
  maxAttempts: number;
  timeoutMs: number;
  delayMs: number;
  [field: string]: unknown;
}

export type ScheduleTarget = { kind: "task"; task: ScheduledTask } | { kind: "workflow"; workflow: WorkflowSpec };

export interface ScheduleSpec {
  name: string | null;
  cron: string;
  timezone: string;
  target: ScheduleTarget;
  overlap: OverlapPolicy;
  catchUp: CatchUpPolicy;
}

export type RunStatus = "pending" | "submitted" | "skipped";

export interface ScheduleRun {
  /** The slot the run is for (a cron slot, or the time of a trigger). */
  slot: number;
  trigger: boolean;
  status: RunStatus;
  /** Why a run was skipped: `overlap` (the previous one is not final) or `missed` (catch-up `skip`). */
  reason: string | null;
  taskId: string | null;
  workflowId: string | null;
  at: number;
}

export interface ScheduleView {
  id: string;
  name: string | null;
  tenant: string;
  cron: string;
  timezone: string;
  task?: ScheduledTask;
  workflow?: WorkflowSpec;
  overlap: OverlapPolicy;
  catchUp: CatchUpPolicy;
  paused: boolean;
  nextRunAt: number | null;
  lastRunAt: number | null;
  createdAt: number;
  runs: ScheduleRun[];
}

/** What the Scheduler asks of the Worker's entrypoint (the self service binding MESH). */
export interface SchedulerMesh {
  /** Submits one task through the gateway as `caller`; answers its id (the existing one for a repeated key). */
  submitTask(caller: Principal, task: ScheduledTask & { idempotencyKey: string }): Promise<string>;
  /** Whether the task is final (succeeded, failed, dead, cancelled) or gone. */
  taskFinal(caller: Principal, id: string): Promise<boolean>;
}
