#!/usr/bin/env node
// `npm start`: runs the mesh locally (wrangler dev, state kept in .wrangler/state: the main Worker and the edge
// embedder, workers/embedder/, in one process, with the generated embedding model put into its local R2 first) and a
// small local fleet:
// a content agent (template rendering, SEO) and a neural agent (a tiny ONNX model through onnxruntime-web),
// both connected over WebSocket with the bootstrap key. Extra arguments go to wrangler dev, e.g.
// `npm start -- --port 9000` or `--persist-to <dir>`; `--no-agents` runs the mesh alone. The admin key comes from
// .dev.vars unless given as `--var DAA_ADMIN_KEY:<key>` (wrangler then uses that one too).
//
// Stopping: one SIGINT (Ctrl-C), SIGTERM or SIGHUP drains the agents (they take no more work, finish the tasks they
// hold and deregister), waits for them up to AGENT_DRAIN_MS, then stops the mesh; a second signal kills everything
// at once. Every child runs in a process group (session) of its own, so a terminal's Ctrl-C, which goes to the
// whole foreground group, reaches only this script and each child gets exactly one signal, in that order. If this
// script dies without stopping them (SIGKILL included), a small watchdog process sees its pipe close and stops
// the children's groups.
//
// Output: the children's lines are passed through ([content] / [neural] before the agents' lines), except two
// harmless messages of wrangler and workerd, each replaced by one line that says what it means, and the
// "[not connected]" wrangler prints for EMBEDDER before the embedder in the same process starts (see meshLines).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const AGENT_DRAIN_MS = 30_000;
const MESH_STOP_MS = 5_000;

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const posix = process.platform !== "win32";
const args = process.argv.slice(2);
const withAgents = !args.includes("--no-agents");
const wranglerArgs = args.filter((a) => a !== "--no-agents");
const portArg = wranglerArgs.indexOf("--port");
const port = portArg >= 0 ? wranglerArgs[portArg + 1] : "8787";
if (portArg < 0) wranglerArgs.push("--port", port);
const devVars = join(root, ".dev.vars");
const adminKey =
  varArg("DAA_ADMIN_KEY") ?? (existsSync(devVars) ? /^DAA_ADMIN_KEY=(.*)$/m.exec(readFileSync(devVars, "utf8"))?.[1]?.trim() : undefined) ?? "";
const url = `http://127.0.0.1:${port}`;

// wrangler and the agents need Node >= 22.12: when this script runs on an older one (`node scripts/start.mjs`
// with the system's Node), use the one `npm ci` put into node_modules, as `npm start` does through PATH.
const [major, minor] = process.versions.node.split(".").map(Number);
const node22 = join(root, "node_modules", ".bin", "node");
const node = posix && (major < 22 || (major === 22 && minor < 12)) && existsSync(node22) ? node22 : process.execPath;

/** The local fleet: one agent per pool, handlers from agent/fleet. */
const FLEET = [
  { pool: "content", handlers: "agent/fleet/content.ts", concurrency: "4", capabilities: "templates,seo" },
  { pool: "neural", handlers: "agent/fleet/neural.ts", concurrency: "2", capabilities: "onnx,cpu" },
];

/** The value of `--var NAME:value` (or `--var=NAME:value`) among wrangler's arguments. */
function varArg(name) {
  for (let i = 0; i < wranglerArgs.length; i++) {
    const value = wranglerArgs[i] === "--var" ? wranglerArgs[i + 1] : wranglerArgs[i].startsWith("--var=") ? wranglerArgs[i].slice(6) : undefined;
    if (value?.startsWith(`${name}:`)) return value.slice(name.length + 1);
  }
  return undefined;
}

const say = (line) => console.log(`[daa] ${line}`);
// A closed terminal (SIGHUP) must not turn the drain into a crash on the next line printed.
for (const stream of [process.stdout, process.stderr]) stream.on("error", () => {});

// ---- children in process groups of their own ----------------------------------------------------------------------

