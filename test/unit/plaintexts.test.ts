import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PlaintextCache } from "../../durable-objects/pool-coordinator/plaintexts";

describe("the plaintext cache of the coordinator", () => {
  it("answers what it was given until taken, then nothing", () => {
    const cache = new PlaintextCache(1_000);
    cache.remember("e1", '{"a":1}');
    expect(cache.get("e1")).toBe('{"a":1}');
    expect(cache.take("e1")).toBe('{"a":1}');
    expect(cache.get("e1")).toBeUndefined();
    expect(cache.take("e1")).toBeUndefined();
    expect(cache.heldChars).toBe(0);
  });

  it("drops the oldest entries first to stay within its bound, and ignores an entry too large to be worth it", () => {
    const cache = new PlaintextCache(100);
    cache.remember("x".repeat(10), "y".repeat(26)); // 36 > 100 / 4: not held
    expect(cache.size).toBe(0);
    for (let i = 0; i < 10; i++) cache.remember(`e${i}`, "p".repeat(18)); // 20 each
    expect(cache.heldChars).toBeLessThanOrEqual(100);
    expect(cache.get("e9")).toBeDefined();
    expect(cache.get("e0")).toBeUndefined();
    expect([...Array(10).keys()].filter((i) => cache.get(`e${i}`) !== undefined)).toEqual([5, 6, 7, 8, 9]);
  });

  it("keeps its count of characters exact under any sequence of remember and take", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("remember" as const), key: fc.integer({ min: 0, max: 20 }), len: fc.integer({ min: 0, max: 40 }) }),
      fc.record({ kind: fc.constant("take" as const), key: fc.integer({ min: 0, max: 20 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const cache = new PlaintextCache(200);
        for (const o of ops) {
          const key = `k${o.key}`;
          if (o.kind === "remember") {
            cache.remember(key, "v".repeat(o.len));
          } else {
            const before = cache.get(key);
            expect(cache.take(key)).toBe(before);
            expect(cache.get(key)).toBeUndefined();
          }
          // Whatever it holds is what it was given, within the bound.
          let held = 0;
          for (let i = 0; i <= 20; i++) {
            const v = cache.get(`k${i}`);
            if (v !== undefined) held += `k${i}`.length + v.length;
          }
          expect(cache.heldChars).toBe(held);
          expect(held).toBeLessThanOrEqual(200);
        }
      }),
    );
  });
});
