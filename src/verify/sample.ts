/**
 * `verify --sample N|PCT`: how many of the objects of each kind are read and hashed (the
 * others are still checked for presence and size). Pure; the random source is passed in,
 * so that repeated runs cover different objects and tests can fix the choice.
 */

export type Sample = { kind: "count"; count: number } | { kind: "percent"; percent: number };

/** "50" (objects of each kind) or "10%" (of each kind). Throws on anything else. */
export function parseSample(raw: string): Sample {
  const text = raw.trim();
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(text);
  if (percent) {
    const value = Number(percent[1]);
    if (value > 0 && value <= 100) return { kind: "percent", percent: value };
  } else if (/^\d+$/.test(text) && Number(text) >= 1) {
    return { kind: "count", count: Number(text) };
  }
  throw new Error(`'${raw}' is not a count (1 or more) or a percentage (above 0%, at most 100%)`);
}

/** How many of `total` objects a sample reads: a percentage rounds up, so never none of some. */
export function sampleSize(sample: Sample | undefined, total: number): number {
  if (sample === undefined) return total;
  if (sample.kind === "count") return Math.min(sample.count, total);
  return Math.min(total, Math.ceil((total * sample.percent) / 100));
}

/** The items to read: all without a sample, else a random choice of sampleSize, in their order. */
export function pickSample<T>(
  items: readonly T[],
  sample: Sample | undefined,
  random: () => number,
): T[] {
  const size = sampleSize(sample, items.length);
  if (size >= items.length) return [...items];
  // A partial Fisher-Yates shuffle of the indexes; the chosen keep their original order.
  const indexes = items.map((_, i) => i);
  for (let i = 0; i < size; i++) {
    const j = i + Math.floor(random() * (indexes.length - i));
    [indexes[i], indexes[j]] = [indexes[j] ?? 0, indexes[i] ?? 0];
  }
  return indexes
    .slice(0, size)
    .sort((a, b) => a - b)
    .map((i) => items[i] as T);
}
