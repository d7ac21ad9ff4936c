// Profiles the mesh's workerd isolate (Worker and Durable Objects) under a load, through the DevTools inspector
// that wrangler dev exposes, and prints where the CPU time went: self time per function, top entries.
//   node scripts/profile-mesh.ts [--tasks N] [--agents A] [--concurrency C] [--shards S] [--out file.cpuprofile]
import { fork, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { freePort, ROOT, startDevServer } from "./dev-server.ts";

const { values } = parseArgs({ options: { tasks: { type: "string", default: "6000" }, agents: { type: "string", default: "2" }, concurrency: { type: "string", default: "100" }, out: { type: "string" }, batch: { type: "string", default: "500" }, shards: { type: "string", default: "1" } } });
const TASKS = Number(values.tasks);
const inspectorPort = await freePort();
const server = await startDevServer({ extraArgs: ["--inspector-port", String(inspectorPort)] });
const children: ChildProcess[] = [];

interface Target { webSocketDebuggerUrl?: string; title?: string; url?: string }
const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as Target[];
console.log("inspector targets:", targets.map((t) => t.title ?? t.url).join(", "));
const target = targets.find((t) => t.webSocketDebuggerUrl)!;
// The inspector proxy of wrangler dev wants an Origin it knows (Node's WebSocket takes headers as undici's extension).
const ws = new WebSocket(target.webSocketDebuggerUrl!, { headers: { origin: "http://localhost" } } as unknown as string[]);
await new Promise((r) => ws.addEventListener("open", r, { once: true }));
let nextId = 1;
const pending = new Map<number, (v: any) => void>();
ws.addEventListener("message", (e) => {
  const msg = JSON.parse(String(e.data));
  // workerd answers some commands by echoing them (without "result"): any message with the id settles it.
  if (msg.id && pending.has(msg.id)) {
    pending.get(msg.id)!(msg.result);
    pending.delete(msg.id);
  }
});
const send = (method: string, params: object = {}) =>
  new Promise<any>((resolve) => {
    const id = nextId++;
    pending.set(id, resolve);
    ws.send(JSON.stringify({ id, method, params }));
  });

const call = async (method: string, path: string, body?: unknown): Promise<any> => {
  const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
};

const pool = "profile";
await call("PUT", `/v1/pools/${pool}/config`, { heartbeatIntervalMs: 10_000 });
for (let i = 1; i < Number(values.shards); i++) await call("POST", `/v1/pools/${pool}/shards`, {});
for (let i = 0; i < Number(values.agents); i++) {
  const child = fork(join(ROOT, "bench", "lib", "mesh-agent.ts"), [server.url, server.adminKey, pool, `p-${i}`, values.concurrency!], { execPath: process.execPath, stdio: ["ignore", "ignore", "inherit", "ipc"] });
  children.push(child);
  await new Promise((r) => child.once("message", r));
}
await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: 200 });
await send("Profiler.start");
const started = performance.now();
const BATCH = Number(values.batch);
const todo = Array.from({ length: Math.ceil(TASKS / BATCH) }, (_, i) => Math.min(BATCH, TASKS - i * BATCH));
await Promise.all(Array.from({ length: 4 }, async () => {
  for (let n = todo.pop(); n !== undefined; n = todo.pop()) await call("POST", "/v1/tasks/batch", { tasks: Array.from({ length: n }, () => ({ type: "bench.noop", pool, payload: {} })) });
}));
// Done is counted by the agents themselves, so the check does not depend on the mesh's own counters.
const handled = async (): Promise<number> =>
  (await Promise.all(children.map((c) => new Promise<number>((resolve) => {
    c.once("message", (m) => resolve((m as { done: number }).done));
    c.send({ cmd: "report" });
  })))).reduce((a, b) => a + b, 0);
while ((await handled()) < TASKS) await new Promise((r) => setTimeout(r, 100));
const seconds = (performance.now() - started) / 1000;
const { profile } = await send("Profiler.stop");
if (values.out) writeFileSync(values.out, JSON.stringify(profile));
console.log(`${TASKS} tasks in ${seconds.toFixed(2)} s = ${Math.round(TASKS / seconds)} tasks/s`);

// Self time per function (samples x interval), and time per file.
const intervalUs = (profile.endTime - profile.startTime) / Math.max(1, profile.samples.length);
const byNode = new Map<number, any>(profile.nodes.map((n: any) => [n.id, n]));
const self = new Map<string, number>();
const byFile = new Map<string, number>();
const counts = new Map<number, number>();
for (const id of profile.samples as number[]) counts.set(id, (counts.get(id) ?? 0) + 1);
let total = 0;
for (const [id, n] of counts) {
  const node = byNode.get(id);
  const cf = node.callFrame;
  const file = (cf.url || "(native)").replace(/^.*\/(?=[^/]+\/[^/]+$)/, "");
  const key = `${cf.functionName || "(anonymous)"}  ${file}:${cf.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + n);
  byFile.set(file, (byFile.get(file) ?? 0) + n);
  total += n;
}
const idleKeys = ["(idle)", "(program)", "(garbage collector)"];
const show = (m: Map<string, number>, k: number) =>
  [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, k).forEach(([name, n]) => console.log(`${((n / total) * 100).toFixed(1).padStart(5)}%  ${((n * intervalUs) / 1000 / TASKS * 1000).toFixed(1).padStart(6)} us/task  ${name}`));
console.log(`\nsamples ${total}, ${idleKeys.map((k) => `${k} ${(([...self.entries()].filter(([n]) => n.startsWith(k)).reduce((a, [, v]) => a + v, 0) / total) * 100).toFixed(1)}%`).join(", ")}`);
console.log("\nself time by function:");
show(self, 40);
// Native SQL time (exec, toArray, one, next) charged to the function that ran the statement.
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const sqlByCaller = new Map<string, number>();
for (const [id, n] of counts) {
  const cf = byNode.get(id).callFrame;
  if (cf.url || !["exec", "toArray", "one", "next"].includes(cf.functionName)) continue;
  let p = parent.get(id);
  while (p !== undefined && !byNode.get(p).callFrame.url) p = parent.get(p);
  const caller = p === undefined ? "(unknown)" : `${byNode.get(p).callFrame.functionName || "(anonymous)"}:${byNode.get(p).callFrame.lineNumber + 1}`;
  sqlByCaller.set(caller, (sqlByCaller.get(caller) ?? 0) + n);
}
console.log("\nSQL time by caller:");
show(sqlByCaller, 15);
console.log("\nself time by file:");
show(byFile, 20);
ws.close();
for (const c of children) c.kill("SIGKILL");
await server.stop();
process.exit(0);