/** Stops the children's groups if this process goes away without doing it (e.g. killed with SIGKILL). */
const WATCHDOG = `
const groups = new Set();
let rest = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  const lines = (rest + chunk).split("\\n");
  rest = lines.pop();
  for (const line of lines) line[0] === "+" ? groups.add(Number(line.slice(1))) : groups.delete(Number(line.slice(1)));
});
const kill = (signal) => { for (const g of groups) { try { process.kill(-g, signal); } catch {} } };
process.stdin.on("end", () => {
  if (groups.size === 0) process.exit(0);
  kill("SIGTERM");
  setTimeout(() => { kill("SIGKILL"); process.exit(0); }, ${MESH_STOP_MS});
});
`;
const watchdog = posix ? spawn(node, ["-e", WATCHDOG], { stdio: ["pipe", "ignore", "ignore"], detached: true }) : undefined;
watchdog?.on("error", () => {});
watchdog?.stdin.on("error", () => {});
watchdog?.unref();
watchdog?.stdin.unref?.();

/** @type {{ child: import("node:child_process").ChildProcess, name: string, live: boolean, closed: Promise<void> }[]} */
const children = [];
let phase = "running"; // then "stopping", "forced"

function run(command, commandArgs, name, filter) {
  const child = spawn(command, commandArgs, {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    detached: posix,
    env: {
      ...process.env,
      DAA_URL: url,
      DAA_TOKEN: adminKey,
      // No usage reports from a local run (wrangler's telemetry; it also prints a banner once per version).
      WRANGLER_SEND_METRICS: process.env.WRANGLER_SEND_METRICS ?? "false",
    },
  });
  const entry = { child, name, live: true, closed: new Promise((resolve) => child.once("close", () => resolve())) };
  if (posix && child.pid !== undefined) watchdog?.stdin.write(`+${child.pid}\n`);
  const prefix = (line) => (name === "mesh" ? line : `[${name}] ${line}`);
  for (const stream of [child.stdout, child.stderr]) {
    const keep = filter?.() ?? ((line) => line);
    let buffered = "";
    const emit = (line) => {
      const shown = keep(line);
      if (shown !== null) console.log(prefix(shown));
    };
    stream.on("data", (chunk) => {
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) emit(line);
    });
    stream.on("end", () => buffered !== "" && emit(buffered));
  }
  child.on("error", (err) => say(`cannot start ${name}: ${err.message}`));
  child.on("exit", (code, signal) => {
    reap(entry);
    if (phase === "running") {
      say(`${name} exited (${signal ?? code})`);
      if (name === "mesh") void shutdown(code || 1, "the mesh exited");
    }
  });
  children.push(entry);
  return entry;
}

/** Sends `signal` to the child's whole group (wrangler's includes workerd). */
function signalGroup(entry, signal) {
  try {
    if (posix && entry.child.pid !== undefined) process.kill(-entry.child.pid, signal);
    else entry.child.kill(signal);
  } catch {
    // already gone
  }
}

/** After the group leader exited: whatever is left of its group goes too, and the watchdog forgets the group. */
function reap(entry) {
  if (!entry.live) return;
  entry.live = false;
  signalGroup(entry, "SIGKILL");
  if (entry.child.pid !== undefined) watchdog?.stdin.write(`-${entry.child.pid}\n`);
}

function exited(entries, ms) {
  return new Promise((resolve) => {
    const pending = entries.filter((e) => e.child.exitCode === null && e.child.signalCode === null);
    if (pending.length === 0) return resolve(true);
    let left = pending.length;
    const timer = setTimeout(() => resolve(false), ms);
    for (const e of pending) {
      e.child.once("exit", () => {
        if (--left === 0) {
          clearTimeout(timer);
          resolve(true);
        }
      });
    }
  });
}

const bounded = (promise, ms) => Promise.race([promise, new Promise((r) => setTimeout(r, ms))]);

// Last resort, e.g. an exception in this script: no child outlives it.
process.on("exit", () => {
  for (const entry of children) if (entry.live) signalGroup(entry, "SIGKILL");
});

// ---- stopping -----------------------------------------------------------------------------------------------------

