// Handlers of the `content` pool (the seed's content agents: templates, SEO and meta).
//
//   daa agent --pool content --handlers agent/fleet/content.ts
//
// content.render  {"template": "Hello {{name}}", "vars": {"name": "Ada"}, "strict": false}
//                 -> {"text": "Hello Ada", "words": 2, "characters": 9}
//                 a workflow's forEach step adds "item" and "index": the template reads {{item}} and {{index}}
// content.seo     {"title": "...", "body": "... (text or HTML)", "maxKeywords": 10}
//                 "body" may also be a list of texts or of content.render results (a forEach join), joined by lines
//                 -> {"slug", "title", "metaDescription", "words", "readingTimeMinutes", "keywords": [{"term", "count"}], "warnings"}
// content.sleep   {"ms": 5000}  (0-60000) -> {"sleptMs": 5000}
//                 a slow task that does nothing: for watching leases, timeouts and Ctrl-C draining by hand, and for
//                 test/node/start.e2e.test.ts (a task in flight when `npm start` is stopped)
//
// A payload that does not fit (or a template that does not parse) fails the task with `retryable: false` and a
// message naming the field, so it goes to the dead letter queue at once instead of being retried.
import { z } from "zod";

import { type HandlerContext, type HandlerMap, parsePayload } from "./handler.ts";
import { type SeoSummary, seoSummary } from "./seo.ts";
import { renderTemplate } from "./template.ts";
import { codePointLength, countWords, visibleText } from "./text.ts";

/** The mesh caps a request at 1 MiB, so no valid payload is longer; these bounds only give clearer messages. */
const MAX_TEXT = 1_048_576;

const RenderPayload = z.strictObject({
  template: z.string().max(MAX_TEXT),
  vars: z.record(z.string(), z.unknown()).default({}),
  /** Missing variables fail the task instead of rendering as "". */
  strict: z.boolean().default(false),
  /** A workflow's `forEach` step sets these (docs/workflows.md): the template reads them as {{item}}, {{index}}. */
  item: z.unknown().optional(),
  index: z.int().min(0).optional(),
});

/** A body: text, or the parts a workflow joined (a `forEach` step's results: texts or `content.render` results). */
const Body = z.union([
  z.string().min(1, "must not be empty").max(MAX_TEXT),
  z
    .array(z.union([z.string(), z.looseObject({ text: z.string() })]))
    .min(1, "must not be empty")
    .max(10_000)
    .transform((parts) => parts.map((p) => (typeof p === "string" ? p : p.text)).join("\n"))
    .pipe(z.string().max(MAX_TEXT)),
]);

const SeoPayload = z.strictObject({
  title: z.string().trim().min(1, "must not be empty").max(1000),
  body: Body,
  maxKeywords: z.int().min(1).max(50).default(10),
});

const SleepPayload = z.strictObject({ ms: z.int().min(0).max(60_000) });

export type RenderPayload = z.input<typeof RenderPayload>;
export type SeoPayload = z.input<typeof SeoPayload>;

export interface RenderResult {
  /** The rendered text (HTML-escaped values unless written with triple braces). */
  readonly text: string;
  /** Words of the visible text: tags left out, entities decoded. */
  readonly words: number;
  /** Unicode code points of `text`. */
  readonly characters: number;
}

/** `content.render`: renders a template (language described in template.ts) with the given variables. */
export async function render(payload: unknown, context: HandlerContext): Promise<RenderResult> {
  const { template, vars, strict, item, index } = parsePayload(RenderPayload, payload);
  const scope = { ...vars, ...(item === undefined ? {} : { item }), ...(index === undefined ? {} : { index }) };
  const text = renderTemplate(template, scope, { strict, signal: context.signal });
  return { text, words: countWords(visibleText(text)), characters: codePointLength(text) };
}

/** `content.seo`: slug, meta description, word count, reading time, keywords and warnings for an article. */
export async function seo(payload: unknown, context: HandlerContext): Promise<SeoSummary> {
  const input = parsePayload(SeoPayload, payload);
  context.signal.throwIfAborted();
  return seoSummary(input);
}

/** `content.sleep`: waits `ms` milliseconds, or fails at once when the task is aborted (timeout, lease lost). */
export async function sleep(payload: unknown, context: HandlerContext): Promise<{ sleptMs: number }> {
  const { ms } = parsePayload(SleepPayload, payload);
  context.signal.throwIfAborted();
  await new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(context.signal.reason);
    };
    const timer = setTimeout(() => {
      context.signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    context.signal.addEventListener("abort", onAbort, { once: true });
  });
  return { sleptMs: ms };
}

export default {
  "content.render": render,
  "content.seo": seo,
  "content.sleep": sleep,
} satisfies HandlerMap;
