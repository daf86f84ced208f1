/**
 * Settings of the lifecycle workflows. Each default is a named constant, documented here and in
 * docs/lifecycle.md. The control plane reads overrides with lifecycleConfigFrom (its environment
 * or config file); the worker's own settings are lifecycle/settings.ts.
 */
import { readInt, SettingError, SettingsReader, type SettingSource } from "../settings/read.ts";

/** Days a tenant's data is kept after offboarding is requested, unless its file says otherwise. */
export const DEFAULT_GRACE_DAYS = 30;
/**
 * Days a migrated tenant's schema stays in its old cell after cutover (the rollback-by-hand
 * window). Cleanup dumps it to the cell bucket and removes it after that.
 */
export const DEFAULT_RETENTION_DAYS = 7;
/** Secrets Manager recovery window of an offboarded tenant's secrets (AWS allows 7-30). */
export const DEFAULT_SECRET_RECOVERY_DAYS = 30;
/** How long a waiting step (snapshot creation) sleeps before it looks again. */
export const DEFAULT_POLL_SECONDS = 60;
/** A failing step is retried this many times (with backoff) before the workflow is marked failed. */
export const DEFAULT_MAX_ATTEMPTS = 5;
/**
 * How long the cutover waits for the tenant's cell sessions to end after terminating them, and for
 * the lock on the dedicated tables. Writes are stopped during this time: keep it short.
 */
export const DEFAULT_CUTOVER_TIMEOUT_MS = 30_000;
/**
 * Credential rotation: how long sessions opened with a tenant's previous database password may
 * go on after the new one is promoted, before the workflow ends them (docs/lifecycle.md,
 * "Credential rotation"). Long enough for connection pools to recycle on their own.
 */
export const DEFAULT_ROTATION_OVERLAP_MINUTES = 60;

export interface LifecycleConfig {
  /** @default DEFAULT_GRACE_DAYS */
  graceDays: number;
  /** @default DEFAULT_RETENTION_DAYS */
  retentionDays: number;
  /** @default DEFAULT_SECRET_RECOVERY_DAYS */
  secretRecoveryDays: number;
  /** @default DEFAULT_POLL_SECONDS */
  pollSeconds: number;
  /** @default DEFAULT_MAX_ATTEMPTS */
  maxAttempts: number;
  /** @default DEFAULT_CUTOVER_TIMEOUT_MS */
  cutoverTimeoutMs: number;
  /** @default DEFAULT_ROTATION_OVERLAP_MINUTES */
  rotationOverlapMinutes: number;
}

export const DEFAULT_LIFECYCLE_CONFIG: Readonly<LifecycleConfig> = {
  graceDays: DEFAULT_GRACE_DAYS,
  retentionDays: DEFAULT_RETENTION_DAYS,
  secretRecoveryDays: DEFAULT_SECRET_RECOVERY_DAYS,
  pollSeconds: DEFAULT_POLL_SECONDS,
  maxAttempts: DEFAULT_MAX_ATTEMPTS,
  cutoverTimeoutMs: DEFAULT_CUTOVER_TIMEOUT_MS,
  rotationOverlapMinutes: DEFAULT_ROTATION_OVERLAP_MINUTES,
};

/** The workflow settings, with what each means (docs/control-plane.md lists them from here). */
export const LIFECYCLE_CONFIG_DOCS = [
  { name: "TENANCY_OFFBOARDING_GRACE_DAYS", required: false, default: String(DEFAULT_GRACE_DAYS), meaning: "Days an offboarded tenant's data is kept before its final backup and deletion." },
  { name: "TENANCY_MIGRATION_RETENTION_DAYS", required: false, default: String(DEFAULT_RETENTION_DAYS), meaning: "Days a migrated tenant's schema stays in its old cell after cutover." },
  { name: "TENANCY_SECRET_RECOVERY_DAYS", required: false, default: String(DEFAULT_SECRET_RECOVERY_DAYS), meaning: "Recovery window of an offboarded tenant's secrets (7-30)." },
  { name: "TENANCY_LIFECYCLE_POLL_SECONDS", required: false, default: String(DEFAULT_POLL_SECONDS), meaning: "How long a waiting step (snapshot creation) sleeps before it looks again." },
  { name: "TENANCY_LIFECYCLE_MAX_ATTEMPTS", required: false, default: String(DEFAULT_MAX_ATTEMPTS), meaning: "Attempts of a failing step before its workflow is failed." },
  { name: "TENANCY_CUTOVER_TIMEOUT_MS", required: false, default: String(DEFAULT_CUTOVER_TIMEOUT_MS), meaning: "How long a cutover waits for the tenant's sessions to end and for its table locks." },
  { name: "TENANCY_ROTATION_OVERLAP_MINUTES", required: false, default: String(DEFAULT_ROTATION_OVERLAP_MINUTES), meaning: "Minutes sessions opened with a rotated-away database password may go on before the rotation ends them." },
] as const;

/**
 * Reads the workflow settings (the one parser: the control plane's config, and through it the
 * HTTP API's default grace, use this); each problem is pushed to `lines` naming the setting, and
 * the setting then reads as its default.
 */
export function lifecycleConfigFrom(get: SettingSource, lines: string[]): LifecycleConfig {
  const read = new SettingsReader(get, lines);
  const d = DEFAULT_LIFECYCLE_CONFIG;
  const recovery = read.or((g) => {
    try {
      return readInt(g, "TENANCY_SECRET_RECOVERY_DAYS", d.secretRecoveryDays, 7, 30);
    } catch (err) {
      if (!(err instanceof SettingError)) throw err;
      throw new SettingError(err.setting, err.value, `${err.allowed} (the recovery windows Secrets Manager allows)`);
    }
  }, d.secretRecoveryDays);
  return {
    graceDays: read.int("TENANCY_OFFBOARDING_GRACE_DAYS", d.graceDays, 0, 3650),
    retentionDays: read.int("TENANCY_MIGRATION_RETENTION_DAYS", d.retentionDays, 0, 3650),
    secretRecoveryDays: recovery,
    pollSeconds: read.int("TENANCY_LIFECYCLE_POLL_SECONDS", d.pollSeconds, 0, 86_400),
    maxAttempts: read.int("TENANCY_LIFECYCLE_MAX_ATTEMPTS", d.maxAttempts, 1, 100),
    cutoverTimeoutMs: read.int("TENANCY_CUTOVER_TIMEOUT_MS", d.cutoverTimeoutMs, 0, 3_600_000),
    rotationOverlapMinutes: read.int("TENANCY_ROTATION_OVERLAP_MINUTES", d.rotationOverlapMinutes, 0, 10_080),
  };
}

export const DAY_MS = 86_400_000;

export function addDays(at: Date, days: number): Date {
  return new Date(at.getTime() + days * DAY_MS);
}
