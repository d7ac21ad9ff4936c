// npm run bench:workflows: the workflow engine's overhead per step (bench/lib/workflow-chain.ts) against a local
// mesh started here (wrangler dev), with the load average at the start and the end.
import { loadavg } from "node:os";
import { startDevServer } from "../scripts/dev-server.ts";
import { workflowOverheadPerStep } from "./lib/workflow-chain.ts";

const server = await startDevServer();
try {
  const before = loadavg();
  const out = await workflowOverheadPerStep(server.url, server.adminKey, Number(process.env.RUNS ?? 10));
  console.log(JSON.stringify({ workflow_overhead_ms_per_step: out.ms_per_step, ...out, loadavg_before: before, loadavg_after: loadavg() }, null, 2));
} finally {
  await server.stop();
}
