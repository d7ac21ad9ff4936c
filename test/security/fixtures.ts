import type { Role } from "../../src/security/permissions";
import { api } from "../helpers";

/** One API key per role of a tenant; the agent key is bound to `pool`. */
export type RoleKeys = Record<Role, string>;

export async function createKey(tenant: string, roles: Role[], pool?: string): Promise<{ id: string; key: string }> {
  const res = await api("POST", `/v1/tenants/${tenant}/keys`, { name: `${roles.join("+")} key`, roles, ...(pool ? { pool } : {}) });
  if (res.status !== 201) throw new Error(`creating a ${roles} key for ${tenant} answered ${res.status}: ${JSON.stringify(res.body)}`);
  return { id: res.body.id, key: res.body.key };
}

export async function keysFor(tenant: string, pool: string): Promise<RoleKeys> {
  const [admin, operator, client, agent, auditor] = await Promise.all([
    createKey(tenant, ["admin"]),
    createKey(tenant, ["operator"]),
    createKey(tenant, ["client"]),
    createKey(tenant, ["agent"], pool),
    createKey(tenant, ["auditor"]),
  ]);
  return { admin: admin!.key, operator: operator!.key, client: client!.key, agent: agent!.key, auditor: auditor!.key };
}

export async function as<T = any>(token: string | null, method: string, path: string, body?: unknown): Promise<{ status: number; body: T; headers: Headers }> {
  return api<T>(method, path, body, { token });
}
