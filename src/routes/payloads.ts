import { parseTaskId } from "../../contract/ids.ts";
import { Gateway } from "../mesh/gateway.ts";
import type { Routes } from "../openapi/route.ts";
import { ErrorSchema } from "../schemas/common.ts";
import { PayloadQuery, PayloadResponse, TaskIdParams } from "../schemas/tasks.ts";
import { requirePoolBinding } from "../security/binding.ts";

const err = (description: string) => ({ description, schema: ErrorSchema });

/**
 * The agent side of large payloads (docs/payloads.md): a task pushed on a WebSocket whose payload would not fit a
 * frame, or leased over HTTP past an answer's size budget, comes with `payloadOmitted`; the agent holding its lease
 * reads the payload here, fenced by the lease token like complete and fail.
 */
export function payloadRoutes(routes: Routes): void {
  routes.add(
    {
      method: "get",
      path: "/v1/tasks/:id/payload",
      summary: "The payload of a leased task, for the holder of its current lease (one left out of a push or a lease answer)",
      tag: "Agents and leases",
      params: TaskIdParams,
      query: PayloadQuery,
      responses: {
        200: { description: "the task's id and its payload", schema: PayloadResponse },
        404: err("no such task"),
        409: err("lease_lost: not the current lease"),
      },
    },
    async (c, { params, query }) => {
      requirePoolBinding(c.var.caller, parseTaskId(params.id)?.pool ?? "");
      const payload = await new Gateway(c.env, c.req.raw).tasks.leasedPayload(c.var.caller, params.id, query.leaseToken);
      // The payload is JSON text already: written into the answer as it is, not parsed and written again.
      return c.body(`{"id":${JSON.stringify(params.id)},"payload":${payload}}`, 200, { "content-type": "application/json" });
    },
  );
}
