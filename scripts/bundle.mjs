// Bundles a Worker with wrangler (`wrangler deploy --dry-run --outdir`, what `wrangler deploy` would upload) and
// lists the modules of the bundle. Used by scripts/build.mjs (`npm run build`: both Workers, with their sizes) and
// by vitest.config.ts, which runs the embedder's bundle as an auxiliary Worker of the workerd tests (Miniflare runs
// prebuilt modules only). A bundle goes into a fresh directory that is renamed into place, so concurrent runs in
// the same tree never see half of one.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The Workers of the project: their wrangler configuration and name. */
export const WORKERS = [
  { name: "daa-mesh", config: "wrangler.toml" },
  { name: "daa-embedder", config: "workers/embedder/wrangler.toml" },
];

/** What the embedder's bundle is made of: its sources and the versions of the runtime and the bundler. */
const EMBEDDER_INPUTS = ["workers/embedder", "lib/embed", "contract"];
const EMBEDDER_PACKAGES = ["onnxruntime-web", "wrangler"];

/**
 * Runs wrangler's bundler for one config into a new directory `outdir`. An existing `outdir` is replaced, or, with
 * `keepExisting` (the bundle is named by its inputs, so another run made the same one), kept.
 */
export function bundleWorker(config, outdir, { keepExisting = false } = {}) {
  const temporary = `${outdir}.${process.pid}.tmp`;
  rmSync(temporary, { recursive: true, force: true });
  execFileSync(process.execPath, [join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js"), "deploy", "--dry-run", "-c", config, "--outdir", temporary], {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    stdio: "pipe",
  });
  if (keepExisting && existsSync(outdir)) {
    rmSync(temporary, { recursive: true, force: true });
    return outdir;
  }
  const previous = `${outdir}.${process.pid}.old`;
  if (existsSync(outdir)) renameSync(outdir, previous);
  renameSync(temporary, outdir);
  rmSync(previous, { recursive: true, force: true });
  return outdir;
}

/** The modules wrangler would upload from a bundle directory (source maps and its README excluded). */
export function bundleModules(outdir) {
  return readdirSync(outdir)
    .filter((name) => !name.endsWith(".map") && name !== "README.md" && statSync(join(outdir, name)).isFile())
    .sort((a, b) => (a === "index.js" ? -1 : b === "index.js" ? 1 : a.localeCompare(b)))
    .map((name) => ({ name, path: join(outdir, name), bytes: statSync(join(outdir, name)).size }));
}

/** Sizes as wrangler reports them: the modules concatenated, and that gzipped (zlib's default level). */
export function bundleSize(outdir) {
  const modules = bundleModules(outdir);
  const all = Buffer.concat(modules.map((m) => readFileSync(m.path)));
  return { modules, bytes: all.length, gzipBytes: gzipSync(all).length };
}

function filesUnder(path) {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path).flatMap((name) => filesUnder(join(path, name)));
}

/** A hash of everything the embedder's bundle depends on. */
function embedderInputsHash() {
  const hash = createHash("sha256");
  for (const file of EMBEDDER_INPUTS.flatMap((dir) => filesUnder(join(ROOT, dir))).sort()) {
    hash.update(relative(ROOT, file)).update("\0").update(readFileSync(file)).update("\0");
  }
  for (const name of EMBEDDER_PACKAGES) hash.update(`${name}@${JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version}\0`);
  return hash.digest("hex").slice(0, 16);
}

/**
 * The embedder's bundle for the tests, in build/embedder-<inputs hash>/: built when its sources changed, reused
 * otherwise (a hash over a few small files, no wrangler run). Older bundles are removed.
 */
export function ensureEmbedderBundle() {
  const hash = embedderInputsHash();
  const outdir = join(ROOT, "build", `embedder-${hash}`);
  if (!existsSync(join(outdir, "index.js"))) {
    mkdirSync(join(ROOT, "build"), { recursive: true });
    bundleWorker("workers/embedder/wrangler.toml", outdir, { keepExisting: true });
    for (const name of readdirSync(join(ROOT, "build"))) {
      if (/^embedder-[0-9a-f]{16}$/.test(name) && name !== `embedder-${hash}`) rmSync(join(ROOT, "build", name), { recursive: true, force: true });
    }
  }
  return outdir;
}

/**
 * The embedder as an auxiliary Worker of @cloudflare/vitest-plugin (Miniflare's V4 options): its prebuilt modules,
 * the R2 bucket of workers/embedder/wrangler.toml, the same compatibility date.
 */
export function embedderTestWorker() {
  const outdir = ensureEmbedderBundle();
  const config = readFileSync(join(ROOT, "workers", "embedder", "wrangler.toml"), "utf8");
  const compatibilityDate = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(config)?.[1];
  return {
    name: "daa-embedder",
    modulesRoot: outdir,
    modules: bundleModules(outdir).map((m) => ({ type: m.name.endsWith(".wasm") ? "CompiledWasm" : "ESModule", path: m.path })),
    compatibilityDate,
    r2Buckets: { MODELS: "daa-models" },
  };
}
