import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseTaskId } from "../../contract/ids";
import { base64url, newTaskId, randomToken } from "../../lib/random";

/** The reference: base64 of a binary string, made URL-safe and unpadded. */
const reference = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

describe("ids and tokens", () => {
  it("encode bytes exactly as base64url without padding", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(base64url(bytes)).toBe(reference(bytes));
      }),
      { numRuns: 2000 },
    );
    expect(base64url(new Uint8Array([0xfb, 0xff]))).toBe("-_8");
  });

  it("are 22 characters for 16 bytes, and do not repeat across many draws (the pool refills)", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5_000; i++) {
      const token = randomToken(16);
      expect(token).toMatch(/^[A-Za-z0-9_-]{22}$/);
      seen.add(token);
    }
    expect(seen.size).toBe(5_000);
    expect(randomToken(9)).toMatch(/^[A-Za-z0-9_-]{12}$/);
  });

  it("name their pool and shard", () => {
    const id = newTaskId("images", 0);
    expect(parseTaskId(id)).toMatchObject({ pool: "images", shard: 0 });
  });
});