async function shutdown(code, reason) {
  if (phase !== "running") return;
  phase = "stopping";
  const mesh = children.find((e) => e.name === "mesh");
  const agents = children.filter((e) => e.name !== "mesh" && e.live);
  if (agents.length > 0) {
    say(`${reason}: the agents finish the tasks they hold and deregister (waiting up to ${AGENT_DRAIN_MS / 1000} s), then the mesh stops; press Ctrl-C again to kill everything now`);
    for (const agent of agents) signalGroup(agent, "SIGTERM");
    if (!(await exited(agents, AGENT_DRAIN_MS))) {
      if (phase !== "stopping") return;
      say(`the agents are still busy after ${AGENT_DRAIN_MS / 1000} s: stopping them now (what they hold goes back to the queue when its lease expires)`);
      for (const agent of agents) signalGroup(agent, "SIGTERM"); // a second signal: they quit at once
      if (!(await exited(agents, 3_000))) for (const agent of agents) signalGroup(agent, "SIGKILL");
    }
    await bounded(Promise.all(agents.map((a) => a.closed)), 2_000);
    if (phase === "stopping") say("the agents are gone; stopping the mesh");
  } else {
    say(`${reason}: stopping the mesh`);
  }
  if (phase !== "stopping") return;
  if (mesh?.live) {
    signalGroup(mesh, "SIGTERM");
    if (!(await exited([mesh], MESH_STOP_MS))) signalGroup(mesh, "SIGKILL");
    await bounded(mesh.closed, 2_000);
  }
  for (const entry of children) reap(entry);
  say("stopped");
  watchdog?.stdin.end();
  process.exit(code);
}

function force(signal) {
  if (phase === "forced") return;
  phase = "forced";
  say(`${signal} again: killing the agents and the mesh now`);
  for (const entry of children) reap(entry);
  process.exit(130);
}

// A signal within a second of the first is the same request: under `npm start` the terminal's Ctrl-C reaches this
// process twice when npm's script shell execs it (bash does; dash does not): once from the terminal, once forwarded
// by npm.
let firstSignalAt = 0;
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    if (phase === "running") {
      firstSignalAt = Date.now();
      void shutdown(0, signal);
    } else if (Date.now() - firstSignalAt >= 1_000) {
      force(signal);
    }
  });
}

// ---- wrangler's and workerd's harmless messages ---------------------------------------------------------------------

/**
 * A filter for the mesh's lines (one per stream): a line, or null to drop it. Two messages are replaced by one
 * line each, printed once per run:
 * - miniflare fetches the `Request.cf` object (the Cloudflare request metadata it fakes locally) from
 *   workers.cloudflare.com, caches it, and warns with a stack trace when that fails (offline), at every start and
 *   reload. The Worker reads only request.cf.tlsClientAuth (mTLS), where the placeholder, like the fetched
 *   object, says that no client certificate was presented.
 * - workerd logs "NOSENTRY SQLite alarm overdue, running despite AlarmManager mismatch" or "NOSENTRY SQLite alarm
 *   handler canceled ..." when its alarm scheduler fires an alarm of a Durable Object that came due while the mesh
 *   was stopped and the object's own stored alarm time differs (workerd moves an alarm later lazily: the earlier
 *   time stays scheduled and is corrected when it fires). It reconciles the two: runs the alarm now if the
 *   object's time has passed, else reschedules it for the object's time. Expected after a restart (NOSENTRY is
 *   workerd's mark for notes that are not worth an error report).
 */
