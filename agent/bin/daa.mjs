#!/usr/bin/env node
// `daa`, the package's bin. The CLI is TypeScript (../cli.ts), which Node runs natively from 22.18 (type
// stripping). On an older Node this launcher runs the CLI with the Node 22 that `npm ci` puts into the
// repository's node_modules (the "node" devDependency), or with --experimental-strip-types on 22.12-22.17.
// Plain JavaScript, so that any Node can start it.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { constants } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, "..", "cli.ts");
const [major, minor] = process.versions.node.split(".").map(Number);
const recent = major > 22 || (major === 22 && minor >= 12);

if (recent && process.features.typescript) {
  await import(pathToFileURL(cli).href);
} else {
  let node = process.execPath;
  let flags = ["--experimental-strip-types", "--disable-warning=ExperimentalWarning"];
  if (!recent) {
    node = join(here, "..", "..", "node_modules", ".bin", process.platform === "win32" ? "node.cmd" : "node");
    flags = [];
    if (!existsSync(node)) {
      console.error(`daa needs Node >= 22.12 (this is ${process.version}); run \`npm ci\` in the repository to get it into node_modules`);
      process.exit(1);
    }
  }
  // The child gets its own process group so a terminal's Ctrl-C reaches it once, through the forwarding below,
  // not twice (a second signal makes \`daa agent\` quit without draining).
  const child = spawn(node, [...flags, cli, ...process.argv.slice(2)], { stdio: "inherit", detached: process.platform !== "win32" });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 0)));
  child.on("error", (err) => {
    console.error(`daa: cannot start ${node}: ${err.message}`);
    process.exit(1);
  });
}
