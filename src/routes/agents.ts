import { z } from "zod";
import { ApiError, errorOfResponse } from "../../contract/errors.ts";
import { SOCKET_UPGRADE_HEADERS } from "../../contract/pool-rpc.ts";
import { idsOfOtherTenants } from "../../lib/audit/records.ts";
import { presentAgent, presentLeased } from "../../lib/present.ts";
import { Gateway } from "../mesh/gateway.ts";
import type { Routes } from "../openapi/route.ts";
import { Agent, AgentParams, ConnectQuery, AgentsResponse, AgentWithInterval, HeartbeatBody, LeaseBody, LeaseResponse, PatchAgent, PoolParams, RegisterAgent } from "../schemas/agents.ts";
import { ErrorSchema } from "../schemas/common.ts";
import { requirePoolBinding } from "../security/binding.ts";
import { actorName, principalOf } from "../security/credentials.ts";

const err = (description: string) => ({ description, schema: ErrorSchema });


export function agentRoutes(routes: Routes): void {
  routes.add(
    {
      method: "post",
      path: "/v1/pools/:pool/agents",
      summary: "Register an agent (it goes to running)",
      tag: "Agents and leases",
      audit: "agent.register",
      params: PoolParams,
      body: RegisterAgent,
      responses: {
        201: { description: "the agent and the heartbeat interval to keep", schema: AgentWithInterval },
        400: err("invalid registration"),
        409: err("the agent id is taken by an agent this credential may not act for"),
      },
    },
    async (c, { params, body }) => {
      requirePoolBinding(c.var.caller, params.pool);
      c.set("audit", { target: `${params.pool}/${body.agentId ?? "(id to be generated)"}` });
      const agent = await new Gateway(c.env, c.req.raw).agents.register(c.var.caller, params.pool, {
        agentId: body.agentId ?? null,
        capabilities: body.capabilities,
        resources: body.resources,
        maxConcurrency: body.maxConcurrency,
        metadata: JSON.stringify(body.metadata),
      });
      c.set("audit", { target: `${params.pool}/${agent.agentId}` });
      return c.json({ ...presentAgent(agent), heartbeatIntervalMs: agent.heartbeatIntervalMs }, 201);
    },
  );

  routes.add(
    {
      method: "get",
      path: "/v1/pools/:pool/agents",
      summary: "List the agents of a pool",
      tag: "Agents and leases",
      params: PoolParams,
      responses: { 200: { description: "the agents", schema: AgentsResponse }, 404: err("no such pool") },
    },
    async (c, { params }) => {
      requirePoolBinding(c.var.caller, params.pool);
      return c.json({ agents: (await new Gateway(c.env, c.req.raw).agents.list(c.var.caller, params.pool)).map(presentAgent) });
    },
  );

  routes.add(
    {
      method: "get",
      path: "/v1/pools/:pool/agents/:agentId",
      summary: "Get an agent",
      tag: "Agents and leases",
      params: AgentParams,
      responses: { 200: { description: "the agent", schema: Agent }, 404: err("no such agent") },
    },
    async (c, { params }) => {
      requirePoolBinding(c.var.caller, params.pool);
      return c.json(presentAgent(await new Gateway(c.env, c.req.raw).agents.get(c.var.caller, params.pool, params.agentId)));
    },
  );

  routes.add(
    {
      method: "patch",
      path: "/v1/pools/:pool/agents/:agentId",
      summary: "Change an agent's lifecycle state",
      tag: "Agents and leases",
      audit: "agent.state",
      params: AgentParams,
      body: PatchAgent,
      responses: {
        200: { description: "the agent", schema: Agent },
        400: err("unknown state"),
        404: err("no such agent"),
        409: err("invalid_transition: the lifecycle does not allow this change"),
      },
    },
    async (c, { params, body }) => {
      requirePoolBinding(c.var.caller, params.pool);
      c.set("audit", { target: `${params.pool}/${params.agentId} -> ${body.state}` });
      return c.json(presentAgent(await new Gateway(c.env, c.req.raw).agents.transition(c.var.caller, params.pool, params.agentId, body.state)));
    },
  );

  routes.add(
    {
      method: "delete",
      path: "/v1/pools/:pool/agents/:agentId",
      summary: "Remove an agent; its leased tasks go back to the queue at once",
      tag: "Agents and leases",
      audit: "agent.delete",
      params: AgentParams,
      responses: { 200: { description: "removed", schema: z.object({ deleted: z.literal(true), agentId: z.string() }) }, 404: err("no such agent") },
    },
    async (c, { params }) => {
      requirePoolBinding(c.var.caller, params.pool);
      await new Gateway(c.env, c.req.raw).agents.remove(c.var.caller, params.pool, params.agentId);
      return c.json({ deleted: true, agentId: params.agentId });
    },
  );

  routes.add(
    {
      method: "post",
      path: "/v1/pools/:pool/agents/:agentId/heartbeat",
      summary: "Report that an agent is alive, with its load",
      tag: "Agents and leases",
      params: AgentParams,
      body: HeartbeatBody,
      responses: { 200: { description: "the agent and the heartbeat interval to keep", schema: AgentWithInterval }, 404: err("no such agent") },
    },
    async (c, { params, body }) => {
      requirePoolBinding(c.var.caller, params.pool);
      const agent = await new Gateway(c.env, c.req.raw).agents.heartbeat(c.var.caller, params.pool, params.agentId, body.load ?? null);
      return c.json({ ...presentAgent(agent), heartbeatIntervalMs: agent.heartbeatIntervalMs });
    },
  );

  routes.add(
    {
      method: "post",
      path: "/v1/pools/:pool/agents/:agentId/lease",
      summary: "Lease up to max tasks, waiting up to waitMs for work (long poll)",
      tag: "Agents and leases",
      audit: "task.lease",
      params: AgentParams,
      body: LeaseBody,
      responses: { 200: { description: "the leased tasks (empty when there was nothing to do)", schema: LeaseResponse }, 404: err("no such agent") },
    },
    async (c, { params, body }) => {
      requirePoolBinding(c.var.caller, params.pool);
      const tasks = await new Gateway(c.env, c.req.raw).agents.lease(c.var.caller, params.pool, params.agentId, body.max, body.waitMs);
      // A shared agent leases other tenants' tasks: each of them gets a record of how many of its own went.
      const subjects = [...idsOfOtherTenants(tasks, c.var.caller.tenant)].map(([tenant, ids]) => ({ tenant, target: `${params.pool}/${params.agentId}: ${ids.length} tasks` }));
      c.set("audit", { target: `${params.pool}/${params.agentId}: ${tasks.length} tasks`, skip: tasks.length === 0, subjects });
      return c.json({ tasks: tasks.map(presentLeased) });
    },
  );

  routes.add(
    {
      method: "get",
      path: "/v1/pools/:pool/agents/:agentId/connect",
      summary: "Open the agent's WebSocket: tasks are pushed within the credits it gives (see the protocol in docs/api.md)",
      tag: "Agents and leases",
      audit: "agent.connect",
      params: AgentParams,
      query: ConnectQuery,
      responses: {
        101: { description: "switching protocols: the mesh sends hello, then tasks" },
        400: err("not a WebSocket upgrade"),
        404: err("no such agent"),
      },
    },
    async (c, { params, query }) => {
      if (c.req.header("upgrade")?.toLowerCase() !== "websocket") throw new ApiError("invalid_request", "this route opens a WebSocket: send Upgrade: websocket", [{ field: "(header) upgrade", message: "expected websocket" }]);
      requirePoolBinding(c.var.caller, params.pool);
      const headers = new Headers(c.req.raw.headers);
      headers.delete("authorization");
      headers.set(SOCKET_UPGRADE_HEADERS.principal, JSON.stringify(principalOf(c.var.caller)));
      headers.set(SOCKET_UPGRADE_HEADERS.agent, params.agentId);
      headers.set(SOCKET_UPGRADE_HEADERS.actor, actorName(c.var.caller));
      const gateway = new Gateway(c.env, c.req.raw);
      const shard = await gateway.agents.socketShard(c.var.caller, params.pool, params.agentId, query.shard === undefined ? null : Number(query.shard));
      const res = await gateway.calls.on(params.pool, shard, (coordinator) => coordinator.fetch(new Request(c.req.url, { headers })));
      if (res.status !== 101) throw await errorOfResponse(res);
      return res;
    },
  );
}
