import type { Caller } from "../env";
import { ApiError } from "../shared/errors";

/** An agent credential is bound to one pool: anything in another pool is refused. */
export function requirePoolBinding(caller: Caller, pool: string): void {
  if (caller.pool !== null && caller.pool !== pool) {
    throw new ApiError("forbidden", `this agent credential is bound to pool ${caller.pool}, not ${pool}`);
  }
}
