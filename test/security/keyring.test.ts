import fc from "fast-check";
import { base64url, SignJWT } from "jose";
import { describe, expect, it } from "vitest";

import { decryptField, encryptField, keyringFromEnv, type Keyring } from "../../lib/security/keyring";
import { issueToken, looksLikeJwt, verifyToken, type TokenClaims } from "../../lib/security/tokens";
import { ApiError } from "../../contract/errors";

const SECRET_V1 = "first-master-secret-0123456789";
const SECRET_V2 = "second-master-secret-0123456789";
const OTHER_SECRET = "an-unrelated-master-secret-000";

const ringV1: Keyring = { current: 1, secrets: new Map([[1, SECRET_V1]]) };
const ringV2WithV1: Keyring = { current: 2, secrets: new Map([[2, SECRET_V2], [1, SECRET_V1]]) };
const ringV2Only: Keyring = { current: 2, secrets: new Map([[2, SECRET_V2]]) };
const ringOtherSecret: Keyring = { current: 1, secrets: new Map([[1, OTHER_SECRET]]) };

const CLAIMS: TokenClaims = { keyId: "key_123", tenant: "acme", roles: ["client", "auditor"], pool: null };
const AGENT_CLAIMS: TokenClaims = { keyId: "key_456", tenant: "acme", roles: ["agent"], pool: "neural" };
// A whole second, so that iat/nbf/exp (seconds) line up exactly with it.
const T0 = Date.UTC(2026, 10, 20, 12, 0, 0);

const utf8 = new TextEncoder();

function encodeJson(value: unknown): string {
  return base64url.encode(JSON.stringify(value));
}

function decodeJson(part: string): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(base64url.decode(part))) as Record<string, unknown>;
}

function splitToken(token: string): [string, string, string] {
  const [header, payload, signature] = token.split(".");
  if (header === undefined || payload === undefined || signature === undefined) throw new Error("not a JWT");
  return [header, payload, signature];
}

/** Derives the raw key bytes the way the spec says, independently of the module under test. */
async function specKeyBytes(secret: string, info: string): Promise<Uint8Array> {
  const base = await crypto.subtle.importKey("raw", utf8.encode(secret), "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: utf8.encode("daa-mesh/v1"), info: utf8.encode(info) },
    base,
    256,
  );
  return new Uint8Array(bits);
}

function validPayload(iat = T0 / 1000): Record<string, unknown> {
  return { sub: "key_123", ten: "acme", roles: ["admin"], iss: "daa-mesh", aud: "daa-mesh-api", iat, nbf: iat, exp: iat + 600, jti: "x" };
}

/** Asserts the promise rejects with ApiError("unauthorized") and returns its message. */
async function rejection(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    const apiError = err as ApiError;
    expect(apiError.code).toBe("unauthorized");
    expect(apiError.status).toBe(401);
    return apiError.message;
  }
  throw new Error("expected a rejection");
}

