// The `daa` command line: argument parsing and exit codes in process, then every command against a real mesh,
// and `daa agent` as its own process stopped by SIGTERM.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, ROOT, startDevServer, type DevServer } from "../../scripts/dev-server.ts";
import { main, USAGE } from "../../agent/cli/main.ts";
import type { Io } from "../../agent/cli/io.ts";
import { MeshAgent } from "../../agent/sdk/agent.ts";
import { MeshClient } from "../../agent/sdk/api.ts";

const BIN = join(ROOT, "agent", "bin", "daa.mjs");

interface Captured extends Io {
  stdout: string;
  stderr: string;
}

function io(env: Record<string, string | undefined> = {}, cwd = ROOT): Captured {
  const captured: Captured = {
    stdout: "",
    stderr: "",
    out: (text) => void (captured.stdout += text),
    err: (text) => void (captured.stderr += text),
    env,
    cwd,
    stderrIsTTY: false,
    onSignal: () => () => {},
  };
  return captured;
}

async function daa(argv: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const c = io(env);
  const code = await main(argv, c);
  return { code, stdout: c.stdout, stderr: c.stderr };
}

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "daa-cli-"));
  writeFileSync(
    join(dir, "handlers.mjs"),
    `export default {
  "cli.echo": async (payload, ctx) => ({ echoed: payload, attempt: ctx.attempt }),
  "cli.fail": async () => { throw Object.assign(new Error("cannot do that"), { retryable: false }); },
};`,
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("daa: usage and exit codes", () => {
  it("prints help: exit 0 for --help, 2 with no command or an unknown one", async () => {
    expect(await daa(["--help"])).toEqual({ code: 0, stdout: USAGE, stderr: "" });
    for (const name of ["agent", "submit", "task", "pools", "agents", "workflows", "schedules"]) expect(USAGE).toMatch(new RegExp(`^  ${name} `, "m"));
    expect(await daa([])).toEqual({ code: 2, stdout: "", stderr: USAGE });
    const unknown = await daa(["deploy"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^daa: unknown command "deploy"\n\nusage: daa <command>/);
  });

  it("each command has --help (exit 0), even without its required options", async () => {
    for (const name of ["agent", "submit", "task", "pools", "agents"]) {
      const r = await daa([name, "--help"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage: daa ${name}`));
      expect(r.stdout).toContain("--url <url>");
    }
  });

  it.each([
    [["submit"], "missing <type>"],
    [["submit", "a.b", "--priority", "12"], "--priority must be an integer from 0 to 9, not \"12\""],
    [["submit", "a.b", "--payload", "{x"], "--payload is not JSON"],
    [["submit", "a.b", "--timeout-ms", "10"], "--timeout-ms must be an integer from 1000 to 3600000"],
    [["pools", "--bogus"], "Unknown option '--bogus'"],
    [["pools", "extra"], "unexpected argument \"extra\""],
    [["task"], "missing <id>"],
    [["task", "a", "b"], "unexpected argument \"b\""],
    [["agents", "Bad Pool"], "is not a pool name"],
    [["agent"], "--pool is required"],
    [["agent", "--pool", "p"], "--handlers is required"],
    [["agent", "--pool", "p", "--handlers", "no-such-file.mjs"], "--handlers: no such file"],
    [["agent", "--pool", "p", "--handlers", "agent/cli.ts", "--concurrency", "0"], "--concurrency must be an integer from 1 to 1000"],
    [["agent", "--pool", "p", "--handlers", "agent/cli.ts", "--transport", "carrier-pigeon"], "--transport must be one of auto, websocket, http"],
  ])("bad usage %j: exit 2 with the message and the command's help", async (argv, message) => {
    const r = await daa(argv, { DAA_TOKEN: "t" });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain(`usage: daa ${argv[0]}`);
  });

  it("needs a credential and an http(s) URL (exit 2)", async () => {
    const noToken = await daa(["pools"]);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain("no credential: pass --token or set DAA_TOKEN");
    const badUrl = await daa(["pools", "--url", "ftp://mesh", "--token", "t"]);
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain("--url must be http:// or https://");
  });

  it("a mesh that cannot be reached is a failed operation (exit 1)", async () => {
    const port = await freePort();
    const r = await daa(["task", "p.0.abc", "--url", `http://127.0.0.1:${port}`, "--token", "t"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^daa task: unreachable: cannot reach http://127.0.0.1:${port}: .*ECONNREFUSED`));
  });
});

describe("daa against the mesh", () => {
  let server: DevServer;
  let env: Record<string, string>;
  let client: MeshClient;

  beforeAll(async () => {
    server = await startDevServer();
    env = { DAA_URL: server.url, DAA_TOKEN: server.adminKey };
    client = new MeshClient({ url: server.url, token: server.adminKey });
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
  });

  it("workflows: lists runs and shows one run's timeline; an unknown id fails with the mesh's code (exit 1)", async () => {
    const res = await fetch(`${server.url}/v1/workflows`, {
      method: "POST",
      headers: { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "cli-run", steps: [{ key: "first", type: "cliwf.x" }, { key: "second", type: "cliwf.x", dependsOn: ["first"] }] }),
    });
    expect(res.status).toBe(201);
    const run = (await res.json()) as { id: string };
    const list = await daa(["workflows"], env);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^ID\s+NAME\s+STATUS\s+STEPS/);
    expect(list.stdout).toContain(`${run.id}  cli-run  running`);
    const one = await daa(["workflows", run.id], env);
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/^first\s+cliwf\.x\s+running\s+1\s+1/m);
    expect(one.stdout).toMatch(/^second\s+cliwf\.x\s+pending\s+0\s+0/m);
    const missing = await daa(["workflows", "wf_nope"], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^daa workflows: 404 not_found: /);
  });

  it("schedules: lists schedules and shows one schedule's runs; an unknown id fails with the mesh's code (exit 1)", async () => {
    const res = await fetch(`${server.url}/v1/schedules`, {
      method: "POST",
      headers: { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "cli-nightly", cron: "30 2 * * *", timezone: "Europe/Paris", overlap: "allow", task: { type: "clisch.x" } }),
    });
    expect(res.status).toBe(201);
    const s = (await res.json()) as { id: string; nextRunAt: string };
    const trigger = await fetch(`${server.url}/v1/schedules/${s.id}/trigger`, { method: "POST", headers: { authorization: `Bearer ${server.adminKey}` } });
    const run = ((await trigger.json()) as { run: { taskId: string } }).run;
    const list = await daa(["schedules"], env);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^ID\s+NAME\s+CRON\s+TIMEZONE\s+NEXT\s+LAST\s+RUNS/);
    expect(list.stdout).toMatch(new RegExp(`^${s.id}\\s+cli-nightly\\s+30 2 \\* \\* \\*\\s+Europe/Paris\\s+${s.nextRunAt}`, "m"));
    const one = await daa(["schedules", s.id], env);
    expect(one.code).toBe(0);
    expect(one.stdout).toContain(`${s.id}  cli-nightly  30 2 * * * Europe/Paris  task clisch.x  next ${s.nextRunAt}`);
    expect(one.stdout).toMatch(new RegExp(`^\\S+\\s+trigger\\s+submitted\\s+${run.taskId}`, "m"));
    const missing = await daa(["schedules", "sch_nope"], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^daa schedules: 404 not_found: /);
  });

  it("task: prints the task as JSON; an unknown id fails with the mesh's code and message (exit 1)", async () => {
    const submitted = await client.submitTask({ type: "cli.echo", payload: { n: 1 } });
    const r = await daa(["task", submitted.id], env);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(await client.getTask(submitted.id));
    const missing = await daa(["task", "cli.0.AAAAAAAAAAAAAAAAAAAAAA"], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^daa task: 404 not_found: /);
    const refused = await daa(["task", submitted.id, "--token", "wrong"], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^daa task: 401 unauthorized: /);
  });

  it("submit: prints the new task; with --wait, its result once an agent has run it", async () => {
    const plain = await daa(["submit", "cli.echo", "--payload", '{"a":1}', "--priority", "7"], env);
    expect(plain.code).toBe(0);
    expect(JSON.parse(plain.stdout)).toMatchObject({ type: "cli.echo", pool: "cli", priority: 7, payload: { a: 1 }, status: "queued" });

    const agent = new MeshAgent({ url: server.url, token: server.adminKey, pool: "cli", handlers: join(dir, "handlers.mjs"), agentId: "cli-runner", maxConcurrency: 2, log: () => {} });
    await agent.start();
    try {
      const waited = await daa(["submit", "cli.echo", "--payload", '{"b":2}', "--wait"], env);
      expect(waited.code).toBe(0);
      expect(JSON.parse(waited.stdout)).toEqual({ echoed: { b: 2 }, attempt: 1 });
      expect(waited.stderr).toMatch(/^cli\.0\.\S+: (queued|leased) \(\d+\.\d s\)\n(.*\n)*cli\.0\.\S+: succeeded \(\d+\.\d s\)\n$/);

      const failed = await daa(["submit", "cli.fail", "--wait"], env);
      expect(failed.code).toBe(1);
      expect(failed.stdout).toBe("");
      expect(failed.stderr).toMatch(/task cli\.0\.\S+ ended dead: \{"message":"cannot do that".*\}/);

      const agents = await daa(["agents", "cli"], env);
      expect(agents.code).toBe(0);
      const lines = agents.stdout.trimEnd().split("\n");
      expect(lines[0]).toMatch(/^AGENT\s+STATE\s+TASKS\s+LOAD\s+QUEUE\s+AVG MS\s+BREAKER\s+CAPABILITIES\s+HEARTBEAT$/);
      expect(lines[1]).toMatch(/^cli-runner\s+running\s+0\/2\s+\d+\.\d\d\s+0\s+\d+\s+closed\s+-\s+\d+s ago$/);
      // Columns line up: every cell of a column starts at the header's offset (left) or ends at it (right).
      expect(lines[1]?.indexOf("running")).toBe(lines[0]?.indexOf("STATE"));
      const json = await daa(["agents", "cli", "--json"], env);
      expect(JSON.parse(json.stdout).agents.map((a: { agentId: string }) => a.agentId)).toEqual(["cli-runner"]);
    } finally {
      await agent.stop();
    }
    const none = await daa(["agents", "cli"], env);
    expect(none).toMatchObject({ code: 0, stdout: "no agents in pool cli\n" });
  });

  it("pools: a table with the numbers the API answers, and the same as JSON with --json", async () => {
    await client.submitTask({ type: "tally.x" });
    await client.submitTask({ type: "tally.x" });
    const api = await client.listPools();
    const r = await daa(["pools"], env);
    expect(r.code).toBe(0);
    const [header, ...rows] = r.stdout.trimEnd().split("\n");
    expect(header).toMatch(/^POOL\s+WAITING\s+QUEUED\s+LEASED\s+SUCCEEDED\s+DEAD\s+CANCELLED\s+RUNNING\s+AGENTS$/);
    expect(rows.map((row) => row.split(/\s+/)[0])).toEqual(api.map((p) => p.pool));
    const tally = rows.find((row) => row.startsWith("tally "))?.split(/\s+/);
    const fromApi = api.find((p) => p.pool === "tally");
    expect(tally).toEqual(["tally", ...["waiting", "queued", "leased", "succeeded", "dead", "cancelled"].map((s) => String(fromApi?.queue[s])), "0", "0"]);
    // Right-aligned numbers: each row is as long as the header where the last column ends.
    for (const row of rows) expect(row.length).toBe(header?.length);
    const json = await daa(["pools", "--json"], env);
    expect(JSON.parse(json.stdout)).toEqual({ pools: await client.listPools() });
  });

  it("daa agent runs until SIGTERM, then drains, deregisters and exits 0", async () => {
    const child = spawn(process.execPath, [BIN, "agent", "--pool", "cli-proc", "--handlers", join(dir, "handlers.mjs"), "--agent-id", "proc-1", "--concurrency", "2", "--capabilities", "echo,fast"], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      const deadline = Date.now() + 15_000;
      while (!stderr.includes("registered in pool cli-proc") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(stderr).toMatch(/agent proc-1 registered in pool cli-proc over websocket: concurrency 2, handles cli\.echo, cli\.fail/);
      const [listed] = await client.listAgents("cli-proc");
      expect(listed).toMatchObject({ agentId: "proc-1", state: "running", capabilities: ["echo", "fast"], maxConcurrency: 2 });
      const task = await client.submitTask({ type: "cli.echo", pool: "cli-proc", payload: { via: "process" } });
      expect((await client.waitForResult(task.id, 10_000)).task).toMatchObject({ status: "succeeded", result: { echoed: { via: "process" } } });
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(stderr).toContain("SIGTERM: finishing the tasks in flight, then leaving");
      expect(stderr).toMatch(/agent proc-1 stopped \(1 completed, 0 failed\)/);
      await expect(client.listAgents("cli-proc")).resolves.toEqual([]);
    } finally {
      child.kill("SIGKILL");
    }
  }, 30_000);

  it("daa submit as a process (bin/daa.mjs), and npx daa in the repository", async () => {
    const r = spawnSync(process.execPath, [BIN, "submit", "cli.echo", "--payload", "[1,2]"], { cwd: ROOT, env: { ...process.env, ...env }, encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ type: "cli.echo", payload: [1, 2] });
    const npx = spawnSync("npx", ["--no", "daa", "pools", "--json"], { cwd: ROOT, env: { ...process.env, ...env }, encoding: "utf8" });
    expect(npx.status).toBe(0);
    expect(JSON.parse(npx.stdout).pools.length).toBeGreaterThan(0);
  }, 30_000);
});

describe("bin/daa.mjs on an older Node", () => {
  // A Node older than 22.12 on PATH (outside node_modules), e.g. the system's: the launcher re-runs the CLI with
  // the repository's Node 22.
  const oldNode = (process.env.PATH ?? "")
    .split(delimiter)
    .filter((d) => d !== "" && !d.includes("node_modules"))
    .map((d) => join(d, "node"))
    .find((candidate) => {
      const v = spawnSync(candidate, ["--version"], { encoding: "utf8" });
      const [major = 0, minor = 0] = (v.stdout ?? "").trim().slice(1).split(".").map(Number);
      return v.status === 0 && (major < 22 || (major === 22 && minor < 12));
    });

  it.skipIf(oldNode === undefined)("re-runs the CLI with the repository's Node 22 (exit codes kept)", () => {
    const help = spawnSync(oldNode ?? "node", [BIN, "--help"], { cwd: ROOT, encoding: "utf8" });
    expect(help.status).toBe(0);
    expect(help.stdout).toBe(USAGE);
    const bad = spawnSync(oldNode ?? "node", [BIN, "submit"], { cwd: ROOT, encoding: "utf8", env: { ...process.env, DAA_TOKEN: "t" } });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("missing <type>");
  });

  // npx runs the package's own bin by installing the repository as a link into its cache (~/.npm/_npx), checking
  // package.json's engines on the way: the first `npx daa` of a clone used to print EBADENGINE warnings there.
  it.skipIf(oldNode === undefined)("npx daa --help with that Node's npx and a fresh npm cache: no npm warnings", () => {
    const bin = dirname(oldNode ?? "node");
    const cache = mkdtempSync(join(tmpdir(), "daa-npx-cache-"));
    try {
      const path = [bin, ...(process.env.PATH ?? "").split(delimiter).filter((d) => !d.includes("node_modules"))].join(delimiter);
      const npx = spawnSync(join(bin, "npx"), ["--yes", "daa", "--help"], { cwd: ROOT, encoding: "utf8", env: { ...process.env, PATH: path, npm_config_cache: cache } });
      expect(npx.status, npx.stderr).toBe(0);
      expect(npx.stdout).toBe(USAGE);
      expect(npx.stderr).toBe("");
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  }, 60_000);
});
