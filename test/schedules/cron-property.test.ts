import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nextSlot } from "../../lib/schedules/cron";

/** Days with a daylight-saving change in the zone (and one without), so windows straddle a transition. */
const ZONES: Record<string, string[]> = {
  "America/New_York": ["2026-03-08", "2026-11-01", "2027-03-14", "2027-11-07"],
  "Europe/Paris": ["2026-03-29", "2026-10-25", "2027-03-28", "2027-10-31"],
  "Australia/Sydney": ["2026-04-05", "2026-10-04"],
  "America/Santiago": ["2026-04-05", "2026-09-06"],
  "Asia/Kolkata": ["2026-06-01"],
  UTC: ["2026-06-01"],
};

const MINUTES = ["0", "30", "15,45", "*/20", "*"];
const HOURS = ["*", "0", "1", "2", "3", "1-3", "*/2"];

function matches(field: string, value: number): boolean {
  return field.split(",").some((part) => {
    if (part === "*") return true;
    const step = part.match(/^\*\/(\d+)$/);
    if (step) return value % Number(step[1]) === 0;
    const range = part.match(/^(\d+)-(\d+)$/);
    if (range) return value >= Number(range[1]) && value <= Number(range[2]);
    return Number(part) === value;
  });
}

/** The wall clock of `ms` in `zone`: "YYYY-MM-DD HH:MM", hour and minute. */
function wall(format: Intl.DateTimeFormat, ms: number): { label: string; hour: number; minute: number } {
  const p = Object.fromEntries(format.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  const hour = Number(p.hour) % 24;
  return { label: `${p.year}-${p.month}-${p.day} ${hour}:${p.minute}`, hour, minute: Number(p.minute) };
}

describe("cron slots, by brute force over every minute around daylight-saving changes", () => {
  it("slots are exactly the first instants of each wall-clock time the pattern matches", () => {
    const zone = fc.constantFrom(...Object.keys(ZONES));
    fc.assert(
      fc.property(zone.chain((z) => fc.tuple(fc.constant(z), fc.constantFrom(...ZONES[z]!))), fc.constantFrom(...MINUTES), fc.constantFrom(...HOURS), ([tz, day], minute, hour) => {
        const format = new Intl.DateTimeFormat("en-US", { timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
        const from = Date.parse(`${day}T00:00:00Z`) - 24 * 3600_000;
        const to = from + 3 * 24 * 3600_000;
        // Expected: every UTC minute whose wall-clock time matches and has not been seen yet (a repeated hour once).
        const seen = new Set<string>();
        const expected: number[] = [];
        for (let t = from + 60_000; t <= to; t += 60_000) {
          const w = wall(format, t);
          if (!matches(minute, w.minute) || !matches(hour, w.hour) || seen.has(w.label)) continue;
          seen.add(w.label);
          expected.push(t);
        }
        const got: number[] = [];
        for (let t = nextSlot(`${minute} ${hour} * * *`, tz, from); t !== null && t <= to; t = nextSlot(`${minute} ${hour} * * *`, tz, t)) got.push(t);
        expect(got.map((x) => new Date(x).toISOString())).toEqual(expected.map((x) => new Date(x).toISOString()));
      }),
      { numRuns: 40 },
    );
  });
});
