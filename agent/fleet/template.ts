// A small logic-less template language (a subset of Mustache/Handlebars), parsed into a tree and interpreted:
// no eval, no access to anything but the variables' own properties, bounded nesting and output.
//
//   {{name}}              the value, HTML-escaped (& < > " ' ` =)
//   {{{name}}}            the value as it is (only for trusted HTML)
//   {{a.b}} {{items.0}}   dotted paths into objects and lists
//   {{#each items}}...{{else}}...{{/each}}
//                         the body once per list item; inside, {{this}} (or {{.}}) is the item, {{this.x}} its field,
//                         {{@index}} (from 0), {{@first}} and {{@last}} describe the position; {{else}} (optional)
//                         renders when the list is empty or missing
//   {{#if cond}}...{{else}}...{{/if}}
//                         false, null, 0, "", [] and missing values are false; everything else is true
//   {{! comment }}        renders nothing
//   \{{                   a literal "{{"
//
// A name is looked up in the current item first, then in the enclosing items, then in the variables (like
// Mustache), so `{{#each posts}}{{title}} by {{author}}{{/each}}` can read a top-level `author`.
// Missing variables render as "" by default (as in Mustache and Handlebars); with `strict`, a missing printed value or
// #each list is an error that lists them all (an #if condition may still be missing: that is what #if tests).
// A value that is an object or a list cannot be printed: that is an error too (name a field, or use #each).
// Every error is an InputError (not retried) with the line and column in the template.
import { InputError } from "./handler.ts";

export interface RenderOptions {
  /** Missing variables fail the render instead of rendering as "". */
  readonly strict?: boolean;
  /** Checked once per #each iteration. */
  readonly signal?: AbortSignal;
  /** Upper bound on the length of the output, in UTF-16 code units. */
  readonly maxOutput?: number;
}

export const MAX_SECTION_DEPTH = 32;
export const DEFAULT_MAX_OUTPUT = 1_000_000;

type Path =
  | { readonly kind: "scope"; readonly source: string; readonly head: string; readonly rest: readonly string[] }
  | { readonly kind: "this"; readonly source: string; readonly rest: readonly string[] }
  | { readonly kind: "loop"; readonly source: string; readonly name: "index" | "first" | "last" };

type Node =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "value"; readonly path: Path; readonly raw: boolean; readonly at: number }
  | { readonly kind: "each" | "if"; readonly path: Path; readonly body: Node[]; readonly otherwise: Node[]; readonly at: number };

export class TemplateError extends InputError {
  override readonly code: string = "invalid_template";
  override name = "TemplateError";
}

/** Line and column (both from 1) of an offset, for error messages. */
function position(source: string, offset: number): string {
  const before = source.slice(0, offset);
  const line = before.split("\n").length;
  const column = offset - before.lastIndexOf("\n");
  return `line ${line}, column ${column}`;
}

const SEGMENT = /^(?:[A-Za-z_$][\w$-]*|\d+)$/;

function parsePath(source: string, inLoop: boolean, fail: (message: string) => never): Path {
  if (source === "." || source === "this") return { kind: "this", source, rest: [] };
  if (source.startsWith("@")) {
    const name = source.slice(1);
    if (name !== "index" && name !== "first" && name !== "last") fail(`unknown variable ${source} (only @index, @first and @last exist)`);
    if (!inLoop) fail(`${source} is only defined inside {{#each}}`);
    return { kind: "loop", source, name };
  }
  const segments = source.split(".");
  if (!segments.every((segment) => SEGMENT.test(segment))) {
    fail(`"${source}" is not a variable name (letters, digits, _ $ -, joined by dots)`);
  }
  const [head = "", ...rest] = segments;
  return head === "this" ? { kind: "this", source, rest } : { kind: "scope", source, head, rest };
}

interface OpenSection {
  readonly node: Extract<Node, { kind: "each" | "if" }>;
  inElse: boolean;
}

