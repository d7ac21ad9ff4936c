/**
 * Cron slots for schedules (docs/schedules.md), by the library croner: 5-field patterns in an IANA time zone.
 * Daylight-saving transitions: a slot whose wall-clock time does not exist that day (spring forward) is skipped
 * (croner would move it to the next valid time; {@link nextSlot} refuses any time the pattern does not match on
 * the wall clock), and a repeated hour (fall back) fires once (croner answers the first occurrence only).
 */
import { Cron } from "croner";
import type { FieldProblem } from "../../contract/errors.ts";

/** How many candidate times one search looks at before it gives up (a pattern that never matches, e.g. 31 Feb). */
const SEARCH_LIMIT = 1_000;

function zoneProblem(timezone: string): string | null {
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/.test(timezone)) return "an IANA time zone name, like Europe/Paris or UTC";
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
    return null;
  } catch {
    return `unknown IANA time zone "${timezone}"`;
  }
}

function compile(cron: string, timezone: string): Cron {
  return new Cron(cron, { paused: true, mode: "5-part", timezone });
}

/** What is wrong with a pattern and a zone, naming `cron` or `timezone`; empty when both are good. */
export function cronProblems(cron: string, timezone: string): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const zone = zoneProblem(timezone);
  if (zone) problems.push({ field: "timezone", message: zone });
  const fields = cron.trim().split(/\s+/);
  if (fields.length !== 5 || cron.includes("@")) {
    problems.push({ field: "cron", message: `a 5-field cron pattern (minute hour day-of-month month day-of-week); got ${fields.length} field(s)` });
    return problems;
  }
  try {
    const parsed = compile(cron, zone ? "UTC" : timezone);
    if (parsed.nextRun(new Date(0)) === null) problems.push({ field: "cron", message: "the pattern never matches" });
  } catch (err) {
    problems.push({ field: "cron", message: err instanceof Error ? err.message : String(err) });
  }
  return problems;
}

/** The first slot strictly after `after` (ms) whose wall-clock time matches the pattern; null if none. */
export function nextSlot(cron: string, timezone: string, after: number): number | null {
  const pattern = compile(cron, timezone);
  let from = new Date(after);
  for (let i = 0; i < SEARCH_LIMIT; i++) {
    const next = pattern.nextRun(from);
    if (!next) return null;
    // A time croner moved out of a daylight-saving gap does not match the pattern on the wall clock: skipped.
    if (pattern.match(next)) return next.getTime();
    from = next;
  }
  return null;
}

/**
 * The slots due at `now` from `from` on (`from` itself included): the latest one, and how many there are
 * (counted up to `limit`; a long downtime under a frequent pattern is not walked slot by slot past it).
 */
export function dueSlots(cron: string, timezone: string, from: number, now: number, limit = 10_000): { latest: number; count: number } | null {
  let latest: number | null = null;
  let count = 0;
  let at = nextSlot(cron, timezone, from - 1);
  while (at !== null && at <= now) {
    latest = at;
    count++;
    if (count >= limit) {
      // Too many to walk: the latest is the last slot of the final day before now.
      let tail = nextSlot(cron, timezone, Math.max(at, now - 24 * 3600_000));
      while (tail !== null && tail <= now) {
        latest = tail;
        tail = nextSlot(cron, timezone, tail);
      }
      break;
    }
    at = nextSlot(cron, timezone, at);
  }
  return latest === null ? null : { latest, count };
}

/** How late a slot may fire and still count as on time (an alarm runs a little after its time, or the object was busy). */
export const ON_TIME_MS = 60_000;

export interface DuePlan {
  /** The slot to run now, or null. */
  fire: number | null;
  /** A slot recorded as skipped (reason `missed`): the latest missed one under catch-up `skip`. */
  missed: number | null;
  /** How many slots were due (the one fired included). */
  due: number;
  /** The first slot after the ones handled. */
  next: number | null;
}

/**
 * What the schedule does at `now` with the slots from `from` on (`from` itself included). The latest due slot
 * is the only candidate: an earlier one was missed (the mesh was down, the schedule paused). Catch-up `one` runs
 * the latest once whenever it was; `skip` runs it only when it is on time (at most {@link ON_TIME_MS} late).
 */
export function planDue(cron: string, timezone: string, from: number, now: number, catchUp: "skip" | "one"): DuePlan {
  const slots = dueSlots(cron, timezone, from, now);
  if (!slots) return { fire: null, missed: null, due: 0, next: nextSlot(cron, timezone, from - 1) };
  const next = nextSlot(cron, timezone, Math.max(slots.latest, now));
  const onTime = now - slots.latest <= ON_TIME_MS;
  if (onTime || catchUp === "one") return { fire: slots.latest, missed: null, due: slots.count, next };
  return { fire: null, missed: slots.latest, due: slots.count, next };
}
