import { describe, expect, it } from "vitest";
import { api, expectError, freshPool } from "../helpers";
import { agents, runUntilFinal, type Handler } from "./agents";

function threePools() {
  const a = freshPool("wfa");
  const b = freshPool("wfb");
  const c = freshPool("wfc");
  return { a, b, c };
}

describe("workflows across pools", () => {
  it("runs a 5-step workflow across 3 pools with $ref inputs, a forEach over 1,000 items and a join", async () => {
    const { a, b, c } = threePools();
    const handlers: Record<string, Handler> = {
      [a]: (p, t) => (t.type === `${a}.validate` ? { result: { normalized: `norm:${p.url}` } } : { result: { seo: (p.sections as string[]).length, first: p.sections[0] } }),
      [b]: (p, t) => (t.type === `${b}.embed` ? { result: { topics: Array.from({ length: 1000 }, (_, i) => `topic-${i}`), image: p.image } } : { result: { published: p.post } }),
      [c]: (p) => ({ result: `section ${p.index}: ${p.item}` }),
    };
    await agents(handlers);
    const res = await api("POST", "/v1/workflows", {
      name: "publish-article",
      steps: [
        { key: "validate", type: `${a}.validate`, payload: { url: "https://x.test/i.png" } },
        { key: "embed", type: `${b}.embed`, dependsOn: ["validate"], input: { image: { $ref: "validate.result.normalized" } } },
        { key: "sections", type: `${c}.generate`, dependsOn: ["embed"], forEach: { $ref: "embed.result.topics" } },
        { key: "seo", type: `${a}.seo`, dependsOn: ["sections"], input: { sections: { $ref: "sections.result" } } },
        { key: "publish", type: `${b}.publish`, dependsOn: ["seo"], input: { post: { $ref: "seo.result" } } },
      ],
    });
    expect(res.status).toBe(201);
    expect(res.body.status).toBe("running");
    expect(res.body.steps.map((s: any) => s.status)).toEqual(["running", "pending", "pending", "pending", "pending"]);
    // The step without dependencies was submitted before the answer.
    expect(res.body.steps[0].taskIds).toHaveLength(1);
    const done = await runUntilFinal(res.body.id, handlers, undefined, 60_000);
    expect(done.status).toBe("succeeded");
    expect(done.steps.map((s: any) => s.status)).toEqual(["succeeded", "succeeded", "succeeded", "succeeded", "succeeded"]);
    expect(done.steps[1].result.image).toBe("norm:https://x.test/i.png");
    expect(done.steps[2].taskIds).toHaveLength(1000);
    expect(done.steps[2].result[999]).toBe("section 999: topic-999");
    expect(done.steps[3].result).toEqual({ seo: 1000, first: "section 0: topic-0" });
    expect(done.result).toEqual({ publish: { published: { seo: 1000, first: "section 0: topic-0" } } });
    for (const s of done.steps) {
      expect(s.attempts).toBe(1);
      expect(Date.parse(s.finishedAt)).toBeGreaterThanOrEqual(Date.parse(s.startedAt));
      expect(s.agent).toMatch(/-agent$/);
    }
    const list = await api("GET", "/v1/workflows?status=succeeded&limit=100");
    expect(list.status).toBe(200);
    expect(list.body.workflows.map((w: any) => w.id)).toContain(res.body.id);
  }, 90_000);

  it("runs API.md's five-pool example (image, neural with a GPU, content forEach, content SEO, integration) with test agents", async () => {
    const [image, neural, content, integration] = ["image", "neural", "content", "integration"].map((p) => freshPool(p)) as [string, string, string, string];
    const handlers: Record<string, Handler> = {
      [image]: (p) => ({ result: { normalized: `${p.url}?w=1024` } }),
      [neural]: (p) => ({ result: { vector: [0.1, 0.2], topics: ["intro", "body", "outro"], of: p.image } }),
      [content]: (p, t) => (t.type === "content.generate" ? { result: `<h2>${p.item}</h2>` } : { result: { html: (p.sections as string[]).join(""), title: "T" } }),
      [integration]: (p) => ({ result: { url: `https://blog.test/${p.post.title}`, bytes: p.post.html.length } }),
    };
    await agents(handlers, { [neural]: { resources: { cpu: 1, memoryMb: 1024, gpu: 1 } } });
    const res = await api("POST", "/v1/workflows", {
      name: "publish-article",
      idempotencyKey: `a-${Math.random()}`,
      onFailure: "fail_fast",
      steps: [
        { key: "validate", type: "image.validate", pool: image, payload: { url: "https://x.test/a.png" } },
        { key: "embed", type: "neural.embed", pool: neural, dependsOn: ["validate"], requires: { gpu: 1 }, input: { image: { $ref: "validate.result.normalized" } } },
        { key: "sections", type: "content.generate", pool: content, dependsOn: ["embed"], forEach: { $ref: "embed.result.topics" } },
        { key: "seo", type: "content.seo", pool: content, dependsOn: ["sections"], input: { sections: { $ref: "sections.result" } } },
        { key: "publish", type: "integration.publish", pool: integration, dependsOn: ["seo"], input: { post: { $ref: "seo.result" } } },
      ],
    });
    expect(res.status).toBe(201);
    const done = await runUntilFinal(res.body.id, handlers);
    expect(done.status).toBe("succeeded");
    expect(done.steps[1].result.of).toBe("https://x.test/a.png?w=1024");
    expect(done.steps[2].result).toEqual(["<h2>intro</h2>", "<h2>body</h2>", "<h2>outro</h2>"]);
    expect(done.result).toEqual({ publish: { url: "https://blog.test/T", bytes: "<h2>intro</h2><h2>body</h2><h2>outro</h2>".length } });
    expect(done.steps.map((s: any) => s.agent)).toEqual([`${image}-agent`, `${neural}-agent`, `${content}-agent`, `${content}-agent`, `${integration}-agent`]);
  });

  it("answers 400 naming the step for cycles, unknown dependsOn, non-ancestor $ref, bad and duplicate keys, too many steps", async () => {
    const t = `${freshPool("wfv")}.x`;
    const cases: [unknown[], string][] = [
      [[{ key: "a", type: t, dependsOn: ["b"] }, { key: "b", type: t, dependsOn: ["a"] }], "steps.0.dependsOn"],
      [[{ key: "a", type: t }, { key: "b", type: t }, { key: "c", type: t }, { key: "d", type: t, dependsOn: ["zz"] }], "steps.3.dependsOn.0"],
      [[{ key: "a", type: t }, { key: "b", type: t, input: { x: { $ref: "a.result" } } }], "steps.1.input.x"],
      [[{ key: "a", type: t }, { key: "b", type: t, forEach: { $ref: "a.nope" }, dependsOn: ["a"] }], "steps.1.forEach"],
      [[{ key: "A!", type: t }], "steps.0.key"],
      [[{ key: "a", type: t }, { key: "a", type: t }], "steps.1.key"],
      [Array.from({ length: 1001 }, (_, i) => ({ key: `s${i}`, type: t })), "steps"],
    ];
    for (const [steps, field] of cases) {
      const res = await api("POST", "/v1/workflows", { steps });
      expectError(res, 400, "invalid_request");
      expect(res.body.error.details.map((d: any) => d.field)).toContain(field);
    }
  });

  it("starts once per idempotency key, and hides another tenant's runs (404)", async () => {
    const t = `${freshPool("wfi")}.x`;
    const body = { idempotencyKey: `k-${Math.random()}`, steps: [{ key: "only", type: t }] };
    const first = await api("POST", "/v1/workflows", body);
    const again = await api("POST", "/v1/workflows", body);
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    expect(again.body.steps[0].taskIds).toEqual(first.body.steps[0].taskIds);
    const key = await api("POST", `/v1/tenants/other-${Date.now()}/keys`, { name: "client", roles: ["client"] });
    expect(key.status).toBe(201);
    expectError(await api("GET", `/v1/workflows/${first.body.id}`, undefined, { token: key.body.key }), 404, "not_found");
    expectError(await api("POST", `/v1/workflows/${first.body.id}/cancel`, undefined, { token: key.body.key }), 404, "not_found");
    expectError(await api("GET", "/v1/workflows/wf_nope"), 404, "not_found");
    const theirs = await api("GET", "/v1/workflows", undefined, { token: key.body.key });
    expect(theirs.body.workflows).toEqual([]);
  });
});
