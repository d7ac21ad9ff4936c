import type { Context } from "hono";
import type { AppEnv } from "../../env.ts";
import { OutputCache } from "./output-cache.ts";

/** The output cache for a request: work after the answer (fills, counts) runs under the request's waitUntil. */
export function outputCache(c: Context<AppEnv>): OutputCache {
  let waitUntil: (p: Promise<unknown>) => void;
  try {
    const ctx = c.executionCtx;
    waitUntil = (p) => ctx.waitUntil(p);
  } catch {
    // No execution context (a request built by hand): the work still runs, unawaited.
    waitUntil = (p) => void p.catch(() => undefined);
  }
  return new OutputCache(c.env, c.req.raw, waitUntil);
}
