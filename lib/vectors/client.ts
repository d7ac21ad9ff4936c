/**
 * Vector indexes from the Worker's side (API.md, "Caches and vector indexes"; docs/indexes.md): the routes of
 * src/routes/indexes.ts and the semantic cache call these functions. An index belongs to a tenant; the tenant's
 * registry object knows its settings and parts, and each vector lives in the part its id hash names. Writes follow
 * the parts' redirects (a part that has split answers moved, one being split busy, a full one is split here and
 * the write sent again); queries fan out over every part and merge the answers, best first.
 *
 * @example
 * await ensureIndex(env, "acme", "docs", { dimensions: 384, metric: "cosine", precision: "int8" });
 * await upsertVectors(env, "acme", "docs", [{ id: "a", values: embedding, metadata: { type: "faq" } }]);
 * const matches = await queryIndex(env, "acme", "docs", query, 5, { type: "faq" });
 */
import { ApiError, unwrap, type FieldProblem, type Outcome } from "../../contract/errors.ts";
import {
  idHash, MAX_METADATA_BYTES, MAX_TOP_K, MAX_UPSERT, MAX_VECTOR_ID, PART_BYTES, partFor, partName, registryName,
  type IndexRecord, type IndexSettings, type Match, type Metadata, type MetadataFilter, type PartRef, type StoredVector, type WriteAnswer,
} from "../../contract/index-rpc.ts";
import { componentsProblem, mergeMatches, unitVector } from "./rank.ts";

type IndexEnv = Pick<Env, "VECTOR_INDEX">;

/** What the API shows of an index. */
export interface IndexView extends IndexSettings {
  index: string;
  vectors: number;
}

/** A vector as callers give it: `values` are checked here (length, finite numbers), `metadata` defaults to `{}`. */
export interface VectorInput {
  id: string;
  values: ArrayLike<unknown>;
  metadata?: Metadata;
}

/** How long a write waits, in all, for parts that are being split before it gives up (409). */
const BUSY_DEADLINE_MS = 15_000;
/** Redirects one write follows at most (each split or re-route is one). */
const MAX_ROUNDS = 64;
/** Times a query reads the registry again because a part split meanwhile. */
const MAX_QUERY_ROUNDS = 4;
/** Problems named in one 400 answer. */
const MAX_PROBLEMS = 20;

/**
 * Test hook, only with the variable DAA_TEST_HOOKS = "1" (tests; never set in production): the header
 * `x-daa-test-part-bytes: n` on `PUT /v1/indexes/:index` gives the new index parts of n bytes instead of 32 MiB,
 * so that splits happen with a few vectors.
 */
export const TEST_PART_BYTES_HEADER = "x-daa-test-part-bytes";

export function testPartBytes(env: object, request: Request): number | undefined {
  if ((env as { DAA_TEST_HOOKS?: string }).DAA_TEST_HOOKS !== "1") return undefined;
  const value = Number(request.headers.get(TEST_PART_BYTES_HEADER) ?? NaN);
  return Number.isInteger(value) && value > 0 ? value : undefined;
}

const registry = (env: IndexEnv, tenant: string) => env.VECTOR_INDEX.getByName(registryName(tenant));
const refOf = (record: IndexRecord, prefix: number): PartRef => ({
  tenant: record.tenant,
  index: record.index,
  incarnation: record.incarnation,
  prefix,
  dimensions: record.dimensions,
  metric: record.metric,
  precision: record.precision,
  partBytes: record.partBytes,
});
const partOf = (env: IndexEnv, ref: PartRef) => env.VECTOR_INDEX.getByName(partName(ref));

/**
 * Index records this isolate read lately, so that a query or a write costs one call to the index's parts and none
 * to the tenant's registry. A stale record is noticed, never trusted: a part that has split further answers a
 * deeper depth than the record lists (queries) or `moved` (writes), and a part of a deleted index answers 404;
 * each makes the call read the registry again and start over.
 */
