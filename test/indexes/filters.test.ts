import { describe, expect, it } from "vitest";
import { createIndex, expectRanking, freshIndex, mulberry32, query, randomVectors, upsert } from "./helpers";

/**
 * Metadata filters of queries (API.md: `{"field": value | {"$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte": v} |
 * {"$in": [...]}}`), applied before ranking: each operator against a JavaScript reference, and `topK` matches
 * whenever that many pass, even when the passing vectors are the ones least like the query.
 */

const COLORS = ["red", "green", "blue", "cyan"];

/** Vectors with metadata drawn from a seed: a number, a string, a boolean, sometimes null or missing fields. */
function dataset(count: number, dims: number, seed: number) {
  const random = mulberry32(seed);
  return randomVectors(count, dims, seed + 1).map((values, i) => {
    const metadata: Record<string, unknown> = { n: Math.floor(random() * 10), color: COLORS[Math.floor(random() * 4)], even: i % 2 === 0 };
    if (i % 7 === 0) metadata.opt = null;
    else if (i % 7 === 1) metadata.opt = "1";
    else if (i % 7 === 2) metadata.opt = 1;
    return { id: `d${String(i).padStart(4, "0")}`, values, metadata };
  });
}

type Item = ReturnType<typeof dataset>[number];

const FILTERS: [Record<string, unknown>, (m: Record<string, unknown>) => boolean][] = [
  [{ color: "red" }, (m) => m.color === "red"],
  [{ color: { $eq: "red" } }, (m) => m.color === "red"],
  [{ color: { $ne: "red" } }, (m) => m.color !== "red"],
  [{ n: { $gt: 6 } }, (m) => (m.n as number) > 6],
  [{ n: { $gte: 6 } }, (m) => (m.n as number) >= 6],
  [{ n: { $lt: 2 } }, (m) => (m.n as number) < 2],
  [{ n: { $lte: 2 } }, (m) => (m.n as number) <= 2],
  [{ n: { $gte: 3, $lt: 5 } }, (m) => (m.n as number) >= 3 && (m.n as number) < 5],
  [{ color: { $gt: "c" } }, (m) => (m.color as string) > "c"],
  [{ color: { $in: ["green", "cyan"] } }, (m) => m.color === "green" || m.color === "cyan"],
  [{ n: { $in: [0, 9] }, even: true }, (m) => (m.n === 0 || m.n === 9) && m.even === true],
  [{ even: false, color: "blue" }, (m) => m.even === false && m.color === "blue"],
  // Strict equality: 1 is not "1"; null matches only null; a missing field equals nothing, so $ne matches it.
  [{ opt: 1 }, (m) => m.opt === 1],
  [{ opt: "1" }, (m) => m.opt === "1"],
  [{ opt: null }, (m) => m.opt === null],
  [{ opt: { $ne: null } }, (m) => m.opt !== null],
  [{ opt: { $gte: 1 } }, (m) => m.opt === 1],
  [{ opt: { $in: [null, "1"] } }, (m) => m.opt === null || m.opt === "1"],
  [{ missing: { $ne: 1 } }, () => true],
  [{ missing: 1 }, () => false],
];

describe("metadata filters", () => {
  for (const precision of ["float32", "int8"] as const) {
    it(`${precision}: each operator selects what a JavaScript reference selects, ranked as the reference ranks`, async () => {
      const dims = 24;
      const index = freshIndex("filter");
      await createIndex(index, { dimensions: dims, precision });
      const data = dataset(700, dims, 5);
      await upsert(index, data);
      const probes = randomVectors(2, dims, 99);
      for (const [filter, passes] of FILTERS) {
        const passing = data.filter((d: Item) => passes(d.metadata));
        for (const probe of probes) {
          const matches = await query(index, { vector: probe, topK: 15, filter });
          expect(matches.length, JSON.stringify(filter)).toBe(Math.min(15, passing.length));
          for (const m of matches) expect(passes(m.metadata), `${JSON.stringify(filter)} let ${JSON.stringify(m.metadata)} through`).toBe(true);
          expectRanking(matches, passing, probe, 15);
        }
      }
    });
  }

  it("applies before ranking: topK matches come back when only a few pass, even the least similar ones", async () => {
    const dims = 8;
    const index = freshIndex("filter");
    await createIndex(index, { dimensions: dims, precision: "int8" });
    const probe = Array.from({ length: dims }, (_, i) => (i === 0 ? 1 : 0));
    // 995 vectors close to the probe, and 5 pointing away from it: only those 5 pass the filter.
    const random = mulberry32(3);
    const near = Array.from({ length: 995 }, (_, i) => ({ id: `near${i}`, values: probe.map((x) => x + (random() - 0.5) * 0.1), metadata: { kind: "near" } }));
    const far = Array.from({ length: 5 }, (_, i) => ({ id: `far${i}`, values: probe.map((x, j) => -x + (j === i + 1 ? 0.5 : 0)), metadata: { kind: "far", rank: i } }));
    await upsert(index, [...near, ...far]);
    const unfiltered = await query(index, { vector: probe, topK: 100 });
    expect(unfiltered.every((m) => m.metadata.kind === "near")).toBe(true);
    const filtered = await query(index, { vector: probe, topK: 5, filter: { kind: "far" } });
    expect(filtered.map((m) => m.id).sort()).toEqual(["far0", "far1", "far2", "far3", "far4"]);
    expectRanking(filtered, far, probe, 5);
    expect(await query(index, { vector: probe, topK: 10, filter: { kind: "far" } })).toHaveLength(5);
    expect(await query(index, { vector: probe, topK: 3, filter: { kind: "far", rank: { $gte: 3 } } })).toHaveLength(2);
    expect(await query(index, { vector: probe, topK: 3, filter: { kind: "none" } })).toEqual([]);
  });
});
