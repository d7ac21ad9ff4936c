/**
 * CORS with DAA_CORS_ORIGINS set (the `workerd-limits` project binds it to https://dash.example.com); the main
 * project, where it is empty, checks that CORS is off (test/security/headers.test.ts).
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

const ALLOWED = "https://dash.example.com";

async function call(method: string, path: string, headers: Record<string, string>): Promise<Response> {
  const res = await exports.default.fetch(new Request(`https://mesh.test${path}`, { method, headers }));
  await res.arrayBuffer();
  return res;
}

function preflight(origin: string, path = "/v1/tasks"): Promise<Response> {
  return call("OPTIONS", path, {
    origin,
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization, content-type",
  });
}

describe("CORS for the configured origin", () => {
  it("is configured for the dashboard origin only", () => {
    expect(env.DAA_CORS_ORIGINS).toBe(ALLOWED);
  });

  it("answers a preflight from the configured origin with the allow headers", async () => {
    for (const path of ["/v1/tasks", "/v1/pools/content/agents/a1", "/v1/audit"]) {
      const res = await preflight(ALLOWED, path);
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED);
      expect(res.headers.get("access-control-allow-methods")).toBe("GET,POST,PUT,PATCH,DELETE,OPTIONS");
      expect(res.headers.get("access-control-allow-headers")).toBe("Authorization,Content-Type");
      expect(res.headers.get("access-control-max-age")).toBe("600");
      expect(res.headers.get("access-control-allow-credentials")).toBeNull();
      expect(res.headers.get("vary")).toContain("Origin");
      // The preflight is a response like any other: it carries the security headers too.
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("x-frame-options")).toBe("DENY");
    }
  });

  it("lets the configured origin read answers, Retry-After included, and never allows credentials by cookie", async () => {
    const res = await call("GET", "/healthz", { origin: ALLOWED });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    expect(res.headers.get("access-control-expose-headers")).toBe("Retry-After");
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    expect(res.headers.get("vary")).toContain("Origin");
  });

  it("gives any other origin no allowance", async () => {
    for (const origin of ["https://evil.example", "https://dash.example.com.evil.example", "http://dash.example.com", "https://DASH.example.com", "null"]) {
      const pre = await preflight(origin);
      expect(pre.headers.get("access-control-allow-origin")).toBeNull();
      expect(pre.headers.get("access-control-allow-credentials")).toBeNull();
      expect([...pre.headers.values()].some((v) => v.includes(origin))).toBe(false);
      const res = await call("GET", "/healthz", { origin });
      expect(res.status).toBe(200);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect([...res.headers.values()].some((v) => v.includes(origin))).toBe(false);
    }
    // Without an Origin header (not a browser's cross-origin request) there is nothing to allow either.
    const plain = await call("GET", "/healthz", {});
    expect(plain.headers.get("access-control-allow-origin")).toBeNull();
  });
});