const RECORD_TTL_MS = 30_000;
const MAX_RECORDS = 1000;
const records = new Map<string, { record: IndexRecord; at: number }>();

/** A part of the record the call used is gone: the index was deleted (or deleted and made again) since. */
class StaleRecord extends Error {}

async function recordOf(env: IndexEnv, tenant: string, index: string, fresh: boolean): Promise<IndexRecord> {
  const key = `${tenant}/${index}`;
  const hit = records.get(key);
  if (!fresh && hit && Date.now() - hit.at < RECORD_TTL_MS) return hit.record;
  const record = await registry(env, tenant).getIndex(index);
  records.delete(key);
  if (!record) throw new ApiError("not_found", `no index ${index}`);
  if (records.size >= MAX_RECORDS) records.delete(records.keys().next().value!);
  records.set(key, { record, at: Date.now() });
  return record;
}

/** Runs `fn` with the index's record (the cached one first; a fresh one when that turns out to be stale). */
async function withRecord<T>(env: IndexEnv, tenant: string, index: string, fn: (record: IndexRecord) => Promise<T>): Promise<T> {
  try {
    return await fn(await recordOf(env, tenant, index, false));
  } catch (err) {
    if (!(err instanceof StaleRecord)) throw err;
  }
  try {
    return await fn(await recordOf(env, tenant, index, true));
  } catch (err) {
    if (err instanceof StaleRecord) throw new ApiError("not_found", `no index ${index}`);
    throw err;
  }
}

/** An outcome of a part call; a 404 (the part is gone with its index) as StaleRecord. */
function fromPart<T>(outcome: Outcome<T>): T {
  if (!outcome.ok && outcome.error.code === "not_found") throw new StaleRecord(outcome.error.message);
  return unwrap(outcome);
}

/** Creates the index (`created: true`) or finds it with the same settings; 409 when it exists with others. */
export async function ensureIndex(env: IndexEnv, tenant: string, index: string, settings: IndexSettings, { partBytes = PART_BYTES }: { partBytes?: number } = {}): Promise<{ created: boolean; index: IndexView }> {
  const { created, record } = unwrap(await registry(env, tenant).createIndex(tenant, index, settings, partBytes, Date.now()));
  // Part 0 is made on every call: a creation cut short after the registry's answer is completed by a repeat.
  await partOf(env, refOf(record, 0)).initPart(refOf(record, 0), 0, "active");
  records.delete(`${tenant}/${index}`);
  return { created, index: created ? viewOf(record, 0) : await view(env, record) };
}

/** The index's record; 404 when the tenant has no such index. */
export async function findIndex(env: IndexEnv, tenant: string, index: string): Promise<IndexRecord> {
  return recordOf(env, tenant, index, true);
}

export async function listIndexes(env: IndexEnv, tenant: string): Promise<IndexView[]> {
  const records = await registry(env, tenant).listIndexes();
  return Promise.all(records.map((r) => view(env, r)));
}

/** The index with its vector count (the sum over its parts). */
export async function describeIndex(env: IndexEnv, tenant: string, index: string): Promise<IndexView> {
  return view(env, await findIndex(env, tenant, index));
}

/** Removes the index and its vectors; 404 when there is none. */
export async function deleteIndex(env: IndexEnv, tenant: string, index: string): Promise<void> {
  records.delete(`${tenant}/${index}`);
  unwrap(await registry(env, tenant).removeIndex(index, Date.now()));
}

/**
 * Inserts or replaces vectors (at most 1000; a repeated id: the last one wins); answers how many. All of them are
 * checked first: a 400 names each bad vector (`details[].field` = `vectors.<position>...`, the message its id) and
 * changes nothing.
 */
export async function upsertVectors(env: IndexEnv, tenant: string, index: string, vectors: readonly VectorInput[]): Promise<number> {
  return withRecord(env, tenant, index, async (record) => {
    const stored = checkVectors(vectors, record.dimensions);
    const counts = await write(env, record, stored, (stub, ref, items) => stub.upsert(ref, items));
    return counts.reduce((a, b) => a + b, 0);
  });
}