describe("encryption at rest", () => {
  it("round-trips a field", async () => {
    const plaintext = JSON.stringify({ prompt: "hello", n: 3 });
    const envelope = await encryptField(ringV1, "acme", "payload", plaintext);
    expect(envelope).toMatch(/^e1\.1\.[A-Za-z0-9_-]+$/);
    await expect(decryptField(ringV1, "acme", "payload", envelope)).resolves.toBe(plaintext);
  });

  it("round-trips the empty string", async () => {
    const envelope = await encryptField(ringV1, "acme", "result", "");
    await expect(decryptField(ringV1, "acme", "result", envelope)).resolves.toBe("");
  });

  it("keeps a leading byte order mark and other edge characters", async () => {
    for (const text of ["\uFEFFwith BOM", "\u0000nul", "emoji 👩‍💻", "a\nb\r\n"]) {
      const envelope = await encryptField(ringV1, "acme", "payload", text);
      await expect(decryptField(ringV1, "acme", "payload", envelope)).resolves.toBe(text);
    }
  });

  it("uses a fresh IV: the same plaintext encrypts differently each time", async () => {
    const a = await encryptField(ringV1, "acme", "payload", "same text");
    const b = await encryptField(ringV1, "acme", "payload", "same text");
    expect(a).not.toBe(b);
    expect(a.split(".")[2]?.slice(0, 16)).not.toBe(b.split(".")[2]?.slice(0, 16));
  });

  it("does not reveal the plaintext in the envelope", async () => {
    const plaintext = "very-secret-customer-prompt-text";
    const envelope = await encryptField(ringV1, "acme", "payload", plaintext);
    expect(envelope).not.toContain(plaintext);
    expect(envelope).not.toContain(base64url.encode(plaintext).slice(0, 12));
  });

  it("produces what the spec describes: e1.<version>.base64url(iv || ciphertext || tag), HKDF info per tenant, AAD tenant\\nfield", async () => {
    const envelope = await encryptField(ringV1, "acme", "result", "spec check");
    const packed = base64url.decode(envelope.split(".")[2] ?? "");
    expect(packed.length).toBe(12 + "spec check".length + 16);
    const raw = await specKeyBytes(SECRET_V1, "payload-aes256gcm:acme");
    const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["decrypt"]);
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: packed.subarray(0, 12), additionalData: utf8.encode("acme\nresult") },
      key,
      packed.subarray(12),
    );
    expect(new TextDecoder().decode(plain)).toBe("spec check");
  });

  it("binds the ciphertext to its tenant and field (AAD)", async () => {
    const envelope = await encryptField(ringV1, "acme", "payload", "tenant data");
    await expect(decryptField(ringV1, "globex", "payload", envelope)).rejects.toThrow(/failed authentication/);
    await expect(decryptField(ringV1, "acme", "result", envelope)).rejects.toThrow(/failed authentication/);
  });

  it("detects any flipped byte of the ciphertext, IV or tag", async () => {
    const envelope = await encryptField(ringV1, "acme", "payload", "do not tamper with me");
    const [prefix, version, body] = envelope.split(".");
    const packed = base64url.decode(body ?? "");
    for (const index of [0, 11, 12, 20, packed.length - 1]) {
      const altered = packed.slice();
      altered[index] = (altered[index] ?? 0) ^ 0x01;
      const tampered = `${prefix}.${version}.${base64url.encode(altered)}`;
      await expect(decryptField(ringV1, "acme", "payload", tampered)).rejects.toThrow(/failed authentication/);
    }
  });

  it("refuses malformed envelopes", async () => {
    const good = await encryptField(ringV1, "acme", "payload", "x");
    const body = good.split(".")[2] ?? "";
    for (const bad of ["", "plain text", `e2.1.${body}`, `e1.0.${body}`, `e1.x.${body}`, `e1.1.${body}.extra`, "e1.1.", "e1.1.AAAA", `e1.1.${body}+`]) {
      await expect(decryptField(ringV1, "acme", "payload", bad)).rejects.toThrow(/malformed/);
    }
  });

  it("fails when the master key of the version is wrong", async () => {
    const envelope = await encryptField(ringV1, "acme", "payload", "x");
    await expect(decryptField(ringOtherSecret, "acme", "payload", envelope)).rejects.toThrow(/failed authentication/);
  });

  it("decrypt(encrypt(x)) = x for arbitrary unicode text up to a few KB", async () => {
    // Without `size: "max"` fast-check keeps strings to a few characters; mix both so short and long occur.
    const text = fc.oneof(fc.string({ unit: "binary", maxLength: 40 }), fc.string({ unit: "binary", maxLength: 4000, size: "max" }));
    await fc.assert(
      fc.asyncProperty(text, fc.constantFrom<"payload" | "result">("payload", "result"), async (text, field) => {
        const envelope = await encryptField(ringV1, "tenant-α", field, text);
        expect(await decryptField(ringV1, "tenant-α", field, envelope)).toBe(text);
      }),
      { numRuns: 100 },
    );
  });
});

