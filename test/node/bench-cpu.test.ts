import { describe, expect, it } from "vitest";
import { machineBusyMs, processesCpu, readProcStat } from "../../bench/lib/cpu.ts";

describe("the benchmarks' CPU accounting (/proc)", () => {
  it.runIf(process.platform === "linux")("counts the CPU a process burns, and the machine's with it", () => {
    const self = readProcStat(process.pid);
    expect(self?.pid).toBe(process.pid);
    const [before, machineBefore] = [processesCpu([process.pid]), machineBusyMs()];
    const until = performance.now() + 300;
    let x = 0;
    while (performance.now() < until) x += Math.sqrt(x + 1);
    expect(x).toBeGreaterThan(0);
    const used = processesCpu([process.pid]) - before;
    // 300 ms of a busy loop: the scheduler's ticks (10 ms) may shave a little off, never add much.
    expect(used).toBeGreaterThanOrEqual(200);
    expect(used).toBeLessThan(600);
    expect(machineBusyMs() - machineBefore).toBeGreaterThanOrEqual(200);
    // A process that is gone (or never was) counts nothing.
    expect(processesCpu([undefined, 2 ** 22 + 7])).toBe(0);
  });
});
