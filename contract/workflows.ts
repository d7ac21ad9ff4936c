/**
 * Workflows across pools (API.md, "Workflows, fairness and schedules"): the run as the API shows it, the step
 * as it was submitted, and the reference a step's task carries so that its pool coordinator can report its end
 * to the run's WorkflowCoordinator (a durable callback, docs/workflows.md).
 */
import type { Principal, Requirements } from "./records.ts";

export const WORKFLOW_STATUSES = ["running", "succeeded", "failed", "cancelled"] as const;
export type WorkflowStatus = (typeof WORKFLOW_STATUSES)[number];
export const STEP_STATUSES = ["pending", "running", "succeeded", "failed", "skipped", "cancelled"] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];
export const STEP_KEY = /^[a-z0-9_-]{1,64}$/;
export const MAX_STEPS = 1_000;
export const MAX_FOR_EACH = 10_000;
/** Tasks of one forEach step unfinished at once. */
export const FOR_EACH_IN_FLIGHT = 100;

/** `{"$ref": "<step>.result.<dotted.path>"}`. */
export interface RefValue {
  $ref: string;
}

export interface StepSpec {
  key: string;
  type: string;
  pool?: string | undefined;
  payload?: Record<string, unknown> | undefined;
  input?: Record<string, RefValue> | undefined;
  forEach?: RefValue | undefined;
  dependsOn: string[];
  requires?: Partial<Requirements> | undefined;
  priority?: number | undefined;
  maxAttempts?: number | undefined;
  timeoutMs?: number | undefined;
  continueOnFailure: boolean;
}

export interface WorkflowSpec {
  name: string | null;
  idempotencyKey: string | null;
  onFailure: "fail_fast" | "continue";
  steps: StepSpec[];
}

/** What a step's task carries: its run, step (and the step's attempt), and element index (0 for a plain step). */
export interface WorkflowRef {
  run: string;
  step: string;
  attempt: number;
  index: number;
}

/** A step task's end, as its pool coordinator reports it. `result` as the task row stores it (sealed). */
export interface WorkflowTaskEnd {
  ref: WorkflowRef;
  taskId: string;
  tenant: string;
  status: "succeeded" | "failed" | "dead" | "cancelled";
  result: string | null;
  error: string | null;
  agentId: string | null;
  attempts: number;
}

export interface StepView {
  key: string;
  type: string;
  status: StepStatus;
  taskIds: string[];
  result: unknown;
  error: unknown;
  attempts: number;
  startedAt: number | null;
  finishedAt: number | null;
  agent: string | null;
}

export interface WorkflowView {
  id: string;
  name: string | null;
  tenant: string;
  status: WorkflowStatus;
  onFailure: "fail_fast" | "continue";
  steps: StepView[];
  result: Record<string, unknown> | null;
  createdAt: number;
  finishedAt: number | null;
}

export interface WorkflowListRow {
  id: string;
  status: WorkflowStatus;
  createdAt: number;
}

/** A step's task as the WorkflowCoordinator hands it to the mesh (src/entrypoint.ts): the gateway submits it. */
export interface StepTask {
  type: string;
  pool?: string | undefined;
  payload: unknown;
  priority: number;
  requires?: Partial<Requirements> | undefined;
  idempotencyKey: string;
  maxAttempts: number;
  timeoutMs: number;
  workflow: WorkflowRef;
}

/** What the WorkflowCoordinator asks of the Worker's entrypoint (the self service binding MESH). */
export interface WorkflowMesh {
  /** Submits through the gateway (routing, sealing, idempotency); answers the task ids in input order. */
  submitStepTasks(caller: Principal, tasks: StepTask[]): Promise<string[]>;
  /** Cancels these tasks; ones already final or gone count as done. */
  cancelTasks(caller: Principal, ids: string[]): Promise<void>;
}
