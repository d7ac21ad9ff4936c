import { startDevServer } from "../scripts/dev-server.ts";
const server = await startDevServer({ extraArgs: ["--var", "DAA_TEST_HOOKS:1"] });
const h = { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json", "x-daa-test-isolate": "p" };
async function time(label: string, fn: () => Promise<Response>, n = 100) {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) { const t = performance.now(); const r = await fn(); await r.text(); xs.push(performance.now() - t); }
  xs.sort((a, b) => a - b);
  console.log(label, "p50", xs[n >> 1]!.toFixed(2), "p90", xs[Math.floor(n * 0.9)]!.toFixed(2));
}
try {
  await fetch(`${server.url}/v1/pools/pp/config`, { method: "PUT", headers: h, body: JSON.stringify({ cache: { types: ["pp.gen"] } }) });
  const sub = await (await fetch(`${server.url}/v1/tasks`, { method: "POST", headers: h, body: JSON.stringify({ type: "pp.gen", payload: { a: 1 } }) })).json() as any;
  await fetch(`${server.url}/v1/pools/pp/agents`, { method: "POST", headers: h, body: JSON.stringify({ agentId: "a" }) });
  const l = await (await fetch(`${server.url}/v1/pools/pp/agents/a/lease`, { method: "POST", headers: h, body: JSON.stringify({ max: 1 }) })).json() as any;
  await fetch(`${server.url}/v1/tasks/${sub.id}/complete`, { method: "POST", headers: h, body: JSON.stringify({ leaseToken: l.tasks[0].leaseToken, result: "x" }) });
  await new Promise((r) => setTimeout(r, 500));
  await time("healthz", () => fetch(`${server.url}/healthz`));
  await time("GET task", () => fetch(`${server.url}/v1/tasks/${sub.id}`, { headers: h }));
  await time("GET pools", () => fetch(`${server.url}/v1/pools/pp`, { headers: h }));
  await time("submit L1 hit", () => fetch(`${server.url}/v1/tasks`, { method: "POST", headers: h, body: JSON.stringify({ type: "pp.gen", payload: { a: 1 } }) }));
  await time("submit plain", () => fetch(`${server.url}/v1/tasks`, { method: "POST", headers: h, body: JSON.stringify({ type: "pp.other", payload: { a: 1 } }) }));
} finally { await server.stop(); }
