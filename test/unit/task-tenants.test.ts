import { describe, expect, it } from "vitest";
import { TaskTenants } from "../../durable-objects/pool-coordinator/task-tenants";

describe("the tenants of pushed tasks held by the coordinator", () => {
  it("answers held tenants without reading, and reads the others in one call", () => {
    const held = new TaskTenants(10);
    held.remember("t1", "acme");
    held.remember("t2", "globex");
    const reads: string[][] = [];
    const got = held.resolve(["t1", "t3", "t2", "t4"], (missing) => {
      reads.push(missing);
      return new Map([["t3", "initech"]]);
    });
    expect(reads).toEqual([["t3", "t4"]]);
    expect([...got]).toEqual([["t1", "acme"], ["t2", "globex"], ["t3", "initech"]]);
    expect(held.resolve(["t1"], () => { throw new Error("no read expected"); }).get("t1")).toBe("acme");
  });

  it("keeps at most its bound, the most recent first, and forgets what it is told", () => {
    const held = new TaskTenants(3);
    for (const id of ["a", "b", "c", "d"]) held.remember(id, `tenant-${id}`);
    held.remember("b", "tenant-b"); // refreshed: now the newest
    held.remember("e", "tenant-e");
    expect(held.size).toBe(3);
    const read = (missing: string[]) => new Map(missing.map((id) => [id, "stored"]));
    expect([...held.resolve(["a", "b", "c", "d", "e"], read)]).toEqual([["b", "tenant-b"], ["d", "tenant-d"], ["e", "tenant-e"], ["a", "stored"], ["c", "stored"]]);
    held.forget("d");
    expect(held.resolve(["d"], read).get("d")).toBe("stored");
    expect(held.size).toBe(2);
  });
});
