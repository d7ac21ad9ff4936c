// Checking what a handlers module (or the object given to createAgent) provides: task types mapped to functions.
import type { Handler } from "./types.ts";

/** Validates `value` as a map of task types to functions; `source` names it in the error. */
export function toHandlerMap(value: unknown, source: string): Map<string, Handler> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`${source} must be an object mapping task types to async functions (payload, context) => result`);
  }
  const map = new Map<string, Handler>();
  for (const [type, fn] of Object.entries(value)) {
    if (typeof fn !== "function") throw new TypeError(`${source}: the handler for "${type}" is ${typeof fn}, not a function`);
    // A function's parameters cannot be checked at run time; calling it with (payload, context) is the contract.
    map.set(type, fn as Handler);
  }
  if (map.size === 0) throw new TypeError(`${source} has no handlers: map at least one task type to a function`);
  return map;
}

/** The module's default export (an ES module's `export default`, or a CommonJS `module.exports`). */
export function defaultExport(module: unknown): unknown {
  return typeof module === "object" && module !== null && "default" in module ? module.default : undefined;
}

export function describeTypes(types: Iterable<string>): string {
  return [...types].sort().join(", ");
}
