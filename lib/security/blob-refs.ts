/**
 * Where a large payload or result lives (docs/payloads.md). A field whose JSON text is over {@link INLINE_MAX_BYTES}
 * is sealed as any other (an `e1.` envelope, lib/security/keyring.ts), the envelope is written to R2 under
 * `<field>/<tenant>/<random>`, and the task row holds a reference to it: `r1.<plaintext bytes>.<R2 key>`. The size
 * in the reference lets the coordinator decide what fits a WebSocket frame without reading the object. Pure: these
 * functions only read and write the text of a reference.
 */
import { utf8Bytes } from "../../contract/json.ts";
import { randomToken } from "../random.ts";

export { utf8Bytes } from "../../contract/json.ts";

/** Payloads and results over this many bytes of JSON text are kept in R2 (API.md, "Caches and vector indexes"). */
export const INLINE_MAX_BYTES = 128 * 1024;

/**
 * Plaintext of R2-kept fields one answer listing several tasks (a lease, a page of tasks) opens at most; beyond it a
 * field is left out and marked. Room for one field of the largest body (10 MiB) and some more.
 */
export const ANSWER_BLOB_BUDGET_BYTES = 12 * 1024 * 1024;

const REF_PREFIX = "r1.";
const ENVELOPE_PREFIX = "e1.";

export interface BlobRef {
  /** The object's key in the BLOBS bucket. */
  key: string;
  /** UTF-8 bytes of the plaintext JSON the object seals. */
  bytes: number;
}

/** Whether JSON text is too large to stay in the row. Most texts are decided by their length alone. */
export function isLarge(json: string): boolean {
  if (json.length > INLINE_MAX_BYTES) return true;
  if (json.length * 3 <= INLINE_MAX_BYTES) return false;
  return utf8Bytes(json) > INLINE_MAX_BYTES;
}

/** A new R2 key for a field of a tenant's task. */
export function newBlobKey(field: "payload" | "result", tenant: string): string {
  return `${field}/${tenant}/${randomToken(18)}`;
}

export function formatBlobRef(ref: BlobRef): string {
  return `${REF_PREFIX}${ref.bytes}.${ref.key}`;
}

/** The reference a stored field holds; null for an inline envelope (or anything else). */
export function parseBlobRef(stored: string): BlobRef | null {
  if (!stored.startsWith(REF_PREFIX)) return null;
  const dot = stored.indexOf(".", REF_PREFIX.length);
  const bytes = Number(stored.slice(REF_PREFIX.length, dot));
  const key = stored.slice(dot + 1);
  if (dot < 0 || !Number.isSafeInteger(bytes) || bytes < 0 || key === "") throw new Error("malformed blob reference: expected \"r1.<bytes>.<key>\"");
  return { key, bytes };
}

export function isBlobRef(stored: string | null | undefined): boolean {
  return typeof stored === "string" && stored.startsWith(REF_PREFIX);
}

/** The R2 keys stored fields refer to (inline envelopes and nulls have none). */
export function blobKeysOf(stored: readonly (string | null | undefined)[]): string[] {
  return stored.flatMap((s) => (typeof s === "string" && isBlobRef(s) ? [parseBlobRef(s)!.key] : []));
}

/**
 * About how many bytes of JSON a stored field opens to: exact for a reference, estimated from an inline envelope's
 * base64url (IV and tag off), the text's length for anything else.
 */
export function openedBytes(stored: string): number {
  if (isBlobRef(stored)) return parseBlobRef(stored)!.bytes;
  if (stored.startsWith(ENVELOPE_PREFIX)) return Math.max(0, Math.floor(((stored.length - stored.indexOf(".", ENVELOPE_PREFIX.length) - 1) * 3) / 4) - 28);
  return stored.length;
}
