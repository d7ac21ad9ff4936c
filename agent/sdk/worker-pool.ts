// Runs a handlers module in a pool of worker threads, one task per worker at a time. Each worker has a heap limit
// (`resourceLimits`), so a handler that leaks or allocates without bound kills its own worker, not the agent; a
// dead worker's task fails and a fresh worker takes its place.
import { Worker } from "node:worker_threads";
import { Backoff } from "./backoff.ts";
import type { Executor, RunResult, TaskRun } from "./executor.ts";
import { describeTypes } from "./handlers.ts";
import { isFromWorker, type ToWorker, type WorkerStart } from "./worker-protocol.ts";

export interface WorkerPoolOptions {
  moduleUrl: URL;
  size: number;
  memoryLimitMb: number;
  /** How long an aborted handler may take to stop before its worker is terminated (default 1000 ms). */
  abortGraceMs?: number;
  log: (line: string) => void;
}

interface Job {
  run: TaskRun;
  runId: number;
  resolve: (result: RunResult) => void;
}

interface Slot {
  worker: Worker;
  job: Job | null;
  /** Why the worker died, when it did: its 'error' event comes before 'exit'. */
  error: Error | null;
  /** Set when the pool itself terminated the worker (an aborted handler that did not stop). */
  killed: boolean;
  graceTimer: ReturnType<typeof setTimeout> | null;
  onAbort: (() => void) | null;
}

const ENTRY = new URL("./worker-entry.ts", import.meta.url);

export class WorkerPool implements Executor {
  private readonly options: Required<WorkerPoolOptions>;
  private readonly slots = new Set<Slot>();
  private readonly idle: Slot[] = [];
  private readonly queue: Job[] = [];
  private knownTypes: ReadonlySet<string> = new Set();
  private nextRunId = 1;
  private closing = false;
  private readonly respawnBackoff = new Backoff({ baseMs: 200, maxMs: 10_000 });

  constructor({ abortGraceMs = 1000, ...rest }: WorkerPoolOptions) {
    this.options = { abortGraceMs, ...rest };
  }

