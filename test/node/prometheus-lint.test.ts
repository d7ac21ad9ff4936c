import { describe, expect, it } from "vitest";
import { lintExposition } from "./prometheus-lint.ts";

describe("the built-in exposition linter", () => {
  it("accepts a well-formed exposition", () => {
    const ok = [
      "# HELP jobs_total Jobs.",
      "# TYPE jobs_total counter",
      'jobs_total{pool="a"} 3',
      "# HELP latency_seconds Latency.",
      "# TYPE latency_seconds histogram",
      'latency_seconds_bucket{pool="a",le="0.1"} 1',
      'latency_seconds_bucket{pool="a",le="+Inf"} 2',
      'latency_seconds_sum{pool="a"} 0.3',
      'latency_seconds_count{pool="a"} 2',
      "",
    ].join("\n");
    expect(lintExposition(ok)).toEqual([]);
  });

  it("rejects what promtool rejects", () => {
    expect(lintExposition("# HELP jobs Jobs.\n# TYPE jobs counter\njobs 1\n")).toEqual(['counter jobs should have "_total" suffix']);
    expect(lintExposition("# HELP wait_ms W.\n# TYPE wait_ms gauge\nwait_ms 1\n")[0]).toContain("base units");
    expect(lintExposition("x 1\n")).toContain("sample of x before its TYPE");
    expect(lintExposition("# HELP a A.\n# TYPE a gauge\na 1\na 2\n")).toContain("duplicate series a{}");
    const badHist = '# HELP h H.\n# TYPE h histogram\nh_bucket{le="1"} 5\nh_bucket{le="+Inf"} 4\nh_sum 1\nh_count 4\n';
    expect(lintExposition(badHist)).toContain("h{}: bucket counts not cumulative");
  });
});
