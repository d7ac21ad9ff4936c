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

/** Windows {@link latestSlot} looks back over, shortest first: a frequent pattern is found in the first. */
const LOOK_BACK_MS = [3_600_000, 86_400_000, 32 * 86_400_000, 366 * 86_400_000, 5 * 366 * 86_400_000];

/**
 * The latest slot in [`from`, `now`], or null. It walks forward from a short window before `now` (widened
 * until it finds one, never before `from`), so a long downtime under a frequent pattern costs a few slots, not
 * one step per missed slot.
 */
export function latestSlot(cron: string, timezone: string, from: number, now: number): number | null {
  for (const window of [...LOOK_BACK_MS, Number.POSITIVE_INFINITY]) {
    const start = Math.max(from, now - window);
    let latest: number | null = null;
    let at = nextSlot(cron, timezone, start - 1);
    while (at !== null && at <= now) {
      latest = at;
      at = nextSlot(cron, timezone, at);
    }
    if (latest !== null || start === from) return latest;
  }
  return null;
}

/** How late a slot may fire and still count as on time (an alarm runs a little after its time, or the object was busy). */
export const ON_TIME_MS = 60_000;

export interface DuePlan {
  /** The slot to run now, or null. */
  fire: number | null;
  /** A slot recorded as skipped (reason `missed`): the latest missed one under catch-up `skip`. */
  missed: number | null;
  /** The first slot after `now`. */
  next: number | null;
}

/**
 * What the schedule does at `now` with the slots from `from` on (`from` itself included). The latest due slot
 * is the only candidate: an earlier one was missed (the mesh was down, the schedule paused). Catch-up `one` runs
 * the latest once whenever it was; `skip` runs it only when it is on time (at most {@link ON_TIME_MS} late).
 */
export function planDue(cron: string, timezone: string, from: number, now: number, catchUp: "skip" | "one"): DuePlan {
  const latest = latestSlot(cron, timezone, from, now);
  const next = nextSlot(cron, timezone, Math.max(from - 1, now));
  if (latest === null) return { fire: null, missed: null, next };
  if (now - latest <= ON_TIME_MS || catchUp === "one") return { fire: latest, missed: null, next };
  return { fire: null, missed: latest, next };
}
