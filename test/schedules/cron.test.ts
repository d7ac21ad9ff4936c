import { describe, expect, it } from "vitest";
import { cronProblems, latestSlot, nextSlot, ON_TIME_MS, planDue } from "../../lib/schedules/cron";

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The slots of a pattern from `from` on, `n` of them. */
function slots(cron: string, tz: string, from: string, n: number): (string | null)[] {
  const out: (string | null)[] = [];
  let t = at(from);
  for (let i = 0; i < n; i++) {
    const next = nextSlot(cron, tz, t);
    out.push(iso(next));
    if (next === null) break;
    t = next;
  }
  return out;
}

describe("cron slots (croner, inside workerd)", () => {
  it("every 15 minutes in UTC", () => {
    expect(slots("*/15 * * * *", "UTC", "2026-01-01T00:00:00Z", 3)).toEqual(["2026-01-01T00:15:00.000Z", "2026-01-01T00:30:00.000Z", "2026-01-01T00:45:00.000Z"]);
  });

  it("in a time zone: 09:00 in Paris is 08:00 UTC in winter and 07:00 in summer", () => {
    expect(slots("0 9 * * *", "Europe/Paris", "2026-01-10T00:00:00Z", 1)).toEqual(["2026-01-10T08:00:00.000Z"]);
    expect(slots("0 9 * * *", "Europe/Paris", "2026-07-10T00:00:00Z", 1)).toEqual(["2026-07-10T07:00:00.000Z"]);
  });

  it("spring forward: 02:30 does not exist on 2026-03-08 in New York and is skipped", () => {
    // 03-07 02:30 EST = 07:30Z; 03-08 has no 02:30; 03-09 02:30 EDT = 06:30Z.
    expect(slots("30 2 * * *", "America/New_York", "2026-03-07T00:00:00Z", 2)).toEqual(["2026-03-07T07:30:00.000Z", "2026-03-09T06:30:00.000Z"]);
  });

  it("fall back: 01:30 happens twice on 2026-11-01 in New York and fires once", () => {
    // 01:30 EDT = 05:30Z, then 01:30 EST = 06:30Z (not a slot); the next is 11-02 01:30 EST = 06:30Z.
    expect(slots("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2)).toEqual(["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"]);
    // Hourly across the repeated hour: 01:00 and 01:30 local, once each.
    const hourly = slots("0,30 * * * *", "America/New_York", "2026-11-01T04:45:00Z", 4);
    expect(hourly).toEqual(["2026-11-01T05:00:00.000Z", "2026-11-01T05:30:00.000Z", "2026-11-01T07:00:00.000Z", "2026-11-01T07:30:00.000Z"]);
  });

  it("names cron or timezone when they are bad", () => {
    expect(cronProblems("*/5 * * * *", "UTC")).toEqual([]);
    for (const bad of ["61 * * * *", "* * * *", "* * * * * *", "@daily", "a b c d e", "0 0 31 2 *"]) {
      expect(cronProblems(bad, "UTC").map((p) => p.field), bad).toEqual(["cron"]);
    }
    for (const bad of ["Mars/Olympus", "", "../etc", "Europe/Paris "]) {
      expect(cronProblems("* * * * *", bad).map((p) => p.field), bad).toEqual(["timezone"]);
    }
    expect(cronProblems("nope", "Nowhere/Land").map((p) => p.field).sort()).toEqual(["cron", "timezone"]);
  });

  it("the latest due slot and catch-up", () => {
    const from = at("2026-01-01T00:00:00Z");
    const now = at("2026-01-01T05:30:00Z");
    expect(latestSlot("0 * * * *", "UTC", from, now)).toBe(at("2026-01-01T05:00:00Z"));
    expect(latestSlot("0 * * * *", "UTC", at("2026-01-01T05:30:01Z"), at("2026-01-01T05:59:59Z"))).toBeNull();
    // `from` itself is due.
    expect(latestSlot("0 * * * *", "UTC", at("2026-01-01T05:00:00Z"), at("2026-01-01T05:00:00Z"))).toBe(at("2026-01-01T05:00:00Z"));
    // A yearly pattern found over a long look-back, and never before `from`.
    expect(latestSlot("0 0 1 1 *", "UTC", at("2020-06-01T00:00:00Z"), at("2026-03-01T00:00:00Z"))).toBe(at("2026-01-01T00:00:00Z"));
    expect(latestSlot("0 0 1 1 *", "UTC", at("2026-01-01T00:00:01Z"), at("2026-12-31T00:00:00Z"))).toBeNull();
    expect(planDue("0 * * * *", "UTC", from, now, "one")).toEqual({ fire: at("2026-01-01T05:00:00Z"), missed: null, next: at("2026-01-01T06:00:00Z") });
    expect(planDue("0 * * * *", "UTC", from, now, "skip")).toEqual({ fire: null, missed: at("2026-01-01T05:00:00Z"), next: at("2026-01-01T06:00:00Z") });
    const onTime = at("2026-01-01T05:00:00Z") + ON_TIME_MS;
    expect(planDue("0 * * * *", "UTC", at("2026-01-01T04:00:01Z"), onTime, "skip").fire).toBe(at("2026-01-01T05:00:00Z"));
    expect(planDue("0 * * * *", "UTC", at("2026-01-01T04:00:01Z"), onTime + 1, "skip").fire).toBeNull();
    expect(planDue("0 * * * *", "UTC", at("2026-01-01T05:00:01Z"), onTime, "skip")).toEqual({ fire: null, missed: null, next: at("2026-01-01T06:00:00Z") });
  });

  it("finds the latest slot after a long downtime under a frequent pattern (from a short look-back window)", () => {
    expect(latestSlot("* * * * *", "UTC", at("2026-01-01T00:00:00Z"), at("2026-03-01T00:00:30Z"))).toBe(at("2026-03-01T00:00:00Z"));
    expect(planDue("*/5 * * * *", "Europe/Paris", at("2025-01-01T00:00:00Z"), at("2026-03-01T00:02:00Z"), "one").fire).toBe(at("2026-03-01T00:00:00Z"));
  });
});
