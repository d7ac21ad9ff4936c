// The mesh as users run it: `wrangler dev` in its own process, reached over real HTTP.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, startDevServer, type DevServer } from "../../scripts/dev-server.ts";
import { lintExposition } from "./prometheus-lint.ts";

let server: DevServer;
let persistDir: string;

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

beforeAll(async () => {
  persistDir = mkdtempSync(join(tmpdir(), "daa-e2e-"));
  server = await startDevServer({ persistDir });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  rmSync(persistDir, { recursive: true, force: true });
});

describe("the mesh under wrangler dev", () => {
  it("runs the README walk-through: submit, lease, complete, read the result", async () => {
    const task = await call("POST", "/v1/tasks", { type: "content.generate", payload: { topic: "edge queues" }, priority: 7 });
    expect(task.status).toBe(201);
    const agent = await call("POST", "/v1/pools/content/agents", { agentId: "writer-1", capabilities: ["llm"], maxConcurrency: 2 });
    expect(agent.status).toBe(201);
    const lease = await call("POST", "/v1/pools/content/agents/writer-1/lease", { max: 1, waitMs: 1000 });
    expect(lease.body.tasks[0].id).toBe(task.body.id);
    const done = await call("POST", `/v1/tasks/${task.body.id}/complete`, { leaseToken: lease.body.tasks[0].leaseToken, result: { words: 420 } });
    expect(done.status).toBe(200);
    const result = await call("GET", `/v1/tasks/${task.body.id}/result?waitMs=1000`);
    expect(result).toMatchObject({ status: 200, body: { status: "succeeded", result: { words: 420 } } });
  });

  it("serves /metrics that Prometheus accepts", async () => {
    const res = await call("GET", "/metrics");
    expect(res.status).toBe(200);
    const text = res.body as string;
    expect(text).toContain('daa_tasks_succeeded_total{pool="content"}');
    expect(lintExposition(text)).toEqual([]);
    const promtool = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    if (promtool.error && (promtool.error as NodeJS.ErrnoException).code === "ENOENT") {
      console.warn("promtool not installed (Debian package prometheus); checked with the built-in linter only");
      return;
    }
    expect(`${promtool.stdout}${promtool.stderr}`.trim()).toBe("");
    expect(promtool.status).toBe(0);
  });

  it("keeps tasks, leases and their timers across a restart of the mesh process", async () => {
    const queued = await call("POST", "/v1/tasks", { type: "restart.x", payload: { n: 1 } });
    const leasedTask = await call("POST", "/v1/tasks", { type: "restart.x", priority: 9, timeoutMs: 2000 });
    await call("POST", "/v1/pools/restart/agents", { agentId: "r1" });
    const lease = await call("POST", "/v1/pools/restart/agents/r1/lease", { max: 1 });
    expect(lease.body.tasks[0].id).toBe(leasedTask.body.id);

    const { adminKey, masterKey } = server;
    await server.stop();
    server = await startDevServer({ persistDir, adminKey, masterKey });

    expect((await call("GET", `/v1/tasks/${queued.body.id}`)).body.status).toBe("queued");
    // The lease expires while nobody calls the pool: only the alarm can requeue it.
    const deadline = Date.now() + 15_000;
    let status = "leased";
    while (status === "leased" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      status = (await call("GET", `/v1/tasks/${leasedTask.body.id}`)).body.status;
    }
    expect(status).not.toBe("leased");
    const pools = await call("GET", "/v1/pools");
    expect(pools.body.pools.map((p: { pool: string }) => p.pool).sort()).toEqual(["content", "restart"]);
  }, 60_000);
});

describe("npm run build", () => {
  it("bundles the Worker offline (wrangler deploy --dry-run)", () => {
    const out = mkdtempSync(join(tmpdir(), "daa-build-"));
    try {
      execFileSync(process.execPath, [join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js"), "deploy", "--dry-run", "--outdir", out], {
        cwd: ROOT,
        env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
        stdio: "pipe",
      });
      expect(readdirSync(out)).toContain("index.js");
      expect(existsSync(join(out, "index.js"))).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);
});
