import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/dev-server.ts";
import { permissionTable } from "../../src/security/permissions.ts";

describe("README.md", () => {
  it("prints the permission matrix exactly as the code defines it", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    expect(readme).toContain(permissionTable());
  });
});
