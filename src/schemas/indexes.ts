import { z } from "zod";
import { INDEX_NAME, MAX_DIMENSIONS, MAX_TOP_K, MAX_UPSERT, MAX_VECTOR_ID, METRICS, PRECISIONS } from "../../contract/index-rpc.ts";
import { componentsProblem } from "../../lib/vectors/rank.ts";
import { intIn } from "./common.ts";

export const IndexName = z
  .string()
  .regex(INDEX_NAME, "an index name is 1-63 characters of A-Z, a-z, 0-9, _ . and -, starting with a letter or digit")
  .describe("an index name: 1-63 characters of A-Z, a-z, 0-9, _ . and -, starting with a letter or digit");
export const VectorId = z.string().min(1).max(MAX_VECTOR_ID).describe(`a vector id: 1-${MAX_VECTOR_ID} characters`);

export const IndexParams = z.object({ index: IndexName });
export const VectorParams = z.object({ index: IndexName, id: VectorId });

export const CreateIndex = z.strictObject({
  dimensions: intIn(1, MAX_DIMENSIONS).describe(`the length of every vector: 1-${MAX_DIMENSIONS}`),
  metric: z.enum(METRICS).default("cosine").describe("the similarity: cosine"),
  precision: z
    .enum(PRECISIONS)
    .default("float32")
    .describe("float32: exact scan; int8: a quarter of the memory (an int8 scan, then the best candidates ranked again in float32)"),
  model: z
    .strictObject({ r2Key: z.string().min(1).max(1024), dimensions: intIn(1, MAX_DIMENSIONS) })
    .optional()
    .describe("the ONNX model in R2 that embeds `text` queries at the edge (docs/embeddings.md); its dimensions must be the index's"),
}).refine((b) => !b.model || b.model.dimensions === b.dimensions, { message: "the model's dimensions must equal the index's", path: ["model", "dimensions"] });

export const VectorIndex = z
  .object({
    index: IndexName,
    dimensions: z.number().int(),
    metric: z.enum(METRICS),
    precision: z.enum(PRECISIONS),
    model: z.object({ r2Key: z.string(), dimensions: z.number().int() }).nullable().describe("the model of text queries; null: queries send vectors"),
    vectors: z.number().int().describe("vectors in the index"),
  })
  .meta({ id: "VectorIndex" });

export const IndexesResponse = z.object({ indexes: z.array(VectorIndex) });

/**
 * Numbers, checked by the refinements below (and against the index's dimensions once it is found), so that a 400
 * names the vector, its position and id, once, rather than each bad component. The document says what is
 * accepted: an array of numbers.
 */
const Values = z.array(z.unknown()).meta({ items: { type: "number" }, description: "the vector's components: as many as the index has dimensions, finite numbers" });

type Issues = { addIssue(issue: { code: "custom"; message: string; path: (string | number)[]; input: unknown }): void };

function checkVectors(vectors: { id: string; values: unknown[] }[], ctx: Issues): void {
  vectors.forEach((v, i) => {
    const problem = componentsProblem(v.values);
    if (problem) ctx.addIssue({ code: "custom", message: `vector ${i} (${JSON.stringify(v.id)}) ${problem}`, path: [i, "values"], input: v.values });
  });
}

const Metadata = z.record(z.string(), z.unknown()).describe("free-form JSON object, at most 4 KiB as JSON; filters compare its top-level fields");

export const UpsertVectors = z.strictObject({
  vectors: z
    .array(z.strictObject({ id: VectorId, values: Values, metadata: Metadata.optional() }))
    .min(1)
    .max(MAX_UPSERT)
    .superRefine(checkVectors)
    .describe(`1-${MAX_UPSERT} vectors; an id already in the index is replaced`),
});

export const UpsertResponse = z.object({ upserted: z.number().int().describe("vectors written") });

const Scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const Ordered = z.union([z.number(), z.string()]);
const Operators = z
  .strictObject({
    $eq: Scalar.optional(),
    $ne: Scalar.optional(),
    $gt: Ordered.optional(),
    $gte: Ordered.optional(),
    $lt: Ordered.optional(),
    $lte: Ordered.optional(),
    $in: z.array(Scalar).max(1000).optional(),
  })
  .refine((ops) => Object.keys(ops).length > 0, "name at least one operator");

export const Filter = z
  .record(
    z.string().min(1).max(256).regex(/^[^$]/, "a field name does not start with $"),
    z.union([Scalar, Operators]).describe("a value (equality), or operators that must all hold"),
  )
  .describe("metadata conditions that must all hold, applied before ranking: `{\"field\": value | {\"$eq\" | \"$ne\" | \"$gt\" | \"$gte\" | \"$lt\" | \"$lte\": v} | {\"$in\": [...]}}`");

export const QueryIndex = z
  .strictObject({
    vector: Values.optional().describe("the query vector (as many values as the index has dimensions); or `text`"),
    text: z.string().min(1).max(10_000).optional().describe("text to embed with the index's model (400 for an index without one)"),
    topK: intIn(1, MAX_TOP_K).describe(`how many matches: 1-${MAX_TOP_K}`),
    filter: Filter.optional(),
  })
  .refine((q) => (q.vector === undefined) !== (q.text === undefined), { message: "send either vector or text", path: ["vector"] })
  .superRefine((q, ctx) => {
    const problem = q.vector === undefined ? null : componentsProblem(q.vector);
    if (problem) ctx.addIssue({ code: "custom", message: `the query vector ${problem}`, path: ["vector"], input: q.vector });
  });

export const Match = z
  .object({
    id: VectorId,
    score: z.number().describe("cosine similarity, -1 to 1"),
    metadata: z.record(z.string(), z.unknown()),
  })
  .meta({ id: "VectorMatch" });

export const QueryResponse = z.object({ matches: z.array(Match).describe("best first") });
