#!/usr/bin/env node
// `npm run build`: bundles every Worker of the project offline, as `wrangler deploy` would upload it
// (`wrangler deploy --dry-run`), into dist/<worker>/, and prints each bundle's size against Cloudflare's limit on
// a Worker's compressed size: 10 MB (MiB, as wrangler counts) on the paid plan (3 MB on the free one). Every module
// counts, .wasm included; the size is that of all modules concatenated and gzipped, which is how wrangler reports
// "Total Upload". Exits 1 when a bundle is over the limit.
//   node scripts/build.mjs [--json]
import { join, relative } from "node:path";

import { bundleSize, bundleWorker, ROOT, WORKERS } from "./bundle.mjs";

const LIMIT_BYTES = 10 * 1024 * 1024;
const FREE_PLAN_BYTES = 3 * 1024 * 1024;

const mib = (bytes) => `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
const size = (bytes) => (bytes >= 1024 * 1024 ? mib(bytes) : kib(bytes));

const rows = [];
for (const worker of WORKERS) {
  const outdir = join(ROOT, "dist", worker.name);
  const started = Date.now();
  try {
    bundleWorker(worker.config, outdir);
  } catch (err) {
    console.error(`[daa] bundling ${worker.name} (${worker.config}) failed:\n${err.stderr?.toString() ?? err}`);
    process.exit(1);
  }
  rows.push({ worker: worker.name, outdir: relative(ROOT, outdir), ms: Date.now() - started, ...bundleSize(outdir) });
}

if (process.argv.includes("--json")) {
  console.log(JSON.stringify(rows.map(({ worker, outdir, bytes, gzipBytes, modules }) => ({ worker, outdir, bytes, gzipBytes, limitBytes: LIMIT_BYTES, modules: modules.map((m) => ({ name: m.name, bytes: m.bytes })) }))));
} else {
  const table = [["worker", "bundle", "modules", "size", "gzip", "of the 10 MB limit"]];
  for (const r of rows) table.push([r.worker, r.outdir, String(r.modules.length), size(r.bytes), size(r.gzipBytes), `${((100 * r.gzipBytes) / LIMIT_BYTES).toFixed(1)}%`]);
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  for (const [i, row] of table.entries()) {
    console.log(row.map((cell, c) => (c >= 3 ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join("  "));
    if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
  }
  for (const r of rows) {
    console.log(`\n${r.worker}: ${r.modules.map((m) => `${m.name.replace(/^[0-9a-f]{40}-/, "")} ${size(m.bytes)}`).join(", ")}`);
  }
  const overFree = rows.filter((r) => r.gzipBytes > FREE_PLAN_BYTES).map((r) => r.worker);
  if (overFree.length > 0) console.log(`\nover the free plan's 3 MB: ${overFree.join(", ")} (deploying it needs the paid plan)`);
}

const over = rows.filter((r) => r.gzipBytes > LIMIT_BYTES);
if (over.length > 0) {
  console.error(`[daa] over the 10 MB compressed limit: ${over.map((r) => `${r.worker} (${mib(r.gzipBytes)})`).join(", ")}`);
  process.exit(1);
}
