/**
 * A strict parser of the Prometheus text exposition format (0.0.4), for tests: it throws
 * on anything Prometheus would reject or that the format leaves undefined (a family's
 * lines not together, TYPE after its samples or twice, a duplicate series, a bad name,
 * label, escape or value, a missing final newline).
 */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromFamily {
  name: string;
  help: string | undefined;
  type: string | undefined;
  samples: PromSample[];
}

const METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
const FLOAT = /^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)$/;

export function parsePromText(text: string): Map<string, PromFamily> {
  if (text !== "" && !text.endsWith("\n")) throw new Error("the text does not end with a newline");
  const families = new Map<string, PromFamily>();
  const closed = new Set<string>();
  const series = new Set<string>();
  let current: string | undefined;
  const enter = (name: string, line: number) => {
    if (current === name) return;
    if (current !== undefined) closed.add(current);
    if (closed.has(name)) throw new Error(`line ${line}: family ${name} appears twice, apart`);
    current = name;
  };
  const family = (name: string) => {
    let found = families.get(name);
    if (!found) {
      found = { name, help: undefined, type: undefined, samples: [] };
      families.set(name, found);
    }
    return found;
  };
  const lines = text.split("\n").slice(0, -1);
  for (const [i, raw] of lines.entries()) {
    const n = i + 1;
    if (raw.trim() === "") continue;
    if (raw.startsWith("#")) {
      const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(raw);
      if (!meta) continue; // a comment
      const [, kind, name = "", rest = ""] = meta;
      if (!METRIC.test(name) || METRIC.exec(name)?.[0] !== name)
        throw new Error(`line ${n}: bad metric name ${name}`);
      enter(name, n);
      const f = family(name);
      if (kind === "HELP") {
        if (f.help !== undefined) throw new Error(`line ${n}: second HELP for ${name}`);
        f.help = unescapeHelp(rest, n);
      } else {
        if (f.type !== undefined) throw new Error(`line ${n}: second TYPE for ${name}`);
        if (f.samples.length > 0) throw new Error(`line ${n}: TYPE after samples of ${name}`);
        if (!TYPES.has(rest)) throw new Error(`line ${n}: unknown type '${rest}'`);
        f.type = rest;
      }
      continue;
    }
    const sample = parseSample(raw, n);
    enter(sample.name, n);
    const key = `${sample.name}{${Object.entries(sample.labels)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(",")}}`;
    if (series.has(key)) throw new Error(`line ${n}: duplicate series ${key}`);
    series.add(key);
    family(sample.name).samples.push(sample);
  }
  return families;
}

function parseSample(line: string, n: number): PromSample {
  const name = METRIC.exec(line)?.[0];
  if (!name) throw new Error(`line ${n}: no metric name in '${line}'`);
  let rest = line.slice(name.length);
  const labels: Record<string, string> = {};
  if (rest.startsWith("{")) {
    rest = rest.slice(1);
    while (!rest.startsWith("}")) {
      const label = LABEL.exec(rest)?.[0];
      if (!label) throw new Error(`line ${n}: bad label name at '${rest}'`);
      if (label in labels) throw new Error(`line ${n}: label ${label} twice`);
      rest = rest.slice(label.length);
      if (!rest.startsWith('="')) throw new Error(`line ${n}: expected =" after ${label}`);
      rest = rest.slice(2);
      let value = "";
      for (;;) {
        const c = rest[0];
        if (c === undefined) throw new Error(`line ${n}: unterminated label value`);
        rest = rest.slice(1);
        if (c === '"') break;
        if (c === "\\") {
          const e = rest[0];
          rest = rest.slice(1);
          if (e === "\\" || e === '"') value += e;
          else if (e === "n") value += "\n";
          else throw new Error(`line ${n}: bad escape \\${e} in a label value`);
        } else value += c;
      }
      labels[label] = value;
      if (rest.startsWith(",")) rest = rest.slice(1);
      else if (!rest.startsWith("}")) throw new Error(`line ${n}: expected , or } at '${rest}'`);
    }
    rest = rest.slice(1);
  }
  const parts = rest.split(" ");
  if (parts[0] !== "" || parts.length < 2 || parts.length > 3)
    throw new Error(`line ${n}: expected ' value [timestamp]' in '${line}'`);
  const text = parts[1] ?? "";
  let value: number;
  if (text === "NaN") value = Number.NaN;
  else if (text === "+Inf") value = Number.POSITIVE_INFINITY;
  else if (text === "-Inf") value = Number.NEGATIVE_INFINITY;
  else if (FLOAT.test(text)) value = Number(text);
  else throw new Error(`line ${n}: '${text}' is not a value`);
  if (parts[2] !== undefined && !/^-?\d+$/.test(parts[2]))
    throw new Error(`line ${n}: '${parts[2]}' is not a timestamp`);
  return { name, labels, value };
}

/** HELP text: only \\ and \n are escapes. */
function unescapeHelp(text: string, n: number): string {
  return text.replace(/\\(.)/g, (_, e: string) => {
    if (e === "\\") return "\\";
    if (e === "n") return "\n";
    throw new Error(`line ${n}: bad escape \\${e}`);
  });
}
