/** Workflows across pools (API.md, "Workflows, fairness and schedules"; docs/workflows.md). */
import { ApiError, unwrap, type Outcome } from "../../contract/errors.ts";
import type { Principal } from "../../contract/records.ts";
import type { WorkflowSpec, WorkflowView } from "../../contract/workflows.ts";
import { randomToken } from "../../lib/random.ts";
import { checkPlan } from "../../lib/workflows/plan.ts";
import type { Routes } from "../openapi/route.ts";
import { ErrorSchema } from "../schemas/common.ts";
import { ListWorkflowsQuery, StartWorkflow, StepParams, Workflow, WorkflowIdParams, WorkflowResultQuery, WorkflowsResponse } from "../schemas/workflows.ts";

const err = (description: string) => ({ description, schema: ErrorSchema });
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Timestamps as ISO 8601, like every answer of the API. */
export function presentWorkflow(w: WorkflowView) {
  return { ...w, createdAt: iso(w.createdAt)!, finishedAt: iso(w.finishedAt), steps: w.steps.map((s) => ({ ...s, startedAt: iso(s.startedAt), finishedAt: iso(s.finishedAt) })) };
}

/** A run's answer over RPC (its `unknown` result fields lose their type on the way). */
const opened = (outcome: unknown): WorkflowView => unwrap(outcome as Outcome<WorkflowView>);

const scope = (caller: Principal) => (caller.allTenants ? null : caller.tenant);

export function workflowRoutes(routes: Routes): void {
  routes.add(
    {
      method: "post",
      path: "/v1/workflows",
      summary: "Start a workflow: a DAG of steps across pools",
      tag: "Workflows",
      audit: "workflow.start",
      body: StartWorkflow,
      responses: {
        201: { description: "started; the tasks of the steps without dependencies are submitted", schema: Workflow },
        200: { description: "the workflow this idempotency key already started", schema: Workflow },
        400: err("invalid workflow (details name the step)"),
      },
    },
    async (c, { body }) => {
      const spec: WorkflowSpec = { name: body.name ?? null, idempotencyKey: body.idempotencyKey ?? null, onFailure: body.onFailure, steps: body.steps };
      const problems = checkPlan(spec.steps);
      if (problems.length > 0) throw new ApiError("invalid_request", "the workflow is not valid", problems);
      const caller = c.var.caller;
      const claim = await c.env.WORKFLOWS.getByName(`tenant:${caller.tenant}`).claim(`wf_${randomToken(16)}`, spec.idempotencyKey);
      const { created, workflow } = (await c.env.WORKFLOWS.getByName(claim.id).start(claim.id, caller.tenant, spec, caller)) as { created: boolean; workflow: WorkflowView };
      const fresh = claim.created && created;
      c.set("audit", { target: fresh ? claim.id : `${claim.id} (idempotent repeat)` });
      return c.json(presentWorkflow(workflow), fresh ? 201 : 200);
    },
  );

  routes.add(
    {
      method: "get",
      path: "/v1/workflows",
      summary: "List the tenant's workflows, newest first",
      tag: "Workflows",
      query: ListWorkflowsQuery,
      responses: { 200: { description: "a page of workflows", schema: WorkflowsResponse } },
    },
    async (c, { query }) => {
      const caller = c.var.caller;
      const page = await c.env.WORKFLOWS.getByName(`tenant:${caller.tenant}`).list(query.status ?? null, query.limit, query.cursor ?? null);
      const views = await Promise.all(page.rows.map(async (r) => opened(await c.env.WORKFLOWS.getByName(r.id).view(null))));
      return c.json({ workflows: views.map(presentWorkflow), cursor: page.cursor });
    },
  );

  routes.add(
    {
      method: "get",
      path: "/v1/workflows/:id",
      summary: "Get a workflow with its per-step timeline",
      tag: "Workflows",
      params: WorkflowIdParams,
      responses: { 200: { description: "the workflow", schema: Workflow }, 404: err("no such workflow") },
    },
    async (c, { params }) => c.json(presentWorkflow(opened(await c.env.WORKFLOWS.getByName(params.id).view(scope(c.var.caller))))),
  );

  routes.add(
    {
      method: "get",
      path: "/v1/workflows/:id/result",
      summary: "Wait for a workflow to finish (long poll)",
      tag: "Workflows",
      params: WorkflowIdParams,
      query: WorkflowResultQuery,
      responses: {
        200: { description: "the workflow, final", schema: Workflow },
        202: { description: "the workflow, still running after waitMs", schema: Workflow },
        404: err("no such workflow"),
      },
    },
    async (c, { params, query }) => {
      const w = opened(await c.env.WORKFLOWS.getByName(params.id).waitFinal(scope(c.var.caller), query.waitMs));
      return c.json(presentWorkflow(w), w.status === "running" ? 202 : 200);
    },
  );

  routes.add(
    {
      method: "post",
      path: "/v1/workflows/:id/cancel",
      summary: "Cancel a workflow and its unfinished tasks",
      tag: "Workflows",
      audit: "workflow.cancel",
      params: WorkflowIdParams,
      responses: { 200: { description: "the workflow, cancelled", schema: Workflow }, 404: err("no such workflow"), 409: err("already final") },
    },
    async (c, { params }) => {
      c.set("audit", { target: params.id });
      return c.json(presentWorkflow(opened(await c.env.WORKFLOWS.getByName(params.id).cancel(scope(c.var.caller)))));
    },
  );

  routes.add(
    {
      method: "post",
      path: "/v1/workflows/:id/steps/:key/retry",
      summary: "Run a failed step again, with the steps skipped because of it",
      tag: "Workflows",
      audit: "workflow.retry",
      params: StepParams,
      responses: { 200: { description: "the workflow, running again", schema: Workflow }, 404: err("no such workflow or step"), 409: err("the step has not failed") },
    },
    async (c, { params }) => {
      c.set("audit", { target: `${params.id} ${params.key}` });
      return c.json(presentWorkflow(opened(await c.env.WORKFLOWS.getByName(params.id).retry(scope(c.var.caller), params.key))));
    },
  );
}