describe("key rotation", () => {
  it("keeps old envelopes readable after a rotation and encrypts new ones with the new version", async () => {
    const old = await encryptField(ringV1, "acme", "payload", "written before rotation");
    expect(old.startsWith("e1.1.")).toBe(true);

    await expect(decryptField(ringV2WithV1, "acme", "payload", old)).resolves.toBe("written before rotation");
    const fresh = await encryptField(ringV2WithV1, "acme", "payload", "written after rotation");
    expect(fresh.startsWith("e1.2.")).toBe(true);
    await expect(decryptField(ringV2WithV1, "acme", "payload", fresh)).resolves.toBe("written after rotation");
    await expect(decryptField(ringV2Only, "acme", "payload", fresh)).resolves.toBe("written after rotation");
  });

  it("explains how to fix an envelope whose key version is missing", async () => {
    const old = await encryptField(ringV1, "acme", "payload", "orphan");
    await expect(decryptField(ringV2Only, "acme", "payload", old)).rejects.toThrow(/version 1 .*DAA_PREVIOUS_MASTER_KEYS/);
  });

  it("refuses to encrypt with a keyring that lacks its current version", async () => {
    const broken: Keyring = { current: 3, secrets: new Map([[1, SECRET_V1]]) };
    await expect(encryptField(broken, "acme", "payload", "x")).rejects.toThrow(/version 3/);
  });
});

