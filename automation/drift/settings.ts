/** Drift detection settings (docs/drift.md): TENANCY_DRIFT_PERIOD_HOURS and TENANCY_DRIFT_CONCURRENCY. */
import { readDuration, readInt, SettingsReader, type SettingSource } from "../settings/read.ts";

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
export function driftSettingsFrom(get: SettingSource, lines: string[]): DriftSettings | undefined {
  const read = new SettingsReader(get, lines);
  const periodMs = read.or(
    (g) => readDuration(g, "TENANCY_DRIFT_PERIOD_HOURS", DEFAULT_DRIFT_PERIOD_HOURS * 3_600_000, { unit: "hours", min: 0, max: 24 * 31, note: "0 turns drift detection off" }),
    undefined,
  );
  const concurrency = read.or((g) => readInt(g, "TENANCY_DRIFT_CONCURRENCY", DEFAULT_DRIFT_CONCURRENCY, 1, 64), undefined);
  if (periodMs === undefined || periodMs === 0 || concurrency === undefined) return undefined;
  return { periodMs, concurrency };
}
