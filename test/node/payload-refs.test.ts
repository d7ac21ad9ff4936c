// The pure pieces of large payloads (docs/payloads.md): the reference format, the 128 KiB rule counted in UTF-8
// bytes, and frames packed under the push limit with the same text meshFrame writes.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { utf8Bytes } from "../../contract/json.ts";
import { meshFrame, meshMessage, packFrames, type OutgoingMessage } from "../../contract/wire/mesh.ts";
import { blobKeysOf, formatBlobRef, INLINE_MAX_BYTES, isBlobRef, isLarge, newBlobKey, openedBytes, parseBlobRef } from "../../lib/security/blob-refs.ts";

describe("blob references", () => {
  it("round-trip, name the field and tenant in the key, and are told apart from inline envelopes", () => {
    const key = newBlobKey("result", "acme");
    expect(key).toMatch(/^result\/acme\/[A-Za-z0-9_-]{24}$/);
    const ref = formatBlobRef({ key, bytes: 300_000 });
    expect(ref).toBe(`r1.300000.${key}`);
    expect(parseBlobRef(ref)).toEqual({ key, bytes: 300_000 });
    expect(isBlobRef(ref)).toBe(true);
    expect(isBlobRef("e1.1.AAAA")).toBe(false);
    expect(parseBlobRef("e1.1.AAAA")).toBeNull();
    expect(() => parseBlobRef("r1.x.key")).toThrow(/malformed/);
    expect(blobKeysOf([ref, "e1.1.AAAA", null, undefined])).toEqual([key]);
    expect(openedBytes(ref)).toBe(300_000);
    // 12 bytes of IV and 16 of tag around the ciphertext, in base64url.
    expect(openedBytes(`e1.3.${"A".repeat(Math.ceil(((1000 + 28) * 4) / 3))}`)).toBe(1000);
  });

  it("keeps JSON of up to 128 KiB of UTF-8 inline, counting bytes, not characters", () => {
    expect(isLarge("x".repeat(INLINE_MAX_BYTES))).toBe(false);
    expect(isLarge("x".repeat(INLINE_MAX_BYTES + 1))).toBe(true);
    // 50,000 characters of 3 bytes each: 150,000 bytes.
    expect(isLarge("€".repeat(50_000))).toBe(true);
    expect(isLarge("€".repeat(40_000))).toBe(false);
  });

  it("counts UTF-8 bytes as Buffer does, surrogate pairs and lone surrogates included", () => {
    fc.assert(fc.property(fc.string({ unit: "binary" }), (s) => utf8Bytes(s) === Buffer.byteLength(s)));
    fc.assert(fc.property(fc.string({ unit: fc.integer({ min: 0xd7f0, max: 0xe010 }).map((c) => String.fromCharCode(c)) }), (s) => utf8Bytes(s) === Buffer.byteLength(s)));
  });
});

describe("frames of pushed tasks", () => {
  const message = (n: number, bytes: number): OutgoingMessage => meshMessage.ack(`t${n}-${"x".repeat(bytes)}`, "succeeded");

  it("stay under the limit, keep the order, and are the text meshFrame makes of each group", () => {
    const messages = Array.from({ length: 12 }, (_, i) => message(i, 300_000));
    const frames = packFrames(messages.map((m) => JSON.stringify(m)), 1_000_000);
    expect(frames.length).toBe(4);
    expect(frames.every((f) => Buffer.byteLength(f) <= 1_000_000)).toBe(true);
    expect(frames[0]).toBe(meshFrame(messages.slice(0, 3)));
    const unpacked = frames.flatMap((f) => {
      const m = JSON.parse(f);
      return m.type === "batch" ? m.messages : [m];
    });
    expect(unpacked).toEqual(messages);
  });

  it("send one message alone as itself, and one larger than a frame alone", () => {
    const small = JSON.stringify(message(1, 10));
    expect(packFrames([small])).toEqual([small]);
    const big = JSON.stringify(message(2, 2_000_000));
    expect(packFrames([small, big, small]).map((f) => Buffer.byteLength(f) > 1_000_000)).toEqual([false, true, false]);
  });
});
