#!/usr/bin/env node
// `npm run check:contract`: the OpenAPI document and the running mesh, checked with the third-party tools a new
// user reaches for (not part of `npm test`: they need their own install, and Prism 5.16 needs Node 24):
//   - Stoplight Prism 5.16 as a validating proxy (`--errors`: any request or answer that breaks the document
//     becomes an error), with the typed-client program that calls every route (test/node/client-program.ts)
//     sent through it, and ids that do not parse (the contract says 404, a proxy must not say 422);
//   - Portman 1.33 + Newman 6.2: a contract test per operation generated from the document (status, content type,
//     JSON body, schema, headers), run against the mesh (test/contract/portman.mjs).
// The tools are installed once, at pinned versions, into .cache/contract-tools (from the npm registry).
// The last line printed is one JSON object; the exit status is 0 only when no tool reported anything.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, ROOT, startDevServer } from "./dev-server.ts";
import { createMeshApi } from "../agent/client/index.ts";
import { everyRoute, expectedStatus } from "../test/node/client-program.ts";
import { portmanConfig } from "../test/contract/portman.mjs";

const TOOLS = { node: "24.21.0", "@stoplight/prism-cli": "5.16.0", "@apideck/portman": "1.33.0", newman: "6.2.2" };
const dir = join(ROOT, ".cache", "contract-tools");
const bin = (name) => join(dir, "node_modules", ".bin", name);

function install() {
  const pkg = join(dir, "package.json");
  const wanted = JSON.stringify({ private: true, dependencies: TOOLS });
  if (existsSync(pkg) && readFileSync(pkg, "utf8") === wanted && existsSync(bin("portman"))) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(pkg, wanted);
  console.log(`installing ${Object.entries(TOOLS).map(([n, v]) => `${n}@${v}`).join(", ")} into ${dir} ...`);
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: dir, stdio: "inherit" });
}

async function waitFor(url, deadline) {
  while (Date.now() < deadline) {
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`${url} did not answer`);
}

install();
const server = await startDevServer();
const work = mkdtempSync(join(tmpdir(), "daa-contract-"));
const report = { prism: { requests: 0, problems: [] }, portman: { requests: 0, assertions: 0, failed: 0 } };
let prism;
try {
  const document = join(work, "openapi.json");
  writeFileSync(document, await (await fetch(`${server.url}/openapi.json`)).text());

  // Prism: a validating proxy in front of the mesh.
  const port = await freePort();
  prism = spawn(bin("node"), [join(dir, "node_modules", "@stoplight", "prism-cli", "dist", "index.js"), "proxy", document, server.url, "--port", String(port), "--errors"], { stdio: ["ignore", "pipe", "pipe"] });
  let prismLog = "";
  prism.stdout.on("data", (c) => (prismLog += c));
  prism.stderr.on("data", (c) => (prismLog += c));
  const proxy = `http://127.0.0.1:${port}`;
  await waitFor(`${proxy}/healthz`, Date.now() + 60_000);
  const steps = await everyRoute(createMeshApi({ url: proxy, token: server.adminKey }), { pool: "contract-prism", tenant: "contract-prism" });
  for (const s of steps) if (s.status !== expectedStatus(s.route)) report.prism.problems.push(`${s.route}: ${s.status} through the proxy`);
  for (const path of ["/v1/tasks/not-a-task-id", "/v1/pools/NOT_A_POOL/config", "/v1/pools/p/agents/%20/heartbeat"]) {
    const res = await fetch(`${proxy}${path}`, { method: path.endsWith("heartbeat") ? "POST" : "GET", headers: { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" }, body: path.endsWith("heartbeat") ? "{}" : undefined });
    if (res.status !== 404) report.prism.problems.push(`${path}: ${res.status} through the proxy, the contract says 404`);
  }
  report.prism.requests = steps.length + 3;
  for (const line of prismLog.split("\n")) if (/violation|✖/i.test(line) && !/Request terminated with error: FetchError/.test(line)) report.prism.problems.push(line.replace(/\x1b\[[0-9;]*m/g, "").trim());

  // Portman + Newman: contract tests generated from the document, run against the mesh itself.
  const config = join(work, "portman.json");
  writeFileSync(config, JSON.stringify(portmanConfig({ pool: "contract-portman", tenant: "contract-portman" })));
  writeFileSync(join(work, ".env"), `PORTMAN_BEARER_TOKEN=${server.adminKey}\n`);
  let out = "";
  try {
    out = execFileSync(bin("node"), [bin("portman"), "-l", document, "-b", server.url, "-c", config, "-o", join(work, "collection.json"), "--envFile", join(work, ".env"), "--runNewman"], { cwd: work, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    out = `${err.stdout ?? ""}${err.stderr ?? ""}`;
  }
  const row = (name) => /│\s+(\d+)\s+│\s+(\d+)\s+│/.exec(out.split("\n").find((l) => l.includes(` ${name} │`)) ?? "")?.slice(1).map(Number) ?? [0, 0];
  const [requests] = row("requests");
  const [assertions, failed] = row("assertions");
  report.portman = { requests, assertions, failed };
  if (failed > 0 || requests === 0) console.log(out);
} finally {
  prism?.kill();
  await server.stop();
  rmSync(work, { recursive: true, force: true });
}
const clean = report.prism.problems.length === 0 && report.portman.failed === 0 && report.portman.requests > 0;
for (const p of report.prism.problems) console.log(`prism: ${p}`);
console.log(`prism: ${report.prism.requests} requests through the validating proxy, ${report.prism.problems.length} problems; portman + newman: ${report.portman.requests} requests, ${report.portman.assertions} assertions, ${report.portman.failed} failed`);
console.log(JSON.stringify({ check: "contract", ok: clean, ...report }));
process.exit(clean ? 0 : 1);
