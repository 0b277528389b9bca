/** Plain-text tables and sizes for human output. */
export function renderTable(headers: string[], rows: string[][], withHeader = true): string {
  const all = withHeader ? [headers, ...rows] : rows;
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return `${all.map(line).join("\n")}\n`;
}

export { formatBytes, formatDuration } from "../human-units.js";
