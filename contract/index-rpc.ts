/**
 * Vector indexes (API.md, "Caches and vector indexes"): the vocabulary the Worker (src/mesh/indexes.ts) and the
 * `VectorIndex` Durable Object (durable-objects/vector-index/) share. An index belongs to a tenant; its settings
 * and list of parts live in the tenant's registry object; its vectors are spread over parts by a hash of the
 * vector id (docs/indexes.md). Every call is one SQLite transaction of the object called; none has a principal:
 * only the Worker's index client and the index's own parts make them.
 */
import type { EmbedModelRef } from "./embedder.ts";

/** Index names: 1-63 characters of A-Z, a-z, 0-9, _ . and -, starting with a letter or digit. */
export const INDEX_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
export const MAX_DIMENSIONS = 4096;
export const MAX_VECTOR_ID = 128;
export const MAX_UPSERT = 1000;
export const MAX_METADATA_BYTES = 4096;
export const MAX_TOP_K = 100;
/** One part keeps its vectors and their metadata under this many bytes (isolates have 128 MB and may be shared). */
export const PART_BYTES = 32 * 1024 * 1024;
/** A part splits at most this many times: an index has at most 2^16 parts. */
export const MAX_DEPTH = 16;

export const METRICS = ["cosine"] as const;
export type IndexMetric = (typeof METRICS)[number];
export const PRECISIONS = ["float32", "int8"] as const;
export type Precision = (typeof PRECISIONS)[number];

export interface IndexSettings {
  dimensions: number;
  metric: IndexMetric;
  precision: Precision;
  /** The ONNX model that embeds `text` queries (contract/embedder.ts); null or absent: queries send vectors. */
  model?: EmbedModelRef | null;
}

/** A part's place in the hash space: the hashes whose low `depth` bits are `prefix`. */
export interface PartPlace {
  prefix: number;
  depth: number;
}

/** What the registry keeps of an index. `parts`: every part, a superset of those holding data. */
export interface IndexRecord extends IndexSettings {
  tenant: string;
  index: string;
  /** Random per creation: a deleted and re-created index never meets the old one's objects. */
  incarnation: string;
  /** The byte budget of each part (PART_BYTES; smaller only through the test hook). */
  partBytes: number;
  parts: PartPlace[];
  createdAt: number;
}

/** Which part a call is for: every part call carries it, so a part knows its index without a lookup. */
export interface PartRef extends IndexSettings {
  tenant: string;
  index: string;
  incarnation: string;
  prefix: number;
  partBytes: number;
}

export type Scalar = string | number | boolean | null;
/** One field's condition: a value (equality) or operators, all of which must hold. */
export type FieldCondition =
  | Scalar
  | { $eq?: Scalar; $ne?: Scalar; $gt?: number | string; $gte?: number | string; $lt?: number | string; $lte?: number | string; $in?: Scalar[] };
/** A metadata filter: every field's condition must hold (top-level metadata fields). */
export type MetadataFilter = Record<string, FieldCondition>;

export type Metadata = Record<string, unknown>;

/** A vector as it travels to a part: unit length (cosine), float32, with its id's hash and metadata as JSON text. */
export interface StoredVector {
  id: string;
  hash: number;
  values: Float32Array;
  metadata: string;
}

export interface Match {
  id: string;
  score: number;
  metadata: Metadata;
}

/** A part's answer to a write it could not take as it is: the caller re-routes, waits, or splits the part. */
export type Redirect =
  /** The part has split further: ids outside its prefix at this depth live elsewhere. */
  | { status: "moved"; depth: number }
  /** A split is moving these ids: try again shortly. */
  | { status: "busy" }
  /** The vectors would take the part over its byte budget: split it, then try again. */
  | { status: "full"; bytes: number; need: number };

export type WriteAnswer<T> = { status: "done"; value: T; depth: number } | Redirect;

export interface PartStats {
  prefix: number;
  depth: number;
  vectors: number;
  bytes: number;
  state: string;
}

/** The Durable Object name of a tenant's registry of indexes. */
export function registryName(tenant: string): string {
  return `registry:${tenant}`;
}

/** The Durable Object name of one part of an index (tenant and index names never contain ":"). */
export function partName(ref: Pick<PartRef, "tenant" | "index" | "incarnation" | "prefix">): string {
  return `part:${ref.tenant}:${ref.index}:${ref.incarnation}:${ref.prefix}`;
}

/** The 32-bit hash of a vector id that places it: FNV-1a over its UTF-8 bytes, then murmur3's finaliser. */
export function idHash(id: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(id)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Whether a hash belongs to the part of `prefix` at `depth` (its low `depth` bits are the prefix). */
export function owns(prefix: number, depth: number, hash: number): boolean {
  return depth === 0 || (hash & ((1 << depth) - 1)) >>> 0 === prefix;
}

/** The part of `parts` that owns `hash`: parts partition the hash space by their low bits. */
export function partFor(parts: readonly PartPlace[], hash: number): number {
  for (const { prefix, depth } of parts) if (owns(prefix, depth, hash)) return prefix;
  return 0;
}
