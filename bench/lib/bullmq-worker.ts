// One worker process of the dispatch benchmark on BullMQ: a no-op processor that notes, for probe jobs, how long
// after the client sent it the job started. Forked with an IPC channel by bench/dispatch.ts.
import { Worker } from "bullmq";

const [port, queue, concurrency] = process.argv.slice(2) as [string, string, string];
const delays: number[] = [];
let done = 0;

const worker = new Worker(
  queue,
  async (job) => {
    const p = job.data as { sentAt?: number; probe?: boolean };
    if (p.probe && typeof p.sentAt === "number") delays.push(Date.now() - p.sentAt);
    done++;
    return null;
  },
  { connection: { host: "127.0.0.1", port: Number(port) }, concurrency: Number(concurrency), removeOnComplete: { count: 1000 } },
);

process.on("message", (msg: { cmd: string }) => {
  if (msg.cmd === "report") process.send?.({ delays: delays.splice(0), done });
  if (msg.cmd === "stop") void worker.close().then(() => process.exit(0));
});
await worker.waitUntilReady();
process.send?.({ ready: true });
