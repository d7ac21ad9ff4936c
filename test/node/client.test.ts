// The OpenAPI document and the typed client generated from it, checked with the tools their users run:
// Redocly's recommended rules, openapi-typescript's defaults, openapi-fetch against the running mesh.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMeshApi } from "../../agent/client/index.ts";
import { ROOT, startDevServer, type DevServer } from "../../scripts/dev-server.ts";
// @ts-expect-error: a plain JavaScript module without types (it runs the Worker's TypeScript under Node).
import { DOCUMENT_PATH, generated, SCHEMA_PATH } from "../../scripts/generate-client.mjs";
import { everyRoute, expectedStatus } from "./client-program.ts";

type Doc = { paths: Record<string, Record<string, unknown>>; servers: { url: string }[] };

let server: DevServer;

beforeAll(async () => {
  server = await startDevServer();
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe("the OpenAPI document", () => {
  it("is committed as the route table makes it, with the client's types generated from it (npm run generate:client)", async () => {
    const { document, schema } = (await generated()) as { document: string; schema: string };
    expect(readFileSync(DOCUMENT_PATH, "utf8")).toBe(document);
    expect(readFileSync(SCHEMA_PATH, "utf8")).toBe(schema);
  });

  it("is the document the mesh serves, naming the mesh that served it", async () => {
    const served = (await (await fetch(`${server.url}/openapi.json`)).json()) as Doc;
    const committed = JSON.parse(readFileSync(DOCUMENT_PATH, "utf8")) as Doc;
    expect(served.servers).toEqual([{ url: server.url, description: "the mesh that served this document" }]);
    expect({ ...served, servers: [] }).toEqual({ ...committed, servers: [] });
  });

  it("passes Redocly's recommended rules with no error and no warning", async () => {
    const dir = mkdtempSync(join(tmpdir(), "daa-openapi-"));
    try {
      const file = join(dir, "openapi.json");
      writeFileSync(file, await (await fetch(`${server.url}/openapi.json`)).text());
      let out: string;
      try {
        out = execFileSync(join(ROOT, "node_modules", ".bin", "redocly"), ["lint", file, "--format=json"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      } catch (err) {
        out = (err as { stdout: string }).stdout;
      }
      const report = JSON.parse(out) as { totals: { errors: number; warnings: number }; problems: { ruleId: string; message: string }[] };
      expect(report.problems.map((p) => `${p.ruleId}: ${p.message}`)).toEqual([]);
      expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("the typed client (openapi-typescript defaults + openapi-fetch)", () => {
  it("calls every route of the document from a program that type-checks, each answered as documented", async () => {
    const api = createMeshApi({ url: server.url, token: server.adminKey });
    const steps = await everyRoute(api, { pool: "program", tenant: "program-tenant" });
    const doc = JSON.parse(readFileSync(DOCUMENT_PATH, "utf8")) as Doc;
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`));
    expect(steps.map((s) => s.route).sort()).toEqual(routes.sort());
    expect(steps.filter((s) => s.status !== expectedStatus(s.route))).toEqual([]);
  }, 60_000);
});
