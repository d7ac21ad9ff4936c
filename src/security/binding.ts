import { ApiError } from "../../contract/errors.ts";
import type { Caller } from "../env.ts";

/** An agent credential is bound to one pool: anything in another pool is refused. */
export function requirePoolBinding(caller: Caller, pool: string): void {
  if (caller.pool !== null && caller.pool !== pool) {
    throw new ApiError("forbidden", `this agent credential is bound to pool ${caller.pool}, not ${pool}`);
  }
}
