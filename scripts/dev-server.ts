// Starts the mesh under `wrangler dev` on a free port for Node-side tests and benchmarks, and stops it again.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

export interface DevServer {
  url: string;
  adminKey: string;
  /** DAA_MASTER_KEY of this process: a restart on the same persistDir needs it to open the stored payloads. */
  masterKey: string;
  persistDir: string;
  process: ChildProcess;
  /** Everything wrangler printed, for diagnosing a failed start. */
  output: () => string;
  stop: () => Promise<void>;
}

export interface DevServerOptions {
  port?: number;
  /** Keep state here (and across restarts); a fresh temporary directory by default. */
  persistDir?: string;
  adminKey?: string;
  masterKey?: string;
  startTimeoutMs?: number;
  /** More arguments for wrangler dev, e.g. `--inspector-port 9229` to profile. */
  extraArgs?: string[];
  /**
   * Run the edge embedder (workers/embedder/) too, behind the EMBEDDER binding, with the generated model in its local
   * R2 bucket (models/hash-embed-384.onnx). Off by default: about 1 s more to start, and 1.5 s to put the model
   * into a fresh state directory; without it, calls through EMBEDDER fail.
   */
  embedder?: boolean;
}

/** A TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  // A free port can be taken by another process between the probe and wrangler's bind: try another one.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      if (options.port !== undefined || attempt >= 3 || !String(err).includes("Address already in use")) throw err;
    }
  }
}

async function startOnce({ port, persistDir, adminKey, masterKey, startTimeoutMs = 90_000, extraArgs = [], embedder = false }: DevServerOptions): Promise<DevServer> {
  const chosenPort = port ?? (await freePort());
  const ownDir = persistDir === undefined;
  const dir = persistDir ?? mkdtempSync(join(tmpdir(), "daa-mesh-"));
  const key = adminKey ?? randomBytes(18).toString("base64url");
  const master = masterKey ?? randomBytes(18).toString("base64url");
  if (embedder) {
    const seeded = spawnSync(process.execPath, [join(ROOT, "scripts", "seed-models.mjs"), "--quiet", "--persist-to", dir], { cwd: ROOT, encoding: "utf8" });
    if (seeded.status !== 0) {
      if (ownDir) rmSync(dir, { recursive: true, force: true });
      throw new Error(`putting the embedding model into ${dir} failed:\n${seeded.stderr}`);
    }
  }
  const args = [
    "dev",
    ...(embedder ? ["-c", "wrangler.toml", "-c", join("workers", "embedder", "wrangler.toml")] : []),
    "--ip", "127.0.0.1",
    "--port", String(chosenPort),
    "--persist-to", dir,
    "--var", `DAA_ADMIN_KEY:${key}`,
    "--var", `DAA_MASTER_KEY:${master}`,
    "--show-interactive-dev-session=false",
    "--log-level", "warn",
    ...extraArgs,
  ];
  // Run wrangler with this Node (22, from node_modules), not whatever `node` comes first on PATH.
  const child = spawn(process.execPath, [join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js"), ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PATH: `${join(ROOT, "node_modules", ".bin")}:${process.env.PATH ?? ""}`, WRANGLER_SEND_METRICS: "false", CI: "1" },
    detached: process.platform !== "win32",
  });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const url = `http://127.0.0.1:${chosenPort}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      killTree(child, "SIGTERM");
      const timer = setTimeout(() => killTree(child, "SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      if (ownDir) rmSync(dir, { recursive: true, force: true });
      throw new Error(`wrangler dev exited with ${child.exitCode}:\n${output}`);
    }
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler dev did not answer /healthz within ${startTimeoutMs} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, adminKey: key, masterKey: master, persistDir: dir, process: child, output: () => output, stop };
}

/** wrangler starts workerd as a child; signalling the process group takes both down. */
function killTree(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined && process.platform !== "win32") process.kill(-child.pid, signal);
    else child.kill(signal);
  } catch {
    child.kill(signal);
  }
}