const shown = new Set();
function meshLines() {
  let state = "pass"; // "cf-error": next is the error message; "cf-trace": its stack; "blank": drop blank lines
  return (line) => {
    const plain = line.replace(/\x1b\[[0-9;]*m/g, "");
    if (state === "cf-error") {
      state = "cf-trace";
      const why = plain.trim().replace(/^\w*Error: /, "");
      return once("cf", `[daa] wrangler could not fetch Cloudflare's request.cf data (${why}; offline?) and uses a placeholder: harmless for local development`);
    }
    if (state === "cf-trace" && /^\s+at /.test(plain)) return null;
    if (state === "blank" && plain.trim() === "") return null;
    state = "pass";
    // wrangler lists the bindings before it starts the second config's Worker, which runs in this same process.
    if (plain.includes("env.EMBEDDER (daa-embedder)")) return plain.replace("[not connected]", "[runs in this wrangler dev]");
    if (plain.includes("Unable to fetch the `Request.cf` object")) {
      state = "cf-error";
      return null;
    }
    if (/NOSENTRY SQLite alarm (overdue|handler canceled)/.test(plain)) {
      state = "blank";
      return once("alarm", "[daa] workerd: a Durable Object alarm came due while the mesh was stopped; it runs now or moves to the object's own alarm time (workerd notes \"SQLite alarm overdue\" or \"alarm handler canceled\"): expected after a restart");
    }
    return line;
  };
}
const once = (key, line) => (shown.has(key) ? null : (shown.add(key), line));

// ---- start --------------------------------------------------------------------------------------------------------

/** The state directory wrangler dev will use: `--persist-to <dir>` among its arguments, or its default. */
function persistDir() {
  for (let i = 0; i < wranglerArgs.length; i++) {
    if (wranglerArgs[i] === "--persist-to") return wranglerArgs[i + 1];
    if (wranglerArgs[i].startsWith("--persist-to=")) return wranglerArgs[i].slice("--persist-to=".length);
  }
  return join(root, ".wrangler", "state");
}

// The embedder's model must be in the local R2 bucket before the mesh starts (wrangler dev holds the state open).
{
  const seeded = spawnSync(node, [join(root, "scripts", "seed-models.mjs"), "--persist-to", persistDir()], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  if (seeded.status !== 0) {
    console.error("[daa] putting the embedding model into the local R2 bucket failed; see the output above");
    process.exit(seeded.status ?? 1);
  }
}

async function healthy(deadline) {
  while (Date.now() < deadline && phase === "running") {
    try {
      if ((await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) })).ok) return true;
    } catch {
      // not yet listening
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

// Both Workers in one wrangler dev: the main Worker (the first config: its port) and the embedder behind EMBEDDER.
const configs = ["-c", "wrangler.toml", "-c", join("workers", "embedder", "wrangler.toml")];
run(node, [join(root, "node_modules", "wrangler", "bin", "wrangler.js"), "dev", ...configs, "--ip", "127.0.0.1", ...wranglerArgs], "mesh", meshLines);
const up = await healthy(Date.now() + 90_000);
if (phase !== "running") {
  // a signal came first
} else if (!up) {
  console.error(`the mesh did not answer ${url}/healthz within 90 s`);
  void shutdown(1, "no mesh");
} else {
  if (withAgents) {
    for (const agent of FLEET) {
      run(node, [join(root, "agent", "bin", "daa.mjs"), "agent", "--pool", agent.pool, "--handlers", agent.handlers, "--concurrency", agent.concurrency, "--capabilities", agent.capabilities, "--agent-id", `local-${agent.pool}`], agent.pool);
    }
  }
  console.log(`
  DAA Mesh (local)
  API          ${url}   (OpenAPI: ${url}/openapi.json, dashboard: ${url}/)
  admin key    ${adminKey}   (local only, ${varArg("DAA_ADMIN_KEY") === undefined ? "from .dev.vars" : "from --var"})
  agents       ${withAgents ? FLEET.map((a) => `local-${a.pool} (pool ${a.pool})`).join(", ") : "none (--no-agents)"}
  embedder     daa-embedder behind the EMBEDDER binding; model {"r2Key": "models/hash-embed-384.onnx", "dimensions": 384}
  try          export DAA_URL=${url} DAA_TOKEN=$(grep DAA_ADMIN_KEY .dev.vars | cut -d= -f2)
               npx daa submit content.render --payload '{"template":"Hello {{name}}!","vars":{"name":"mesh"}}' --wait
               npx daa submit neural.classify --payload '{"input":[1,2,3,4,5,6,7,8]}' --wait
  stop         ${withAgents ? "Ctrl-C: the agents finish their tasks and deregister, then the mesh stops (Ctrl-C again: at once)" : "Ctrl-C"}
`);
}
