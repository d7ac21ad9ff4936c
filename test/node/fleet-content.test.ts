import { describe, expect, it } from "vitest";

import content, { type RenderResult } from "../../agent/fleet/content.ts";
import type { HandlerContext } from "../../agent/fleet/handler.ts";
import { metaDescription, slugify, topKeywords, truncateOnWord } from "../../agent/fleet/seo.ts";
import { renderTemplate } from "../../agent/fleet/template.ts";

function context(type: string, signal: AbortSignal = new AbortController().signal): HandlerContext {
  return { taskId: "00000000-0000-4000-8000-000000000000", type, attempt: 1, signal };
}

const render = (payload: unknown): Promise<RenderResult> => content["content.render"](payload, context("content.render"));
const seo = (payload: unknown) => content["content.seo"](payload, context("content.seo"));

/** The error a promise rejects with, checked to be one that must not be retried. */
async function permanentFailure(promise: Promise<unknown>): Promise<Error & { retryable: boolean; code: string }> {
  const error: unknown = await promise.then(
    () => expect.fail("expected the handler to fail"),
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(Error);
  expect(error).toMatchObject({ retryable: false });
  return error as Error & { retryable: boolean; code: string };
}

describe("content.render", () => {
  it("renders variables and counts words and characters", async () => {
    await expect(render({ template: "Hello {{name}}!", vars: { name: "Ada" } })).resolves.toEqual({
      text: "Hello Ada!",
      words: 2,
      characters: 10,
    });
  });

  it("escapes values for HTML by default and leaves triple braces raw", async () => {
    const { text } = await render({
      template: "<p title=\"{{title}}\">{{body}}</p>{{{html}}}",
      vars: { title: `"quoted" & 'single' = \`tick\``, body: "<script>alert(1)</script>", html: "<b>bold</b>" },
    });
    expect(text).toBe(
      '<p title="&quot;quoted&quot; &amp; &#39;single&#39; &#61; &#96;tick&#96;">&lt;script&gt;alert(1)&lt;/script&gt;</p><b>bold</b>',
    );
  });

  it("counts the words a reader sees, not tags or entities", async () => {
    const result = await render({ template: "<h1>{{a}}</h1><p>{{b}}</p>", vars: { a: "Fish & chips", b: "It's <fine>" } });
    expect(result.text).toBe("<h1>Fish &amp; chips</h1><p>It&#39;s &lt;fine&gt;</p>");
    expect(result.words).toBe(4);
  });

  it("follows dotted paths and list indexes", async () => {
    const { text } = await render({
      template: "{{user.name.first}} {{user.tags.1}} {{ user.age }} {{user.admin}}",
      vars: { user: { name: { first: "Grace" }, tags: ["a", "b"], age: 85, admin: false } },
    });
    expect(text).toBe("Grace b 85 false");
  });

  it("repeats #each bodies with this, @index, @first, @last and outer variables", async () => {
    const { text } = await render({
      template: "{{#each posts}}{{#if @first}}[{{/if}}{{@index}}:{{title}} by {{author}}{{#each tags}} #{{this}}{{/each}}{{#if @last}}]{{else}}, {{/if}}{{/each}}",
      vars: { author: "Ada", posts: [{ title: "One", tags: ["x", "y"] }, { title: "Two", author: "Alan", tags: [] }] },
    });
    expect(text).toBe("[0:One by Ada #x #y, 1:Two by Alan]");
  });

  it("renders the else branch of an empty or missing list", async () => {
    const template = "{{#each items}}<li>{{name}}</li>{{else}}<p>none</p>{{/each}}";
    await expect(render({ template, vars: { items: [] } })).resolves.toMatchObject({ text: "<p>none</p>" });
    await expect(render({ template, vars: {} })).resolves.toMatchObject({ text: "<p>none</p>" });
    await expect(render({ template, vars: { items: [{ name: "<a>" }] } })).resolves.toMatchObject({ text: "<li>&lt;a&gt;</li>" });
  });

  it("treats false, null, 0, empty strings and empty lists as false in #if", () => {
    const template = "{{#if v}}yes{{else}}no{{/if}}";
    const outcome = (v: unknown) => renderTemplate(template, { v });
    expect([false, null, 0, "", []].map(outcome)).toEqual(["no", "no", "no", "no", "no"]);
    expect([true, 1, "x", [0], {}].map(outcome)).toEqual(["yes", "yes", "yes", "yes", "yes"]);
    expect(renderTemplate(template, {})).toBe("no");
  });

  it("renders missing variables as empty strings by default", async () => {
    await expect(render({ template: "[{{nope}}][{{a.b.c}}][{{{raw}}}][{{n}}]", vars: { a: { b: 1 }, n: null } })).resolves.toMatchObject({
      text: "[][][][]",
    });
  });

  it("in strict mode, fails on missing variables and lists all of them with their positions", async () => {
    const error = await permanentFailure(render({ template: "Hi {{name}},\n{{#if vip}}VIP {{/if}}{{a.b}} {{name}}", vars: { a: {} }, strict: true }));
    expect(error.message).toBe("template: missing variables: name (line 1, column 4), a.b (line 2, column 23)");
    expect(error.code).toBe("invalid_template");
  });

  it("reads only the variables' own properties, never inherited ones", async () => {
    const { text } = await render({ template: "[{{constructor}}][{{name.length}}][{{toString}}][{{__proto__}}]", vars: { name: "Ada" } });
    expect(text).toBe("[][][][]");
    const own = JSON.parse('{"__proto__": "own"}') as Record<string, unknown>;
    expect(renderTemplate("{{__proto__}}", own)).toBe("own");
  });

  it("refuses to print an object or a list", async () => {
    const error = await permanentFailure(render({ template: "{{user}}", vars: { user: { name: "Ada" } } }));
    expect(error.message).toContain("{{user}} is an object");
    await expect(render({ template: "{{#each user}}{{/each}}", vars: { user: { name: "Ada" } } })).rejects.toThrow("needs a list");
  });

  it("supports comments and \\{{ for literal braces", async () => {
    await expect(render({ template: "a{{! not shown }}b \\{{x}} {{x}}", vars: { x: 1 } })).resolves.toMatchObject({ text: "ab {{x}} 1" });
  });

  it.each([
    ["Hello {{name", "template line 1, column 7: unclosed {{"],
    ["{{#each items}}x", "template line 1, column 1: {{#each items}} is never closed"],
    ["{{#if a}}\n{{/each}}", "template line 2, column 1: {{/each}} closes {{#if a}} opened at line 1, column 1"],
    ["{{/if}}", "{{/if}} closes nothing"],
    ["{{else}}", "{{else}} outside {{#each}} or {{#if}}"],
    ["{{first name}}", '"first name" is not a variable name'],
    ["{{a..b}}", '"a..b" is not a variable name'],
    ["{{@index}}", "@index is only defined inside {{#each}}"],
    ["{{#each xs}}{{@key}}{{/each}}", "unknown variable @key"],
    ["{{#with a}}{{/with}}", 'unknown section "{{#with a}}"'],
  ])("reports template mistakes with their position: %j", async (template, message) => {
    const error = await permanentFailure(render({ template, vars: {} }));
    expect(error.message).toContain(message);
  });

  it("bounds the output and nesting depth", () => {
    const list = Array.from({ length: 1000 }, (_, i) => i);
    const nested = "{{#each l}}{{#each l}}{{#each l}}xx{{/each}}{{/each}}{{/each}}";
    expect(() => renderTemplate(nested, { l: list })).toThrow("rendered text is longer than 1000000 characters");
    const deep = "{{#if a}}".repeat(33) + "{{/if}}".repeat(33);
    expect(() => renderTemplate(deep, {})).toThrow("sections nested deeper than 32");
  });

  it("stops when the task is aborted", async () => {
    const controller = new AbortController();
    controller.abort(new Error("lease lost"));
    const task = content["content.render"]({ template: "{{#each l}}x{{/each}}", vars: { l: [1] } }, context("content.render", controller.signal));
    await expect(task).rejects.toThrow("lease lost");
  });

  it.each([
    [{}, "invalid payload: template: Invalid input: expected string, received undefined"],
    [{ template: 42 }, "invalid payload: template: Invalid input: expected string, received number"],
    [{ template: "x", vars: [] }, "invalid payload: vars: Invalid input: expected record, received array"],
    [{ template: "x", var: {} }, 'invalid payload: payload: Unrecognized key: "var"'],
    [{ template: "x", strict: "yes" }, "invalid payload: strict: Invalid input: expected boolean, received string"],
    ["Hello", "invalid payload: payload: Invalid input: expected object, received string"],
    [null, "invalid payload: payload: Invalid input: expected object, received null"],
  ])("rejects the payload %j without retry", async (payload, message) => {
    const error = await permanentFailure(render(payload));
    expect(error.message).toBe(message);
    expect(error.code).toBe("invalid_payload");
  });
});

describe("content.seo", () => {
  const body = `
    <h1>Edge queues</h1>
    <p>Edge queues keep agents busy. A queue at the edge answers in milliseconds, and agents lease work from it.</p>
    <p>Leases expire; expired leases go back to the queue. Agents renew leases while they work &amp; report results.</p>`;

  it("summarises an article", async () => {
    const summary = await seo({ title: "  Édge Queues: Don't   Wait for the Origin!  ", body, maxKeywords: 4 });
    expect(summary).toEqual({
      slug: "edge-queues-dont-wait-for-the-origin",
      title: "Édge Queues: Don't Wait for the Origin!",
      metaDescription: "Edge queues keep agents busy. A queue at the edge answers in milliseconds, and agents lease work from it.",
      words: 38,
      readingTimeMinutes: 1,
      // Ties keep the order of first appearance ("queues" is in the title; "Édge" there is a word of its own).
      keywords: [
        { term: "queues", count: 3 },
        { term: "edge", count: 3 },
        { term: "agents", count: 3 },
        { term: "leases", count: 3 },
      ],
      warnings: ["body has 38 words, under 300: likely seen as thin content"],
    });
  });

  it("summarises the joined results of a forEach step: texts or content.render results, in order", async () => {
    const parts = [await render({ template: "<p>{{index}}: {{item}} edge queues</p>", item: "one", index: 0 }), "<p>two edge agents</p>"];
    expect(parts[0]).toMatchObject({ text: "<p>0: one edge queues</p>" });
    const joined = await seo({ title: "Edge", body: parts });
    const whole = await seo({ title: "Edge", body: "<p>0: one edge queues</p>\n<p>two edge agents</p>" });
    expect(joined).toEqual(whole);
    expect(joined.keywords[0]).toEqual({ term: "edge", count: 3 });
    expect((await permanentFailure(seo({ title: "Edge", body: [] }))).message).toContain("body");
    expect((await permanentFailure(seo({ title: "Edge", body: [{ html: "no text" }] }))).message).toContain("body");
    expect((await permanentFailure(render({ template: "{{item}}", index: -1 }))).message).toContain("index");
  });

  it("rounds the reading time up at 200 words a minute and warns about long titles", async () => {
    const words = Array.from({ length: 401 }, (_, i) => `word${i % 7}`).join(" ");
    const summary = await seo({ title: "A title that goes on and on well past the sixty characters search shows", body: words });
    expect(summary.words).toBe(401);
    expect(summary.readingTimeMinutes).toBe(3);
    expect(summary.warnings).toEqual(["title is longer than 60 characters: search results will cut it"]);
    expect(summary.keywords).toHaveLength(10);
    expect(summary.keywords[0]).toEqual({ term: "word0", count: 58 });
  });

  it("builds the meta description from whole sentences, within 155 characters", () => {
    const first = "The mesh coordinates fleets of processing agents from the edge of the network.";
    const second = "Tasks are leased with fencing tokens, so a task has at most one accepted result in every case.";
    const third = "Short.";
    const description = metaDescription(`${first} ${second} ${third}`);
    expect(description).toBe(first);
    expect(metaDescription(`${first} ${third}`)).toBe(`${first} ${third}`);
  });

  it("cuts a first sentence longer than 155 characters at a word boundary, ellipsis included", () => {
    const sentence = `${"lorem ipsum dolor sit amet, ".repeat(8)}end.`;
    const description = metaDescription(sentence);
    expect([...description].length).toBeLessThanOrEqual(155);
    expect(description).toMatch(/ amet…$| sit…$|ipsum…$|dolor…$|lorem…$/);
    expect(sentence.startsWith(description.slice(0, -1))).toBe(true);
    expect(truncateOnWord("x".repeat(200), 155)).toBe(`${"x".repeat(154)}…`);
    expect(truncateOnWord("short enough", 155)).toBe("short enough");
  });

  it("makes slugs from any title", () => {
    expect(slugify("Hello, World!")).toBe("hello-world");
    expect(slugify("Crème brûlée — 10 recettes")).toBe("creme-brulee-10-recettes");
    expect(slugify("東京 guide")).toBe("東京-guide");
    expect(slugify("a".repeat(50) + " " + "b".repeat(50))).toBe("a".repeat(50));
    expect([...slugify("word ".repeat(40))].length).toBeLessThanOrEqual(80);
  });

  it("ranks keywords by count, then by first appearance, without stop words, numbers or possessives", () => {
    expect(topKeywords("The agent's queue. The queue and THE agent, 2024 agents; it is what it is.", 5)).toEqual([
      { term: "agent", count: 2 },
      { term: "queue", count: 2 },
      { term: "agents", count: 1 },
    ]);
  });

  it.each([
    [{ body: "text" }, "invalid payload: title: Invalid input: expected string, received undefined"],
    [{ title: "   ", body: "text" }, "invalid payload: title: must not be empty"],
    [{ title: "t", body: "" }, "invalid payload: body: must not be empty"],
    [{ title: "t", body: "b", maxKeywords: 0 }, "invalid payload: maxKeywords: Too small: expected number to be >=1"],
    [{ title: "t", body: "b", maxKeywords: 2.5 }, "invalid payload: maxKeywords: Invalid input: expected int, received number"],
    [{ title: "!!!", body: "text" }, "invalid payload: title: has no letters or digits to build a slug from"],
  ])("rejects the payload %j without retry", async (payload, message) => {
    const error = await permanentFailure(seo(payload));
    expect(error.message).toBe(message);
  });
});

describe("content.sleep", () => {
  const sleep = (payload: unknown, signal?: AbortSignal) => content["content.sleep"](payload, context("content.sleep", signal));

  it("waits the given time", async () => {
    const started = performance.now();
    await expect(sleep({ ms: 50 })).resolves.toEqual({ sleptMs: 50 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
  });

  it("stops waiting when the task is aborted", async () => {
    const controller = new AbortController();
    const slept = sleep({ ms: 60_000 }, controller.signal);
    controller.abort(new Error("lease lost"));
    await expect(slept).rejects.toThrow("lease lost");
  });

  it.each([[{}], [{ ms: -1 }], [{ ms: 60_001 }], [{ ms: 1.5 }]])("rejects the payload %j without retry", async (payload) => {
    const error = await permanentFailure(sleep(payload));
    expect(error.message).toMatch(/^invalid payload: ms: /);
  });
});
