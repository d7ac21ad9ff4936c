/**
 * Text to model inputs for the edge embedder (workers/embedder/). A tokenizer turns a batch of texts into the
 * two tensors every sentence-transformers style ONNX export reads: `input_ids` and `attention_mask`, row-major
 * `[batch, sequence]`, padded with id 0 and mask 0 to the longest text of the batch (at most `maxLength`).
 * Padding to the batch's longest, rather than always to `maxLength`, is what the models' own tokenizers do with
 * `padding=True`; masked mean pooling makes the result independent of how much padding a row got.
 *
 * The one tokenizer here is the deterministic hashing tokenizer of the generated model (scripts/make-embed-model.mjs):
 *   1. NFKD, drop combining marks (accents), lowercase: "Café" and "CAFE" are the same word;
 *   2. words are the runs of letters and digits (Unicode classes L and N); everything else separates;
 *   3. each word's id is 1 + FNV-1a-32(UTF-8 bytes of the word) mod (vocabSize - 1); id 0 is padding.
 * No vocabulary file, so no out-of-vocabulary words; two words share an id only on a hash collision (about
 * 1 / (vocabSize - 1) per pair). A real model brings its own tokenizer (a WordPiece vocabulary for MiniLM): it
 * implements {@link Tokenizer} and is chosen by the model's tokenizer settings (docs/embeddings.md).
 */

/** What a tokenizer hands the model: `ids` and `mask` hold `batch * sequenceLength` values, row by row. */
export interface EncodedBatch {
  readonly ids: Int32Array;
  readonly mask: Int32Array;
  readonly batch: number;
  readonly sequenceLength: number;
  /** Per text: its token count before truncation (tokens past `maxLength` are dropped). */
  readonly tokenCounts: number[];
}

export interface Tokenizer {
  /** The settings, as the model's tokenizer file states them (see {@link HashTokenizerSettings}). */
  readonly settings: { readonly type: string; readonly maxLength: number };
  /** The ids of one text, untruncated. */
  ids(text: string): number[];
  encode(texts: readonly string[]): EncodedBatch;
}

export interface HashTokenizerSettings {
  readonly type: "hash";
  /** Ids 0..vocabSize-1; the model's embedding table has this many rows. */
  readonly vocabSize: number;
  /** Tokens kept per text (the first ones). */
  readonly maxLength: number;
}

/** The settings of the generated model, used when a model in R2 comes without a tokenizer file. */
export const DEFAULT_HASH_TOKENIZER: HashTokenizerSettings = { type: "hash", vocabSize: 4096, maxLength: 128 };

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const encoder = new TextEncoder();
const WORD = /[\p{L}\p{N}]+/gu;
const COMBINING_MARK = /\p{M}+/gu;

/**
 * FNV-1a, 32 bits, over the UTF-8 bytes of `text`.
 * @example fnv1a32("") // 0x811c9dc5; fnv1a32("a") // 0xe40c292c
 */
export function fnv1a32(text: string): number {
  let hash = FNV_OFFSET;
  for (const byte of encoder.encode(text)) hash = Math.imul(hash ^ byte, FNV_PRIME) >>> 0;
  return hash >>> 0;
}

/**
 * The words of a text, normalized as the hashing tokenizer sees them.
 * @example words("Hello, WORLD! Café-2") // ["hello", "world", "cafe", "2"]
 */
export function words(text: string): string[] {
  return text.normalize("NFKD").replace(COMBINING_MARK, "").toLowerCase().match(WORD) ?? [];
}

/** Lays out token id lists as padded `[batch, sequence]` tensors; rows longer than `maxLength` are cut. */
export function padBatch(rows: readonly number[][], maxLength: number): EncodedBatch {
  const sequenceLength = Math.min(maxLength, Math.max(1, ...rows.map((row) => row.length)));
  const ids = new Int32Array(rows.length * sequenceLength);
  const mask = new Int32Array(rows.length * sequenceLength);
  rows.forEach((row, r) => {
    const kept = Math.min(row.length, sequenceLength);
    for (let i = 0; i < kept; i++) {
      ids[r * sequenceLength + i] = row[i]!;
      mask[r * sequenceLength + i] = 1;
    }
  });
  return { ids, mask, batch: rows.length, sequenceLength, tokenCounts: rows.map((row) => row.length) };
}

/** Checks settings read from a model's tokenizer file (or given in code); throws a RangeError saying what is wrong. */
export function hashTokenizerSettings(value: unknown): HashTokenizerSettings {
  const v = (value ?? {}) as Record<string, unknown>;
  if (v.type !== "hash") throw new RangeError(`tokenizer type ${JSON.stringify(v.type)} is not supported (supported: "hash")`);
  const vocabSize = v.vocabSize ?? DEFAULT_HASH_TOKENIZER.vocabSize;
  const maxLength = v.maxLength ?? DEFAULT_HASH_TOKENIZER.maxLength;
  if (!Number.isInteger(vocabSize) || (vocabSize as number) < 2 || (vocabSize as number) > 2 ** 24) throw new RangeError("tokenizer vocabSize must be an integer from 2 to 16777216");
  if (!Number.isInteger(maxLength) || (maxLength as number) < 1 || (maxLength as number) > 8192) throw new RangeError("tokenizer maxLength must be an integer from 1 to 8192");
  return { type: "hash", vocabSize: vocabSize as number, maxLength: maxLength as number };
}

export class HashTokenizer implements Tokenizer {
  readonly settings: HashTokenizerSettings;

  constructor(settings: HashTokenizerSettings = DEFAULT_HASH_TOKENIZER) {
    this.settings = hashTokenizerSettings(settings);
  }

  /** @example new HashTokenizer().ids("the cat") // two ids in 1..4095 */
  ids(text: string): number[] {
    const buckets = this.settings.vocabSize - 1;
    return words(text).map((word) => 1 + (fnv1a32(word) % buckets));
  }

  encode(texts: readonly string[]): EncodedBatch {
    return padBatch(
      texts.map((text) => this.ids(text)),
      this.settings.maxLength,
    );
  }
}
