import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareReady, type ReadyRef } from "../../durable-objects/pool-coordinator/queue-rules";
import { READY_PAGE, ReadyRound } from "../../durable-objects/pool-coordinator/ready-round";

/** Ready tasks in lanes; a kind of agent accepts some lanes. `read` answers as storage would, counting reads. */
function world(tasks: { seq: number; priority: number; lane: number }[], kinds: Record<string, number[]>) {
  const reads: { key: string; n: number }[] = [];
  const readyOf = (key: string) => tasks.filter((t) => kinds[key]!.includes(t.lane)).sort(compareReady);
  const read = (key: string, n: number): ReadyRef[] => {
    reads.push({ key, n });
    return readyOf(key).slice(0, n).map(({ seq, priority }) => ({ seq, priority }));
  };
  return { read, reads, readyOf };
}

describe("the ready tasks of a dispatch round", () => {
  it("hands out a kind's tasks in serving order, a quantum at a time, from one read", () => {
    const tasks = Array.from({ length: 30 }, (_, i) => ({ seq: i + 1, priority: i % 3, lane: 1 }));
    const w = world(tasks, { a: [1] });
    const round = new ReadyRound(w.read);
    const got = [round.take("a", 8, 24), round.take("a", 8, 24), round.take("a", 8, 24)].flat();
    expect(got).toEqual(w.readyOf("a").slice(0, 24).map((t) => t.seq));
    expect(w.reads).toEqual([{ key: "a", n: 24 }]);
    expect(round.size).toBe(24);
  });

  it("skips what another kind took from a shared lane, and reads again rather than run short", () => {
    const tasks = Array.from({ length: 20 }, (_, i) => ({ seq: i + 1, priority: 0, lane: i < 10 ? 1 : 2 }));
    const w = world(tasks, { a: [1, 2], b: [1] });
    const round = new ReadyRound(w.read);
    // a read 8 (its budget) and took 4; b takes the rest of lane 1, so a must read again to go on.
    expect(round.take("a", 4, 8)).toEqual([1, 2, 3, 4]);
    expect(round.take("b", 6, 6)).toEqual([5, 6, 7, 8, 9, 10]);
    expect(round.take("a", 4, 8)).toEqual([11, 12, 13, 14]);
    expect(w.reads.filter((r) => r.key === "a").length).toBe(2);
    // Nothing is left for b; a gets the rest and then nothing.
    expect(round.take("b", 4, 6)).toEqual([]);
    expect(round.take("a", 10, 8)).toEqual([15, 16, 17, 18, 19, 20]);
    expect(round.take("a", 1, 8)).toEqual([]);
  });

  it("reads at most a page at a time however large the budget", () => {
    const tasks = Array.from({ length: READY_PAGE * 2 + 5 }, (_, i) => ({ seq: i + 1, priority: 0, lane: 1 }));
    const w = world(tasks, { a: [1] });
    const round = new ReadyRound(w.read);
    let total = 0;
    for (let got = round.take("a", 100, 100_000); got.length > 0; got = round.take("a", 100, 100_000)) total += got.length;
    expect(total).toBe(tasks.length);
    expect(Math.max(...w.reads.map((r) => r.n - round.size))).toBeLessThanOrEqual(READY_PAGE);
    expect(w.reads[0]!.n).toBe(READY_PAGE);
  });

  it("never hands a task out twice, never hands out one a kind does not accept, and runs short only when none is left", () => {
    const task = fc.record({ priority: fc.integer({ min: 0, max: 3 }), lane: fc.integer({ min: 1, max: 4 }) });
    const kindLanes = fc.uniqueArray(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(
        fc.array(task, { maxLength: 80 }),
        fc.array(kindLanes, { minLength: 1, maxLength: 3 }),
        fc.array(fc.record({ kind: fc.nat(), n: fc.integer({ min: 1, max: 12 }), budget: fc.integer({ min: 1, max: 40 }) }), { maxLength: 30 }),
        (specs, lanesOfKinds, takes) => {
          const tasks = specs.map((t, i) => ({ seq: i + 1, ...t }));
          const kinds = Object.fromEntries(lanesOfKinds.map((lanes, i) => [`k${i}`, lanes]));
          const w = world(tasks, kinds);
          const round = new ReadyRound(w.read);
          const handed = new Set<number>();
          for (const { kind, n, budget } of takes) {
            const key = `k${kind % lanesOfKinds.length}`;
            const got = round.take(key, n, budget);
            const left = w.readyOf(key).filter((t) => !handed.has(t.seq));
            // Exactly the first `n` of what this kind could still take, in serving order.
            expect(got).toEqual(left.slice(0, n).map((t) => t.seq));
            for (const seq of got) handed.add(seq);
          }
          expect(round.size).toBe(handed.size);
        },
      ),
    );
  });
});
