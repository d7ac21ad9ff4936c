#!/usr/bin/env node
// Prepares a clone for `npm start`, `npm run dev`, `npm test` and `npm run build`, using only Node built-ins
// so it runs on whatever Node the machine has: installs the locked dependencies when they are missing or older
// than package-lock.json (they include Node 22, which npm scripts then find first on PATH), checks that Node,
// and writes .dev.vars with random local-only secrets when it does not exist.
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const at = (...parts) => join(root, ...parts);
const quiet = process.argv.includes("--quiet");
const say = (msg) => quiet || console.log(`[daa] ${msg}`);

/**
 * Whether `npm ci` is needed: some dependency of package.json is missing from node_modules or installed at
 * another version than the exact one pinned (every version in package.json is exact).
 */
function dependenciesStale() {
  if (!existsSync(at("node_modules", ".bin", "wrangler"))) return true;
  const pkg = JSON.parse(readFileSync(at("package.json"), "utf8"));
  for (const [name, version] of Object.entries({ ...pkg.dependencies, ...pkg.devDependencies })) {
    const manifest = at("node_modules", ...name.split("/"), "package.json");
    if (!existsSync(manifest)) return true;
    if (JSON.parse(readFileSync(manifest, "utf8")).version !== version) return true;
  }
  return false;
}

if (dependenciesStale()) {
  say("installing dependencies (npm ci) ...");
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const res = spawnSync(npm, ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: root, stdio: "inherit" });
  if (res.status !== 0) {
    console.error("[daa] npm ci failed; see the output above");
    process.exit(res.status ?? 1);
  }
}

const node22 = at("node_modules", ".bin", process.platform === "win32" ? "node.cmd" : "node");
const version = execFileSync(existsSync(node22) ? node22 : process.execPath, ["--version"], { encoding: "utf8" }).trim();
const [major, minor] = version.slice(1).split(".").map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  console.error(`[daa] Node ${version} is too old: wrangler needs >= 22.12 (the "node" devDependency provides it; run npm ci)`);
  process.exit(1);
}

const devVars = at(".dev.vars");
if (!existsSync(devVars)) {
  const secret = () => randomBytes(24).toString("base64url");
  writeFileSync(
    devVars,
    [
      "# Local-only secrets written by scripts/bootstrap.mjs (see .dev.vars.example). Not for production.",
      `DAA_ADMIN_KEY=${secret()}`,
      `DAA_MASTER_KEY=${secret()}`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  say("wrote .dev.vars with random local-only secrets");
}

// The neural agents of the local fleet load this model. It is committed; this regenerates it (same bytes) if missing.
if (!existsSync(at("agent", "fleet", "models", "tiny-mlp.onnx"))) {
  const res = spawnSync(existsSync(node22) ? node22 : process.execPath, [at("scripts", "generate-model.ts")], {
    cwd: root,
    stdio: quiet ? ["ignore", "ignore", "inherit"] : "inherit",
  });
  if (res.status !== 0) {
    console.error("[daa] generating agent/fleet/models/tiny-mlp.onnx failed; see the output above");
    process.exit(res.status ?? 1);
  }
}

// The Worker, the agents and the benchmarks load the AssemblyScript modules from build/ (rebuilt only when changed).
{
  const res = spawnSync(existsSync(node22) ? node22 : process.execPath, [at("scripts", "build-wasm.mjs")], {
    cwd: root,
    stdio: quiet ? ["ignore", "ignore", "inherit"] : "inherit",
  });
  if (res.status !== 0) {
    console.error("[daa] building the WebAssembly modules failed; see the output above");
    process.exit(res.status ?? 1);
  }
}
