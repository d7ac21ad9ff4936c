import { DurableObject } from "cloudflare:workers";

/** Placeholder so the binding resolves; the hash-chained log is being written. */
export class AuditLog extends DurableObject<Env> {}
