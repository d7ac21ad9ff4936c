import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fastFrame, Frame, parseFrame } from "../../contract/wire/agent";

/** What the schema alone makes of a frame: its messages, or null when it refuses it. */
function bySchema(json: unknown): unknown[] | null {
  const parsed = Frame.safeParse(json);
  if (!parsed.success) return null;
  return parsed.data.type === "batch" ? parsed.data.messages : [parsed.data];
}

// Values near every rule of the schema: lengths at and past the bounds, wrong types, unknown keys.
const text = fc.oneof(fc.constant(""), fc.string({ minLength: 1, maxLength: 8 }), fc.constant("i".repeat(128)), fc.constant("i".repeat(129)), fc.constant("t".repeat(256)), fc.constant("t".repeat(257)));
const anyValue = fc.oneof(text, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant([]), fc.constant({}));
const credits = fc.oneof(fc.integer({ min: -2, max: 10_002 }), fc.constantFrom(0.5, 1e20, Number.MAX_SAFE_INTEGER + 2, -0), text);
const message = fc.oneof(
  fc.record({ type: fc.constant("complete"), id: fc.oneof(text, anyValue), leaseToken: fc.oneof(text, anyValue), result: anyValue, extra: anyValue }, { requiredKeys: ["type"] }),
  fc.record({ type: fc.constant("ready"), credits, extra: anyValue }, { requiredKeys: ["type"] }),
  fc.record({ type: fc.constant("fail"), id: text, leaseToken: text, retryable: fc.boolean(), error: fc.record({ message: text }) }, { requiredKeys: ["type"] }),
  fc.record({ type: fc.constant("extend"), id: text, leaseToken: text, extendMs: fc.integer({ min: 0, max: 4_000_000 }) }, { requiredKeys: ["type"] }),
  fc.record({ type: fc.constant("heartbeat") }),
  fc.record({ type: fc.constantFrom("batch", "nope", 3) }),
  anyValue,
);
const frameArb = fc.oneof(message, fc.record({ type: fc.constant("batch"), messages: fc.oneof(fc.array(message, { maxLength: 6 }), anyValue), extra: anyValue }, { requiredKeys: ["type"] }));

describe("the WebSocket frames an agent sends", () => {
  it("are read by the fast path exactly as the schema reads them, or left to the schema", () => {
    let fastHits = 0;
    fc.assert(
      fc.property(frameArb, (json) => {
        const fast = fastFrame(json);
        const schema = bySchema(json);
        if (fast !== null) {
          fastHits++;
          expect(fast).toEqual(schema);
        }
        // Whatever the path, parseFrame answers what the schema alone would of the same text.
        const wire = JSON.stringify(json);
        const parsed = parseFrame(wire);
        expect(parsed.ok ? parsed.messages : null).toEqual(bySchema(JSON.parse(wire)));
      }),
      { numRuns: 3000 },
    );
    // The generator reaches the fast path often enough for this to mean something.
    expect(fastHits).toBeGreaterThan(100);
  });

  it("keeps the schema's wording for what it refuses", () => {
    const refused = parseFrame(JSON.stringify({ type: "batch", messages: [{ type: "complete", id: "t1", leaseToken: "l" }, { type: "complete", id: "", leaseToken: "l" }] }));
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.details.map((d) => d.field)).toEqual(["messages.1.id"]);
    expect(parseFrame(JSON.stringify({ type: "ready", credits: 3, extra: 1 }))).toEqual({ ok: true, messages: [{ type: "ready", credits: 3 }] });
  });
});
