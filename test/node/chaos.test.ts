// The chaos run of issue 6 in short (test/chaos/chaos.ts; the full run is `npm run chaos`): 500 tasks through
// real agent processes over a pool of two shards while two agents are SIGKILLed and replaced, the mesh process is
// killed and restarted once, a shard is added and another drained.
import { expect, it } from "vitest";
import { runChaos } from "../chaos/chaos.ts";

it("loses, strands and double-accepts nothing through agent kills, a mesh restart, a shard added and one drained", async () => {
  const lines: string[] = [];
  const report = await runChaos({ tasks: 500, restarts: 1, kills: 2, finalTimeoutMs: 60_000, log: (line) => lines.push(line) });
  const summary = { ...report, lines: report.ok ? undefined : lines };
  expect(report.failures, JSON.stringify(summary, null, 2)).toEqual([]);
  expect(report).toMatchObject({ submitted: 500, listed: 500, lost: 0, stuck: 0, extra: 0, double_accepted: 0, unproduced: 0, stale_accepted: 0, restarts: 1 });
  expect(report.succeeded + report.dead + report.cancelled).toBe(500);
  expect(report.agent_kills).toBeGreaterThanOrEqual(1);
  expect(report).toMatchObject({ shards_added: 1, shards_drained: 1 });
  expect(Object.values(report.shard_states).filter((s) => s === "active")).toHaveLength(2);
}, 120_000);