/** Deletes one vector; 404 when the index has no vector of that id. */
export async function deleteVector(env: IndexEnv, tenant: string, index: string, id: string): Promise<void> {
  const one: StoredVector = { id, hash: idHash(id), values: new Float32Array(0), metadata: "{}" };
  const [deleted] = await withRecord(env, tenant, index, (record) => write(env, record, [one], (stub, ref, items) => stub.deleteVector(ref, items[0]!.id, items[0]!.hash)));
  if (!deleted) throw new ApiError("not_found", `no vector ${id} in index ${index}`);
}

/**
 * The `topK` (1-100) vectors most similar to `vector` by cosine, best first, among those whose metadata passes
 * `filter` (applied before ranking: `topK` matches whenever that many pass).
 */
export async function queryIndex(env: IndexEnv, tenant: string, index: string, vector: ArrayLike<unknown>, topK: number, filter: MetadataFilter | null = null): Promise<Match[]> {
  return withRecord(env, tenant, index, async (first) => {
    let record = first;
    for (let round = 0; round < MAX_QUERY_ROUNDS; round++) {
      if (!Number.isInteger(topK) || topK < 1 || topK > MAX_TOP_K) throw invalid([{ field: "topK", message: `must be an integer from 1 to ${MAX_TOP_K}` }]);
      const problem = valuesProblem(vector, record.dimensions);
      if (problem) throw invalid([{ field: "vector", message: `the query vector ${problem}` }]);
      const query = unitVector(vector as ArrayLike<number>).f64;
      const current = record;
      const answers = await Promise.all(
        current.parts.map(async ({ prefix }) => {
          const ref = refOf(current, prefix);
          // Metadata is free-form JSON, which the RPC types cannot name: the part answers Match[].
          return fromPart((await partOf(env, ref).query(ref, query, topK, filter)) as Outcome<{ matches: Match[]; depth: number }>);
        }),
      );
      // A part deeper than the record says has split since: its new part is missing from this record's list.
      if (answers.every((a, i) => a.depth === current.parts[i]!.depth)) return mergeMatches(answers.map((a) => a.matches), topK);
      record = await recordOf(env, tenant, index, true);
    }
    throw new ApiError("conflict", `index ${index} is being reorganised (a part is splitting); try again`);
  });
}


/** Unit-length float32 copies of the vectors, ready for their parts; 400 naming every bad one (up to 20). */
export function checkVectors(vectors: readonly VectorInput[], dimensions: number): StoredVector[] {
  if (vectors.length > MAX_UPSERT) throw invalid([{ field: "vectors", message: `${vectors.length} vectors; at most ${MAX_UPSERT} per call` }]);
  const problems: FieldProblem[] = [];
  const stored = vectors.map((v, i): StoredVector | null => {
    const name = `vector ${i} (${JSON.stringify(String(v.id).slice(0, MAX_VECTOR_ID))})`;
    if (typeof v.id !== "string" || v.id.length < 1 || v.id.length > MAX_VECTOR_ID) {
      problems.push({ field: `vectors.${i}.id`, message: `${name}: an id is 1-${MAX_VECTOR_ID} characters` });
      return null;
    }
    const problem = valuesProblem(v.values, dimensions);
    if (problem) {
      problems.push({ field: `vectors.${i}.values`, message: `${name} ${problem}` });
      return null;
    }
    const metadata = v.metadata ?? {};
    if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
      problems.push({ field: `vectors.${i}.metadata`, message: `${name}: metadata is a JSON object` });
      return null;
    }
    const text = JSON.stringify(metadata);
    const bytes = new TextEncoder().encode(text).length;
    if (bytes > MAX_METADATA_BYTES) {
      problems.push({ field: `vectors.${i}.metadata`, message: `${name} has ${bytes} bytes of metadata (as JSON); at most ${MAX_METADATA_BYTES}` });
      return null;
    }
    return { id: v.id, hash: idHash(v.id), values: unitVector(v.values as ArrayLike<number>).f32, metadata: text };
  });
  if (problems.length > 0) {
    const more = problems.length > MAX_PROBLEMS ? ` (the first ${MAX_PROBLEMS} of ${problems.length} are listed)` : "";
    throw new ApiError("invalid_request", `${problems.length} of the vectors are not valid; nothing was written${more}`, problems.slice(0, MAX_PROBLEMS));
  }
  return stored as StoredVector[];
}

