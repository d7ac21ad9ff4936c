import fc from "fast-check";

/**
 * The subset of JSON Schema 2020-12 that /openapi.json uses, read two ways: as fast-check arbitraries that
 * generate values the schema accepts, and as a validator (the fuzzer's oracle: a body the published schema
 * refuses must get 400). Strings are measured in UTF-16 code units, like the zod schemas behind the document.
 */

export type Json = Record<string, any>;

/** A JSON token written as is, for numbers JSON.stringify cannot spell (`-0`, `1e999`, `9007199254740993`). */
export class Raw {
  constructor(readonly text: string) {}
}

/** JSON text of a generated value; `Raw` tokens are written verbatim and keys may be anything (`__proto__`). */
export function serialize(value: unknown): string {
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return `[${value.map(serialize).join(",")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.keys(value)
      .map((k) => `${JSON.stringify(k)}:${serialize((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  if (value === undefined) return "null";
  return JSON.stringify(value);
}

/** Sets an own enumerable property, even `__proto__`. */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

export class SchemaDoc {
  constructor(readonly doc: Json) {}

  resolve(schema: Json): Json {
    let s = schema;
    for (let i = 0; i < 10 && typeof s.$ref === "string"; i++) {
      const name = s.$ref.replace("#/components/schemas/", "");
      const target = this.doc.components?.schemas?.[name];
      if (!target) throw new Error(`unresolved $ref ${s.$ref}`);
      const { $ref: _ref, ...rest } = s;
      s = { ...target, ...rest };
    }
    return s;
  }

  /** Whether `value` satisfies `schema`; `why` (when given) collects the first problem found. */
  validate(schema: Json, value: unknown, why: string[] = [], path = "(root)"): boolean {
    const s = this.resolve(schema);
    const fail = (msg: string) => {
      if (why.length === 0) why.push(`${path}: ${msg}`);
      return false;
    };
    if (s.anyOf) return (s.anyOf as Json[]).some((sub) => this.validate(sub, value, [], path)) || fail("matches no anyOf branch");
    if (s.oneOf) return (s.oneOf as Json[]).filter((sub) => this.validate(sub, value, [], path)).length === 1 || fail("does not match exactly one oneOf branch");
    if ("const" in s && value !== s.const) return fail(`is not ${JSON.stringify(s.const)}`);
    if (s.enum && !(s.enum as unknown[]).includes(value)) return fail("not in the enum");
    if (s.if) {
      const branch = this.validate(s.if, value, [], path) ? s.then : s.else;
      if (branch && !this.validate(branch, value, why, path)) return false;
    }
    if (s.not && this.validate(s.not, value, [], path)) return fail("matches a schema it must not");
    // `type: ["string", "null"]` (a nullable value): any of the types.
    if (Array.isArray(s.type)) return (s.type as string[]).some((type) => this.validate({ ...s, type }, value, [], path)) || fail(`not any of ${s.type.join(", ")}`);
    switch (s.type) {
      case undefined: {
        // A partial schema (in if / then / else / not): only the keywords it has.
        if (value && typeof value === "object" && !Array.isArray(value)) {
          const obj = value as Record<string, unknown>;
          for (const key of (s.required ?? []) as string[]) if (!Object.prototype.hasOwnProperty.call(obj, key)) return fail(`missing ${key}`);
          for (const [key, sub] of Object.entries((s.properties ?? {}) as Record<string, Json>)) {
            if (Object.prototype.hasOwnProperty.call(obj, key) && !this.validate(sub, obj[key], why, `${path}.${key}`)) return false;
          }
        }
        if (Array.isArray(value) && s.contains && !value.some((v) => this.validate(s.contains, v, [], path))) return fail("contains no item it must");
        return true;
      }
      case "null":
        return value === null || fail("not null");
      case "boolean":
        return typeof value === "boolean" || fail("not a boolean");
      case "string": {
        if (typeof value !== "string") return fail("not a string");
        // JSON Schema counts characters (code points), as zod does, not UTF-16 units.
        if (s.minLength !== undefined && codePoints(value) < s.minLength) return fail("too short");
        if (s.maxLength !== undefined && codePoints(value) > s.maxLength) return fail("too long");
        if (s.pattern !== undefined && !new RegExp(s.pattern).test(value)) return fail("does not match the pattern");
        return true;
      }
      case "integer":
      case "number": {
        if (typeof value !== "number" || !Number.isFinite(value)) return fail("not a finite number");
        if (s.type === "integer" && !Number.isSafeInteger(value)) return fail("not a safe integer");
        if (s.minimum !== undefined && value < s.minimum) return fail("below the minimum");
        if (s.maximum !== undefined && value > s.maximum) return fail("above the maximum");
        return true;
      }
      case "array": {
        if (!Array.isArray(value)) return fail("not an array");
        if (s.minItems !== undefined && value.length < s.minItems) return fail("too few items");
        if (s.maxItems !== undefined && value.length > s.maxItems) return fail("too many items");
        return value.every((item, i) => this.validate(s.items ?? {}, item, why, `${path}.${i}`));
      }
      case "object": {
        if (value === null || typeof value !== "object" || Array.isArray(value)) return fail("not an object");
        const props = (s.properties ?? {}) as Record<string, Json>;
        const obj = value as Record<string, unknown>;
        for (const key of (s.required ?? []) as string[]) if (!Object.prototype.hasOwnProperty.call(obj, key)) return fail(`missing ${key}`);
        for (const key of Object.keys(obj)) {
          const sub = Object.prototype.hasOwnProperty.call(props, key) ? props[key] : s.additionalProperties;
          if (sub === false) return fail(`unknown key ${JSON.stringify(key)}`);
          if (sub && typeof sub === "object" && !this.validate(sub, obj[key], why, `${path}.${key}`)) return false;
        }
        return true;
      }
      default:
        throw new Error(`schema type ${String(s.type)} is not handled by the fuzzer: extend test/fuzz/schema.ts`);
    }
  }

  /**
   * An arbitrary of values `schema` accepts. `hint` may replace the arbitrary of a named property (live ids,
   * short waits); lengths of generated arrays stay small.
   */
  arbitrary(schema: Json, hint: Hint, name?: string): fc.Arbitrary<unknown> {
    const s = this.resolve(schema);
    const hinted = hint(name, s);
    if (hinted) return hinted;
    if (s.anyOf) return fc.oneof(...(s.anyOf as Json[]).map((sub) => this.arbitrary(sub, hint, name)));
    if (s.oneOf) return fc.oneof(...(s.oneOf as Json[]).map((sub) => this.arbitrary(sub, hint, name)));
    if ("const" in s) return fc.constant(s.const);
    if (s.enum) return fc.constantFrom(...(s.enum as unknown[]));
    // `type: ["string", "number", ...]` (a union of scalars): any of the types.
    if (Array.isArray(s.type)) return fc.oneof(...(s.type as string[]).map((type) => this.arbitrary({ ...s, type }, hint, name)));
    switch (s.type) {
      case undefined:
        return anyJson;
      case "null":
        return fc.constant(null);
      case "boolean":
        return fc.boolean();
      case "string": {
        const min = s.minLength ?? 0;
        const max = s.maxLength ?? 10_000;
        const fits = (v: string) => codePoints(v) >= min && codePoints(v) <= max;
        if (s.pattern) return fc.stringMatching(new RegExp(s.pattern)).filter(fits);
        return fc.oneof({ weight: 3, arbitrary: fc.string({ minLength: min, maxLength: Math.min(max, min + 24) }) }, { weight: 2, arbitrary: unusualString }).filter(fits);
      }
      case "integer": {
        const min = s.minimum ?? -(2 ** 31);
        const max = s.maximum ?? 2 ** 31;
        const edges = [min, max, ...(min <= 0 && max >= 0 ? [0, new Raw("-0")] : [])];
        return fc.oneof({ weight: 4, arbitrary: fc.integer({ min, max }) }, { weight: 1, arbitrary: fc.constantFrom(...edges) });
      }
      case "number": {
        const min = s.minimum ?? -1e9;
        const max = s.maximum ?? 1e9;
        return fc.oneof(fc.double({ min, max, noNaN: true, noDefaultInfinity: true }), fc.constantFrom(min, max));
      }
      case "array": {
        const minLength = s.minItems ?? 0;
        const maxLength = Math.min(s.maxItems ?? minLength + 4, minLength + 4);
        return fc.array(this.arbitrary(s.items ?? {}, hint), { minLength, maxLength });
      }
      case "object": {
        const props = (s.properties ?? {}) as Record<string, Json>;
        const keys = Object.keys(props);
        if (keys.length === 0) {
          if (s.additionalProperties && typeof s.additionalProperties === "object") {
            return fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), unusualString), this.arbitrary(s.additionalProperties, hint), { maxKeys: 4 });
          }
          return fc.constant({});
        }
        const model = Object.fromEntries(keys.map((k) => [k, this.arbitrary(props[k]!, hint, k)]));
        return fc.record(model, { requiredKeys: (s.required ?? []) as string[] });
      }
      default:
        throw new Error(`schema type ${String(s.type)} is not handled by the fuzzer: extend test/fuzz/schema.ts`);
    }
  }
}

