import type { Principal, Role } from "../contract/records.ts";

/** Who made the request, as the auth middleware established it. */
export interface Caller extends Principal {
  roles: readonly Role[];
  /** How the caller authenticated. */
  credential: "admin_key" | "api_key" | "token";
  /** The API key behind the credential; null for the bootstrap key. */
  keyId: string | null;
  /** The pool an agent credential is bound to. */
  pool: string | null;
}

/** Secrets that only exist after a key rotation. */
export interface OptionalSecrets {
  DAA_PREVIOUS_MASTER_KEYS?: string;
}

/** What a route asks the audit trail to record about the request, besides who, when, where and the outcome. */
export interface AuditNote {
  target: string;
  /** The tenant whose resource the act touched, when the handler knows it: a record goes to its chain too. */
  tenant?: string;
  /**
   * For a batch over several tenants' tasks: each tenant with the part of the batch that was its own. Every one
   * other than the actor's gets a record in its chain, whose target names only its part.
   */
  subjects?: { tenant: string; target: string }[];
  /** Nothing worth a record happened (an empty long poll). */
  skip?: boolean;
}

/** The Hono environment of the Worker: bindings from wrangler.toml, variables set by middleware. */
export interface AppEnv {
  Bindings: Env & OptionalSecrets;
  Variables: { caller: Caller; audit: AuditNote };
}
