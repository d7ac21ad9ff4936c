/**
 * Metadata filters of vector queries (API.md, "Caches and vector indexes"): `{"field": value}` is equality,
 * `{"field": {"$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte": v}}` compares, `{"field": {"$in": [...]}}` is
 * membership; every field's condition must hold, and several operators on one field must all hold.
 *
 * Semantics, decided once here:
 * - fields are top-level metadata keys (a dot is part of the key, not a path);
 * - equality is strict (`1` is not `"1"`, `null` matches only `null`); a missing field equals nothing, so `$ne`
 *   and a missing field match (as in MongoDB);
 * - `$gt` / `$gte` / `$lt` / `$lte` compare numbers with numbers and strings with strings (code-unit order);
 *   any other pair, or a missing field, does not match;
 * - arrays and objects in metadata equal nothing (filters compare scalars).
 */
import type { FieldCondition, MetadataFilter, Scalar } from "../../contract/index-rpc.ts";

export const FILTER_OPERATORS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in"] as const;
export type FilterOperator = (typeof FILTER_OPERATORS)[number];

type Check = (value: unknown) => boolean;

const isScalar = (v: unknown): v is Scalar => v === null || typeof v === "string" || typeof v === "number" || typeof v === "boolean";

function ordered(value: unknown, bound: number | string, test: (a: number | string, b: number | string) => boolean): boolean {
  if (typeof value === "number" && typeof bound === "number") return test(value, bound);
  if (typeof value === "string" && typeof bound === "string") return test(value, bound);
  return false;
}

function operatorCheck(op: FilterOperator, operand: unknown): Check {
  switch (op) {
    case "$eq":
      return (v) => v === operand;
    case "$ne":
      return (v) => v !== operand;
    case "$gt":
      return (v) => ordered(v, operand as number | string, (a, b) => a > b);
    case "$gte":
      return (v) => ordered(v, operand as number | string, (a, b) => a >= b);
    case "$lt":
      return (v) => ordered(v, operand as number | string, (a, b) => a < b);
    case "$lte":
      return (v) => ordered(v, operand as number | string, (a, b) => a <= b);
    case "$in": {
      const set = new Set(operand as Scalar[]);
      return (v) => isScalar(v) && set.has(v);
    }
  }
}

function conditionChecks(condition: FieldCondition): Check[] {
  if (isScalar(condition)) return [(v) => v === condition];
  return Object.entries(condition).map(([op, operand]) => operatorCheck(op as FilterOperator, operand));
}

/**
 * A filter compiled to one predicate over a metadata object (compiled once per query, run per candidate).
 *
 * @example
 * const passes = compileFilter({ type: "content.generate", year: { $gte: 2020 } });
 * passes({ type: "content.generate", year: 2024 }); // true
 */
export function compileFilter(filter: MetadataFilter): (metadata: Record<string, unknown>) => boolean {
  const fields = Object.entries(filter).map(([field, condition]) => ({ field, checks: conditionChecks(condition) }));
  return (metadata) => {
    for (const { field, checks } of fields) {
      const value = Object.hasOwn(metadata, field) ? metadata[field] : undefined;
      for (const check of checks) if (!check(value)) return false;
    }
    return true;
  };
}
