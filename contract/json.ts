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

/** UTF-8 bytes of a string, counted without encoding it (lone surrogates count as the 3 bytes of U+FFFD). */
export function utf8Bytes(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2;
      i++;
    } else bytes += 2;
  }
  return bytes;
}
