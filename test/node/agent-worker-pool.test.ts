// Handlers in worker threads: results, thrown errors, out-of-memory and stuck handlers, without a mesh.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TaskRun } from "../../agent/sdk/executor.ts";
import { WorkerPool } from "../../agent/sdk/worker-pool.ts";

let dir: string;
let handlers: URL;
const logs: string[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "daa-pool-"));
  writeFileSync(
    join(dir, "handlers.mjs"),
    `
import { threadId } from "node:worker_threads";
export default {
  echo: async (payload, ctx) => ({ payload, taskId: ctx.taskId, attempt: ctx.attempt, threadId }),
  boom: async () => { throw Object.assign(new Error("upstream timed out"), { code: "ETIMEDOUT" }); },
  invalid: async () => { throw Object.assign(new TypeError("bad input"), { retryable: false }); },
  hog: async () => { const keep = []; for (;;) keep.push(new Array(100_000).fill(Math.random())); },
  stuck: async () => { for (;;) {} },
  polite: (payload, { signal }) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
  exit: async () => { process.exit(3); },
  fn: async () => () => 1,
};
`,
  );
  writeFileSync(join(dir, "broken.mjs"), "export default {\n  oops: async () => {\n");
  writeFileSync(join(dir, "not-a-map.mjs"), "export default 42;\n");
  handlers = pathToFileURL(join(dir, "handlers.mjs"));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(type: string, payload: unknown = {}, signal = new AbortController().signal): TaskRun {
  return { taskId: `t-${type}`, type, attempt: 1, payload, signal };
}

describe("worker pool", () => {
  it("loads the module once per worker and runs tasks in worker threads", async () => {
    const pool = new WorkerPool({ moduleUrl: handlers, size: 2, memoryLimitMb: 64, log: (l) => logs.push(l) });
    try {
      await pool.init();
      expect([...pool.types()].sort()).toEqual(["boom", "echo", "exit", "fn", "hog", "invalid", "polite", "stuck"]);
      const results = await Promise.all([pool.run(run("echo", { n: 1 })), pool.run(run("echo", { n: 2 })), pool.run(run("echo", { n: 3 }))]);
      for (const r of results) expect(r).toMatchObject({ ok: true, result: { taskId: "t-echo", attempt: 1 } });
      const threads = new Set(results.map((r) => (r.ok ? (r.result as { threadId: number }).threadId : 0)));
      expect(threads.has(0)).toBe(false); // not the main thread
    } finally {
      await pool.close();
    }
  });

  it("turns thrown errors into failures: retryable unless the error says retryable: false", async () => {
    const pool = new WorkerPool({ moduleUrl: handlers, size: 1, memoryLimitMb: 64, log: () => {} });
    try {
      await pool.init();
      expect(await pool.run(run("boom"))).toEqual({ ok: false, error: { message: "upstream timed out", code: "ETIMEDOUT" }, retryable: true });
      expect(await pool.run(run("invalid"))).toEqual({ ok: false, error: { message: "bad input", name: "TypeError" }, retryable: false });
      expect(await pool.run(run("fn"))).toMatchObject({ ok: false, retryable: false, error: { message: expect.stringMatching(/cannot be sent/) } });
      expect(await pool.run(run("echo"))).toMatchObject({ ok: true });
    } finally {
      await pool.close();
    }
  });

  it("a handler that runs out of memory fails its task; a fresh worker takes the next one", async () => {
    const pool = new WorkerPool({ moduleUrl: handlers, size: 1, memoryLimitMb: 32, log: () => {} });
    try {
      await pool.init();
      const hog = await pool.run(run("hog"));
      expect(hog).toMatchObject({ ok: false, retryable: true, error: { code: "out_of_memory" } });
      expect(hog.ok ? "" : hog.error.message).toMatch(/ran out of memory \(heap limit 32 MB/);
      expect(await pool.run(run("echo", { after: "oom" }))).toMatchObject({ ok: true, result: { payload: { after: "oom" } } });
      expect(await pool.run(run("exit"))).toMatchObject({ ok: false, error: { code: "worker_exited", message: expect.stringMatching(/exited with code 3/) } });
      expect(await pool.run(run("echo"))).toMatchObject({ ok: true });
    } finally {
      await pool.close();
    }
  }, 30_000);

  it("aborts a handler; one that ignores its signal has its worker terminated after the grace period", async () => {
    const pool = new WorkerPool({ moduleUrl: handlers, size: 1, memoryLimitMb: 64, abortGraceMs: 200, log: () => {} });
    try {
      await pool.init();
      const polite = new AbortController();
      const politeRun = pool.run(run("polite", {}, polite.signal));
      setTimeout(() => polite.abort(Object.assign(new Error("the task timed out"), { name: "TimeoutError" })), 50);
      expect(await politeRun).toEqual({ ok: false, error: { message: "the task timed out", name: "TimeoutError" }, retryable: true });

      const stuck = new AbortController();
      const started = Date.now();
      const stuckRun = pool.run(run("stuck", {}, stuck.signal));
      setTimeout(() => stuck.abort(new Error("the task timed out")), 50);
      expect(await stuckRun).toMatchObject({ ok: false, error: { code: "worker_terminated" } });
      expect(Date.now() - started).toBeGreaterThanOrEqual(240);
      expect(await pool.run(run("echo"))).toMatchObject({ ok: true });
    } finally {
      await pool.close();
    }
  }, 30_000);

  it("refuses to start with a module that does not load or does not map types to functions", async () => {
    const broken = new WorkerPool({ moduleUrl: pathToFileURL(join(dir, "broken.mjs")), size: 2, memoryLimitMb: 64, log: () => {} });
    await expect(broken.init()).rejects.toThrow(/cannot load the handlers module .*broken\.mjs: .*(Unexpected|SyntaxError|end of input)/);
    const notAMap = new WorkerPool({ moduleUrl: pathToFileURL(join(dir, "not-a-map.mjs")), size: 1, memoryLimitMb: 64, log: () => {} });
    await expect(notAMap.init()).rejects.toThrow(/must be an object mapping task types to async functions/);
    const missing = new WorkerPool({ moduleUrl: pathToFileURL(join(dir, "missing.mjs")), size: 1, memoryLimitMb: 64, log: () => {} });
    await expect(missing.init()).rejects.toThrow(/cannot load the handlers module .*missing\.mjs/);
  });
});
