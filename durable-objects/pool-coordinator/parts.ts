/**
 * The capabilities of one pool shard's coordinator, wired together: the transaction shell over the pool's state,
 * the event interpreter, the sockets and their inbox and outbox, audit batching, result sealing, long-poll waiters,
 * the drain hand-over and the deletes of purged tasks' R2 objects. The Durable Object class (index.ts) builds one
 * `Parts` and hands each call to it.
 */
import { shardName } from "../../contract/ids.ts";
import { ApiError, type Outcome } from "../../contract/errors.ts";
import type { LeasedTask } from "../../contract/records.ts";
import { Timers } from "../shared/timers.ts";
import type { RoundRobinState } from "./agents/balancing.ts";
import { AuditBatcher } from "./audit-batcher.ts";
import type { PoolCore } from "./core.ts";
import { PoolEvents } from "./events.ts";
import { PlaintextCache } from "./plaintexts.ts";
import { ResultSealer } from "./results.ts";
import { ShardDrain } from "./shard/drain.ts";
import { GossipRunner } from "./gossip/runner.ts";
import { CacheFiller } from "./cache/filler.ts";
import { ensureIndex, upsertVectors } from "../../lib/vectors/client.ts";
import { BlobRunner } from "./blobs/runner.ts";
import { WorkflowNotifier } from "./workflows/notifier.ts";
import { crdtWasm } from "../../lib/wasm/crdt-module.ts";
import { random01 } from "../../lib/random.ts";
import { PoolShell } from "./shell.ts";
import { CLOSE, closeQuietly } from "./sockets/attachment.ts";
import { Inbox } from "./sockets/inbox.ts";
import { Outbox } from "./sockets/outbox.ts";
import { SocketRegistry } from "./sockets/registry.ts";
import { KeyedSignals, WaitList } from "./waiters.ts";

/** Characters of plaintext payloads held for push (about 8 MB as UTF-16). */
const PLAINTEXT_CACHE_CHARS = 4_000_000;

export class Parts {
  readonly sockets: SocketRegistry;
  readonly timers: Timers;
  readonly shell: PoolShell;
  readonly inbox: Inbox;
  readonly outbox: Outbox;
  readonly audit: AuditBatcher;
  readonly results: ResultSealer;
  readonly drain: ShardDrain;
  readonly gossip: GossipRunner;
  readonly cache: CacheFiller;
  readonly blobs: BlobRunner;
  readonly workflows: WorkflowNotifier;
  readonly plaintexts = new PlaintextCache(PLAINTEXT_CACHE_CHARS);
  /** Weighted round robin scores: scheduling state, rebuilt from zero after a restart. */
  readonly roundRobin: RoundRobinState = new Map();
  readonly leaseWaiters = new WaitList<Outcome<LeasedTask[]>>();
  readonly resultSignals = new KeyedSignals();

  constructor(ctx: DurableObjectState, env: Env, clock: () => number) {
    this.sockets = new SocketRegistry(ctx);
    this.timers = new Timers(ctx.storage);
    this.audit = new AuditBatcher({ logs: env.AUDIT, waitUntil: (p) => ctx.waitUntil(p) });
    this.blobs = new BlobRunner({ env, core: () => this.shell.core, apply: (fn) => this.shell.apply(false, fn), commitTimers: () => this.timers.commit() });
    this.workflows = new WorkflowNotifier({
      deliver: (end) => env.WORKFLOWS.getByName(end.ref.run).taskEnded(end),
      core: () => this.shell.core,
      apply: (fn) => this.shell.apply(false, fn),
      commitTimers: () => this.timers.commit(),
    });
    this.results = new ResultSealer({ env, tenantsOf: (ids) => this.shell.core?.tasks.tenantsOf(ids) ?? null, discard: (keys) => this.blobs.discard(keys) });
    this.outbox = new Outbox({ env, sockets: this.sockets, plaintexts: this.plaintexts, tenants: this.results.tenants, audit: this.audit });
    const events = new PoolEvents({
      reapTerminating: (agentIds) => this.shell.core?.agents.reapTerminating(agentIds),
      pushRound: () => this.pushRound(clock()),
      send: (pushed) => this.outbox.send(pushed),
      pokeLeaseWaiters: () => this.leaseWaiters.size > 0 && this.leaseWaiters.poke(),
      signalFinished: (ids) => {
        this.resultSignals.signal(ids);
        for (const id of ids) this.results.tenants.forget(id);
      },
    });
    this.drain = new ShardDrain({
      core: () => this.shell.core,
      apply: (fn) => this.shell.apply(false, fn),
      shard: (id) => env.POOL.getByName(shardName(this.shell.home.pool, id)),
      retire: (pool, shard) => env.DIRECTORY.getByName("mesh").retireShard(pool, shard, clock()),
      closeSockets: (reason) => {
        for (const ws of ctx.getWebSockets()) closeQuietly(ws, CLOSE.shardRetired, reason);
        this.sockets.changed();
      },
    });
    this.gossip = new GossipRunner({
      core: () => this.shell.core,
      apply: (fn) => this.shell.apply(false, fn),
      peer: (id) => env.POOL.getByName(shardName(this.shell.home.pool, id)),
      wasm: crdtWasm(),
      random01,
    });
    this.cache = new CacheFiller({
      env,
      core: () => this.shell.core,
      apply: (fn) => this.shell.apply(false, fn),
      clock,
      // The semantic cache's index is made by its first fill, with the embedding's dimensions.
      upsertVector: async (tenant, index, id, vector, metadata) => {
        const put = () => upsertVectors(env, tenant, index, [{ id, values: vector, metadata }]);
        await put().catch(async (err) => {
          if (!(err instanceof ApiError && err.code === "not_found")) throw err;
          await ensureIndex(env, tenant, index, { dimensions: vector.length, metric: "cosine", precision: "float32" });
          await put();
        });
      },
    });
    this.shell = new PoolShell({
      storage: ctx.storage,
      name: ctx.id.name,
      clock,
      events,
      timers: this.timers,
      list: (pool, tenant, at) => env.DIRECTORY.getByName("mesh").register(pool, tenant, at),
      pushed: () => this.outbox.idle(),
      after: async () => {
        await this.drain.flush();
        await this.gossip.flush();
        await this.cache.flush();
        await this.blobs.flush();
        await this.workflows.flush();
      },
    });
    const apply = <T>(fn: (core: PoolCore, now: number) => T) => this.shell.apply(false, fn);
    this.inbox = new Inbox({ clock, apply, settle: () => this.shell.settle(), seal: (items) => this.results.seal(items), release: (sealed, ok) => this.results.release(sealed, ok), audit: this.audit });
  }

  /** Inside a change's transaction: ready work to connected agents with credits (dispatch.ts). */
  private pushRound(now: number): Map<string, LeasedTask[]> | null {
    const core = this.shell.core;
    if (!core || this.sockets.size === 0) return null;
    const connected = this.sockets.connected(now, core.config().requireClientCert);
    if (connected.size === 0) return null;
    const pushed = core.dispatch(connected, this.roundRobin, now);
    return pushed.size === 0 ? null : pushed;
  }
}
