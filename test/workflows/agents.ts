/** Test agents for workflows: each pool's agent leases over HTTP and settles what its handler answers. */
import { api, lease, register } from "../helpers";

export type Handler = (payload: any, task: any) => { result: unknown } | { fail: string; retryable?: boolean } | null;

/** Registers one agent per pool (idempotent per test: fresh pool names). */
export async function agents(pools: Record<string, Handler>, fields: Record<string, Record<string, unknown>> = {}): Promise<void> {
  for (const pool of Object.keys(pools)) await register(pool, `${pool}-agent`, { maxConcurrency: 200, ...fields[pool] });
}

/** One round: every pool's agent leases what it can and settles it. Answers how many tasks it settled. */
export async function round(pools: Record<string, Handler>): Promise<number> {
  let n = 0;
  for (const [pool, handler] of Object.entries(pools)) {
    const tasks = await lease(pool, `${pool}-agent`, 100);
    const items = tasks.flatMap((t): Record<string, unknown>[] => {
      const out = handler(t.payload, t);
      if (out === null) return [];
      return "result" in out ? [{ action: "complete", id: t.id, leaseToken: t.leaseToken, result: out.result }] : [{ action: "fail", id: t.id, leaseToken: t.leaseToken, error: { message: out.fail }, retryable: out.retryable ?? false }];
    });
    for (let i = 0; i < items.length; i += 500) {
      const res = await api("POST", "/v1/tasks/settle", { items: items.slice(i, i + 500) });
      if (res.status !== 200) throw new Error(`settle answered ${res.status}: ${JSON.stringify(res.body)}`);
    }
    n += items.length;
  }
  return n;
}

/** Runs rounds until the workflow is final (or the deadline passes); answers its final body. */
export async function runUntilFinal(id: string, pools: Record<string, Handler>, token?: string, deadlineMs = 25_000): Promise<any> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    await round(pools);
    const res = await api("GET", `/v1/workflows/${id}/result?waitMs=50`, undefined, token === undefined ? {} : { token });
    if (res.status === 200) return res.body;
    if (res.status !== 202) throw new Error(`result answered ${res.status}: ${JSON.stringify(res.body)}`);
    if (Date.now() > end) throw new Error(`workflow ${id} still running: ${JSON.stringify(res.body.steps.map((s: any) => [s.key, s.status, s.taskIds.length]))}`);
  }
}
