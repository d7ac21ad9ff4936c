import { describe, expect, it } from "vitest";
import { api, freshPool } from "./helpers";

describe("smoke", () => {
  it("submits, leases, completes", async () => {
    const pool = freshPool();
    const submitted = await api("POST", "/v1/tasks", { type: `${pool}.work`, payload: { n: 1 } });
    expect(submitted.status).toBe(201);
    const agent = await api("POST", `/v1/pools/${pool}/agents`, { agentId: "a1" });
    expect(agent.status).toBe(201);
    const lease = await api("POST", `/v1/pools/${pool}/agents/a1/lease`, { max: 1 });
    expect(lease.status).toBe(200);
    expect(lease.body.tasks).toHaveLength(1);
    const t = lease.body.tasks[0];
    const done = await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: t.leaseToken, result: { ok: 1 } });
    expect(done.status).toBe(200);
    expect(done.body.status).toBe("succeeded");
  });
});
