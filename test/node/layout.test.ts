// The layout's rules (README, "Layout"; docs/architecture.md), checked on the source: dependencies point down,
// files stay small, Durable Object classes stay thin shells.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/dev-server.ts";

const PRODUCT = ["contract", "lib", "src", "durable-objects", "agent"] as const;
type Folder = (typeof PRODUCT)[number];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (/\.(ts|mjs)$/.test(name) && !name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

/** The relative imports of a file (static imports, re-exports and dynamic imports of literal paths). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specs = [...text.matchAll(/(?:import|export)\s[^;]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1] ?? m[2]!);
  return specs.filter((s) => s.startsWith("."));
}

function folderOf(path: string): string {
  return relative(ROOT, path).split("/")[0]!;
}

/** What each folder may import of the others. */
const MAY_IMPORT: Record<Folder, readonly string[]> = {
  contract: ["contract"],
  lib: ["lib", "contract", "build"],
  "durable-objects": ["durable-objects", "lib", "contract"],
  src: ["src", "lib", "contract", "build"],
  agent: ["agent", "lib", "contract"],
};

const files = PRODUCT.flatMap((folder) => sources(join(ROOT, folder)).map((file) => ({ folder, file })));

describe("the layout", () => {
  it("has dependencies that point down: contract/ imports nothing of ours, lib/ only contract/, objects never the Worker", () => {
    const wrong: string[] = [];
    for (const { folder, file } of files) {
      for (const spec of importsOf(file)) {
        const target = folderOf(resolve(dirname(file), spec));
        if (MAY_IMPORT[folder].includes(target)) continue;
        // The Worker's entry re-exports the Durable Object classes for wrangler, and only those.
        if (relative(ROOT, file) === "src/index.ts" && target === "durable-objects") continue;
        wrong.push(`${relative(ROOT, file)} imports ${spec}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("keeps product files under 400 lines and every Durable Object class file under 300", () => {
    const long = files.map(({ file }) => ({ file: relative(ROOT, file), lines: readFileSync(file, "utf8").split("\n").length })).filter((f) => f.lines > 400);
    expect(long).toEqual([]);
    const classes = files.filter(({ file }) => /extends DurableObject\b/.test(readFileSync(file, "utf8")));
    expect(classes.length).toBeGreaterThanOrEqual(4);
    for (const { file } of classes) expect(readFileSync(file, "utf8").split("\n").length, relative(ROOT, file)).toBeLessThan(300);
  });
});
