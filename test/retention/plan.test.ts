/** Golden cases and properties of the GFS engine (retention/plan.ts). */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  PERIOD_RULES,
  planRetention,
  type RetentionItem,
  type RetentionPolicy,
  RetentionPolicyError,
} from "../../retention/index.js";

const items = (...times: string[]): RetentionItem[] => times.map((time) => ({ id: time, time }));

interface Golden {
  name: string;
  items: RetentionItem[];
  policy: RetentionPolicy;
  now: string;
  /** id -> reasons (kept) ; ids not listed are deleted. */
  keep: Record<string, string[]>;
}

const golden: Golden[] = [
  {
    name: "several backups a day keep the newest of each day",
    items: items(
      "2026-11-20T01:00:00Z",
      "2026-11-20T13:00:00Z",
      "2026-11-21T01:00:00Z",
      "2026-11-21T13:00:00Z",
    ),
    policy: { daily: 2, zone: "UTC" },
    now: "2026-11-21T14:00:00Z",
    keep: {
      "2026-11-21T13:00:00Z": ["newest", "daily 2026-11-21"],
      "2026-11-20T13:00:00Z": ["daily 2026-11-20"],
    },
  },
  {
    name: "empty weeks and months do not count",
    items: items("2026-09-15T12:00:00Z", "2026-11-02T12:00:00Z", "2026-11-20T12:00:00Z"),
    policy: { weekly: 2, monthly: 2, zone: "UTC" },
    now: "2026-11-21T00:00:00Z",
    keep: {
      "2026-11-20T12:00:00Z": ["newest", "weekly 2026-W47", "monthly 2026-11"],
      "2026-11-02T12:00:00Z": ["weekly 2026-W45"],
      "2026-09-15T12:00:00Z": ["monthly 2026-09"],
    },
  },
  {
    name: "a year boundary splits yearly and daily periods",
    items: items("2026-12-31T23:30:00Z", "2027-01-01T00:30:00Z", "2025-06-01T00:00:00Z"),
    policy: { daily: 1, yearly: 3, zone: "UTC" },
    now: "2027-01-02T00:00:00Z",
    keep: {
      "2027-01-01T00:30:00Z": ["newest", "daily 2027-01-01", "yearly 2027"],
      "2026-12-31T23:30:00Z": ["yearly 2026"],
      "2025-06-01T00:00:00Z": ["yearly 2025"],
    },
  },
  {
    name: "ISO week 53 of 2026 runs into January 2027",
    items: items("2026-12-28T12:00:00Z", "2027-01-03T12:00:00Z", "2027-01-04T12:00:00Z"),
    policy: { weekly: 2, zone: "UTC" },
    now: "2027-01-05T00:00:00Z",
    keep: {
      "2027-01-04T12:00:00Z": ["newest", "weekly 2027-W01"],
      "2027-01-03T12:00:00Z": ["weekly 2026-W53"],
    },
  },
  {
    name: "spring DST change in Europe/Brussels: days follow the local calendar",
    // 22:30Z on the 28th is 23:30 CET (the 28th); 23:30Z is 00:30 CET on the 29th;
    // 22:30Z on the 29th is 00:30 CEST on the 30th (clocks went 02:00 -> 03:00 that night).
    items: items("2026-03-28T22:30:00Z", "2026-03-28T23:30:00Z", "2026-03-29T22:30:00Z"),
    policy: { daily: 3, zone: "Europe/Brussels" },
    now: "2026-03-31T00:00:00Z",
    keep: {
      "2026-03-29T22:30:00Z": ["newest", "daily 2026-03-30"],
      "2026-03-28T23:30:00Z": ["daily 2026-03-29"],
      "2026-03-28T22:30:00Z": ["daily 2026-03-28"],
    },
  },
  {
    name: "autumn DST change in Europe/Brussels: a 25-hour day is one day",
    // 2026-10-24T22:30Z is 00:30 CEST on the 25th; 2026-10-25T22:30Z is 23:30 CET on the 25th.
    items: items("2026-10-24T22:30:00Z", "2026-10-25T22:30:00Z"),
    policy: { daily: 2, zone: "Europe/Brussels" },
    now: "2026-10-26T12:00:00Z",
    keep: { "2026-10-25T22:30:00Z": ["newest", "daily 2026-10-25"] },
  },
  {
    name: "pinned items are kept whatever the rules say",
    items: [
      { id: "old", time: "2020-01-01T00:00:00Z", pinned: true },
      { id: "new", time: "2026-11-20T00:00:00Z" },
      { id: "mid", time: "2026-11-19T00:00:00Z" },
    ],
    policy: { daily: 1, zone: "UTC" },
    now: "2026-11-21T00:00:00Z",
    keep: { new: ["newest", "daily 2026-11-20"], old: ["pinned"] },
  },
  {
    name: "within keeps everything newer than the duration, last the newest N",
    items: items(
      "2026-11-21T10:00:00Z",
      "2026-11-20T20:00:00Z",
      "2026-11-19T20:00:00Z",
      "2026-11-18T00:00:00Z",
    ),
    policy: { within: "2d", last: 1, zone: "UTC" },
    now: "2026-11-21T12:00:00Z",
    keep: {
      "2026-11-21T10:00:00Z": ["newest", "last 1/1", "within 2d"],
      "2026-11-20T20:00:00Z": ["within 2d"],
      "2026-11-19T20:00:00Z": ["within 2d"],
    },
  },
  {
    name: "hourly periods and the default yearly 0",
    items: items("2026-11-21T10:05:00Z", "2026-11-21T10:45:00Z", "2026-11-21T11:15:00Z"),
    policy: { hourly: 5, yearly: 0, zone: "UTC" },
    now: "2026-11-21T12:00:00Z",
    keep: {
      "2026-11-21T11:15:00Z": ["newest", "hourly 2026-11-21 11h"],
      "2026-11-21T10:45:00Z": ["hourly 2026-11-21 10h"],
    },
  },
];

