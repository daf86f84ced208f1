/**
 * The time a switch may start (`cutoverNotBefore`: a customer's maintenance window), for the
 * upgrade and the cell move alike (docs/lifecycle.md, "Scheduling the switch"): how a request's
 * time is read, and how a workflow waits for it. While it waits, the copy is done and its change
 * stream keeps being applied (each wake-up catches up), so the window itself stays seconds long.
 */
import { waitUntil, type StepContext, type StepResult } from "../engine/engine.ts";

/** While waiting for the time, the change stream is applied at least this often. */
export const CATCH_UP_INTERVAL_MS = 15 * 60_000;

/** A time that cannot be a switch's: says the value, why and the form expected. */
export class CutoverTimeError extends Error {}

/**
 * Reads a requested switch time: an ISO 8601 date and time with its offset (`Z` or `+02:00`; a
 * time without one would be read in whatever zone the reading machine has), not in the past.
 */
export function parseCutoverTime(text: string, now: Date, what = "the switch time"): Date {
  const example = "e.g. 2026-04-01T22:00:00Z or 2026-04-02T00:00:00+02:00";
  const m = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (!m) {
    const noOffset = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text);
    throw new CutoverTimeError(
      `${what} "${text}" is not ${noOffset ? "a time with its UTC offset (a time without one depends on the zone of the machine reading it)" : "an ISO 8601 date and time"}; ${example}`,
    );
  }
  const at = new Date(text);
  // Date rolls a day past the month's end over into the next month (2026-02-30 is March 2nd): refuse it.
  const [year, month, day] = text.slice(0, 10).split("-").map(Number) as [number, number, number];
  if (Number.isNaN(at.getTime()) || month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) throw new CutoverTimeError(`${what} "${text}" is not a date that exists; ${example}`);
  if (at.getTime() < now.getTime()) {
    throw new CutoverTimeError(`${what} ${at.toISOString()} is in the past (it is ${now.toISOString()}); leave it out to switch as soon as the copy has caught up`);
  }
  return at;
}

/**
 * The wait of a workflow whose switch may not start before `notBefore` (undefined: it may now):
 * woken at the time, or after CATCH_UP_INTERVAL_MS to apply the stream again if that comes first.
 */
export function untilCutover(ctx: StepContext, notBefore: string | undefined): StepResult | undefined {
  if (!notBefore) return undefined;
  const at = new Date(notBefore);
  const now = ctx.ports.clock.now();
  if (now >= at) return undefined;
  const next = new Date(Math.min(at.getTime(), now.getTime() + CATCH_UP_INTERVAL_MS));
  return waitUntil(next, `cutover not before ${notBefore}; the change stream is applied meanwhile`);
}
