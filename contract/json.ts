/**
 * How deep JSON may nest. Free-form values (payloads, results, metadata, errors) are written back to text with
 * JSON.stringify, which recurses: a value nested thousands of levels deep would overflow the stack when it is
 * stored or read. A hundred levels is far beyond real documents.
 */
export const MAX_JSON_DEPTH = 100;

/** The nesting depth of a parsed JSON value, measured without recursion (a scalar is 0, `[]` is 1). */
export function jsonDepth(value: unknown, stopAt = Number.POSITIVE_INFINITY): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== "object") continue;
    const level = depth + 1;
    if (level > deepest) deepest = level;
    if (deepest > stopAt) return deepest;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (child !== null && typeof child === "object") stack.push([child, level]);
    }
  }
  return deepest;
}
