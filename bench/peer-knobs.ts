/**
 * The knobs of `npm run bench:peers`, from the environment. BENCH_QUICK=1 lowers every
 * default for a run of a few minutes; an explicit knob always wins over the preset.
 */

export const SECTION_IDS = ["archive", "restore", "recovery", "backup", "live"] as const;
export type SectionId = (typeof SECTION_IDS)[number];

export interface Knobs {
  quick: boolean;
  /** Real 16 MiB segments archived and fetched (and replayed by the recovery section). */
  segments: number;
  /** Rounds of the archive and restore sections on loopback. */
  rounds: number;
  /** Rounds of the archive and restore sections through the latency proxy. */
  latencyRounds: number;
  /** Segments (consecutive, from the middle) the archive and restore sections use through the proxy. */
  latencySegments: number;
  /** Milliseconds the proxy adds to every S3 request; 0 leaves the "+latency" rows out. */
  latencyMs: number;
  recoveryRounds: number;
  backupRounds: number;
  /** pgBackRest process-max values backups and restores run with. */
  backupJobs: number[];
  /** pgbench scale of the bench cluster (what the backup section backs up). */
  scale: number;
  liveSeconds: number;
  liveRounds: number;
  /** WAL rate the live bulk run aims at (MiB/s, through pgbench --rate); 0 = unthrottled. */
  liveWalMiBs: number;
  sections: Set<SectionId>;
}

function intKnob(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`${name}=${raw}: expected an integer >= ${min}`);
  }
  return value;
}

function listKnob(name: string, fallback: string): string[] {
  const raw = process.env[name];
  return (raw === undefined || raw === "" ? fallback : raw)
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

export function readKnobs(): Knobs {
  const quick = process.env.BENCH_QUICK === "1" || process.env.BENCH_QUICK === "true";
  const sections = new Set<SectionId>();
  for (const item of listKnob("BENCH_SECTIONS", SECTION_IDS.join(","))) {
    if (!(SECTION_IDS as readonly string[]).includes(item)) {
      throw new Error(`BENCH_SECTIONS: unknown section ${item} (known: ${SECTION_IDS.join(", ")})`);
    }
    sections.add(item as SectionId);
  }
  const backupJobs = listKnob("BENCH_BACKUP_JOBS", "1,2").map((item) => {
    const jobs = Number(item);
    if (!Number.isInteger(jobs) || jobs < 1)
      throw new Error(`BENCH_BACKUP_JOBS: bad value ${item}`);
    return jobs;
  });
  const segments = intKnob("BENCH_SEGMENTS", quick ? 8 : 64, 2);
  return {
    quick,
    segments,
    rounds: intKnob("BENCH_ROUNDS", quick ? 1 : 3, 1),
    latencyRounds: intKnob("BENCH_LATENCY_ROUNDS", quick ? 1 : 2, 1),
    latencySegments: Math.min(segments, intKnob("BENCH_LATENCY_SEGMENTS", quick ? 8 : 32, 2)),
    latencyMs: intKnob("BENCH_LATENCY_MS", 50, 0),
    recoveryRounds: intKnob("BENCH_RECOVERY_ROUNDS", quick ? 1 : 2, 1),
    backupRounds: intKnob("BENCH_BACKUP_ROUNDS", quick ? 1 : 2, 1),
    backupJobs: [...new Set(backupJobs)],
    scale: intKnob("BENCH_SCALE", quick ? 5 : 30, 1),
    liveSeconds: intKnob("BENCH_LIVE_SECONDS", quick ? 8 : 30, 1),
    liveRounds: intKnob("BENCH_LIVE_ROUNDS", 1, 1),
    liveWalMiBs: intKnob("BENCH_LIVE_WAL_MIBS", 52, 0),
    sections,
  };
}

export const KNOB_HELP = [
  "BENCH_QUICK=1            small defaults for a run of a few minutes",
  "BENCH_SECTIONS=a,b       archive,restore,recovery,backup,live (default: all)",
  "BENCH_SEGMENTS=64        real 16 MiB segments (archive, restore, recovery)",
  "BENCH_ROUNDS=3           rounds of archive/restore on loopback",
  "BENCH_LATENCY_ROUNDS=2   rounds of archive/restore through the latency proxy",
  "BENCH_LATENCY_SEGMENTS=32  segments of archive/restore through the latency proxy",
  "BENCH_LATENCY_MS=50      delay the proxy adds to every S3 request (0: no proxy rows)",
  "BENCH_RECOVERY_ROUNDS=2  BENCH_BACKUP_ROUNDS=2  BENCH_BACKUP_JOBS=1,2  BENCH_SCALE=30",
  "BENCH_LIVE_SECONDS=30    BENCH_LIVE_ROUNDS=1  BENCH_LIVE_WAL_MIBS=52 (0: unthrottled)",
];
