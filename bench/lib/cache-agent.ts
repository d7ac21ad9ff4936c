// The content agent of the cache benchmark: the SDK on WebSockets with a handler that writes its output from the
// prompt (about 2 KB of text, deterministic, so a repeat's cached answer can be checked against a fresh run).
// Forked with an IPC channel by bench/cache.ts.
import { createHash } from "node:crypto";
import { createAgent } from "../../agent/sdk/index.ts";

const [url, token, pool, agentId, concurrency] = process.argv.slice(2) as [string, string, string, string, string];
let runs = 0;

function contentFor(prompt: string): string {
  let out = "";
  for (let i = 0; out.length < 2048; i++) out += createHash("sha256").update(`${prompt}#${i}`).digest("hex");
  return out;
}

const generate = async (payload: unknown) => {
  runs++;
  return { text: contentFor(String((payload as { prompt?: unknown }).prompt)) };
};

const agent = createAgent({
  url,
  token,
  pool,
  agentId,
  maxConcurrency: Number(concurrency),
  transport: "websocket",
  log: () => undefined,
  handlers: { "content.generate": generate, "content.semantic": generate },
});

process.on("message", (msg: { cmd: string }) => {
  if (msg.cmd === "report") process.send?.({ runs });
  if (msg.cmd === "stop") void agent.stop().then(() => process.exit(0));
});
await agent.start();
process.send?.({ ready: true });