describe("planRetention golden cases", () => {
  it.each(golden)("$name", (c) => {
    const plan = planRetention(c.items, c.policy, c.now);
    const kept = Object.fromEntries(plan.items.filter((p) => p.keep).map((p) => [p.id, p.reasons]));
    expect(kept).toEqual(c.keep);
    expect(plan.delete.sort()).toEqual(
      c.items
        .map((i) => i.id)
        .filter((id) => !(id in c.keep))
        .sort(),
    );
  });

  it("refuses policies that keep nothing or make no sense", () => {
    const one = items("2026-11-20T00:00:00Z");
    expect(() => planRetention(one, {}, "2026-11-21T00:00:00Z")).toThrow(RetentionPolicyError);
    expect(() => planRetention(one, { daily: 0, weekly: 0 }, "2026-11-21T00:00:00Z")).toThrow(
      /keeps nothing/,
    );
    expect(() => planRetention(one, { daily: -1 }, "2026-11-21T00:00:00Z")).toThrow(/whole number/);
    expect(() =>
      planRetention(one, { daily: 1, zone: "Mars/Olympus" }, "2026-11-21T00:00:00Z"),
    ).toThrow(/time zone/);
    expect(() => planRetention(one, { within: "soon" }, "2026-11-21T00:00:00Z")).toThrow(
      /duration/,
    );
    expect(() => planRetention([...one, ...one], { daily: 1 }, "2026-11-21T00:00:00Z")).toThrow(
      /twice/,
    );
  });
});

const zones = ["UTC", "Europe/Brussels", "America/New_York", "Australia/Lord_Howe"];
const itemArb = fc.uniqueArray(
  fc.record({
    id: fc.string({ minLength: 1, maxLength: 6 }),
    time: fc
      .integer({ min: Date.parse("2024-01-01T00:00:00Z"), max: Date.parse("2027-12-31T00:00:00Z") })
      .map((ms) => new Date(ms).toISOString()),
    pinned: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
  }),
  { selector: (item) => item.id, maxLength: 60 },
);
const count = fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined });
const policyArb = fc
  .record({
    last: count,
    hourly: count,
    daily: count,
    weekly: count,
    monthly: count,
    yearly: count,
    zone: fc.constantFrom(...zones),
  })
  .filter((p) => PERIOD_RULES.some((r) => (p[r] ?? 0) > 0) || (p.last ?? 0) > 0);
const NOW = "2028-01-01T00:00:00Z";

describe("planRetention properties", () => {
  it("keeps the newest and every pinned item", () => {
    fc.assert(
      fc.property(itemArb, policyArb, (list, policy) => {
        const plan = planRetention(list, policy, NOW);
        if (list.length > 0) expect(plan.items[0]?.keep).toBe(true);
        for (const item of list) if (item.pinned) expect(plan.keep).toContain(item.id);
      }),
    );
  });

  it("keeps at most N items per rule", () => {
    fc.assert(
      fc.property(itemArb, policyArb, (list, policy) => {
        const plan = planRetention(list, policy, NOW);
        for (const rule of [...PERIOD_RULES, "last"] as const) {
          const used = plan.items.filter((p) =>
            p.reasons.some((r) => r.startsWith(`${rule} `)),
          ).length;
          expect(used).toBeLessThanOrEqual(policy[rule] ?? 0);
        }
      }),
    );
  });

  it("deletes nothing when planning the kept set again", () => {
    fc.assert(
      fc.property(itemArb, policyArb, (list, policy) => {
        const kept = new Set(planRetention(list, policy, NOW).keep);
        const again = planRetention(
          list.filter((i) => kept.has(i.id)),
          policy,
          NOW,
        );
        expect(again.delete).toEqual([]);
      }),
    );
  });

  it("does not depend on input order and does not change its input", () => {
    fc.assert(
      fc.property(itemArb, policyArb, fc.integer(), (list, policy, seed) => {
        const frozen = JSON.stringify(list);
        const shuffled = [...list].sort(
          (a, b) => ((a.id.charCodeAt(0) * seed) % 7) - ((b.id.charCodeAt(0) * seed) % 7),
        );
        expect(planRetention(shuffled, policy, NOW)).toEqual(planRetention(list, policy, NOW));
        expect(JSON.stringify(list)).toBe(frozen);
      }),
    );
  });
});
