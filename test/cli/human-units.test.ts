/** Sizes and durations as text output shows them; JSON keeps the raw numbers. */
import { describe, expect, it } from "vitest";
import { formatBytes, formatDuration, formatMillis } from "../../src/human-units.js";

describe("formatBytes", () => {
  it("rounds to one decimal in binary units (the backup log line of the issue)", () => {
    expect(`${formatBytes(102105088)} stored as ${formatBytes(6101505)}`).toBe(
      "97.4 MiB stored as 5.8 MiB",
    );
    expect([0, 1023, 1024, 1536, 5 * 2 ** 30, 3 * 2 ** 40].map(formatBytes)).toEqual([
      "0 B",
      "1023 B",
      "1.0 KiB",
      "1.5 KiB",
      "5.0 GiB",
      "3.0 TiB",
    ]);
  });
});

describe("formatDuration", () => {
  it("uses the two largest units, rounding seconds and never going negative", () => {
    expect([0, 44.6, 750, 3599, 18_120, 273_600, -5].map(formatDuration)).toEqual([
      "0s",
      "45s",
      "12m30s",
      "59m59s",
      "5h02m",
      "3d04h",
      "0s",
    ]);
  });

  it("formats a drill phase's milliseconds to a tenth of a second below a minute", () => {
    expect([400, 12_345, 59_949, 61_000].map(formatMillis)).toEqual([
      "0.4s",
      "12.3s",
      "59.9s",
      "1m01s",
    ]);
  });
});
