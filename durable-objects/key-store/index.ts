import { DurableObject } from "cloudflare:workers";

/** Placeholder so the binding resolves; the key store is being written. */
export class KeyStore extends DurableObject<Env> {}
