/**
 * One alarm drives every timer of a pool: lease expiry, retry backoff, delayed tasks, the purge of finished
 * tasks and agent heartbeats. Each source reports its earliest due time; the alarm goes to the earliest.
 */

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

/** How the due timers of one alarm run are worked off: in chunks, so one alarm never holds the object long. */
export const ALARM_BATCH = 500;
