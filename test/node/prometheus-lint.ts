// The checks `promtool check metrics` makes of a text exposition, for machines without promtool: syntax,
// HELP/TYPE before samples, `_total` exactly on counters, base units, no duplicate series, and histograms
// whose buckets are cumulative and end in +Inf = _count.

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( \d+)?$/;
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"$/;
const NON_BASE_UNITS = /_(ms|milliseconds|microseconds|nanoseconds|minutes|hours|days|kilobytes|megabytes|gigabytes|percent)(_|$)/;

function splitLabels(body: string): string[] {
  const parts: string[] = [];
  let current = "";
  let quoted = false;
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!;
    if (ch === "\\" && quoted) {
      current += ch + (body[++i] ?? "");
      continue;
    }
    if (ch === '"') quoted = !quoted;
    if (ch === "," && !quoted) {
      parts.push(current);
      current = "";
    } else current += ch;
  }
  if (current !== "") parts.push(current);
  return parts;
}

export function lintExposition(text: string): string[] {
  const problems: string[] = [];
  const types = new Map<string, string>();
  const helped = new Set<string>();
  const series = new Set<string>();
  const buckets = new Map<string, { le: number; count: number }[]>();
  const counts = new Map<string, number>();
  if (!text.endsWith("\n")) problems.push("the exposition must end with a newline");
  const familyOf = (name: string): string => {
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      const base = name.slice(0, -suffix.length);
      if (name.endsWith(suffix) && types.get(base) === "histogram") return base;
    }
    return name;
  };
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      if (!NAME.test(name)) problems.push(`bad metric name ${name}`);
      if (kind === "TYPE") {
        if (types.has(name)) problems.push(`second TYPE for ${name}`);
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest)) problems.push(`unknown type ${rest}`);
        types.set(name, rest);
        if (rest === "counter" && !name.endsWith("_total")) problems.push(`counter ${name} should have "_total" suffix`);
        if (rest !== "counter" && name.endsWith("_total")) problems.push(`non-counter ${name} should not have "_total" suffix`);
        if (NON_BASE_UNITS.test(name)) problems.push(`${name} should use base units (seconds, bytes)`);
      } else helped.add(name);
      continue;
    }
    if (line.startsWith("#")) continue;
    const m = SAMPLE.exec(line);
    if (!m) {
      problems.push(`unparseable line: ${line}`);
      continue;
    }
    const [, name, , labelBody = "", value] = m as unknown as [string, string, string, string, string];
    const family = familyOf(name);
    if (!types.has(family)) problems.push(`sample of ${name} before its TYPE`);
    if (!helped.has(family)) problems.push(`no HELP for ${family}`);
    const labels = splitLabels(labelBody);
    const pairs: [string, string][] = [];
    for (const l of labels) {
      const lm = LABEL.exec(l);
      if (!lm) problems.push(`bad label ${l} in ${line}`);
      else pairs.push([lm[1]!, lm[2]!]);
    }
    const key = `${name}{${pairs.map(([k, v]) => `${k}=${v}`).sort().join(",")}}`;
    if (series.has(key)) problems.push(`duplicate series ${key}`);
    series.add(key);
    const num = value === "+Inf" ? Infinity : value === "-Inf" ? -Infinity : Number(value);
    if (Number.isNaN(num) && value !== "NaN") problems.push(`bad value ${value} in ${line}`);
    if (types.get(family) === "histogram") {
      const others = pairs.filter(([k]) => k !== "le").map(([k, v]) => `${k}=${v}`).sort().join(",");
      const id = `${family}{${others}}`;
      if (name.endsWith("_bucket")) {
        const le = pairs.find(([k]) => k === "le")?.[1];
        if (le === undefined) problems.push(`bucket without le: ${line}`);
        else (buckets.get(id) ?? buckets.set(id, []).get(id)!).push({ le: le === "+Inf" ? Infinity : Number(le), count: num });
      } else if (name.endsWith("_count")) counts.set(id, num);
    }
  }
  for (const [id, list] of buckets) {
    for (let i = 1; i < list.length; i++) {
      if (!(list[i]!.le > list[i - 1]!.le)) problems.push(`${id}: buckets not in increasing le order`);
      if (list[i]!.count < list[i - 1]!.count) problems.push(`${id}: bucket counts not cumulative`);
    }
    const last = list[list.length - 1];
    if (!last || last.le !== Infinity) problems.push(`${id}: no +Inf bucket`);
    else if (counts.get(id) !== last.count) problems.push(`${id}: +Inf bucket differs from _count`);
  }
  return problems;
}
