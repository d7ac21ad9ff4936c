/**
 * Named timer kinds multiplexed over a Durable Object's single alarm. Each owner (lease expiry, retry backoff and
 * delays, heartbeat sweeps, the purge of finished tasks, the directory listing, and later gossip rounds, cache
 * purges, schedules, the autoscaler) registers a kind: where its next deadline is (read from its own rows) and an
 * idempotent handler that works off what is due. A new owner adds a kind, not alarm code.
 */
export interface TimerKind {
  readonly name: string;
  /** The earliest time this kind needs the alarm, from its own state; null when nothing is scheduled. */
  next(now: number): number | null;
  /**
   * Works off up to `limit` due items inside the alarm's transaction; answers how many it handled (as many as
   * `limit` means more may be due). Running it with nothing due, or twice, changes nothing.
   */
  run(now: number, limit: number): number;
}

/** How the due timers of one alarm run are worked off: in chunks, so one alarm never holds the object long. */
export const ALARM_BATCH = 500;

/** The earliest of the candidates, or null when nothing is scheduled. */
export function nextAlarmAt(candidates: readonly (number | null | undefined)[]): number | null {
  let next: number | null = null;
  for (const at of candidates) {
    if (at === null || at === undefined || !Number.isFinite(at)) continue;
    if (next === null || at < next) next = at;
  }
  return next;
}

/**
 * Whether the alarm must be moved. An alarm that fires early finds nothing due and re-arms, so only an
 * earlier deadline (or no alarm at all) requires a write.
 */
export function needsRearm(armedAt: number | null, next: number | null): boolean {
  if (next === null) return false;
  return armedAt === null || next < armedAt;
}

/**
 * The kinds of one object and the alarm they share. Changes note the deadlines they set ({@link set}), so the
 * alarm moves after a commit without reading every kind back; the alarm reads them all. A deadline noted by a
 * change that rolled back may move the alarm earlier than needed, which is harmless: it finds nothing due.
 */
export class Timers {
  private readonly kinds: TimerKind[] = [];
  private earliest: number | null = null;
  private armedAt: number | null = null;

  constructor(private readonly storage: Pick<DurableObjectStorage, "setAlarm">) {}

  register(kind: TimerKind): void {
    if (this.kinds.some((k) => k.name === kind.name)) throw new Error(`timer kind ${kind.name} registered twice`);
    this.kinds.push(kind);
  }

  /** A change set a deadline: the alarm must be no later than `at` (null: nothing set). */
  set = (at: number | null | undefined): void => {
    if (at === null || at === undefined) return;
    if (this.earliest === null || at < this.earliest) this.earliest = at;
  };

  /** The earliest deadline of every kind. */
  next(now: number): number | null {
    return nextAlarmAt(this.kinds.map((k) => k.next(now)));
  }

  /** Runs every kind's due work, each up to `limit`; answers the most any kind handled. Inside a transaction. */
  runDue(now: number, limit: number): number {
    let most = 0;
    for (const kind of this.kinds) most = Math.max(most, kind.run(now, limit));
    return most;
  }

  /** The alarm that was armed has fired. */
  fired(): void {
    this.armedAt = null;
  }

  /** After a commit: moves the alarm earlier if the change set a sooner deadline. */
  async commit(): Promise<void> {
    const at = this.earliest;
    this.earliest = null;
    await this.arm(at);
  }

  /** Moves the alarm to the earliest deadline of every kind if that is sooner (on start, after an alarm). */
  async rearm(now: number): Promise<void> {
    await this.arm(this.next(now));
  }

  /** Moves the alarm to `at` at the latest. */
  async arm(at: number | null): Promise<void> {
    if (!needsRearm(this.armedAt, at)) return;
    await this.storage.setAlarm(at!);
    this.armedAt = at;
  }
}
