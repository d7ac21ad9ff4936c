// The CRDT module inside workerd, loaded the way the Worker loads it (a .wasm import is a compiled module).
import { describe, expect, it } from "vitest";
import { decodeAs, encode, ORSet, PNCounter, SemanticState } from "../../lib/crdt";
import { crdtWasm } from "./wasm";

describe("the CRDT module in the Worker", () => {
  it("is a precompiled module, instantiated without compiling bytes", () => {
    const wasm = crdtWasm();
    expect(wasm.module).toBeInstanceOf(WebAssembly.Module);
    expect(wasm.formatVersion).toBe(1);
    expect(crdtWasm()).toBe(wasm);
  });

  it("merges two coordinators' semantic states that diverged from a common one", () => {
    const wasm = crdtWasm();
    const base = new SemanticState();
    for (let i = 0; i < 50; i++) base.enqueueTask(`task-${i}`, 1);
    base.updateMapping("img-1", "post-1", 100, 1);
    const a = decodeAs(encode(base), SemanticState);
    const b = decodeAs(encode(base), SemanticState);
    a.enqueueTask("task-a", 2);
    a.removeTask("task-3");
    a.adjustLoad(2, 5);
    a.addEmbedding("img-1", [0.5, -1, 2]);
    b.removeTask("task-4");
    b.enqueueTask("task-3", 3); // concurrent with a's removal: the add wins
    b.updateMapping("img-1", "post-2", 200, 3);
    b.adjustLoad(3, -2);
    const merged = decodeAs(wasm.merge(encode(a), encode(b)), SemanticState);
    expect(merged.taskQueue.has("task-a")).toBe(true);
    expect(merged.taskQueue.has("task-3")).toBe(true);
    expect(merged.taskQueue.has("task-4")).toBe(false);
    expect(merged.taskQueue.size).toBe(50);
    expect(merged.contentMappings.getText("img-1")).toBe("post-2");
    expect(merged.agentLoads.value()).toBe(3);
    expect(merged.embeddings()).toEqual([{ imageId: "img-1", vector: new Float32Array([0.5, -1, 2]) }]);
    expect(wasm.merge(encode(b), encode(a))).toEqual(wasm.merge(encode(a), encode(b)));
  });

  it("applies operations and deltas", () => {
    const wasm = crdtWasm();
    let queue = encode(new ORSet());
    const deltas: Uint8Array[] = [];
    for (const task of ["t1", "t2", "t3"]) {
      const u = wasm.orsetAdd(queue, task, 9);
      queue = u.state;
      deltas.push(u.delta);
    }
    const removed = wasm.orsetRemove(queue, "t2");
    deltas.push(removed.delta);
    // another replica receives the deltas in reverse order, one twice
    let remote = encode(new ORSet());
    for (const d of [...deltas].reverse().concat(deltas[0]!)) remote = wasm.merge(remote, d);
    expect(remote).toEqual(removed.state);
    expect(decodeAs(remote, ORSet).keys()).toEqual(["t1", "t3"]);

    let loads = encode(new PNCounter());
    loads = wasm.pncounterAdd(loads, 4, 10).state;
    loads = wasm.pncounterAdd(loads, 4, -3).state;
    expect(decodeAs(loads, PNCounter).value()).toBe(7);
  });

  it("rejects a truncated state with the codec's error and keeps working", () => {
    const wasm = crdtWasm();
    const state = encode(new SemanticState());
    expect(() => wasm.merge(state, state.subarray(0, state.length - 1))).toThrow(/code 1, input 1/);
    expect(wasm.merge(state, state)).toEqual(state);
  });
});
