import { describe, expect, it } from "vitest";
import { api, expectError, freshPool, lease, register } from "../helpers";
import { clientOf, Clocks, complete, freshTenant, HOUR, hourStart, submitAs } from "./fixtures";

const AGENT = { resources: { cpu: 8, memoryMb: 8192, gpu: 4 }, maxConcurrency: 10 };
const GPU = { requires: { gpu: 1 } };

async function setQuota(pool: string, tenant: string, gpuSecondsPerHour: number | null): Promise<void> {
  const res = await api("PUT", `/v1/pools/${pool}/tenants/${tenant}`, { gpuSecondsPerHour });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

const post = (token: string, pool: string, fields: Record<string, unknown> = {}) => api("POST", "/v1/tasks", { type: `${pool}.work`, ...fields }, { token });

describe("GPU quota", () => {
  it("refuses GPU tasks (single and batch) of the tenant at its quota with Retry-After, not others; recovers after the hour", async () => {
    const pool = freshPool("gq");
    const [t, u] = [freshTenant("gq"), freshTenant("gq")];
    const [kt, ku] = [await clientOf(t), await clientOf(u)];
    await submitAs(kt, pool);
    await setQuota(pool, t, 10);
    await setQuota(pool, u, 10);
    const h = hourStart(1);
    const clocks = await new Clocks(pool, h).install();
    await register(pool, "q-1", AGENT);
    const held = await lease(pool, "q-1", 10); // the plain task and the GPU one
    const gpuTask = await submitAs(kt, pool, GPU);
    const [g] = await lease(pool, "q-1", 1);
    expect(g.id).toBe(gpuTask.id);
    // Held so far counts: 10 s into a running GPU task the tenant is at its quota.
    await clocks.to(h + 10_000);
    const refused = await post(kt, pool, GPU);
    expectError(refused, 429, "rate_limited");
    expect(refused.body.error.details).toMatchObject({ scope: "gpu_quota", retryAfterSeconds: 3591 });
    expect(refused.headers.get("retry-after")).toBe("3591");
    await complete(g.id, g.leaseToken);
    for (const x of held) await complete(x.id, x.leaseToken);
    // Tasks without a GPU are unaffected; another tenant is unaffected.
    expect((await post(kt, pool)).status).toBe(201);
    expect((await post(ku, pool, GPU)).status).toBe(201);
    // A batch names the first GPU task.
    const batch = await api("POST", "/v1/tasks/batch", { tasks: [{ type: `${pool}.work` }, { type: `${pool}.work`, ...GPU }] }, { token: kt });
    expectError(batch, 429, "rate_limited");
    expect(batch.body.error.details).toMatchObject({ scope: "gpu_quota", field: "tasks.1.requires.gpu" });
    // The window: at the next hour's start this hour weighs fully, a second later below the limit.
    await clocks.to(h + HOUR);
    expectError(await post(kt, pool, GPU), 429, "rate_limited");
    await clocks.to(h + HOUR + 1000);
    expect((await post(kt, pool, GPU)).status).toBe(201);
    // No limit: null.
    await setQuota(pool, t, null);
    expect((await post(kt, pool, GPU)).status).toBe(201);
  });

  it("weighs the previous hour by its part still in the window: Retry-After is exact", async () => {
    const pool = freshPool("gq");
    const t = freshTenant("gq");
    const kt = await clientOf(t);
    await submitAs(kt, pool, GPU);
    await submitAs(kt, pool, GPU);
    await setQuota(pool, t, 10);
    const h = hourStart(3);
    // Two GPU tasks held 10 s each (within the agent's heartbeat allowance): 20 GPU-seconds in hour h.
    const clocks = await new Clocks(pool, h + HOUR - 10_000).install();
    await register(pool, "q-2", AGENT);
    const both = await lease(pool, "q-2", 2);
    expect(both).toHaveLength(2);
    await clocks.to(h + HOUR);
    for (const g of both) await complete(g.id, g.leaseToken);
    // 0.4 h into the next hour: 20 x 0.6 = 12 >= 10; below 10 once 20 x (1 - f) < 10, f > 0.5: 360 s later.
    await clocks.to(h + HOUR + 0.4 * HOUR);
    const refused = await post(kt, pool, GPU);
    expectError(refused, 429, "rate_limited");
    expect(refused.headers.get("retry-after")).toBe("361");
    await clocks.to(h + HOUR + 0.5 * HOUR);
    expectError(await post(kt, pool, GPU), 429, "rate_limited");
    await clocks.to(h + HOUR + 0.5 * HOUR + 1000);
    expect((await post(kt, pool, GPU)).status).toBe(201);
  });
});
