// The hashing tokenizer of the edge embedder (lib/embed/tokenizer.ts): normalization, FNV-1a ids, padded batches.
import { describe, expect, it } from "vitest";

import { DEFAULT_HASH_TOKENIZER, fnv1a32, HashTokenizer, hashTokenizerSettings, padBatch, words } from "../../lib/embed/tokenizer.ts";

describe("fnv1a32", () => {
  it("matches the published FNV-1a 32-bit test vectors", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
    expect(fnv1a32("foobar")).toBe(0xbf9cf968);
  });

  it("hashes the UTF-8 bytes of a word", () => {
    // "é" is two bytes in UTF-8 (c3 a9): hashing them one by one from the offset basis gives the same number.
    let expected = 0x811c9dc5;
    for (const byte of [0xc3, 0xa9]) expected = Math.imul(expected ^ byte, 0x01000193) >>> 0;
    expect(fnv1a32("é")).toBe(expected);
  });
});

describe("words", () => {
  it("lowercases, drops accents and splits on anything that is not a letter or a digit", () => {
    expect(words("Hello, WORLD! Café-2")).toEqual(["hello", "world", "cafe", "2"]);
    expect(words("  São\tPaulo\n\nnaïve  ")).toEqual(["sao", "paulo", "naive"]);
    expect(words("東京 and Москва")).toEqual(["東京", "and", "москва"]);
    expect(words("...!!!")).toEqual([]);
  });
});

describe("HashTokenizer", () => {
  const tokenizer = new HashTokenizer();

  it("maps each word to 1 + FNV-1a mod (vocabSize - 1), keeping 0 for padding", () => {
    expect(tokenizer.ids("the Cat")).toEqual([1 + (fnv1a32("the") % 4095), 1 + (fnv1a32("cat") % 4095)]);
    const ids = tokenizer.ids("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor");
    for (const id of ids) expect(id).toBeGreaterThanOrEqual(1);
    for (const id of ids) expect(id).toBeLessThan(DEFAULT_HASH_TOKENIZER.vocabSize);
  });

  it("gives the same ids whatever the case, accents and punctuation", () => {
    expect(tokenizer.ids("Crème brûlée, please!")).toEqual(tokenizer.ids("creme BRULEE please"));
  });

  it("pads a batch to its longest text with id 0 and mask 0, and counts every text's tokens", () => {
    const batch = tokenizer.encode(["a b c", "d", "e f"]);
    expect(batch.batch).toBe(3);
    expect(batch.sequenceLength).toBe(3);
    expect(Array.from(batch.mask)).toEqual([1, 1, 1, 1, 0, 0, 1, 1, 0]);
    expect(Array.from(batch.ids.slice(3, 6))).toEqual([tokenizer.ids("d")[0], 0, 0]);
    expect(batch.tokenCounts).toEqual([3, 1, 2]);
  });

  it("truncates to maxLength, keeping the first tokens", () => {
    const short = new HashTokenizer({ type: "hash", vocabSize: 4096, maxLength: 2 });
    const batch = short.encode(["one two three four", "five"]);
    expect(batch.sequenceLength).toBe(2);
    expect(Array.from(batch.ids.slice(0, 2))).toEqual(short.ids("one two"));
    expect(batch.tokenCounts).toEqual([4, 1]);
  });

  it("lays out rows given as ids (padBatch), with one column for a batch of empty rows", () => {
    const batch = padBatch([[], []], 8);
    expect(batch.sequenceLength).toBe(1);
    expect(Array.from(batch.mask)).toEqual([0, 0]);
  });
});

describe("hashTokenizerSettings", () => {
  it("fills defaults and refuses what a model's tokenizer file must not say", () => {
    expect(hashTokenizerSettings({ type: "hash" })).toEqual(DEFAULT_HASH_TOKENIZER);
    expect(hashTokenizerSettings({ type: "hash", vocabSize: 30522, maxLength: 256 })).toEqual({ type: "hash", vocabSize: 30522, maxLength: 256 });
    expect(() => hashTokenizerSettings({ type: "wordpiece" })).toThrow(`tokenizer type "wordpiece" is not supported`);
    expect(() => hashTokenizerSettings({ type: "hash", vocabSize: 1 })).toThrow("vocabSize");
    expect(() => hashTokenizerSettings({ type: "hash", maxLength: 0 })).toThrow("maxLength");
    expect(() => hashTokenizerSettings(null)).toThrow("not supported");
  });
});
