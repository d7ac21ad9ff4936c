import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { freshPool } from "../helpers";
import { as, createKey } from "../security/fixtures";

/** runInDurableObject without its deep generic types (the tests reach into the object's parts). */
export const inObject = runInDurableObject as unknown as (stub: unknown, fn: (instance: any, state: DurableObjectState) => unknown) => Promise<any>;

/**
 * Time for one tenant's Scheduler, moved by the test (as PoolClock does for a pool): the object reads `clock()`,
 * and its alarm is run by hand after moving it. Dates are years ahead so that no alarm the object sets ever
 * comes due by itself while a test runs.
 */
export class SchedulerClock {
  constructor(
    readonly tenant: string,
    public now: number,
  ) {}

  get stub() {
    return env.SCHEDULER.getByName(this.tenant);
  }

  async install(): Promise<this> {
    const clock = this;
    await inObject(this.stub, (instance) => {
      instance.clock = () => clock.now;
    });
    return this;
  }

  /** Sets the time and runs the alarm if one is set; answers whether it ran. */
  async to(iso: string | number): Promise<boolean> {
    this.now = typeof iso === "number" ? iso : Date.parse(iso);
    await this.install();
    return runDurableObjectAlarm(this.stub);
  }

  /** Resets the object (its memory is gone, SQLite stays), then puts the clock back. */
  async restart(): Promise<void> {
    await inObject(this.stub, (_instance, state) => state.abort("test restart")).catch(() => undefined);
    await this.install();
  }
}

let serial = 0;

/** A tenant of its own (its own Scheduler), an operator key, a client key, a pool, and its clock at `start`. */
export async function tenantAt(start: string) {
  const tenant = `sc-${++serial}-${Math.floor(performance.now())}`;
  const [operator, client] = await Promise.all([createKey(tenant, ["operator"]), createKey(tenant, ["client"])]);
  const clock = await new SchedulerClock(tenant, Date.parse(start)).install();
  const pool = freshPool("sc");
  const call = (method: string, path: string, body?: unknown) => as(operator.key, method, path, body);
  return { tenant, operator: operator.key, client: client.key, pool, clock, call };
}

export type Tenant = Awaited<ReturnType<typeof tenantAt>>;

/** Creates a schedule; fails the test on anything but 201. */
export async function schedule(t: Tenant, fields: Record<string, unknown>): Promise<any> {
  const res = await t.call("POST", "/v1/schedules", { cron: "0 * * * *", task: { type: `${t.pool}.work`, payload: { n: 1 } }, ...fields });
  if (res.status !== 201) throw new Error(`create answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function get(t: Tenant, id: string): Promise<any> {
  const res = await t.call("GET", `/v1/schedules/${id}`);
  if (res.status !== 200) throw new Error(`get answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Every task of the tenant in its pool (the pool's listing, as the operator sees it, every page). */
export async function tasksInPool(t: Tenant): Promise<any[]> {
  const tasks: any[] = [];
  let cursor: string | null = null;
  do {
    const res = await t.call("GET", `/v1/pools/${t.pool}/tasks?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    if (res.status === 404) return [];
    if (res.status !== 200) throw new Error(`listing answered ${res.status}: ${JSON.stringify(res.body)}`);
    tasks.push(...res.body.tasks);
    cursor = res.body.cursor;
  } while (cursor);
  return tasks;
}
