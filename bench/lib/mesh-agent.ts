// One agent process of the dispatch benchmark: the SDK with an in-process no-op handler that notes, for probe
// tasks, how long after the client sent it the task started. Forked with an IPC channel by bench/dispatch.ts.
import { createAgent } from "../../agent/sdk/index.ts";

const [url, token, pool, agentId, concurrency] = process.argv.slice(2) as [string, string, string, string, string];
const delays: number[] = [];
let done = 0;

const agent = createAgent({
  url,
  token,
  pool,
  agentId,
  maxConcurrency: Number(concurrency),
  transport: "websocket",
  log: () => undefined,
  handlers: {
    "bench.noop": async (payload) => {
      const p = payload as { sentAt?: number; probe?: boolean };
      if (p.probe && typeof p.sentAt === "number") delays.push(Date.now() - p.sentAt);
      done++;
      return null;
    },
  },
});

process.on("message", (msg: { cmd: string }) => {
  if (msg.cmd === "report") process.send?.({ delays: delays.splice(0), done });
  if (msg.cmd === "stop") void agent.stop().then(() => process.exit(0));
});
await agent.start();
process.send?.({ ready: true });