/** What is wrong with a vector's values for an index of `dimensions`, or null. */
function valuesProblem(values: ArrayLike<unknown>, dimensions: number): string | null {
  if (values === null || typeof values !== "object" || typeof values.length !== "number") return "has no values array";
  if (values.length !== dimensions) return `has ${values.length} values; the index has ${dimensions} dimensions`;
  return componentsProblem(values);
}

function invalid(problems: FieldProblem[]): ApiError {
  return new ApiError("invalid_request", problems.map((p) => `${p.field}: ${p.message}`).join("; "), problems);
}

async function view(env: IndexEnv, record: IndexRecord): Promise<IndexView> {
  const stats = await Promise.all(
    record.parts.map(async ({ prefix }) => {
      const ref = refOf(record, prefix);
      const out = await partOf(env, ref).stats(ref);
      return out.ok ? out.value.vectors : 0;
    }),
  );
  return viewOf(record, stats.reduce((a, b) => a + b, 0));
}

function viewOf(record: IndexRecord, vectors: number): IndexView {
  return { index: record.index, dimensions: record.dimensions, metric: record.metric, precision: record.precision, model: record.model ?? null, vectors };
}

type PartStub = ReturnType<typeof partOf>;

/**
 * Sends each vector to the part that owns it, following redirects: `moved` (the part split since the registry
 * was read: read it again), `busy` (a split is moving these ids: wait a little), `full` (split the part, then send
 * again). A part takes its share in one transaction; shares go to their parts in parallel.
 */
async function write<T>(env: IndexEnv, record: IndexRecord, items: readonly StoredVector[], send: (stub: PartStub, ref: PartRef, items: StoredVector[]) => Promise<Outcome<WriteAnswer<T>>>): Promise<T[]> {
  const results: T[] = [];
  const deadline = Date.now() + BUSY_DEADLINE_MS;
  let current = record;
  let pending = [...items];
  for (let round = 0; pending.length > 0; round++) {
    if (round >= MAX_ROUNDS || Date.now() > deadline) {
      throw new ApiError("conflict", `index ${record.index} is being reorganised (a part is splitting); try again`);
    }
    const groups = new Map<number, StoredVector[]>();
    for (const item of pending) {
      const prefix = partFor(current.parts, item.hash);
      groups.set(prefix, [...(groups.get(prefix) ?? []), item]);
    }
    const answers = await Promise.all(
      [...groups].map(async ([prefix, share]) => {
        const ref = refOf(current, prefix);
        const stub = partOf(env, ref);
        const answer = fromPart(await send(stub, ref, share));
        if (answer.status === "full") fromPart(await stub.split(ref, answer.need));
        return { share, answer };
      }),
    );
    pending = [];
    let wait = false;
    for (const { share, answer } of answers) {
      if (answer.status === "done") results.push(answer.value as T);
      else pending.push(...share);
      if (answer.status === "busy") wait = true;
    }
    if (pending.length === 0) break;
    if (wait) await new Promise((resolve) => setTimeout(resolve, Math.min(500, 25 * 2 ** Math.min(round, 5))));
    const fresh = await registry(env, record.tenant).getIndex(record.index);
    if (!fresh || fresh.incarnation !== record.incarnation) throw new StaleRecord(`no index ${record.index}`);
    records.set(`${record.tenant}/${record.index}`, { record: fresh, at: Date.now() });
    current = fresh;
  }
  return results;
}
