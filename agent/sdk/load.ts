// The load an agent reports in its heartbeats, measured from the process, never estimated: the mesh's
// resource-aware and latency-based strategies choose agents by these numbers.
import { availableParallelism, totalmem } from "node:os";
import { performance } from "node:perf_hooks";
import type { LoadSample } from "./types.ts";

type CpuUsage = () => { user: number; system: number };

/**
 * Share of the machine's CPU time the process used between two samples: (user + system) time over wall time
 * times the cores it may use. `process.cpuUsage()` counts every thread of the process, worker threads included.
 */
export class CpuMeter {
  private lastUsage: { user: number; system: number };
  private lastAt: number;
  private readonly cores: number;
  private readonly usage: CpuUsage;
  private readonly now: () => number;

  constructor({ cores = availableParallelism(), usage = () => process.cpuUsage(), now = () => performance.now() }: { cores?: number; usage?: CpuUsage; now?: () => number } = {}) {
    this.cores = Math.max(1, cores);
    this.usage = usage;
    this.now = now;
    this.lastUsage = usage();
    this.lastAt = now();
  }

  /** 0-1 since the previous call (or since construction). */
  sample(): number {
    const usage = this.usage();
    const at = this.now();
    const cpuMicros = usage.user - this.lastUsage.user + (usage.system - this.lastUsage.system);
    const wallMicros = (at - this.lastAt) * 1000;
    this.lastUsage = usage;
    this.lastAt = at;
    if (wallMicros <= 0) return 0;
    return clamp01(cpuMicros / (wallMicros * this.cores));
  }
}

/** Exponentially weighted moving average: recent handler durations count most, old ones fade out. */
export class Ewma {
  private current: number | null = null;
  private readonly alpha: number;

  constructor(alpha = 0.2) {
    this.alpha = alpha;
  }

  add(value: number): void {
    this.current = this.current === null ? value : this.current + this.alpha * (value - this.current);
  }

  /** 0 before the first value. */
  get value(): number {
    return this.current ?? 0;
  }
}

/**
 * The memory the process may use, in bytes: what the agent declared (`resources.memoryMb`), else the cgroup limit
 * of its container when there is one, else the machine's RAM.
 */
export function memoryBudgetBytes(declaredMb: number | undefined): number {
  if (declaredMb !== undefined && declaredMb > 0) return declaredMb * 2 ** 20;
  const machine = totalmem();
  const constrained = process.constrainedMemory();
  // Without a cgroup limit Node reports 0 or a huge sentinel value; the machine's RAM is the real bound then.
  return constrained > 0 && constrained < machine ? constrained : machine;
}

export interface LoadMeterOptions {
  memoryBudgetBytes: number;
  cpu?: CpuMeter;
  rss?: () => number;
}

export class LoadMeter {
  private readonly cpu: CpuMeter;
  private readonly rss: () => number;
  private readonly budget: number;
  private readonly latency = new Ewma();
  private last: LoadSample = { currentLoad: 0, cpu: 0, memory: 0, queueDepth: 0, avgLatencyMs: 0 };

  constructor({ memoryBudgetBytes, cpu = new CpuMeter(), rss = () => process.memoryUsage.rss() }: LoadMeterOptions) {
    this.cpu = cpu;
    this.rss = rss;
    this.budget = memoryBudgetBytes;
  }

  recordLatency(ms: number): void {
    this.latency.add(ms);
  }

  /** Takes a new sample (the CPU share covers the time since the previous one). */
  sample(queueDepth: number): LoadSample {
    const cpu = this.cpu.sample();
    const memory = clamp01(this.rss() / this.budget);
    this.last = {
      currentLoad: round3(Math.max(cpu, memory)),
      cpu: round3(cpu),
      memory: round3(memory),
      queueDepth,
      avgLatencyMs: Math.round(this.latency.value * 10) / 10,
    };
    return this.last;
  }

  /** The latest sample, without measuring again (for stats()). */
  get latest(): LoadSample {
    return this.last;
  }
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
