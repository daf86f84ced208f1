/**
 * Settings of the lifecycle workflows. Each default is a named constant, documented here and in
 * docs/lifecycle.md. The control plane reads overrides from its environment.
 */

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

export class LifecycleConfigError extends Error {}

const ENV_KEYS: Record<keyof LifecycleConfig, string> = {
  graceDays: "TENANCY_OFFBOARDING_GRACE_DAYS",
  retentionDays: "TENANCY_MIGRATION_RETENTION_DAYS",
  secretRecoveryDays: "TENANCY_SECRET_RECOVERY_DAYS",
  pollSeconds: "TENANCY_LIFECYCLE_POLL_SECONDS",
  maxAttempts: "TENANCY_LIFECYCLE_MAX_ATTEMPTS",
  cutoverTimeoutMs: "TENANCY_CUTOVER_TIMEOUT_MS",
  rotationOverlapMinutes: "TENANCY_ROTATION_OVERLAP_MINUTES",
};

/** Reads overrides from the environment; a bad value stops start-up with a message naming it. */
export function lifecycleConfigFromEnv(env: NodeJS.ProcessEnv = process.env): LifecycleConfig {
  const out: LifecycleConfig = { ...DEFAULT_LIFECYCLE_CONFIG };
  for (const [key, name] of Object.entries(ENV_KEYS) as [keyof LifecycleConfig, string][]) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new LifecycleConfigError(`${name}=${raw}: must be a whole number >= 0`);
    out[key] = n;
  }
  if (out.secretRecoveryDays < 7 || out.secretRecoveryDays > 30) {
    throw new LifecycleConfigError(`${ENV_KEYS.secretRecoveryDays}=${out.secretRecoveryDays}: Secrets Manager allows a recovery window of 7 to 30 days`);
  }
  return out;
}

export const DAY_MS = 86_400_000;

export function addDays(at: Date, days: number): Date {
  return new Date(at.getTime() + days * DAY_MS);
}
