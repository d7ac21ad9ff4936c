/**
 * The edge embedder (workers/embedder/): a Worker of its own that runs an ONNX embedding model with
 * onnxruntime-web, reached from the main Worker through the service binding `EMBEDDER` (src/mesh/embed.ts is the
 * one caller). It lives apart because the runtime is 14 MB of WebAssembly: the main Worker and the Durable Objects
 * neither load nor pay for it. docs/embeddings.md describes the design.
 *
 * Refusals are error outcomes in the vocabulary of ./errors.ts, never thrown exceptions (an exception crossing RPC
 * loses its class and fields).
 */
import type { Outcome } from "./errors.ts";

/**
 * Which model: the key of its ONNX file in the embedder's R2 bucket (`daa-models`) and the length of the vectors
 * it must give (pool config `cache.semantic.model`). A tokenizer file may sit beside it at
 * `<r2Key>.tokenizer.json` (docs/embeddings.md); without one, the hashing tokenizer's defaults apply.
 */
export interface EmbedModelRef {
  r2Key: string;
  dimensions: number;
}

export interface EmbedResult {
  /** One vector per text, in input order, each of `dimensions` float32 values (unit length for the models here). */
  vectors: number[][];
  dimensions: number;
  /** Per text: its token count; more than the model's `maxLength` means the rest of the text was not read. */
  tokens: number[];
}

export interface EmbedderSession {
  r2Key: string;
  /** Size of the ONNX file. */
  bytes: number;
  dimensions: number | null;
  /** Milliseconds since the epoch. */
  loadedAt: number;
  /** Embed calls it served. */
  uses: number;
}

/** The embedder isolate's state: what answered is one isolate, not the fleet of them. */
export interface EmbedderHealth {
  ok: true;
  runtime: string;
  /** The cached sessions, least recently used first. */
  sessions: EmbedderSession[];
  /** Models read from R2 and turned into sessions since the isolate started (a cache hit does not count). */
  loads: number;
  evictions: number;
  limits: typeof EMBED_LIMITS;
}

export const EMBED_LIMITS = {
  /** Texts per call. */
  maxTexts: 256,
  /** Characters per text (the model reads at most its `maxLength` tokens of it anyway). */
  maxTextChars: 16_384,
  /** R2's own key limit. */
  maxR2KeyBytes: 1024,
  maxDimensions: 4096,
  /** Largest ONNX file the embedder loads: a session holds about twice the file in an isolate of 128 MB. */
  maxModelBytes: 32 * 1024 * 1024,
  /** Sessions kept per isolate (least recently used evicted first), and their files' total size. */
  maxSessions: 3,
  maxSessionBytes: 48 * 1024 * 1024,
} as const;

export interface EmbedderRpc {
  /**
   * Embed texts with a model. In: 1 to `maxTexts` strings, each with at least one word; the model reference.
   * Out: one vector per text. Loads the model from R2 on first use in this isolate and keeps the session (LRU,
   * revalidated against the object's etag once a minute). Refuses with 400 `invalid_request`: bad texts
   * (details name the index), a bad reference, no object at `r2Key`, a file that is not a loadable ONNX model
   * or is too large, a model whose vectors are not `dimensions` long, a bad tokenizer file. 500 `internal`: R2 or
   * the runtime failed.
   */
  embed(texts: string[], model: EmbedModelRef): Promise<Outcome<EmbedResult>>;

  /** The isolate's sessions and counters. Changes nothing. */
  health(): Promise<EmbedderHealth>;
}
