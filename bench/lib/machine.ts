// What the benchmarks record of the machine and the code they measured.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, release } from "node:os";
import { join } from "node:path";
import { ROOT } from "../../scripts/dev-server.ts";

/** The CPU's model name (from /proc/cpuinfo on Linux, else what os.cpus() says). */
export function cpuModel(): string {
  let cpu = cpus()[0]?.model ?? "unknown";
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("model name"));
    if (line) cpu = line.split(":").slice(1).join(":").trim();
  } catch {
    // not Linux: keep what os.cpus() said
  }
  return cpu;
}

/** The operating system, e.g. "Debian GNU/Linux 12 (bookworm) (kernel 6.1.0)". */
export function osName(): string {
  let os = `${process.platform} ${release()}`;
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1];
    if (pretty) os = `${pretty} (kernel ${release()})`;
  } catch {
    // no os-release
  }
  return os;
}

/** The installed version of a dependency, or "unknown". */
export function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

/** The commit measured, with "+dirty" when these paths differ from it in the work tree; "unknown" outside git. */
export function commitOf(paths: readonly string[]): string {
  try {
    const git = (...args: string[]) => execFileSync("git", args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const dirty = git("status", "--porcelain", "--", ...paths) !== "";
    return `${git("rev-parse", "--short", "HEAD")}${dirty ? "+dirty" : ""}`;
  } catch {
    return "unknown";
  }
}
