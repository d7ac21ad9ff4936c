import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { api, freshPool, type ApiResponse } from "../helpers";

/** The policies as the contract of this mesh wants them, written out rather than imported so a change shows. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'";
const PAGE_CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'";

const COMMON = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "strict-transport-security": "max-age=31536000; includeSubDomains",
  "cross-origin-opener-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=()",
};

function headersOf(res: ApiResponse): Record<string, string | null> {
  const names = [...Object.keys(COMMON), "content-security-policy", "cache-control"];
  return Object.fromEntries(names.map((n) => [n, res.headers.get(n)]));
}

/** Every security header, with the JSON API's policy and no caching. */
function expectApiHeaders(res: ApiResponse, status: number, contentType = "application/json"): void {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toContain(contentType);
  expect(headersOf(res)).toEqual({ ...COMMON, "content-security-policy": API_CSP, "cache-control": "no-store" });
}

async function clientKey(tenant: string): Promise<string> {
  const res = await api("POST", `/v1/tenants/${tenant}/keys`, { name: "client", roles: ["client"] });
  if (res.status !== 201) throw new Error(`key creation answered ${res.status}`);
  return res.body.key;
}

describe("security headers on every kind of response", () => {
  it("200 JSON, public and authenticated", async () => {
    expectApiHeaders(await api("GET", "/healthz", undefined, { token: null }), 200);
    expectApiHeaders(await api("GET", "/openapi.json", undefined, { token: null }), 200);
    expectApiHeaders(await api("GET", "/v1/pools"), 200);
  });

  it("201 created", async () => {
    expectApiHeaders(await api("POST", "/v1/tasks", { type: `${freshPool("hdr")}.work` }), 201);
  });

  it("400 invalid request, 401 unauthorized, 403 forbidden", async () => {
    const bad = await api("POST", "/v1/tasks", { type: 42 });
    expect(bad.body.error.code).toBe("invalid_request");
    expectApiHeaders(bad, 400);
    const malformed = await api("POST", "/v1/tasks", "{not json");
    expect(malformed.body.error.code).toBe("invalid_request");
    expectApiHeaders(malformed, 400);
    expectApiHeaders(await api("GET", "/v1/pools", undefined, { token: null }), 401);
    expectApiHeaders(await api("GET", "/v1/pools", undefined, { token: "daa.nobody.AAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }), 401);
    const client = await clientKey("hdr-tenant");
    const forbidden = await api("PUT", `/v1/pools/${freshPool("hdr")}/config`, { maxUnfinishedPerTenant: 5 }, { token: client });
    expect(forbidden.body.error.code).toBe("forbidden");
    expectApiHeaders(forbidden, 403);
  });

  it("404 for an unknown route, an unknown method and an unknown task", async () => {
    expectApiHeaders(await api("GET", "/no/such/route", undefined, { token: null }), 404);
    expectApiHeaders(await api("DELETE", "/v1/tasks"), 404);
    expectApiHeaders(await api("GET", `/v1/tasks/${freshPool("hdr")}.0.AAAAAAAAAAAAAAAAAAAAAA`), 404);
  });

  it("409 conflict, 413 payload too large and 429 over a quota", async () => {
    const pool = freshPool("hdr");
    const t = (await api("POST", "/v1/tasks", { type: `${pool}.work` })).body;
    expect((await api("POST", `/v1/tasks/${t.id}/cancel`)).status).toBe(200);
    expectApiHeaders(await api("POST", `/v1/tasks/${t.id}/cancel`), 409);

    const big = await api("POST", "/v1/tasks", { type: `${pool}.work`, payload: { blob: "x".repeat(10 * 1024 * 1024) } });
    expect(big.body.error.code).toBe("payload_too_large");
    expectApiHeaders(big, 413);

    expect((await api("PUT", `/v1/pools/${pool}/config`, { maxUnfinishedPerTenant: 1 })).status).toBe(200);
    expect((await api("POST", "/v1/tasks", { type: `${pool}.work` })).status).toBe(201);
    const over = await api("POST", "/v1/tasks", { type: `${pool}.work` });
    expect(over.body.error.code).toBe("rate_limited");
    expectApiHeaders(over, 429);
    expect(over.headers.get("retry-after")).toBe("5");
  });

  it("500 internal", async () => {
    const pool = freshPool("hdr");
    const t = (await api("POST", "/v1/tasks", { type: `${pool}.work` })).body;
    // A payload that no longer opens makes reading the task fail inside the Worker.
    await runInDurableObject(env.POOL.getByName(pool), (_, state) => {
      state.storage.sql.exec("UPDATE tasks SET payload = 'e1.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' WHERE id = ?", t.id);
    });
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const res = await api("GET", `/v1/tasks/${t.id}`);
      expect(res.body.error.code).toBe("internal");
      expectApiHeaders(res, 500);
      expect(logged).toHaveBeenCalledTimes(1);
    } finally {
      logged.mockRestore();
    }
  });

  it("the dashboard page has the page policy; its script and /metrics keep the rest", async () => {
    const page = await api("GET", "/", undefined, { token: null });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(headersOf(page)).toEqual({ ...COMMON, "content-security-policy": PAGE_CSP, "cache-control": "no-store" });

    const script = await api("GET", "/dashboard.js", undefined, { token: null });
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toContain("text/javascript");
    // The script may be revalidated by the browser; it is the same for everyone and holds no data.
    expect(headersOf(script)).toEqual({ ...COMMON, "content-security-policy": API_CSP, "cache-control": "no-cache" });

    expectApiHeaders(await api("GET", "/metrics"), 200, "text/plain; version=0.0.4");
  });
});

describe("CORS when no origin is configured", () => {
  it("is off: no Access-Control-* header on a preflight or on a request from any origin", async () => {
    expect(env.DAA_CORS_ORIGINS).toBe("");
    for (const origin of ["https://dash.example.com", "https://evil.example", "null"]) {
      const preflight = await exports.default.fetch(
        new Request("https://mesh.test/v1/tasks", {
          method: "OPTIONS",
          headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
        }),
      );
      await preflight.arrayBuffer();
      // No route answers OPTIONS: the preflight gets the contract's 404, which a browser reads as a refusal.
      expect(preflight.status).toBe(404);
      expect([...preflight.headers.keys()].filter((h) => h.startsWith("access-control-"))).toEqual([]);
      expect(preflight.headers.get("x-frame-options")).toBe("DENY");

      const actual = await api("GET", "/v1/pools", undefined, { headers: { origin } });
      expect(actual.status).toBe(200);
      expect([...actual.headers.keys()].filter((h) => h.startsWith("access-control-"))).toEqual([]);
      expect(actual.headers.get("vary")).toBeNull();
    }
  });
});
