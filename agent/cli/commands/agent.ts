import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createAgent } from "../../sdk/index.ts";
import type { TransportMode } from "../../sdk/types.ts";
import { COMMON_HELP, connection, int, num, poolName, positionals, required, str, UsageError } from "../args.ts";
import type { Command } from "../command.ts";

const TRANSPORTS: readonly TransportMode[] = ["auto", "websocket", "http"];

export const agentCommand: Command = {
  name: "agent",
  summary: "run an agent that processes a pool's tasks with a handlers module",
  help: `usage: daa agent --pool <pool> --handlers <module> [--concurrency n] [--capabilities a,b] [--gpu n]

Registers an agent in <pool> and runs its tasks until SIGINT or SIGTERM; then it takes no more work, finishes
what is in flight, deregisters and exits 0 (a second signal quits at once).

The module's default export maps task types to async functions (payload, context) => result, e.g.
  export default { "images.resize": async (payload, { signal }) => ({ ok: true }) };
A thrown error fails the task; it is retried unless the error has \`retryable: false\`. Handlers run in
worker threads (one per concurrency slot) with a heap limit, so a crash or an out-of-memory fails its task
and the worker is replaced.

  --pool <pool>              the pool to serve (required)
  --handlers <module>        path of the handlers module (required)
  --concurrency <n>          tasks at once, 1-1000 (default 1)
  --capabilities <a,b>       capabilities tasks may require
  --gpu <n>                  GPUs offered to tasks' requires.gpu (default 0)
  --cpu <n>                  CPUs offered (default: the cores of this machine)
  --memory-mb <n>            memory offered in MB (default: this machine's or container's)
  --agent-id <id>            the agent's id (default: <hostname>-<random>)
  --transport <mode>         auto (default: WebSocket, else HTTP long polling), websocket or http
  --task-timeout-ms <ms>     time limit per task (default: the task's timeoutMs)
  --memory-limit-mb <n>      heap limit of each worker thread (default 256)

${COMMON_HELP}
`,
  options: {
    pool: { type: "string" },
    handlers: { type: "string" },
    concurrency: { type: "string" },
    capabilities: { type: "string" },
    gpu: { type: "string" },
    cpu: { type: "string" },
    "memory-mb": { type: "string" },
    "agent-id": { type: "string" },
    transport: { type: "string" },
    "task-timeout-ms": { type: "string" },
    "memory-limit-mb": { type: "string" },
  },
  async run(parsed, io) {
    positionals(parsed, []);
    const { values } = parsed;
    const pool = poolName(required(values, "pool"));
    const handlersPath = resolve(io.cwd, required(values, "handlers"));
    if (!existsSync(handlersPath)) throw new UsageError(`--handlers: no such file ${handlersPath}`);
    const transport = str(values, "transport") ?? "auto";
    if (!isTransport(transport)) throw new UsageError(`--transport must be one of ${TRANSPORTS.join(", ")}, not ${JSON.stringify(transport)}`);
    const capabilities = (str(values, "capabilities") ?? "").split(",").map((c) => c.trim()).filter((c) => c !== "");
    const agentId = str(values, "agent-id");
    if (agentId !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/.test(agentId)) throw new UsageError(`--agent-id ${JSON.stringify(agentId)} is not an agent id: letters, digits, _ . : -, at most 128`);
    const resources = {
      ...optional("gpu", int(values, "gpu", 0, 1024)),
      ...optional("cpu", num(values, "cpu", 0, 1_000_000)),
      ...optional("memoryMb", int(values, "memory-mb", 0, 1_000_000_000)),
    };
    const maxConcurrency = int(values, "concurrency", 1, 1000) ?? 1;
    const taskTimeoutMs = int(values, "task-timeout-ms", 1, 86_400_000);
    const memoryLimitMb = int(values, "memory-limit-mb", 8, 1_000_000);
    const { url, token } = connection(values, io);

    const agent = createAgent({
      url,
      token,
      pool,
      agentId,
      capabilities,
      resources,
      maxConcurrency,
      handlers: pathToFileURL(handlersPath),
      transport,
      taskTimeoutMs,
      memoryLimitMb,
      log: (line) => io.err(`${new Date().toISOString()} ${line}\n`),
    });
    let forced: (code: number) => void = () => {};
    const quit = new Promise<number>((r) => (forced = r));
    let signals = 0;
    const unsubscribe = io.onSignal((signal) => {
      signals++;
      if (signals === 1) {
        io.err(`${new Date().toISOString()} ${signal}: finishing the tasks in flight, then leaving (${signal} again quits at once)\n`);
        void agent.stop();
      } else {
        io.err(`${new Date().toISOString()} ${signal} again: quitting without waiting for the tasks in flight\n`);
        forced(130);
      }
    });
    try {
      await agent.start();
      return await Promise.race([agent.closed.then(() => 0), quit]);
    } finally {
      unsubscribe();
    }
  },
};

function isTransport(value: string): value is TransportMode {
  return (TRANSPORTS as readonly string[]).includes(value);
}

/** `{ [key]: value }` when the option was given, `{}` otherwise (so defaults apply). */
function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Partial<Record<K, V>>);
}