  async init(): Promise<void> {
    // One worker first: a module that does not load fails start() with its own error, once, not size times.
    await this.spawn();
    const rest = await Promise.allSettled(Array.from({ length: this.options.size - 1 }, () => this.spawn()));
    const failed = rest.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) {
      await this.close();
      throw failed.reason;
    }
    this.options.log(`handlers from ${this.options.moduleUrl.href} in ${this.options.size} worker thread(s) (heap limit ${this.options.memoryLimitMb} MB each): ${describeTypes(this.knownTypes)}`);
  }

  types(): ReadonlySet<string> {
    return this.knownTypes;
  }

  run(run: TaskRun): Promise<RunResult> {
    return new Promise((resolve) => {
      if (this.closing) return resolve({ ok: false, error: { message: "the agent is shutting down" }, retryable: true });
      const job: Job = { run, runId: this.nextRunId++, resolve };
      this.queue.push(job);
      // A job aborted while it waits for a worker never starts.
      run.signal.addEventListener(
        "abort",
        () => {
          const at = this.queue.indexOf(job);
          if (at >= 0) {
            this.queue.splice(at, 1);
            resolve({ ok: false, error: reasonOf(run.signal), retryable: true });
          }
        },
        { once: true },
      );
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const job of this.queue.splice(0)) job.resolve({ ok: false, error: { message: "the agent is shutting down" }, retryable: true });
    await Promise.all([...this.slots].map((slot) => slot.worker.terminate()));
    this.slots.clear();
    this.idle.length = 0;
  }

  // ---- workers ------------------------------------------------------------------------------------------------

  /** Starts a worker; resolves once it has loaded the module (then it is idle), rejects if it cannot. */
  private spawn(): Promise<Slot> {
    const start: WorkerStart = { moduleUrl: this.options.moduleUrl.href };
    const worker = new Worker(ENTRY, { workerData: start, resourceLimits: { maxOldGenerationSizeMb: this.options.memoryLimitMb } });
    const slot: Slot = { worker, job: null, error: null, killed: false, graceTimer: null, onAbort: null };
    this.slots.add(slot);
    return new Promise<Slot>((resolve, reject) => {
      let ready = false;
      worker.on("message", (msg: unknown) => {
        if (!isFromWorker(msg)) return;
        if (msg.kind === "ready") {
          ready = true;
          this.knownTypes = new Set(msg.types);
          this.idle.push(slot);
          resolve(slot);
          this.pump();
        } else if (msg.kind === "load_failed") {
          slot.error = new Error(`cannot load the handlers module ${this.options.moduleUrl.href}: ${msg.message}`);
          void worker.terminate();
        } else if (slot.job?.runId === msg.runId) {
          this.finish(slot, msg.result);
        }
      });
      worker.on("error", (err: Error) => {
        slot.error = err;
      });
      worker.on("exit", (code) => {
        this.slots.delete(slot);
        const at = this.idle.indexOf(slot);
        if (at >= 0) this.idle.splice(at, 1);
        if (!ready) {
          reject(slot.error ?? new Error(`the worker for ${this.options.moduleUrl.href} exited with code ${code} before loading it`));
          return;
        }
        if (slot.job) this.finish(slot, { ok: false, error: this.describeDeath(slot, code), retryable: true });
        if (!this.closing) this.replace();
      });
    });
  }

  /** Keeps the pool at its size after a worker died; a module that stopped loading is retried with backoff. */
  private replace(): void {
    this.spawn().then(
      () => this.respawnBackoff.reset(),
      (err: unknown) => {
        const delay = this.respawnBackoff.next();
        this.options.log(`cannot start a replacement worker (retrying in ${delay} ms): ${err instanceof Error ? err.message : String(err)}`);
        setTimeout(() => this.closing || this.replace(), delay);
      },
    );
  }

  private describeDeath(slot: Slot, code: number): { message: string; code: string } {
    const err = slot.error;
    if (err !== null && "code" in err && err.code === "ERR_WORKER_OUT_OF_MEMORY") {
      return { message: `the handler ran out of memory (heap limit ${this.options.memoryLimitMb} MB per worker thread); its worker was replaced`, code: "out_of_memory" };
    }
    if (slot.killed) return { message: `the handler did not stop within ${this.options.abortGraceMs} ms of being aborted; its worker was replaced`, code: "worker_terminated" };
    if (err) return { message: `the handler's worker crashed (${err.name}: ${err.message}); it was replaced`, code: "worker_crashed" };
    return { message: `the handler's worker exited with code ${code}; it was replaced`, code: "worker_exited" };
  }

  // ---- jobs ---------------------------------------------------------------------------------------------------

  private pump(): void {
    while (this.queue.length > 0 && this.idle.length > 0) {
      const slot = this.idle.shift();
      const job = this.queue.shift();
      if (slot && job) this.dispatch(slot, job);
    }
  }

  private dispatch(slot: Slot, job: Job): void {
    slot.job = job;
    const { run } = job;
    const message: ToWorker = { kind: "run", runId: job.runId, taskId: run.taskId, type: run.type, attempt: run.attempt, payload: run.payload };
    slot.worker.postMessage(message);
    const onAbort = (): void => {
      const reason = reasonOf(run.signal);
      slot.worker.postMessage({ kind: "abort", runId: job.runId, name: reason.name ?? "AbortError", message: reason.message } satisfies ToWorker);
      // A handler that ignores its signal (or is stuck in a loop) is stopped the only way a thread can be.
      slot.graceTimer = setTimeout(() => {
        slot.killed = true;
        void slot.worker.terminate();
      }, this.options.abortGraceMs);
    };
    slot.onAbort = onAbort;
    if (run.signal.aborted) onAbort();
    else run.signal.addEventListener("abort", onAbort, { once: true });
  }

  private finish(slot: Slot, result: RunResult): void {
    const job = slot.job;
    if (!job) return;
    slot.job = null;
    if (slot.graceTimer) clearTimeout(slot.graceTimer);
    slot.graceTimer = null;
    if (slot.onAbort) job.run.signal.removeEventListener("abort", slot.onAbort);
    slot.onAbort = null;
    job.resolve(result);
    // A worker that is dying is not reused; 'exit' replaces it.
    if (this.slots.has(slot) && !slot.killed && slot.error === null) {
      this.idle.push(slot);
      this.pump();
    }
  }
}

function reasonOf(signal: AbortSignal): { message: string; name?: string } {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return { message: reason.message, name: reason.name };
  return { message: String(reason ?? "aborted") };
}
