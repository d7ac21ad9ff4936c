/**
 * The hand-over of a draining shard, after each commit: what waits in the outbox (tasks/moves.ts) goes to its
 * target shard, which adopts it; only then does the outbox row become a forwarding record. A failed call leaves
 * the outbox as it was and the drain timer tries again. Once the shard holds nothing unfinished and nothing waits
 * to be handed over, it retires: the directory records it, every shard of the pool learns the new list, and the
 * agents' sockets to it close (they keep the pool's other shards).
 */
import { shardName } from "../../../contract/ids.ts";
import type { ShardList } from "../../../contract/records.ts";
import type { PoolCore } from "../core.ts";
import type { MovingTask } from "../../../contract/shard-rpc.ts";

/** Tasks one hand-over call carries. */
const HAND_OVER_BATCH = 500;

export interface DrainHost {
  core(): PoolCore | null;
  apply<T>(fn: (core: PoolCore, now: number) => T): { ok: true; value: T } | { ok: false };
  /** Another shard of the pool. */
  shard(id: number): { adopt(tasks: MovingTask[]): Promise<unknown>; setPeers(list: ShardList): Promise<unknown> };
  retire(pool: string, shard: number): Promise<ShardList>;
  /** Closes every agent socket (the shard retired). */
  closeSockets(reason: string): void;
}

export class ShardDrain {
  private running: Promise<void> | null = null;

  constructor(private readonly host: DrainHost) {}

  /** Runs the hand-over and the retirement check once at a time; callers share a running one. */
  flush(): Promise<void> {
    const core = this.host.core();
    if (!core || !core.peers.draining) return Promise.resolve();
    this.running ??= this.run(core).finally(() => (this.running = null));
    return this.running;
  }

  private async run(core: PoolCore): Promise<void> {
    for (;;) {
      const read = this.host.apply((c) => c.tasks.outbox(HAND_OVER_BATCH));
      if (!read.ok || read.value.size === 0) break;
      let progress = false;
      for (const [target, tasks] of read.value) {
        try {
          await this.host.shard(target).adopt(tasks);
        } catch (err) {
          console.warn(`pool ${core.pool} shard ${core.shard}: handing ${tasks.length} task(s) to shard ${target} failed; the drain retries`, err);
          continue;
        }
        this.host.apply((c, now) => c.tasks.handedOver(tasks.map((t) => t.id), now));
        progress = true;
      }
      if (!progress) return;
    }
    if (core.peers.self().state === "retired") return;
    const idle = this.host.apply((c) => c.tasks.unfinished() === 0 && c.tasks.outboxSize() === 0);
    if (!idle.ok || !idle.value) return;
    const list = await this.host.retire(core.pool, core.shard);
    this.host.apply((c, now) => c.updatePeers(list, now));
    await Promise.allSettled(list.shards.filter((s) => s.id !== core.shard && s.state !== "retired").map((s) => this.host.shard(s.id).setPeers(list)));
    this.host.closeSockets(`shard ${shardName(core.pool, core.shard)} retired; the pool's other shards serve its tasks`);
  }
}
