#!/usr/bin/env node
// Builds the AssemblyScript modules into build/: `<name>.wasm` (release: what the Worker, the agents and the
// benchmarks load) and `<name>.debug.wasm` (debug: assertions on, for the tests). A module is rebuilt only when a
// file under assembly/ is newer than its output, so the hook before `npm test` / `npm start` costs nothing twice.
//   node scripts/build-wasm.mjs [--force]
// The release target optimizes once at -O3 without asc's `converge` option: converge re-runs Binaryen's optimizer
// until the binary stops shrinking, keeps the last round (printing "Last converge was suboptimal." when that round
// grew, as it did for crdt.wasm), and bought 5 bytes of similarity.wasm and 38 of crdt.wasm with no measurable
// speed (bench:similarity and bench:crdt --quick, interleaved runs, within their noise).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const force = process.argv.includes("--force");

/**
 * The modules. `flags` are added to both targets (the shared options and the two targets live in
 * assembly/asconfig.json); `release` / `debug` to one of them.
 */
export const MODULES = [
  { name: "similarity", entry: "assembly/similarity.ts", flags: ["--runtime", "minimal"], release: [], debug: ["--use", "ASC_RTRACE=1"] },
  { name: "crdt", entry: "assembly/crdt/index.ts", flags: ["--runtime", "minimal", "--maximumMemory", "1024"], release: [], debug: ["--use", "ASC_RTRACE=1"] },
];

function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

const sources = Math.max(newest(join(root, "assembly")), statSync(join(root, "scripts", "build-wasm.mjs")).mtimeMs);
mkdirSync(join(root, "build"), { recursive: true });
const asc = join(root, "node_modules", "assemblyscript", "bin", "asc.js");
let failed = false;
for (const m of MODULES) {
  if (!existsSync(join(root, m.entry))) continue;
  for (const target of ["release", "debug"]) {
    const out = join("build", target === "release" ? `${m.name}.wasm` : `${m.name}.debug.wasm`);
    if (!force && existsSync(join(root, out)) && statSync(join(root, out)).mtimeMs >= sources) continue;
    const args = [asc, m.entry, "--config", "assembly/asconfig.json", "--target", target, "--outFile", out, "--textFile", out.replace(/\.wasm$/, ".wat"), ...m.flags, ...m[target]];
    const res = spawnSync(process.execPath, args, { cwd: root, stdio: "inherit" });
    if (res.status !== 0) {
      console.error(`[daa] asc failed for ${m.entry} (${target})`);
      failed = true;
    } else {
      console.log(`[daa] built ${out}`);
    }
  }
}
process.exit(failed ? 1 : 0);
