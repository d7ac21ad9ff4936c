#!/usr/bin/env node
// `npm start`: runs the mesh locally (wrangler dev, state kept in .wrangler/state) and a small local fleet:
// a content agent (template rendering, SEO) and a neural agent (a tiny ONNX model through onnxruntime-web),
// both connected over WebSocket with the bootstrap key. Extra arguments go to wrangler dev, e.g.
// `npm start -- --port 9000`; `--no-agents` runs the mesh alone.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const withAgents = !args.includes("--no-agents");
const wranglerArgs = args.filter((a) => a !== "--no-agents");
const portArg = wranglerArgs.indexOf("--port");
const port = portArg >= 0 ? wranglerArgs[portArg + 1] : "8787";
if (portArg < 0) wranglerArgs.push("--port", port);
const adminKey = /^DAA_ADMIN_KEY=(.*)$/m.exec(readFileSync(join(root, ".dev.vars"), "utf8"))?.[1]?.trim() ?? "";
const url = `http://127.0.0.1:${port}`;

/** The local fleet: one agent per pool, handlers from agent/fleet. */
const FLEET = [
  { pool: "content", handlers: "agent/fleet/content.ts", concurrency: "4", capabilities: "templates,seo" },
  { pool: "neural", handlers: "agent/fleet/neural.ts", concurrency: "2", capabilities: "onnx,cpu" },
];

const children = [];
let stopping = false;

function run(command, commandArgs, name) {
  const child = spawn(command, commandArgs, { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, DAA_URL: url, DAA_TOKEN: adminKey } });
  const prefix = (line) => (name ? `[${name}] ${line}` : line);
  for (const stream of [child.stdout, child.stderr]) {
    let buffered = "";
    stream.on("data", (chunk) => {
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) console.log(prefix(line));
    });
  }
  child.on("exit", (code, signal) => {
    if (!stopping) console.log(prefix(`exited (${signal ?? code})`));
    if (!name && !stopping) shutdown(code ?? 1);
  });
  children.push(child);
  return child;
}

async function healthy(deadline) {
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return true;
    } catch {
      // not yet listening
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

function shutdown(code) {
  if (stopping) return;
  stopping = true;
  // Agents first (they drain and deregister on SIGTERM), then the mesh.
  const [mesh, ...agents] = children;
  for (const agent of agents) agent.kill("SIGTERM");
  setTimeout(() => mesh?.kill("SIGTERM"), agents.length > 0 ? 3000 : 0);
  setTimeout(() => process.exit(code), agents.length > 0 ? 5000 : 1000);
}

for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => shutdown(0));

run(process.execPath, [join(root, "node_modules", "wrangler", "bin", "wrangler.js"), "dev", "--ip", "127.0.0.1", ...wranglerArgs]);
if (!(await healthy(Date.now() + 90_000))) {
  console.error(`the mesh did not answer ${url}/healthz within 90 s`);
  shutdown(1);
} else {
  if (withAgents) {
    for (const agent of FLEET) {
      run(process.execPath, [join(root, "agent", "bin", "daa.mjs"), "agent", "--pool", agent.pool, "--handlers", agent.handlers, "--concurrency", agent.concurrency, "--capabilities", agent.capabilities, "--agent-id", `local-${agent.pool}`], agent.pool);
    }
  }
  console.log(`
  DAA Mesh (local)
  API          ${url}   (OpenAPI: ${url}/openapi.json, dashboard: ${url}/)
  admin key    ${adminKey}   (local only, from .dev.vars)
  agents       ${withAgents ? FLEET.map((a) => `local-${a.pool} (pool ${a.pool})`).join(", ") : "none (--no-agents)"}
  try          export DAA_URL=${url} DAA_TOKEN=$(grep DAA_ADMIN_KEY .dev.vars | cut -d= -f2)
               npx daa submit content.render --payload '{"template":"Hello {{name}}!","vars":{"name":"mesh"}}' --wait
               npx daa submit neural.classify --payload '{"input":[1,2,3,4,5,6,7,8]}' --wait
`);
}
