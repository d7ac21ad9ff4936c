/**
 * A workflow's graph, checked once before it starts, and the `$ref`s of its steps resolved against their parents'
 * results. Pure: the route validates with it (400 naming the step) and the WorkflowCoordinator builds payloads
 * with it.
 */
import type { FieldProblem } from "../../contract/errors.ts";
import { MAX_STEPS, STEP_KEY, type RefValue, type StepSpec } from "../../contract/workflows.ts";

/** A parsed `$ref`: the step it names and the dotted path into its result. */
export interface ParsedRef {
  step: string;
  path: string[];
}

export function parseRef(ref: string): ParsedRef | null {
  const parts = ref.split(".");
  if (parts.length < 2 || parts[1] !== "result" || !STEP_KEY.test(parts[0]!)) return null;
  const path = parts.slice(2);
  if (path.some((p) => p.length === 0)) return null;
  return { step: parts[0]!, path };
}

/** The value a path names inside a result; undefined when it names nothing. */
export function pick(value: unknown, path: readonly string[]): unknown {
  let at = value;
  for (const part of path) {
    if (at === null || typeof at !== "object") return undefined;
    at = Array.isArray(at) ? (/^\d+$/.test(part) ? at[Number(part)] : undefined) : (at as Record<string, unknown>)[part];
  }
  return at;
}

function refsOf(step: StepSpec): { field: string; ref: RefValue }[] {
  const out = Object.entries(step.input ?? {}).map(([name, ref]) => ({ field: `input.${name}`, ref }));
  if (step.forEach) out.push({ field: "forEach", ref: step.forEach });
  return out;
}

/** Every problem of the graph, each naming its step (`steps.<i>.<field>`); empty when it may start. */
export function checkPlan(steps: readonly StepSpec[]): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (steps.length === 0 || steps.length > MAX_STEPS) problems.push({ field: "steps", message: `a workflow has 1-${MAX_STEPS} steps (got ${steps.length})` });
  const index = new Map<string, number>();
  steps.forEach((s, i) => {
    if (!STEP_KEY.test(s.key)) problems.push({ field: `steps.${i}.key`, message: `step keys match ${STEP_KEY.source}` });
    else if (index.has(s.key)) problems.push({ field: `steps.${i}.key`, message: `step key "${s.key}" is used by steps.${index.get(s.key)} too` });
    else index.set(s.key, i);
  });
  steps.forEach((s, i) =>
    s.dependsOn.forEach((dep, j) => {
      if (!index.has(dep)) problems.push({ field: `steps.${i}.dependsOn.${j}`, message: `no step has the key "${dep}"` });
      else if (dep === s.key) problems.push({ field: `steps.${i}.dependsOn.${j}`, message: `step "${s.key}" depends on itself` });
    }),
  );
  if (problems.length > 0) return problems;
  // A cycle: depth-first search, naming the first step found on one.
  const state = new Map<string, 1 | 2>();
  const onCycle = new Set<string>();
  const visit = (key: string, trail: string[]): void => {
    if (state.get(key) === 2) return;
    if (state.get(key) === 1) {
      for (const k of trail.slice(trail.indexOf(key))) onCycle.add(k);
      return;
    }
    state.set(key, 1);
    for (const dep of steps[index.get(key)!]!.dependsOn) visit(dep, [...trail, key]);
    state.set(key, 2);
  };
  for (const s of steps) visit(s.key, []);
  steps.forEach((s, i) => {
    if (onCycle.has(s.key)) problems.push({ field: `steps.${i}.dependsOn`, message: `step "${s.key}" is on a dependency cycle` });
  });
  if (problems.length > 0) return problems;
  const ancestors = ancestorsOf(steps);
  steps.forEach((s, i) => {
    for (const { field, ref } of refsOf(s)) {
      const parsed = typeof ref?.$ref === "string" ? parseRef(ref.$ref) : null;
      if (!parsed) problems.push({ field: `steps.${i}.${field}`, message: `a $ref reads "<step>.result" with an optional dotted path` });
      else if (!ancestors.get(s.key)!.has(parsed.step)) problems.push({ field: `steps.${i}.${field}`, message: `$ref "${ref.$ref}" names a step that is not an ancestor of "${s.key}"` });
    }
  });
  return problems;
}

/** Each step's ancestors (the graph has no cycle). */
export function ancestorsOf(steps: readonly StepSpec[]): Map<string, Set<string>> {
  const byKey = new Map(steps.map((s) => [s.key, s] as const));
  const out = new Map<string, Set<string>>();
  const of = (key: string): Set<string> => {
    const known = out.get(key);
    if (known) return known;
    const set = new Set<string>();
    for (const dep of byKey.get(key)!.dependsOn) {
      set.add(dep);
      for (const a of of(dep)) set.add(a);
    }
    out.set(key, set);
    return set;
  };
  for (const s of steps) of(s.key);
  return out;
}

/** Each step's descendants. */
export function descendantsOf(steps: readonly StepSpec[], key: string): Set<string> {
  const out = new Set<string>();
  const walk = (k: string): void => {
    for (const s of steps) if (s.dependsOn.includes(k) && !out.has(s.key)) (out.add(s.key), walk(s.key));
  };
  walk(key);
  return out;
}

/** A step's payload: `payload` with each `input` field set to what its `$ref` names (null if it names nothing). */
export function payloadOf(step: StepSpec, results: ReadonlyMap<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(step.payload ?? {}) };
  for (const [name, ref] of Object.entries(step.input ?? {})) out[name] = resolve(ref, results) ?? null;
  return out;
}

export function resolve(ref: RefValue, results: ReadonlyMap<string, unknown>): unknown {
  const parsed = parseRef(ref.$ref);
  return parsed ? pick(results.get(parsed.step), parsed.path) : undefined;
}
