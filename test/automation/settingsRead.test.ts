import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../automation/config.ts";
import { driftSettingsFrom } from "../../automation/drift/settings.ts";
import { httpSettingsFrom } from "../../automation/http/settings.ts";
import {
  readChoice, readDuration, readInt, readNumber, readSwitch, SettingError, SettingsReader, type SettingSource,
} from "../../automation/settings/read.ts";

const from = (values: Record<string, string>): SettingSource => (name) => values[name];
const none = from({});

/** The message of the SettingError `read` throws (fails the test when it throws nothing or something else). */
function problem(read: () => unknown): string {
  try {
    read();
  } catch (err) {
    expect(err).toBeInstanceOf(SettingError);
    return (err as SettingError).message;
  }
  throw new Error("expected a SettingError");
}

describe("the settings reader", () => {
  it("reads integers in range, the default when unset, and names the setting, the value and the range otherwise", () => {
    expect(readInt(from({ N: "7" }), "N", 3, 1, 10)).toBe(7);
    expect(readInt(none, "N", 3, 1, 10)).toBe(3);
    expect(readInt(from({ N: "10" }), "N", 3, 1, 10)).toBe(10);
    expect(problem(() => readInt(from({ N: "11" }), "N", 3, 1, 10))).toBe('N: must be an integer from 1 to 10, got "11"');
    expect(problem(() => readInt(from({ N: "2.5" }), "N", 3, 1, 10))).toBe('N: must be an integer from 1 to 10, got "2.5"');
    expect(problem(() => readInt(from({ N: "lots" }), "N", 3, 1, 10))).toBe('N: must be an integer from 1 to 10, got "lots"');
    const err = (() => { try { readInt(from({ N: "0" }), "N", 3, 1, 10); } catch (e) { return e as SettingError; } })();
    expect(err).toMatchObject({ setting: "N", value: "0", allowed: "an integer from 1 to 10" });
  });

  it("reads numbers with a floor and an optional ceiling", () => {
    expect(readNumber(from({ X: "0.25" }), "X", 1, 0.05)).toBe(0.25);
    expect(problem(() => readNumber(from({ X: "0.01" }), "X", 1, 0.05))).toBe('X: must be a number >= 0.05, got "0.01"');
    expect(problem(() => readNumber(from({ X: "Infinity" }), "X", 1, 0))).toBe('X: must be a number >= 0, got "Infinity"');
    expect(problem(() => readNumber(from({ X: "9" }), "X", 1, 0, 8))).toBe('X: must be a number from 0 to 8, got "9"');
  });

  it("reads on/off switches and nothing else", () => {
    expect(readSwitch(from({ S: "on" }), "S", false)).toBe(true);
    expect(readSwitch(from({ S: "off" }), "S", true)).toBe(false);
    expect(readSwitch(none, "S", true)).toBe(true);
    expect(problem(() => readSwitch(from({ S: "true" }), "S", false))).toBe('S: must be on or off, got "true"');
    expect(problem(() => readSwitch(from({ S: "ON" }), "S", false))).toBe('S: must be on or off, got "ON"');
  });

  it("reads one of a list of choices, listing them when the value is another", () => {
    expect(readChoice(from({ C: "b" }), "C", "a", ["a", "b"])).toBe("b");
    expect(readChoice(none, "C", "a", ["a", "b"])).toBe("a");
    expect(problem(() => readChoice(from({ C: "z" }), "C", "a", ["a", "b"]))).toBe('C: must be a or b, got "z"');
    expect(problem(() => readChoice(from({ C: "z" }), "C", "a", ["a", "b", "c"]))).toBe('C: must be one of a, b, c, got "z"');
  });

  it("reads durations in the unit the setting names and returns milliseconds", () => {
    expect(readDuration(from({ D: "1.5" }), "D", 0, { unit: "hours", min: 0, max: 744 })).toBe(5_400_000);
    expect(readDuration(from({ D: "30" }), "D", 0, { unit: "seconds", min: 1, max: 3600, whole: true })).toBe(30_000);
    expect(readDuration(none, "D", 42, { unit: "minutes", min: 1, max: 2 })).toBe(42);
    expect(problem(() => readDuration(from({ D: "1.5" }), "D", 0, { unit: "seconds", min: 1, max: 3600, whole: true })))
      .toBe('D: must be a whole number of seconds from 1 to 3600, got "1.5"');
    expect(problem(() => readDuration(from({ D: "-1" }), "D", 0, { unit: "hours", min: 0, max: 744, note: "0 turns it off" })))
      .toBe('D: must be a number of hours from 0 to 744 (0 turns it off), got "-1"');
  });

  it("collects every problem at once and reads a bad setting as its fallback", () => {
    const lines: string[] = [];
    const read = new SettingsReader(from({ A: "x", B: "maybe", C: "4" }), lines);
    expect(read.int("A", 5, 0, 9)).toBe(5);
    expect(read.switch("B", true)).toBe(true);
    expect(read.int("C", 5, 0, 9)).toBe(4);
    expect(read.or((get) => readSwitch(get, "B", false), undefined)).toBeUndefined();
    expect(lines).toEqual(['A: must be an integer from 0 to 9, got "x"', 'B: must be on or off, got "maybe"', 'B: must be on or off, got "maybe"']);
    // Anything but a SettingError is a bug, not a setting problem: it is thrown on.
    expect(() => read.or(() => { throw new TypeError("bug"); }, 0)).toThrow(TypeError);
  });
});

