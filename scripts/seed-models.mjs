#!/usr/bin/env node
// Puts the generated embedding model (build/embed-model.onnx, written first if missing) into the local R2 bucket
// daa-models that `wrangler dev` gives the embedder Worker, under models/hash-embed-384.onnx. Runs before
// `npm start` and `npm run dev` (scripts/bootstrap.mjs, scripts/start.mjs); skipped when that state directory
// already holds these very bytes (a note beside wrangler's state records what was put).
//   node scripts/seed-models.mjs [--persist-to <dir>]   (default: .wrangler/state, wrangler dev's default)
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { HASH_EMBED_MODEL } from "../lib/embed/hash-model.ts";
import { ROOT } from "./bundle.mjs";
import { ensureEmbedModel } from "./make-embed-model.mjs";

/** The state directory of `wrangler dev` when no --persist-to is given (relative to the project root). */
export const DEFAULT_PERSIST_DIR = join(ROOT, ".wrangler", "state");

/** Seeds `persistDir` with the model; returns whether wrangler had to put it. */
export function seedModels({ persistDir = DEFAULT_PERSIST_DIR, quiet = false } = {}) {
  const dir = resolve(ROOT, persistDir);
  const { path } = ensureEmbedModel({ quiet: true });
  const sha256 = createHash("sha256").update(readFileSync(path)).digest("hex");
  const note = join(dir, "daa-seeded-models.json");
  const seeded = existsSync(note) ? JSON.parse(readFileSync(note, "utf8")) : {};
  if (seeded[HASH_EMBED_MODEL.r2Key] === sha256) return false;
  mkdirSync(dir, { recursive: true });
  execFileSync(
    process.execPath,
    [join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js"), "r2", "object", "put", `daa-models/${HASH_EMBED_MODEL.r2Key}`, "--file", path, "--content-type", "application/octet-stream", "--local", "--persist-to", dir, "-c", "workers/embedder/wrangler.toml"],
    { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: "false" }, stdio: "pipe" },
  );
  writeFileSync(note, `${JSON.stringify({ ...seeded, [HASH_EMBED_MODEL.r2Key]: sha256 }, null, 2)}\n`);
  if (!quiet) console.log(`[daa] put the generated embedding model into the local R2 bucket daa-models/${HASH_EMBED_MODEL.r2Key} (${dir})`);
  return true;
}

const entry = process.argv[1];
if (entry && existsSync(entry) && realpathSync(entry) === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf("--persist-to");
  seedModels({ persistDir: at >= 0 ? process.argv[at + 1] : undefined, quiet: process.argv.includes("--quiet") });
}
