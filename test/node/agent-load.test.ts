import { availableParallelism, totalmem } from "node:os";
import { describe, expect, it } from "vitest";
import { CpuMeter, Ewma, LoadMeter, memoryBudgetBytes } from "../../agent/sdk/load.ts";

function burn(ms: number): void {
  const until = performance.now() + ms;
  let x = 0;
  while (performance.now() < until) x += Math.sqrt(x + 1);
  if (x < 0) console.log(x);
}

describe("load measurement", () => {
  it("computes the CPU share from process.cpuUsage deltas over wall time and cores", () => {
    let micros = 0;
    let ms = 0;
    const meter = new CpuMeter({ cores: 4, usage: () => ({ user: micros * 0.75, system: micros * 0.25 }), now: () => ms });
    micros = 1_000_000;
    ms = 1_000;
    expect(meter.sample()).toBe(0.25); // one of four cores busy for the whole second
    micros += 4_000_000;
    ms += 1_000;
    expect(meter.sample()).toBe(1);
    ms += 1_000;
    expect(meter.sample()).toBe(0);
  });

  it("rises when the process burns CPU", async () => {
    const meter = new CpuMeter();
    await new Promise((r) => setTimeout(r, 300));
    const idle = meter.sample();
    burn(300);
    const busy = meter.sample();
    const cores = availableParallelism();
    expect(busy).toBeGreaterThan(idle);
    // One thread spinning for the whole interval is one core's worth; leave room for a busy test machine.
    expect(busy).toBeGreaterThan(0.5 / cores);
  });

  it("reports memory as resident set size over the budget", () => {
    const meter = new LoadMeter({ memoryBudgetBytes: 1000, rss: () => 250, cpu: new CpuMeter({ usage: () => ({ user: 0, system: 0 }) }) });
    const s = meter.sample(3);
    expect(s).toMatchObject({ memory: 0.25, queueDepth: 3, currentLoad: 0.25 });
  });

  it("sees real RSS grow when the process allocates", () => {
    const budget = 4 * 2 ** 30;
    const meter = new LoadMeter({ memoryBudgetBytes: budget });
    const before = meter.sample(0).memory;
    const block = Buffer.alloc(128 * 2 ** 20, 1); // touched pages count in RSS
    const after = meter.sample(0).memory;
    expect(block[block.length - 1]).toBe(1);
    expect(after - before).toBeGreaterThan((64 * 2 ** 20) / budget);
    expect(after).toBeCloseTo(process.memoryUsage.rss() / budget, 2);
  });

  it("averages handler latency (EWMA) and reports the larger of cpu and memory as currentLoad", () => {
    const ewma = new Ewma(0.5);
    expect(ewma.value).toBe(0);
    ewma.add(100);
    ewma.add(200);
    expect(ewma.value).toBe(150);
    let cpuMicros = 0;
    let ms = 0;
    const cpu = new CpuMeter({ cores: 1, usage: () => ({ user: cpuMicros, system: 0 }), now: () => ms });
    const meter = new LoadMeter({ memoryBudgetBytes: 100, rss: () => 10, cpu });
    meter.recordLatency(40);
    cpuMicros = 600_000;
    ms = 1000;
    expect(meter.sample(1)).toEqual({ currentLoad: 0.6, cpu: 0.6, memory: 0.1, queueDepth: 1, avgLatencyMs: 40 });
  });

  it("takes the declared memory as the budget, else the machine's or container's", () => {
    expect(memoryBudgetBytes(512)).toBe(512 * 2 ** 20);
    const machine = memoryBudgetBytes(undefined);
    expect(machine).toBeGreaterThan(0);
    expect(machine).toBeLessThanOrEqual(totalmem());
  });
});
