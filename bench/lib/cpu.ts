// CPU time of processes on Linux, from /proc (zeros elsewhere): a process tree by role, and the whole machine.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

let clockTicks = 100;
try {
  clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
} catch {
  // keep 100
}

interface ProcStat {
  pid: number;
  ppid: number;
  comm: string;
  cpuMs: number;
}

export function readProcStat(pid: number): ProcStat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = text.lastIndexOf(")");
    const comm = text.slice(text.indexOf("(") + 1, close);
    const fields = text.slice(close + 2).split(" ");
    // fields[0] is field 3 (state); ppid is field 4, utime 14, stime 15
    const ppid = Number(fields[1]);
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { pid, ppid, comm, cpuMs: (ticks * 1000) / clockTicks };
  } catch {
    return null;
  }
}

/** Which part of the dev server a process is: wrangler's Node processes, esbuild, or one of the two workerds. */
function roleOf(s: ProcStat, port: string): string {
  if (s.comm === "esbuild") return "esbuild";
  if (s.comm !== "workerd") return "wrangler";
  // wrangler dev runs two workerd processes: a proxy worker on the port clients use, which forwards every
  // request to the second one, where the mesh (Worker and Durable Objects) runs on a port of its own.
  let cmdline = "";
  try {
    cmdline = readFileSync(`/proc/${s.pid}/cmdline`, "utf8");
  } catch {
    // gone
  }
  return cmdline.includes(`entry=127.0.0.1:${port}`) ? "workerd-proxy" : "workerd-mesh";
}

/** CPU milliseconds used so far by the server's process tree, by role, and the process ids of its workerds. */
export function serverCpu(rootPid: number | undefined, port: string): { cpu: Map<string, number>; workerds: string } {
  const out = new Map<string, number>();
  const workerds: string[] = [];
  if (rootPid === undefined) return { cpu: out, workerds: "" };
  let all: ProcStat[];
  try {
    all = readdirSync("/proc")
      .filter((d) => /^\d+$/.test(d))
      .map((d) => readProcStat(Number(d)))
      .filter((s): s is ProcStat => s !== null);
  } catch {
    return { cpu: out, workerds: "" };
  }
  const children = new Map<number, ProcStat[]>();
  for (const s of all) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s]);
  const root = all.find((s) => s.pid === rootPid);
  const stack = root ? [root] : [];
  while (stack.length > 0) {
    const s = stack.pop()!;
    const role = roleOf(s, port);
    out.set(role, (out.get(role) ?? 0) + s.cpuMs);
    if (s.comm === "workerd") workerds.push(`${role}:${s.pid}`);
    stack.push(...(children.get(s.pid) ?? []));
  }
  return { cpu: out, workerds: workerds.sort().join(" ") };
}

/** CPU milliseconds the whole machine has been busy (all cores), or NaN off Linux. */
export function machineBusyMs(): number {
  try {
    const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
    return ((user + nice + system + irq + softirq + steal) * 1000) / clockTicks;
  } catch {
    return NaN;
  }
}

/** CPU milliseconds used so far by these processes together (those that ended count nothing). */
export function processesCpu(pids: readonly (number | undefined)[]): number {
  return pids.reduce<number>((sum, pid) => sum + (pid === undefined ? 0 : (readProcStat(pid)?.cpuMs ?? 0)), 0);
}
