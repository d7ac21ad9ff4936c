/** `GET /v1/tenants/:tenant/usage` (docs/resources.md, "Usage accounting"). */
import { z } from "zod";

/** The latest instant a window may name (the year 9999, as ISO 8601 can write it). */
const MAX_MS = 253_402_300_799_999;

/** An instant as ISO 8601 (with a zone or Z) or as milliseconds since the epoch. */
const Instant = z
  .string()
  .max(40)
  .transform((value, ctx) => {
    const ms = /^\d{1,15}$/.test(value) ? Number(value) : z.iso.datetime({ offset: true }).safeParse(value).success ? Date.parse(value) : NaN;
    if (!Number.isFinite(ms) || ms > MAX_MS) {
      ctx.addIssue({ code: "custom", message: "an ISO 8601 time (e.g. 2026-12-04T13:00:00Z) or milliseconds since the epoch" });
      return z.NEVER;
    }
    return ms;
  })
  .describe("ISO 8601 or milliseconds since the epoch");

export const UsageQuery = z
  .object({
    from: Instant.optional().describe("start of the window (default: `to` minus 24 hours)"),
    to: Instant.optional().describe("end of the window, exclusive (default: now)"),
  })
  .transform((q, ctx) => {
    const to = q.to ?? Date.now();
    const from = q.from ?? to - 86_400_000;
    if (from >= to) {
      ctx.addIssue({ code: "custom", path: ["from"], message: "from must be before to" });
      return z.NEVER;
    }
    return { from, to };
  });

const PoolUsage = z
  .object({
    pool: z.string(),
    tasks: z.number().int().describe("leases that ended in the window (complete, fail, expiry, release, cancel)"),
    taskSeconds: z.number().describe("seconds the tasks were held, lease to settle"),
    gpuSeconds: z.number().describe("taskSeconds times each task's requires.gpu"),
  })
  .meta({ id: "PoolUsage" });

export const UsageResponse = z
  .object({
    tenant: z.string(),
    from: z.string().describe("ISO 8601, the window's start as asked (the hour buckets that overlap the window count whole)"),
    to: z.string(),
    pools: z.array(PoolUsage),
  })
  .meta({ id: "UsageReport" });
