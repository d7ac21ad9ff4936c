// Where handlers run. The agent hands each task to an Executor and gets an outcome back; the in-process executor
// is below, the isolated one (worker threads) is in worker-pool.ts.
import { describeError, type TaskError } from "./errors.ts";
import { toHandlerMap } from "./handlers.ts";
import type { Handler, HandlerMap } from "./types.ts";

export interface TaskRun {
  taskId: string;
  type: string;
  attempt: number;
  payload: unknown;
  /** Aborted on timeout, lost lease or forced stop. */
  signal: AbortSignal;
}

export type RunResult = { ok: true; result: unknown } | { ok: false; error: TaskError; retryable: boolean };

export interface Executor {
  /** Loads the handlers; rejects with a readable message when they cannot be loaded. */
  init(): Promise<void>;
  /** The task types there are handlers for (after init). */
  types(): ReadonlySet<string>;
  /**
   * Runs one task. Never rejects: a thrown error is a failed result. Resolves once the capacity the task used is
   * free again, which for an aborted task may be after its outcome was already reported.
   */
  run(run: TaskRun): Promise<RunResult>;
  close(): Promise<void>;
}

/** Runs handlers in the agent's own thread: no isolation, no memory limit, but no start-up cost either. */
export class InProcessExecutor implements Executor {
  private readonly handlers: Map<string, Handler>;

  constructor(handlers: HandlerMap) {
    this.handlers = toHandlerMap(handlers, "handlers");
  }

  async init(): Promise<void> {}

  types(): ReadonlySet<string> {
    return new Set(this.handlers.keys());
  }

  async run({ taskId, type, attempt, payload, signal }: TaskRun): Promise<RunResult> {
    const handler = this.handlers.get(type);
    if (handler === undefined) return { ok: false, error: { message: `no handler for task type "${type}"` }, retryable: false };
    // A handler in this thread cannot be killed; when it ignores its aborted signal, give its slot back anyway
    // rather than let one stuck promise shrink the agent's capacity forever.
    const aborted = new Promise<RunResult>((resolve) => {
      const onAbort = (): void => resolve({ ok: false, ...describeError(signal.reason) });
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    });
    const ran = (async (): Promise<RunResult> => {
      try {
        return { ok: true, result: await handler(payload, { taskId, type, attempt, signal }) };
      } catch (err) {
        return { ok: false, ...describeError(err) };
      }
    })();
    return Promise.race([ran, aborted]);
  }

  async close(): Promise<void> {}
}
