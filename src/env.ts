import type { Principal } from "../durable-objects/pool-coordinator/types";

/** Who made the request, as the auth middleware established it. */
export interface Caller extends Principal {
  /** The credential's roles; the bootstrap key acts as `admin`. */
  roles: readonly string[];
  /** How the caller authenticated, for logs and the audit trail. */
  credential: "admin_key";
}

/** The Hono environment of the Worker: bindings from wrangler.toml, variables set by middleware. */
export interface AppEnv {
  Bindings: Env;
  Variables: { caller: Caller };
}