export type Hint = (name: string | undefined, schema: Json) => fc.Arbitrary<unknown> | undefined;

/** Strings that tend to break things: emoji, RTL marks, NUL, lone surrogates, SQL and path syntax. */
export const UNUSUAL_STRINGS: readonly string[] = [
  "",
  " ",
  "🙂",
  "👩‍👩‍👧‍👦🚀",
  "\u202Egnp.exe",
  "שלום עולם",
  "مرحبا",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "\udfff",
  "x\ud83dy",
  "e\u0301",
  "\u200b\u200d\ufeff",
  "\u2028\u2029",
  "null",
  "undefined",
  "__proto__",
  "constructor",
  "'; DROP TABLE tasks; --",
  "\" OR 1=1 --",
  "%00%2F..%2F",
  "../../etc/passwd",
  "<script>alert(1)</script>",
  "${jndi:ldap://x}",
  "\\u0000",
  "\r\n\t",
  "Ω≈ç√∫",
  "𝕳𝖊𝖑𝖑𝖔",
  "x".repeat(300),
];

export const unusualString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...UNUSUAL_STRINGS),
  fc.string({ unit: "grapheme", maxLength: 12 }),
  fc.string({ unit: "binary", maxLength: 12 }),
);

/** Free-form JSON, with a few awkward numbers written raw. */
export const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom(new Raw("1e308"), new Raw("-0"), new Raw("9007199254740993"), new Raw("1e999"), new Raw("-1e-400"), null, {}, []) },
  { weight: 1, arbitrary: unusualString },
);

/** A string's length as JSON Schema's minLength and maxLength count it: in code points. */
function codePoints(value: string): number {
  let n = 0;
  for (const _ of value) n++;
  return n;
}
