/** Drift detection settings (docs/drift.md): TENANCY_DRIFT_PERIOD_HOURS and TENANCY_DRIFT_CONCURRENCY. */

/** What the drift scheduler (automation/drift/scheduler.ts) runs with. */
export interface DriftSettings {
  /** Each stack is checked once per period. */
  periodMs: number;
  /** Checks queued or running at once, fleet-wide. */
  concurrency: number;
}

/** Each stack is checked once a day. */
export const DEFAULT_DRIFT_PERIOD_HOURS = 24;
/** Checks queued or running at once, fleet-wide: small, so updates keep the runner. */
export const DEFAULT_DRIFT_CONCURRENCY = 2;

export const DRIFT_SETTING_DOCS = [
  { name: "TENANCY_DRIFT_PERIOD_HOURS", required: false, default: String(DEFAULT_DRIFT_PERIOD_HOURS), meaning: "Every stack gets a drift check (`pulumi preview --refresh`) once per this many hours; 0 turns drift detection off." },
  { name: "TENANCY_DRIFT_CONCURRENCY", required: false, default: String(DEFAULT_DRIFT_CONCURRENCY), meaning: "Drift checks queued or running at once, fleet-wide." },
] as const;

/** The settings, or undefined when drift detection is off; problems go to `lines`, one each. */
export function driftSettingsFrom(get: (name: string) => string | undefined, lines: string[]): DriftSettings | undefined {
  const period = get("TENANCY_DRIFT_PERIOD_HOURS") ?? String(DEFAULT_DRIFT_PERIOD_HOURS);
  const conc = get("TENANCY_DRIFT_CONCURRENCY") ?? String(DEFAULT_DRIFT_CONCURRENCY);
  const hours = Number(period);
  const concurrency = Number(conc);
  if (period.trim() === "" || !Number.isFinite(hours) || hours < 0 || hours > 24 * 31) {
    lines.push(`TENANCY_DRIFT_PERIOD_HOURS: "${period}" is not a number of hours between 0 (off) and 744`);
  }
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    lines.push(`TENANCY_DRIFT_CONCURRENCY: "${conc}" is not a whole number between 1 and 64`);
  }
  if (!(hours > 0) || !Number.isInteger(concurrency)) return undefined;
  return { periodMs: hours * 3_600_000, concurrency };
}
