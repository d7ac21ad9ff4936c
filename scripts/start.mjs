#!/usr/bin/env node
// `npm start`: runs the mesh locally (wrangler dev, state kept in .wrangler/state) and prints how to reach it.
// Extra arguments go to wrangler dev, e.g. `npm start -- --port 9000`.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const portArg = args.indexOf("--port");
const port = portArg >= 0 ? args[portArg + 1] : "8787";
if (portArg < 0) args.push("--port", port);
const adminKey = /^DAA_ADMIN_KEY=(.*)$/m.exec(readFileSync(join(root, ".dev.vars"), "utf8"))?.[1]?.trim();

console.log(`
  DAA Mesh (local)
  API          http://127.0.0.1:${port}   (OpenAPI: /openapi.json, dashboard: /)
  admin key    ${adminKey}   (local only, from .dev.vars)
  try          curl -s -H "Authorization: Bearer $(grep DAA_ADMIN_KEY .dev.vars | cut -d= -f2)" http://127.0.0.1:${port}/v1/pools
`);

const wrangler = spawn(join(root, "node_modules", ".bin", "wrangler"), ["dev", "--ip", "127.0.0.1", ...args], { cwd: root, stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => wrangler.kill(signal));
wrangler.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