describe("tokens", () => {
  it("round-trips the claims, with the header and registered claims of the spec", async () => {
    const { token, expiresAt } = await issueToken(ringV1, CLAIMS, 900, T0);
    expect(expiresAt).toBe(T0 + 900_000);
    expect(looksLikeJwt(token)).toBe(true);
    await expect(verifyToken(ringV1, token, T0)).resolves.toEqual({ ...CLAIMS, expiresAt: T0 + 900_000 });
    await expect(verifyToken(ringV1, token, T0 + 899_999)).resolves.toEqual({ ...CLAIMS, expiresAt: T0 + 900_000 });

    const [header, payload] = splitToken(token);
    expect(decodeJson(header)).toEqual({ alg: "HS256", typ: "JWT", kid: "v1" });
    const body = decodeJson(payload);
    expect(body).toMatchObject({ sub: "key_123", ten: "acme", roles: ["client", "auditor"], iss: "daa-mesh", aud: "daa-mesh-api" });
    expect(body.iat).toBe(T0 / 1000);
    expect(body.nbf).toBe(T0 / 1000);
    expect(body.exp).toBe(T0 / 1000 + 900);
    expect(typeof body.jti).toBe("string");
    expect("pool" in body).toBe(false);
  });

  it("carries the pool of an agent key", async () => {
    const { token } = await issueToken(ringV1, AGENT_CLAIMS, 60, T0);
    expect(decodeJson(splitToken(token)[1]).pool).toBe("neural");
    await expect(verifyToken(ringV1, token, T0)).resolves.toEqual({ ...AGENT_CLAIMS, expiresAt: T0 + 60_000 });
  });

  it("gives each token its own jti", async () => {
    const a = await issueToken(ringV1, CLAIMS, 60, T0);
    const b = await issueToken(ringV1, CLAIMS, 60, T0);
    expect(decodeJson(splitToken(a.token)[1]).jti).not.toBe(decodeJson(splitToken(b.token)[1]).jti);
  });

  it("rejects an expired token", async () => {
    const { token } = await issueToken(ringV1, CLAIMS, 60, T0);
    expect(await rejection(verifyToken(ringV1, token, T0 + 60_000))).toBe("token expired");
    expect(await rejection(verifyToken(ringV1, token, T0 + 3_600_000))).toBe("token expired");
  });

  it("rejects a token that is not yet valid", async () => {
    const { token } = await issueToken(ringV1, CLAIMS, 60, T0);
    expect(await rejection(verifyToken(ringV1, token, T0 - 1000))).toBe("token not yet valid");
  });

  it("rejects a token signed with another master key", async () => {
    const { token } = await issueToken(ringOtherSecret, CLAIMS, 60, T0);
    expect(await rejection(verifyToken(ringV1, token, T0))).toBe("token signature invalid");
  });

  it("derives the signing key as the spec says (HKDF-SHA256, info jwt-hs256)", async () => {
    const raw = await specKeyBytes(SECRET_V1, "jwt-hs256");
    const token = await new SignJWT({ ten: "acme", roles: ["client"] })
      .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: "v1" })
      .setSubject("key_1")
      .setIssuer("daa-mesh")
      .setAudience("daa-mesh-api")
      .setIssuedAt(T0 / 1000)
      .setNotBefore(T0 / 1000)
      .setExpirationTime(T0 / 1000 + 60)
      .sign(raw);
    await expect(verifyToken(ringV1, token, T0)).resolves.toEqual({ keyId: "key_1", tenant: "acme", roles: ["client"], pool: null, expiresAt: T0 + 60_000 });
  });

  it("rejects an unsigned alg:none token", async () => {
    const token = `${encodeJson({ alg: "none", typ: "JWT", kid: "v1" })}.${encodeJson(validPayload())}.`;
    expect(looksLikeJwt(token)).toBe(true);
    expect(await rejection(verifyToken(ringV1, token, T0))).toBe("token algorithm not allowed");
    // The same with a signature part that is not empty.
    expect(await rejection(verifyToken(ringV1, `${token}AAAA`, T0))).toBe("token algorithm not allowed");
  });

  it("rejects HS512, even when signed with the right key bytes", async () => {
    const raw = await specKeyBytes(SECRET_V1, "jwt-hs256");
    const token = await new SignJWT({ ten: "acme", roles: ["admin"] })
      .setProtectedHeader({ alg: "HS512", typ: "JWT", kid: "v1" })
      .setSubject("key_123")
      .setIssuer("daa-mesh")
      .setAudience("daa-mesh-api")
      .setIssuedAt(T0 / 1000)
      .setNotBefore(T0 / 1000)
      .setExpirationTime(T0 / 1000 + 60)
      .sign(raw);
    expect(await rejection(verifyToken(ringV1, token, T0))).toBe("token algorithm not allowed");
  });

  it("rejects an RS256-looking token", async () => {
    const token = `${encodeJson({ alg: "RS256", typ: "JWT", kid: "v1" })}.${encodeJson(validPayload())}.${base64url.encode(new Uint8Array(256))}`;
    expect(await rejection(verifyToken(ringV1, token, T0))).toBe("token algorithm not allowed");
  });

  it("rejects a token whose payload was altered after signing", async () => {
    const { token } = await issueToken(ringV1, CLAIMS, 60, T0);
    const [header, payload, signature] = splitToken(token);
    const altered = { ...decodeJson(payload), roles: ["admin"] };
    const forged = `${header}.${encodeJson(altered)}.${signature}`;
    expect(await rejection(verifyToken(ringV1, forged, T0))).toBe("token signature invalid");
    const otherTenant = `${header}.${encodeJson({ ...decodeJson(payload), ten: "globex" })}.${signature}`;
    expect(await rejection(verifyToken(ringV1, otherTenant, T0))).toBe("token signature invalid");
  });

  it("rejects a token whose signature was altered", async () => {
    const { token } = await issueToken(ringV1, CLAIMS, 60, T0);
    const [header, payload, signature] = splitToken(token);
    const flipped = (signature[0] === "A" ? "B" : "A") + signature.slice(1);
    expect(await rejection(verifyToken(ringV1, `${header}.${payload}.${flipped}`, T0))).toBe("token signature invalid");
  });

  it("rejects an unknown or malformed kid", async () => {
    const { token } = await issueToken(ringV2Only, CLAIMS, 60, T0);
    expect(await rejection(verifyToken(ringV1, token, T0))).toBe("token signing key unknown");

    const [, payload, signature] = splitToken(token);
    for (const header of [{ alg: "HS256", typ: "JWT" }, { alg: "HS256", typ: "JWT", kid: "1" }, { alg: "HS256", typ: "JWT", kid: "v01x" }, { alg: "HS256", typ: "JWT", kid: 1 }]) {
      expect(await rejection(verifyToken(ringV1, `${encodeJson(header)}.${payload}.${signature}`, T0))).toBe("token signing key unknown");
    }
  });

  it("verifies tokens of the previous key version after a rotation, until the old key is dropped", async () => {
    const { token } = await issueToken(ringV1, CLAIMS, 300, T0);
    await expect(verifyToken(ringV2WithV1, token, T0 + 1000)).resolves.toEqual({ ...CLAIMS, expiresAt: T0 + 300_000 });
    expect(await rejection(verifyToken(ringV2Only, token, T0 + 1000))).toBe("token signing key unknown");

    const { token: fresh } = await issueToken(ringV2WithV1, CLAIMS, 300, T0);
    expect(decodeJson(splitToken(fresh)[0]).kid).toBe("v2");
    await expect(verifyToken(ringV2Only, fresh, T0)).resolves.toEqual({ ...CLAIMS, expiresAt: T0 + 300_000 });
  });

  it("rejects wrong issuer, audience, claim shapes and missing claims, signed with the right key", async () => {
    const raw = await specKeyBytes(SECRET_V1, "jwt-hs256");
    const sign = (payload: Record<string, unknown>): Promise<string> =>
      new SignJWT(payload).setProtectedHeader({ alg: "HS256", typ: "JWT", kid: "v1" }).sign(raw);
    const cases: Record<string, unknown>[] = [
      { ...validPayload(), iss: "someone-else" },
      { ...validPayload(), aud: "other-api" },
      { ...validPayload(), roles: "admin" },
      { ...validPayload(), roles: ["admin", 7] },
      { ...validPayload(), ten: 42 },
      { ...validPayload(), sub: "" },
      { ...validPayload(), pool: 12 },
      { ...validPayload(), pool: null },
      { ...validPayload(), exp: undefined },
      { ...validPayload(), nbf: undefined },
      { ...validPayload(), exp: "tomorrow" },
    ];
    for (const payload of cases) {
      const message = await rejection(verifyToken(ringV1, await sign(payload), T0));
      expect(message).toMatch(/^token (claims invalid|malformed)$/);
    }
    // A good one signed the same way passes, so the cases above fail for the reason they test.
    await expect(verifyToken(ringV1, await sign(validPayload()), T0)).resolves.toMatchObject({ tenant: "acme" });
  });

  it("rejects garbage and API keys as malformed", async () => {
    for (const credential of ["", "abc", "a.b.c", "daa.acme.key_1.s3cr3t", "....", `${encodeJson({ typ: "JWT" })}.e30.sig`, "x".repeat(10_000)]) {
      expect(await rejection(verifyToken(ringV1, credential, T0))).toBe("token malformed");
    }
  });

  it("refuses a lifetime outside 1..900 seconds", async () => {
    await expect(issueToken(ringV1, CLAIMS, 901, T0)).rejects.toThrow(/1 to 900/);
    await expect(issueToken(ringV1, CLAIMS, 0, T0)).rejects.toThrow(/1 to 900/);
    await expect(issueToken(ringV1, CLAIMS, 1.5, T0)).rejects.toThrow(/1 to 900/);
    await expect(issueToken(ringV1, CLAIMS, Number.NaN, T0)).rejects.toThrow(/1 to 900/);
  });
});

