/**
 * How a requested switch time is read (automation/lifecycle/workflows/cutoverTime.ts): `tenantctl
 * move --not-before` and the move API's `cutoverNotBefore` accept an ISO 8601 time with its offset,
 * not in the past, and refuse anything else saying why and what form is expected.
 */
import { describe, expect, it } from "vitest";
import { CutoverTimeError, parseCutoverTime } from "../../automation/lifecycle/workflows/cutoverTime.ts";

const NOW = new Date("2026-03-02T09:00:00Z");
const EXAMPLE = "e.g. 2026-04-01T22:00:00Z or 2026-04-02T00:00:00+02:00";

describe("parseCutoverTime", () => {
  it("reads a time with its offset, to the instant it names", () => {
    expect(parseCutoverTime("2026-04-01T22:00:00Z", NOW).toISOString()).toBe("2026-04-01T22:00:00.000Z");
    expect(parseCutoverTime("2026-04-02T00:00+02:00", NOW).toISOString()).toBe("2026-04-01T22:00:00.000Z");
    expect(parseCutoverTime("2026-03-02T09:00:00.000Z", NOW).toISOString()).toBe(NOW.toISOString());
    expect(parseCutoverTime("2028-02-29T23:30:00-05:00", NOW).toISOString()).toBe("2028-03-01T04:30:00.000Z");
  });

  it("refuses what is not a time with its offset, a date that does not exist, and the past, naming the value", () => {
    const cases: [string, string][] = [
      ["2026-04-01T22:00", `--not-before "2026-04-01T22:00" is not a time with its UTC offset (a time without one depends on the zone of the machine reading it); ${EXAMPLE}`],
      ["tomorrow", `--not-before "tomorrow" is not an ISO 8601 date and time; ${EXAMPLE}`],
      ["2026-04-01", `--not-before "2026-04-01" is not an ISO 8601 date and time; ${EXAMPLE}`],
      ["2026-02-30T22:00:00Z", `--not-before "2026-02-30T22:00:00Z" is not a date that exists; ${EXAMPLE}`],
      ["2026-04-01T25:00:00Z", `--not-before "2026-04-01T25:00:00Z" is not a date that exists; ${EXAMPLE}`],
      ["2026-03-02T08:59:59Z", "--not-before 2026-03-02T08:59:59.000Z is in the past (it is 2026-03-02T09:00:00.000Z); leave it out to switch as soon as the copy has caught up"],
    ];
    for (const [text, message] of cases) {
      let err: unknown;
      try {
        parseCutoverTime(text, NOW, "--not-before");
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(CutoverTimeError);
      expect((err as Error).message, text).toBe(message);
    }
  });
});
