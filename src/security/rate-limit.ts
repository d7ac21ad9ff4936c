import { ApiError } from "../shared/errors";

/** Width of the platform's fixed windows for the two limiters (wrangler.toml `simple.period`). */
export const RATE_WINDOW_SECONDS = 10;

/**
 * Seconds until the current fixed window ends: the Rate Limiting binding counts in windows aligned to the wall
 * clock, so that is when a refused caller can next succeed.
 */
export function retryAfterSeconds(now: number, periodSeconds = RATE_WINDOW_SECONDS): number {
  const periodMs = periodSeconds * 1000;
  return Math.max(1, Math.ceil((periodMs - (now % periodMs)) / 1000));
}

/** Refuses with 429 when either the tenant or the credential is over its limit. */
export async function enforceRateLimits(env: Env, keys: { tenant: string | null; credential: string }, now = Date.now()): Promise<void> {
  const [tenant, credential] = await Promise.all([
    keys.tenant === null ? Promise.resolve({ success: true }) : env.TENANT_RATE_LIMIT.limit({ key: `tenant:${keys.tenant}` }),
    env.CREDENTIAL_RATE_LIMIT.limit({ key: keys.credential }),
  ]);
  if (tenant.success && credential.success) return;
  const retryAfter = retryAfterSeconds(now);
  throw new ApiError("rate_limited", `too many requests for this ${tenant.success ? "credential" : "tenant"}; retry after ${retryAfter} s`, {
    scope: tenant.success ? "credential" : "tenant",
    retryAfterSeconds: retryAfter,
  });
}
