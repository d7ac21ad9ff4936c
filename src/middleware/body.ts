import type { Context } from "hono";
import { ApiError } from "../../contract/errors.ts";
import { jsonDepth, MAX_JSON_DEPTH } from "../../contract/json.ts";

/** Bodies over 10 MiB get 413 (API.md, "Conventions"); payloads and results over 128 KiB go to R2 (docs/payloads.md). */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

/**
 * Reads a JSON body within the size limit, counting bytes as they stream so a body without Content-Length
 * cannot get past it. An empty body reads as `{}` (every field optional then takes its default).
 */
export async function readJsonBody(c: Context): Promise<unknown> {
  const declared = c.req.header("content-length");
  if (declared !== undefined && Number(declared) > MAX_BODY_BYTES) throw tooLarge();
  const stream = c.req.raw.body;
  if (stream === null) return {};
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ApiError("invalid_request", "the request body is not valid UTF-8", [{ field: "(body)", message: "expected UTF-8 text" }]);
  }
  if (text.trim() === "") return {};
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
  } catch {
    throw new ApiError("invalid_request", "the request body is not valid JSON", [{ field: "(body)", message: "expected a JSON document" }]);
  }
  if (jsonDepth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw new ApiError("invalid_request", `the request body nests deeper than ${MAX_JSON_DEPTH} levels`, [
      { field: "(body)", message: `at most ${MAX_JSON_DEPTH} levels of nested objects and arrays` },
    ]);
  }
  return body;
}

function tooLarge(): ApiError {
  return new ApiError("payload_too_large", `the request body is over ${MAX_BODY_BYTES} bytes`);
}
