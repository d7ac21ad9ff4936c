/**
 * Who may call what: the permission matrix of the API, defined once. The bootstrap key is the super-admin and
 * passes every role check; attribute checks (tenant, pool, agent) still apply. Every route the Worker serves has a row
 * here (the route table refuses to register a route without one), the middleware enforces it, the README prints
 * it, and the tests generate the full route x role x tenant matrix from it.
 */
import { ROLES, type Role } from "../../contract/records.ts";

export { ROLES, type Role } from "../../contract/records.ts";

/** Anyone, with or without a credential. */
export const PUBLIC = "public" as const;

const ADMIN_OPERATOR: readonly Role[] = ["admin", "operator"];
const TASK_CLIENTS: readonly Role[] = ["admin", "operator", "client"];
const AGENT_SIDE: readonly Role[] = ["admin", "operator", "agent"];

export const PERMISSIONS: Readonly<Record<string, readonly Role[] | typeof PUBLIC>> = {
  "POST /v1/tasks": TASK_CLIENTS,
  "POST /v1/tasks/batch": TASK_CLIENTS,
  "GET /v1/tasks/:id": TASK_CLIENTS,
  "GET /v1/tasks/:id/result": TASK_CLIENTS,
  "POST /v1/tasks/:id/cancel": TASK_CLIENTS,
  "POST /v1/tasks/:id/complete": AGENT_SIDE,
  "POST /v1/tasks/:id/fail": AGENT_SIDE,
  "POST /v1/tasks/:id/extend": AGENT_SIDE,
  "POST /v1/tasks/settle": AGENT_SIDE,
  "GET /v1/tasks/:id/payload": AGENT_SIDE,
  "POST /v1/pools/:pool/agents": AGENT_SIDE,
  "GET /v1/pools/:pool/agents": ADMIN_OPERATOR,
  "GET /v1/pools/:pool/agents/:agentId": AGENT_SIDE,
  "PATCH /v1/pools/:pool/agents/:agentId": AGENT_SIDE,
  "DELETE /v1/pools/:pool/agents/:agentId": AGENT_SIDE,
  "POST /v1/pools/:pool/agents/:agentId/heartbeat": AGENT_SIDE,
  "POST /v1/pools/:pool/agents/:agentId/lease": AGENT_SIDE,
  "GET /v1/pools/:pool/agents/:agentId/connect": AGENT_SIDE,
  "GET /v1/pools": TASK_CLIENTS,
  "GET /v1/pools/:pool": TASK_CLIENTS,
  "GET /v1/pools/:pool/tasks": TASK_CLIENTS,
  "POST /v1/pools/:pool/dlq/redrive": ADMIN_OPERATOR,
  "GET /v1/pools/:pool/config": ADMIN_OPERATOR,
  "PUT /v1/pools/:pool/config": ["operator"],
  "GET /v1/pools/:pool/tenants/:tenant": ADMIN_OPERATOR,
  "PUT /v1/pools/:pool/tenants/:tenant": ADMIN_OPERATOR,
  "GET /v1/pools/:pool/shards": TASK_CLIENTS,
  "POST /v1/pools/:pool/shards": ["operator"],
  "POST /v1/pools/:pool/shards/:id/drain": ["operator"],
  "GET /v1/pools/:pool/state": TASK_CLIENTS,
  "POST /v1/tenants/:tenant/keys": ["admin"],
  "GET /v1/tenants/:tenant/keys": ["admin"],
  "DELETE /v1/tenants/:tenant/keys/:id": ["admin"],
  "GET /v1/tenants/:tenant/usage": ["admin", "auditor", "operator"],
  "POST /v1/auth/token": PUBLIC,
  "GET /v1/cache/:key": TASK_CLIENTS,
  "DELETE /v1/cache/:key": ADMIN_OPERATOR,
  "POST /v1/cache/purge": ADMIN_OPERATOR,
  "GET /v1/indexes": TASK_CLIENTS,
  "PUT /v1/indexes/:index": ADMIN_OPERATOR,
  "DELETE /v1/indexes/:index": ADMIN_OPERATOR,
  "POST /v1/indexes/:index/vectors": TASK_CLIENTS,
  "DELETE /v1/indexes/:index/vectors/:id": TASK_CLIENTS,
  "POST /v1/indexes/:index/query": TASK_CLIENTS,
  "POST /v1/workflows": TASK_CLIENTS,
  "GET /v1/workflows": TASK_CLIENTS,
  "GET /v1/workflows/:id": TASK_CLIENTS,
  "GET /v1/workflows/:id/result": TASK_CLIENTS,
  "POST /v1/workflows/:id/cancel": TASK_CLIENTS,
  "POST /v1/workflows/:id/steps/:key/retry": TASK_CLIENTS,
  "POST /v1/schedules": ADMIN_OPERATOR,
  "GET /v1/schedules": TASK_CLIENTS,
  "GET /v1/schedules/:id": TASK_CLIENTS,
  "POST /v1/schedules/:id/pause": ADMIN_OPERATOR,
  "POST /v1/schedules/:id/resume": ADMIN_OPERATOR,
  "POST /v1/schedules/:id/trigger": ADMIN_OPERATOR,
  "DELETE /v1/schedules/:id": ADMIN_OPERATOR,
  "GET /v1/audit": ["admin", "auditor"],
  "GET /v1/audit/verify": ["admin", "auditor"],
  "GET /metrics": ["admin", "operator", "auditor"],
  "GET /healthz": PUBLIC,
  "GET /openapi.json": PUBLIC,
  "GET /": PUBLIC,
  "GET /dashboard.js": PUBLIC,
};

export function routeKey(method: string, path: string): string {
  return `${method.toUpperCase()} ${path}`;
}

export function rulesFor(method: string, path: string): readonly Role[] | typeof PUBLIC {
  const rule = PERMISSIONS[routeKey(method, path)];
  if (rule === undefined) throw new Error(`no permission rule for ${routeKey(method, path)}: add one to src/security/permissions.ts`);
  return rule;
}

export function allows(rule: readonly Role[] | typeof PUBLIC, roles: readonly Role[]): boolean {
  return rule === PUBLIC || roles.some((role) => rule.includes(role));
}

/** The matrix as a Markdown table (README, "Roles and permissions"). */
export function permissionTable(): string {
  const head = `| route | ${ROLES.join(" | ")} |`;
  const rule = `|---|${ROLES.map(() => ":-:").join("|")}|`;
  const rows = Object.entries(PERMISSIONS).map(([route, roles]) =>
    roles === PUBLIC
      ? `| \`${route}\` | ${ROLES.map(() => "public").join(" | ")} |`
      : `| \`${route}\` | ${ROLES.map((r) => (roles.includes(r) ? "yes" : "")).join(" | ")} |`,
  );
  return [head, rule, ...rows].join("\n");
}