describe("looksLikeJwt", () => {
  it("tells JWTs from API keys and other strings", async () => {
    const { token } = await issueToken(ringV1, CLAIMS, 60, T0);
    expect(looksLikeJwt(token)).toBe(true);
    expect(looksLikeJwt("daa.acme.key_1.c2VjcmV0")).toBe(false);
    expect(looksLikeJwt("daa.default.k1.secret-part")).toBe(false);
    expect(looksLikeJwt("local-dev-admin-key-change-me")).toBe(false);
    expect(looksLikeJwt("a.b.c")).toBe(false);
    expect(looksLikeJwt(`${encodeJson({ typ: "JWT" })}.e30.sig`)).toBe(false);
    expect(looksLikeJwt(`${encodeJson(["alg"])}.e30.sig`)).toBe(false);
    expect(looksLikeJwt(`${encodeJson({ alg: "HS256" })}.e30.si+g`)).toBe(false);
    expect(looksLikeJwt(`${encodeJson({ alg: "HS256" })}..sig`)).toBe(false);
  });
});

describe("keyringFromEnv", () => {
  it("parses the current key, its version and the previous keys, tolerating whitespace", () => {
    const ring = keyringFromEnv({
      DAA_MASTER_KEY: SECRET_V2 + "3",
      DAA_KEY_VERSION: " 3 ",
      DAA_PREVIOUS_MASTER_KEYS: ` 1 = ${SECRET_V1} ,2=${SECRET_V2}=, `,
    });
    expect(ring.current).toBe(3);
    expect([...ring.secrets.entries()].sort(([a], [b]) => a - b)).toEqual([
      [1, SECRET_V1],
      [2, `${SECRET_V2}=`],
      [3, SECRET_V2 + "3"],
    ]);
  });

  it("defaults the version to 1 and needs no previous keys", () => {
    const ring = keyringFromEnv({ DAA_MASTER_KEY: SECRET_V1 });
    expect(ring.current).toBe(1);
    expect([...ring.secrets.entries()]).toEqual([[1, SECRET_V1]]);
    expect(keyringFromEnv({ DAA_MASTER_KEY: SECRET_V1, DAA_KEY_VERSION: "1", DAA_PREVIOUS_MASTER_KEYS: "" }).secrets.size).toBe(1);
  });

  it("memoizes per combination of variables", () => {
    const env = { DAA_MASTER_KEY: SECRET_V1, DAA_KEY_VERSION: "1" };
    expect(keyringFromEnv(env)).toBe(keyringFromEnv({ ...env }));
    expect(keyringFromEnv(env)).not.toBe(keyringFromEnv({ ...env, DAA_MASTER_KEY: OTHER_SECRET }));
  });

  it("works with the keys derived from it end to end", async () => {
    const before = keyringFromEnv({ DAA_MASTER_KEY: SECRET_V1, DAA_KEY_VERSION: "1" });
    const after = keyringFromEnv({ DAA_MASTER_KEY: SECRET_V2, DAA_KEY_VERSION: "2", DAA_PREVIOUS_MASTER_KEYS: `1=${SECRET_V1}` });
    const envelope = await encryptField(before, "acme", "payload", "kept");
    await expect(decryptField(after, "acme", "payload", envelope)).resolves.toBe("kept");
    const { token } = await issueToken(before, CLAIMS, 60, T0);
    await expect(verifyToken(after, token, T0)).resolves.toEqual({ ...CLAIMS, expiresAt: T0 + 60_000 });
  });

  it("refuses a short master key, naming the variable and not the secret", () => {
    expect(() => keyringFromEnv({ DAA_MASTER_KEY: "too-short" })).toThrow(/DAA_MASTER_KEY must be at least 16 characters/);
    expect(() => keyringFromEnv({ DAA_MASTER_KEY: "" })).toThrow(/DAA_MASTER_KEY/);
    expect(() => keyringFromEnv({ DAA_MASTER_KEY: "               a" })).toThrow(/DAA_MASTER_KEY/);
    try {
      keyringFromEnv({ DAA_MASTER_KEY: "too-short" });
    } catch (err) {
      expect(err).not.toBeInstanceOf(ApiError);
      expect((err as Error).message).not.toContain("too-short");
    }
  });

  it("refuses a bad key version", () => {
    for (const version of ["0", "-1", "abc", "1.5", "2x"]) {
      expect(() => keyringFromEnv({ DAA_MASTER_KEY: SECRET_V1, DAA_KEY_VERSION: version })).toThrow(/DAA_KEY_VERSION must be a positive integer/);
    }
  });

  it("refuses a malformed previous-keys list", () => {
    const bad: [string, RegExp][] = [
      [SECRET_V1, /must look like "<version>=<secret>"/],
      [`x=${SECRET_V1}`, /version before "=" must be a positive integer/],
      [`=${SECRET_V1}`, /version before "=" must be a positive integer/],
      [`0=${SECRET_V1}`, /version before "=" must be a positive integer/],
      [`3=${SECRET_V1}`, /version 3 must be lower than DAA_KEY_VERSION \(3\)/],
      [`4=${SECRET_V1}`, /must be lower than DAA_KEY_VERSION/],
      [`1=${SECRET_V1},1=${SECRET_V2}`, /entry 2: version 1 appears more than once/],
      ["1=short", /secret of version 1 must be at least 16 characters/],
    ];
    for (const [previous, message] of bad) {
      let thrown: unknown;
      try {
        keyringFromEnv({ DAA_MASTER_KEY: OTHER_SECRET, DAA_KEY_VERSION: "3", DAA_PREVIOUS_MASTER_KEYS: previous });
      } catch (err) {
        thrown = err;
      }
      expect(thrown, previous).toBeInstanceOf(Error);
      const text = (thrown as Error).message;
      expect(text).toContain("DAA_PREVIOUS_MASTER_KEYS");
      expect(text).toMatch(message);
      expect(text).not.toContain(SECRET_V1);
    }
  });
});
