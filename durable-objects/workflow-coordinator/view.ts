/** A run as the API shows it (contract/workflows.ts `WorkflowView`): steps in their order, results opened. */
import type { StepView, WorkflowView } from "../../contract/workflows.ts";
import type { RunEffects } from "./effects.ts";
import type { RunStore } from "./run.ts";

function parsed(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return { message: text };
  }
}

export async function viewOf(run: RunStore, effects: RunEffects): Promise<WorkflowView | null> {
  const row = run.run();
  if (!row) return null;
  const specs = row.spec.steps;
  const rows = new Map(run.steps().map((s) => [s.key, s] as const));
  const steps: StepView[] = [];
  const results = new Map<string, unknown>();
  for (const spec of specs) {
    const s = rows.get(spec.key)!;
    const elements = run.elements(spec.key);
    const result = await effects.stepResult(run, row.tenant, spec);
    results.set(spec.key, result);
    const agents = elements.map((e) => e.agent).filter((a): a is string => a !== null);
    steps.push({
      key: spec.key,
      type: spec.type,
      status: s.status,
      taskIds: elements.map((e) => e.taskId).filter((id): id is string => id !== null),
      result,
      error: parsed(s.error),
      attempts: s.attempts,
      startedAt: s.startedAt,
      finishedAt: s.status === "pending" || s.status === "running" ? null : s.finishedAt,
      agent: agents[agents.length - 1] ?? null,
    });
  }
  const leaves = specs.filter((s) => !specs.some((o) => o.dependsOn.includes(s.key)));
  const final = row.status !== "running";
  return {
    id: row.id,
    name: row.name,
    tenant: row.tenant,
    status: row.status,
    onFailure: row.spec.onFailure,
    steps,
    result: final ? Object.fromEntries(leaves.map((s) => [s.key, results.get(s.key) ?? null])) : null,
    createdAt: row.createdAt,
    finishedAt: row.finishedAt,
  };
}
