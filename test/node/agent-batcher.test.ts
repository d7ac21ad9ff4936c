import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Batcher } from "../../agent/sdk/batcher.ts";

describe("batching of outbound messages", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("sends what arrives within maxDelayMs of the first item together, in order", () => {
    const sent: number[][] = [];
    const b = new Batcher<number>({ maxDelayMs: 3, send: (items) => sent.push(items) });
    b.add(1);
    vi.advanceTimersByTime(1);
    b.add(2);
    vi.advanceTimersByTime(1);
    b.add(3);
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual([[1, 2, 3]]);
    expect(b.size).toBe(0);
  });

  it("never holds an item longer than maxDelayMs, however many follow it", () => {
    const sent: number[][] = [];
    const b = new Batcher<number>({ maxDelayMs: 5, send: (items) => sent.push(items) });
    for (let i = 0; i < 10; i++) {
      b.add(i);
      vi.advanceTimersByTime(1);
    }
    // The first item started the clock: items 0-4 went at t=5, 5-9 at t=10.
    expect(sent).toEqual([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]);
  });

  it("sends at once when maxItems are waiting", () => {
    const sent: number[][] = [];
    const b = new Batcher<number>({ maxItems: 64, maxDelayMs: 1000, send: (items) => sent.push(items) });
    for (let i = 0; i < 130; i++) b.add(i);
    expect(sent.map((s) => s.length)).toEqual([64, 64]);
    vi.advanceTimersByTime(1000);
    expect(sent.map((s) => s.length)).toEqual([64, 64, 2]);
    expect(sent.flat()).toEqual(Array.from({ length: 130 }, (_, i) => i));
  });

  it("splits groups that would exceed maxBytes; an oversized item goes alone", () => {
    const sent: string[][] = [];
    const b = new Batcher<string>({ maxDelayMs: 1, maxBytes: 10, sizeOf: (s) => s.length, send: (items) => sent.push(items) });
    for (const s of ["aaaa", "bbbb", "cccc", "dddddddddddddddd", "e"]) b.add(s);
    b.flush();
    expect(sent).toEqual([["aaaa", "bbbb"], ["cccc"], ["dddddddddddddddd"], ["e"]]);
  });

  it("flush() sends immediately and cancels the timer", () => {
    const sent: number[][] = [];
    const b = new Batcher<number>({ maxDelayMs: 3, send: (items) => sent.push(items) });
    b.add(1);
    b.flush();
    vi.advanceTimersByTime(10);
    expect(sent).toEqual([[1]]);
  });
});
