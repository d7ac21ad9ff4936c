/**
 * The short-lived tokens of POST /v1/auth/token: HS256 JWTs signed with the keyring's current version
 * (`kid: "v<version>"`) and verified against any version the keyring holds, so a rotation keeps issued tokens valid.
 */
import { base64url, decodeProtectedHeader, errors, jwtVerify, SignJWT, type JWTPayload } from "jose";
import { ApiError } from "../../contract/errors.ts";
import { parseVersion, signingKey, strictDecoder, type Keyring } from "./keyring.ts";

/** What a token says about its bearer: the API key it came from, its tenant, roles and bound pool. */
export interface TokenClaims {
  keyId: string;
  tenant: string;
  roles: string[];
  pool: string | null;
  /** When a verified token stops being valid (ms); not an input of issueToken. */
  expiresAt?: number;
}

/** Longest token lifetime: a token outlives the revocation of its API key, so it must stay short. */
export const MAX_TOKEN_TTL_SECONDS = 900;

const ISSUER = "daa-mesh";
const AUDIENCE = "daa-mesh-api";
// A bearer credential far longer than any token we issue is rejected before any parsing or crypto.
const MAX_TOKEN_LENGTH = 8192;

function randomId(): string {
  return base64url.encode(crypto.getRandomValues(new Uint8Array(16)));
}

/**
 * Signs an HS256 JWT for `claims` with the current key version (`kid: "v<version>"`), valid from `now`
 * for `ttlSeconds` (1..900). `expiresAt` is in milliseconds since the epoch.
 */
export async function issueToken(
  keyring: Keyring,
  claims: TokenClaims,
  ttlSeconds: number,
  now: number = Date.now(),
): Promise<{ token: string; expiresAt: number }> {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TOKEN_TTL_SECONDS) {
    throw new Error(`token lifetime must be an integer from 1 to ${MAX_TOKEN_TTL_SECONDS} seconds (got ${ttlSeconds}); check DAA_TOKEN_TTL_SECONDS`);
  }
  const version = keyring.current;
  const key = await signingKey(keyring, version);
  const iat = Math.floor(now / 1000);
  const exp = iat + ttlSeconds;
  const payload: JWTPayload = { ten: claims.tenant, roles: [...claims.roles] };
  if (claims.pool !== null) payload.pool = claims.pool;
  const token = await new SignJWT(payload)
    .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: `v${version}` })
    .setSubject(claims.keyId)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(exp)
    .setJti(randomId())
    .sign(key);
  return { token, expiresAt: exp * 1000 };
}

const unauthorized = (reason: string): ApiError => new ApiError("unauthorized", reason);

/**
 * Verifies a token from {@link issueToken}: HS256 only, key chosen by `kid` among the keyring's versions,
 * issuer, audience, `exp` and `nbf` checked at `now` with no clock tolerance, claim shapes validated.
 * Every failure is an `ApiError("unauthorized")` with a short reason and no internals.
 */
export async function verifyToken(keyring: Keyring, token: string, now: number = Date.now()): Promise<TokenClaims> {
  if (token.length > MAX_TOKEN_LENGTH || !looksLikeJwt(token)) throw unauthorized("token malformed");

  let kid: string | undefined;
  let alg: string | undefined;
  try {
    ({ kid, alg } = decodeProtectedHeader(token));
  } catch {
    throw unauthorized("token malformed");
  }
  // jose checks the algorithm too; checking first means no key is even looked up for "none" or RS256.
  if (alg !== "HS256") throw unauthorized("token algorithm not allowed");
  const version = typeof kid === "string" && /^v[0-9]{1,9}$/.test(kid) ? parseVersion(kid.slice(1)) : null;
  if (version === null || !keyring.secrets.has(version)) throw unauthorized("token signing key unknown");

  const key = await signingKey(keyring, version);
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, key, {
      algorithms: ["HS256"],
      issuer: ISSUER,
      audience: AUDIENCE,
      typ: "JWT",
      currentDate: new Date(now),
      clockTolerance: 0,
      requiredClaims: ["sub", "iat", "nbf", "exp"],
    }));
  } catch (err) {
    throw unauthorized(reasonFor(err));
  }

  const { sub, ten, roles, pool } = payload;
  if (typeof sub !== "string" || sub === "" || typeof ten !== "string" || ten === "") {
    throw unauthorized("token claims invalid");
  }
  if (!Array.isArray(roles) || !roles.every((role): role is string => typeof role === "string")) {
    throw unauthorized("token claims invalid");
  }
  if (pool !== undefined && typeof pool !== "string") throw unauthorized("token claims invalid");
  return { keyId: sub, tenant: ten, roles: [...roles], pool: pool ?? null, expiresAt: typeof payload.exp === "number" ? payload.exp * 1000 : undefined };
}

function reasonFor(err: unknown): string {
  if (err instanceof errors.JWTExpired) return "token expired";
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "nbf" && err.reason === "check_failed") return "token not yet valid";
    return "token claims invalid";
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return "token signature invalid";
  if (err instanceof errors.JOSEAlgNotAllowed) return "token algorithm not allowed";
  return "token malformed";
}

/**
 * Tells a JWT from an API key without verifying it: exactly three base64url parts, the first decoding to
 * a JSON object with an `alg`. API keys (`daa.<tenant>.<id>.<secret>`) have four parts and never match.
 */
export function looksLikeJwt(credential: string): boolean {
  const parts = credential.split(".");
  if (parts.length !== 3) return false;
  const [header, payload, signature] = parts;
  if (header === undefined || payload === undefined || signature === undefined) return false;
  // The signature may be empty so that an unsigned ("alg: none") token is recognised, then refused.
  if (header === "" || payload === "" || !/^[A-Za-z0-9_-]*$/.test(parts.join(""))) return false;
  if (header.length > MAX_TOKEN_LENGTH) return false;
  try {
    const decoded: unknown = JSON.parse(strictDecoder.decode(base64url.decode(header)));
    return typeof decoded === "object" && decoded !== null && !Array.isArray(decoded) && "alg" in decoded;
  } catch {
    return false;
  }
}