/** Parses a template into its tree; throws a TemplateError naming the line and column of the first mistake. */
export function parseTemplate(source: string): Node[] {
  const root: Node[] = [];
  const open: OpenSection[] = [];
  const target = (): Node[] => {
    const section = open.at(-1);
    if (!section) return root;
    return section.inElse ? section.node.otherwise : section.node.body;
  };
  let text = "";
  const flushText = () => {
    if (text) target().push({ kind: "text", text });
    text = "";
  };

  let cursor = 0;
  while (cursor < source.length) {
    const start = source.indexOf("{{", cursor);
    if (start < 0) {
      text += source.slice(cursor);
      break;
    }
    if (start > 0 && source[start - 1] === "\\") {
      text += source.slice(cursor, start - 1) + "{{";
      cursor = start + 2;
      continue;
    }
    text += source.slice(cursor, start);
    const fail: (message: string) => never = (message) => {
      throw new TemplateError(`template ${position(source, start)}: ${message}`);
    };
    const raw = source.startsWith("{{{", start);
    const close = raw ? "}}}" : "}}";
    const end = source.indexOf(close, start + close.length);
    if (end < 0) fail(`unclosed ${raw ? "{{{" : "{{"} (write \\{{ for a literal "{{")`);
    const tag = source.slice(start + close.length, end).trim();
    cursor = end + close.length;
    const inLoop = open.some((section) => section.node.kind === "each");

    if (raw) {
      flushText();
      target().push({ kind: "value", path: parsePath(tag, inLoop, fail), raw: true, at: start });
    } else if (tag.startsWith("!")) {
      // a comment
    } else if (tag.startsWith("#")) {
      const match = /^#(each|if)\s+(\S+)$/.exec(tag);
      if (!match) fail(`unknown section "{{${tag}}}" (use {{#each list}} or {{#if value}})`);
      if (open.length >= MAX_SECTION_DEPTH) fail(`sections nested deeper than ${MAX_SECTION_DEPTH}`);
      const path = parsePath(match[2] ?? "", inLoop, fail);
      flushText();
      const section: OpenSection = {
        node: { kind: match[1] === "each" ? "each" : "if", path, body: [], otherwise: [], at: start },
        inElse: false,
      };
      target().push(section.node);
      open.push(section);
    } else if (tag === "else") {
      const section = open.at(-1);
      if (!section) fail("{{else}} outside {{#each}} or {{#if}}");
      if (section.inElse) fail("a second {{else}} in the same section");
      flushText();
      section.inElse = true;
    } else if (tag.startsWith("/")) {
      const section = open.at(-1);
      if (!section) fail(`{{${tag}}} closes nothing`);
      if (section.node.kind !== tag.slice(1).trim()) {
        fail(`{{${tag}}} closes {{#${section.node.kind} ${section.node.path.source}}} opened at ${position(source, section.node.at)}`);
      }
      flushText();
      open.pop();
    } else {
      flushText();
      target().push({ kind: "value", path: parsePath(tag, inLoop, fail), raw: false, at: start });
    }
  }
  flushText();
  const unclosed = open.at(-1);
  if (unclosed) {
    throw new TemplateError(
      `template ${position(source, unclosed.node.at)}: {{#${unclosed.node.kind} ${unclosed.node.path.source}}} is never closed`,
    );
  }
  return root;
}

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
  "`": "&#96;",
  "=": "&#61;",
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`=]/g, (char) => HTML_ESCAPES[char] ?? char);
}

interface Frame {
  readonly value: unknown;
  readonly loop?: { readonly index: number; readonly length: number };
}

const MISSING: unique symbol = Symbol("missing");
type Lookup = unknown;

function ownProperty(value: unknown, key: string): Lookup {
  if (typeof value !== "object" || value === null || !Object.hasOwn(value, key)) return MISSING;
  return (value as Record<string, unknown>)[key];
}

function descend(value: unknown, rest: readonly string[]): Lookup {
  let current = value;
  for (const key of rest) {
    current = ownProperty(current, key);
    if (current === MISSING) return MISSING;
  }
  return current;
}

function resolve(path: Path, frames: readonly Frame[]): Lookup {
  switch (path.kind) {
    case "this":
      return descend(frames.at(-1)?.value, path.rest);
    case "loop": {
      const loop = frames.findLast((frame) => frame.loop)?.loop;
      if (!loop) return MISSING;
      if (path.name === "index") return loop.index;
      return path.name === "first" ? loop.index === 0 : loop.index === loop.length - 1;
    }
    case "scope":
      for (let i = frames.length - 1; i >= 0; i--) {
        const found = ownProperty(frames[i]?.value, path.head);
        if (found !== MISSING) return descend(found, path.rest);
      }
      return MISSING;
  }
}

function truthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  return value !== MISSING && Boolean(value);
}

/** Renders a parsed template; see the top of this file for the language. */
export function renderTemplate(source: string, vars: unknown, options: RenderOptions = {}): string {
  const { strict = false, signal, maxOutput = DEFAULT_MAX_OUTPUT } = options;
  const tree = parseTemplate(source);
  const parts: string[] = [];
  let length = 0;
  const missing = new Map<string, number>();

  const emit = (text: string) => {
    length += text.length;
    if (length > maxOutput) throw new InputError(`rendered text is longer than ${maxOutput} characters`);
    parts.push(text);
  };
  const lookup = (path: Path, at: number, frames: readonly Frame[]): Lookup => {
    const value = resolve(path, frames);
    if (value === MISSING && !missing.has(path.source)) missing.set(path.source, at);
    return value;
  };
  const fail: (at: number, message: string) => never = (at, message) => {
    throw new TemplateError(`template ${position(source, at)}: ${message}`);
  };

  const walk = (nodes: readonly Node[], frames: readonly Frame[]): void => {
    for (const node of nodes) {
      switch (node.kind) {
        case "text":
          emit(node.text);
          break;
        case "value": {
          const value = lookup(node.path, node.at, frames);
          if (value === MISSING || value === null || value === undefined) break;
          if (typeof value === "object") {
            fail(node.at, `{{${node.path.source}}} is ${Array.isArray(value) ? "a list" : "an object"}: name one of its fields or use {{#each}}`);
          }
          const text = String(value);
          emit(node.raw ? text : escapeHtml(text));
          break;
        }
        case "if":
          // A condition may be missing even in strict mode: testing for presence is what #if is for.
          walk(truthy(resolve(node.path, frames)) ? node.body : node.otherwise, frames);
          break;
        case "each": {
          const list = lookup(node.path, node.at, frames);
          if (list !== MISSING && list !== null && !Array.isArray(list)) fail(node.at, `{{#each ${node.path.source}}} needs a list`);
          const items: readonly unknown[] = Array.isArray(list) ? list : [];
          if (items.length === 0) walk(node.otherwise, frames);
          items.forEach((item, index) => {
            signal?.throwIfAborted();
            walk(node.body, [...frames, { value: item, loop: { index, length: items.length } }]);
          });
          break;
        }
      }
    }
  };

  walk(tree, [{ value: vars }]);
  if (strict && missing.size > 0) {
    const listed = [...missing].slice(0, 10).map(([name, at]) => `${name} (${position(source, at)})`);
    throw new TemplateError(`template: missing variables: ${listed.join(", ")}${missing.size > 10 ? ", ..." : ""}`);
  }
  return parts.join("");
}
