// The body of each worker thread: imports the handlers module once, then runs the tasks the agent sends, one at a
// time. A crash or an out-of-memory here ends this thread only; the agent fails the task and starts a new worker.
import { parentPort, workerData } from "node:worker_threads";
import { describeError } from "./errors.ts";
import { defaultExport, toHandlerMap } from "./handlers.ts";
import type { Handler } from "./types.ts";
import { isToWorker, type FromWorker, type ToWorker, type WorkerStart } from "./worker-protocol.ts";

const port = parentPort;
if (port === null) throw new Error("worker-entry.ts runs only as a worker thread");

function post(message: FromWorker): void {
  port?.postMessage(message);
}

function isStart(value: unknown): value is WorkerStart {
  return typeof value === "object" && value !== null && "moduleUrl" in value && typeof value.moduleUrl === "string";
}

const controllers = new Map<number, AbortController>();

async function load(): Promise<Map<string, Handler> | null> {
  if (!isStart(workerData)) {
    post({ kind: "load_failed", message: "the worker was started without a handlers module" });
    return null;
  }
  try {
    const module: unknown = await import(workerData.moduleUrl);
    return toHandlerMap(defaultExport(module), `the default export of ${workerData.moduleUrl}`);
  } catch (err) {
    post({ kind: "load_failed", message: err instanceof Error ? err.message : String(err) });
    return null;
  }
}

async function run(handlers: Map<string, Handler>, msg: Extract<ToWorker, { kind: "run" }>): Promise<void> {
  const controller = new AbortController();
  controllers.set(msg.runId, controller);
  let done: FromWorker;
  try {
    const handler = handlers.get(msg.type);
    if (handler === undefined) throw Object.assign(new Error(`no handler for task type "${msg.type}"`), { retryable: false });
    const result = await handler(msg.payload, { taskId: msg.taskId, type: msg.type, attempt: msg.attempt, signal: controller.signal });
    done = { kind: "done", runId: msg.runId, result: { ok: true, result } };
  } catch (err) {
    done = { kind: "done", runId: msg.runId, result: { ok: false, ...describeError(err) } };
  } finally {
    controllers.delete(msg.runId);
  }
  try {
    post(done);
  } catch (err) {
    // A result the structured clone cannot copy (a function, a class with private state) would never be JSON either.
    post({ kind: "done", runId: msg.runId, result: { ok: false, error: { message: `the handler's result cannot be sent: ${err instanceof Error ? err.message : String(err)}` }, retryable: false } });
  }
}

const handlers = await load();
if (handlers !== null) {
  port.on("message", (msg: unknown) => {
    if (!isToWorker(msg)) return;
    if (msg.kind === "run") void run(handlers, msg);
    else controllers.get(msg.runId)?.abort(Object.assign(new Error(msg.message), { name: msg.name }));
  });
  post({ kind: "ready", types: [...handlers.keys()] });
}
// Otherwise the agent has the load_failed message and terminates this thread.
