// The workflow engine's overhead per step (issue 15): a 5-step chain across 2 pools against a running mesh, run by
// a real HTTP agent per pool (long-poll lease, complete). Overhead = the run's end-to-end time (createdAt to
// finishedAt, as the mesh recorded them) minus the time the agents' handlers ran (measured here; the handler only
// adds 1, so this is close to 0), divided by the steps: what the lease wake-up, the completion, the durable
// callback and the next step's submit cost together. The completion request itself counts as overhead.

const STEPS = 5;

interface Api {
  (method: string, path: string, body?: unknown): Promise<any>;
}

function client(url: string, key: string): Api {
  return async (method, path, body) => {
    const res = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (res.status >= 300 && res.status !== 202) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
    return JSON.parse(text);
  };
}

export async function workflowOverheadPerStep(url: string, adminKey: string, runs = 5): Promise<{ ms_per_step: number; runs: number; steps: number; end_to_end_ms: number; agent_ms: number }> {
  const api = client(url, adminKey);
  const tag = Date.now().toString(36);
  const pools = [`wfbench-a-${tag}`, `wfbench-b-${tag}`];
  for (const pool of pools) await api("POST", `/v1/pools/${pool}/agents`, { agentId: `${pool}-agent`, maxConcurrency: 10 });
  let held = 0;
  let stop = false;
  const agent = async (pool: string) => {
    while (!stop) {
      const { tasks } = await api("POST", `/v1/pools/${pool}/agents/${pool}-agent/lease`, { max: 10, waitMs: 1000 });
      for (const t of tasks) {
        const at = performance.now();
        const result = { n: (t.payload.n ?? 0) + 1 };
        held += performance.now() - at;
        await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: t.leaseToken, result });
      }
    }
  };
  const loops = pools.map(agent);
  let endToEnd = 0;
  try {
    for (let r = 0; r < runs; r++) {
      const steps = Array.from({ length: STEPS }, (_, i) => ({
        key: `s${i}`,
        type: `${pools[i % 2]}.step`,
        ...(i === 0 ? { payload: { n: 0 } } : { dependsOn: [`s${i - 1}`], input: { n: { $ref: `s${i - 1}.result.n` } } }),
      }));
      const started = await api("POST", "/v1/workflows", { name: "bench-chain", steps });
      let w = started;
      while (w.status === "running") w = await api("GET", `/v1/workflows/${started.id}/result?waitMs=10000`);
      if (w.status !== "succeeded" || w.result[`s${STEPS - 1}`].n !== STEPS) throw new Error(`bench run ended ${w.status}: ${JSON.stringify(w.result)}`);
      endToEnd += Date.parse(w.finishedAt) - Date.parse(w.createdAt);
    }
  } finally {
    stop = true;
    await Promise.allSettled(loops);
  }
  return { ms_per_step: Math.round(((endToEnd - held) / (runs * STEPS)) * 10) / 10, runs, steps: STEPS, end_to_end_ms: endToEnd, agent_ms: Math.round(held) };
}
