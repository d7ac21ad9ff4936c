// `npm start` (scripts/start.mjs) as a terminal runs it: a process group of its own, stopped by one SIGINT to the
// whole group (what Ctrl-C does). The agents must drain (finish the task they hold, deregister) before the mesh
// stops, the script must exit 0 within its bound, and no process it started may be left; a second SIGINT kills
// everything at once; and if start.mjs itself is killed (SIGKILL), its watchdog stops the rest.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, ROOT } from "../../scripts/dev-server.ts";

const ADMIN_KEY = randomBytes(18).toString("base64url");
const MASTER_KEY = randomBytes(18).toString("base64url");
const dirs: string[] = [];
const started: ChildProcess[] = [];
/** Every process of a start.mjs tree the tests saw, killed at the end if a test failed and left some. */
const seen: number[] = [];

interface Run {
  child: ChildProcess;
  url: string;
  output: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** `node scripts/start.mjs` in a new process group, on a free port, with its own keys and state directory. */
async function start(persistDir: string, ...extra: string[]): Promise<Run> {
  const port = await freePort();
  const args = ["--port", String(port), "--persist-to", persistDir, "--var", `DAA_ADMIN_KEY:${ADMIN_KEY}`, "--var", `DAA_MASTER_KEY:${MASTER_KEY}`, ...extra];
  const child = spawn(process.execPath, [join(ROOT, "scripts", "start.mjs"), ...args], { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  started.push(child);
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once("close", (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  return { child, url: `http://127.0.0.1:${port}`, output: () => output, exit };
}

async function call(run: Run, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${run.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function until<T>(what: string, run: Run, probe: () => Promise<T | null | undefined | false>, ms = 90_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline || run.child.exitCode !== null) throw new Error(`timed out waiting for ${what}; start.mjs printed:\n${run.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const agentRunning = (run: Run, pool: string) => async () =>
  (await call(run, "GET", `/v1/pools/${pool}/agents`)).body?.agents?.some((a: { agentId: string; state: string }) => a.agentId === `local-${pool}` && a.state === "running");

/** `pid` and all its descendants, from the process table. */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const line of execFileSync("ps", ["-e", "-o", "pid=,ppid="], { encoding: "utf8" }).trim().split("\n")) {
    const [p, pp] = line.trim().split(/\s+/).map(Number);
    children.set(pp!, [...(children.get(pp!) ?? []), p!]);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  seen.push(...tree);
  return tree;
}

/** Whether the process still runs (a zombie waiting for init to reap it does not). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

afterAll(() => {
  for (const pid of [...started.map((c) => c.pid), ...seen]) {
    try {
      if (pid !== undefined && alive(pid)) process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "daa-start-"));
  dirs.push(dir);
  return dir;
}

/** start.mjs with both local agents registered and a content.sleep task of `ms` leased to local-content. */
async function startWithTask(persistDir: string, ms: number): Promise<{ run: Run; id: string }> {
  const run = await start(persistDir);
  await until("both local agents running", run, async () => (await agentRunning(run, "content")()) && (await agentRunning(run, "neural")()));
  const submitted = await call(run, "POST", "/v1/tasks", { type: "content.sleep", payload: { ms } });
  expect(submitted.status).toBe(201);
  const id: string = submitted.body.id;
  await until("the task leased", run, async () => (await call(run, "GET", `/v1/tasks/${id}`)).body?.status === "leased");
  return { run, id };
}

async function allGone(pids: number[], ms: number): Promise<number[]> {
  for (let waited = 0; waited < ms && pids.some(alive); waited += 100) await new Promise((r) => setTimeout(r, 100));
  return pids.filter(alive);
}

describe.skipIf(process.platform === "win32")("npm start (scripts/start.mjs)", () => {
  it("on one SIGINT to its process group: the agents finish their task and deregister, then the mesh stops; exit 0, nothing left", async () => {
    const dir = stateDir();
    const { run, id } = await startWithTask(dir, 3000);

    const tree = processTree(run.child.pid!);
    expect(tree.length).toBeGreaterThanOrEqual(5); // start.mjs, its watchdog, wrangler (and workerd), two agents
    const signalled = Date.now();
    process.kill(-run.child.pid!, "SIGINT");
    const { code, at } = await run.exit;
    const out = run.output();
    expect(code, out).toBe(0);
    // Within the drain bound (30 s) and the mesh's (5 s); here the task's 3 s and a little.
    expect(at - signalled, out).toBeLessThan(35_000);

    // The content agent finished the task it held and left; neither agent was cut off or quit early.
    expect(out).toMatch(/\[content\] \S+ agent local-content stopped \(1 completed, 0 failed\)/);
    expect(out).toMatch(/\[neural\] \S+ agent local-neural stopped \(0 completed, 0 failed\)/);
    expect(out).toMatch(/PATCH \/v1\/pools\/content\/agents\/local-content 200/); // terminating, while the mesh was up
    expect(out).not.toMatch(/could not|again: quitting|ECONNRESET|ECONNREFUSED/);
    // The agents were done before the mesh was told to stop.
    const meshStops = out.indexOf("[daa] the agents are gone; stopping the mesh");
    expect(meshStops, out).toBeGreaterThan(out.indexOf("agent local-content stopped"));
    expect(meshStops).toBeGreaterThan(out.indexOf("agent local-neural stopped"));
    // wrangler's offline warning (no internet here) comes as one line, not as stack traces.
    expect(out).not.toContain("Unable to fetch the `Request.cf` object");
    expect(out).not.toContain("GetAddrInfoReqWrap");

    // Nothing of what start.mjs started runs on (the watchdog exits at once when all groups are gone).
    expect(await allGone(tree, 3_000)).toEqual([]);

    // The mesh again, on the same state: the task succeeded, both agents deregistered.
    const again = await start(dir, "--no-agents");
    await until("the mesh again", again, async () => (await fetch(`${again.url}/healthz`)).ok);
    expect((await call(again, "GET", `/v1/tasks/${id}`)).body).toMatchObject({ status: "succeeded", result: { sleptMs: 3000 }, agentId: "local-content" });
    expect((await call(again, "GET", "/v1/pools/content/agents")).body.agents).toEqual([]);
    expect((await call(again, "GET", "/v1/pools/neural/agents")).body.agents).toEqual([]);
    process.kill(-again.child.pid!, "SIGINT");
    expect((await again.exit).code, again.output()).toBe(0);
  }, 120_000);

  it("on a second SIGINT (a second later): kills everything at once and exits 130", async () => {
    const { run } = await startWithTask(stateDir(), 20_000);
    const tree = processTree(run.child.pid!);
    process.kill(-run.child.pid!, "SIGINT");
    await until("the drain under way", run, async () => run.output().includes("stopping: no new tasks; waiting for 1 in flight"), 10_000);
    await new Promise((r) => setTimeout(r, 1_100)); // a signal within a second of the first counts as the same one
    const signalled = Date.now();
    process.kill(-run.child.pid!, "SIGINT");
    const { code, at } = await run.exit;
    expect(code, run.output()).toBe(130);
    expect(at - signalled).toBeLessThan(3_000);
    expect(run.output()).toContain("[daa] SIGINT again: killing the agents and the mesh now");
    expect(await allGone(tree, 3_000)).toEqual([]);
  }, 120_000);

  it("killed with SIGKILL: its watchdog stops the agents and the mesh", async () => {
    const { run } = await startWithTask(stateDir(), 20_000);
    const tree = processTree(run.child.pid!);
    process.kill(run.child.pid!, "SIGKILL");
    await run.exit;
    // SIGTERM to every group, SIGKILL 5 s later to what is left.
    expect(await allGone(tree, 10_000)).toEqual([]);
  }, 120_000);
});