describe("the modules read their settings with it", () => {
  it("drift: period in hours (0 off) and concurrency, each problem named", () => {
    expect(driftSettingsFrom(none, [])).toEqual({ periodMs: 24 * 3_600_000, concurrency: 2 });
    expect(driftSettingsFrom(from({ TENANCY_DRIFT_PERIOD_HOURS: "0.5", TENANCY_DRIFT_CONCURRENCY: "4" }), [])).toEqual({ periodMs: 1_800_000, concurrency: 4 });
    const off: string[] = [];
    expect(driftSettingsFrom(from({ TENANCY_DRIFT_PERIOD_HOURS: "0" }), off)).toBeUndefined();
    expect(off).toEqual([]);
    const lines: string[] = [];
    expect(driftSettingsFrom(from({ TENANCY_DRIFT_PERIOD_HOURS: "745", TENANCY_DRIFT_CONCURRENCY: "0" }), lines)).toBeUndefined();
    expect(lines).toEqual([
      'TENANCY_DRIFT_PERIOD_HOURS: must be a number of hours from 0 to 744 (0 turns drift detection off), got "745"',
      'TENANCY_DRIFT_CONCURRENCY: must be an integer from 1 to 64, got "0"',
    ]);
  });

  it("http: integers, the request timeout in seconds, the proxy list", () => {
    const ok = httpSettingsFrom(from({ TENANCY_REQUEST_TIMEOUT_SECONDS: "5", TENANCY_SSE_TOTAL: "9" }), []);
    expect(ok).toMatchObject({ requestTimeoutMs: 5_000, sseTotal: 9 });
    const lines: string[] = [];
    httpSettingsFrom(from({ TENANCY_REQUEST_TIMEOUT_SECONDS: "0.5", TENANCY_SSE_PER_KEY: "many", TENANCY_TRUST_PROXY: "lb.example" }), lines);
    expect(lines).toEqual([
      'TENANCY_TRUST_PROXY: must be off, a hop count, or comma-separated addresses/CIDRs (10.0.0.0/16), got "lb.example"',
      'TENANCY_REQUEST_TIMEOUT_SECONDS: must be a whole number of seconds from 1 to 3600, got "0.5"',
      'TENANCY_SSE_PER_KEY: must be an integer from 1 to 10000, got "many"',
    ]);
  });

  it("config.ts composes them: one ConfigError with the runner choice and the switches in the same words", () => {
    let err: unknown;
    try {
      loadConfig({ env: { TENANCY_RUNNER: "remote", TENANCY_LIFECYCLE_WORKER: "yes", TENANCY_DRIFT_CONCURRENCY: "x", TENANCY_MAX_CONNECTIONS: "0" }, cwd: "/", projectDir: "/" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const lines = (err as ConfigError).lines;
    expect(lines).toEqual(expect.arrayContaining([
      'TENANCY_RUNNER: must be local or deployments, got "remote"',
      'TENANCY_LIFECYCLE_WORKER: must be on or off, got "yes"',
      'TENANCY_DRIFT_CONCURRENCY: must be an integer from 1 to 64, got "x"',
      'TENANCY_MAX_CONNECTIONS: must be an integer from 1 to 1000000, got "0"',
    ]));
    // A malformed worker switch asks for nothing the worker would need.
    expect(lines.filter((l) => l.startsWith("TENANCY_LIFECYCLE_DATABASES"))).toEqual([]);
  });
});

describe("the offboarding grace", () => {
  const problems = (env: Record<string, string>): readonly string[] => {
    try {
      loadConfig({ env, cwd: "/", projectDir: "/" });
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as ConfigError).lines;
    }
    throw new Error("expected a ConfigError");
  };
  const bad = 'TENANCY_OFFBOARDING_GRACE_DAYS: must be an integer from 0 to 3650, got "a month"';

  it("is read once: a bad value stops start-up with one line, with the lifecycle worker on or off", () => {
    for (const worker of ["on", "off"]) {
      const lines = problems({ TENANCY_LIFECYCLE_WORKER: worker, TENANCY_OFFBOARDING_GRACE_DAYS: "a month" });
      expect(lines.filter((l) => l.includes("TENANCY_OFFBOARDING_GRACE_DAYS"))).toEqual([bad]);
    }
    expect(problems({ TENANCY_LIFECYCLE_WORKER: "off", TENANCY_OFFBOARDING_GRACE_DAYS: "45" }).filter((l) => l.includes("GRACE_DAYS"))).toEqual([]);
  });

  it("the API's minimum defaults to the parsed grace and may not exceed it", () => {
    expect(problems({ TENANCY_LIFECYCLE_WORKER: "off", TENANCY_OFFBOARDING_GRACE_DAYS: "10", TENANCY_API_MIN_GRACE_DAYS: "20" }).filter((l) => l.includes("GRACE_DAYS"))).toEqual([
      "TENANCY_API_MIN_GRACE_DAYS: 20 is more than TENANCY_OFFBOARDING_GRACE_DAYS (10), which an offboarding without graceDays gets; raise TENANCY_OFFBOARDING_GRACE_DAYS or lower the minimum",
    ]);
    // httpSettingsFrom takes the grace as read; the raw setting is not its to read (a bad one was silently replaced).
    expect(httpSettingsFrom(from({ TENANCY_OFFBOARDING_GRACE_DAYS: "a month" }), [], 45).minOffboardGraceDays).toBe(45);
    expect(httpSettingsFrom(from({ TENANCY_API_MIN_GRACE_DAYS: "12" }), [], 45).minOffboardGraceDays).toBe(12);
  });
});
