/**
 * Per-tier defaults. The single place where a tier's limits and dedicated sizing are decided;
 * a tenant file may override any of them (`limits:`, `database:`), nothing else may.
 */
export const TIERS = ["free", "standard", "enterprise", "dedicated"] as const;
export type Tier = (typeof TIERS)[number];

export const DEPLOYMENTS = ["pooled", "dedicated"] as const;
export type Deployment = (typeof DEPLOYMENTS)[number];

export interface TenantLimits {
  /** API requests per minute at the gateway. */
  apiRatePerMinute: number;
  /** Object storage quota in GiB. */
  storageGb: number;
  /** Postgres CONNECTION LIMIT of the tenant's role. */
  maxDbConnections: number;
  /** Postgres statement_timeout of the tenant's role, in milliseconds. */
  statementTimeoutMs: number;
}

export const TIER_LIMITS: Readonly<Record<Tier, TenantLimits>> = {
  free: { apiRatePerMinute: 60, storageGb: 1, maxDbConnections: 5, statementTimeoutMs: 5_000 },
  standard: { apiRatePerMinute: 600, storageGb: 25, maxDbConnections: 20, statementTimeoutMs: 15_000 },
  enterprise: { apiRatePerMinute: 3_000, storageGb: 250, maxDbConnections: 50, statementTimeoutMs: 30_000 },
  dedicated: { apiRatePerMinute: 10_000, storageGb: 1_000, maxDbConnections: 200, statementTimeoutMs: 60_000 },
};

export interface DatabaseSizing {
  instanceClass: string;
  allocatedStorageGb: number;
  /** Storage autoscaling ceiling (RDS maxAllocatedStorage); never below allocatedStorageGb. */
  maxAllocatedStorageGb: number;
  multiAz: boolean;
  backupRetentionDays: number;
}

/** Dedicated RDS sizing in prod. Outside prod a dedicated tenant gets the non-prod defaults below. */
export const DEDICATED_PROD_SIZING: Readonly<DatabaseSizing> = {
  instanceClass: "db.r6g.large",
  allocatedStorageGb: 200,
  maxAllocatedStorageGb: 2000,
  multiAz: true,
  backupRetentionDays: 14,
};

/** Staging and dev: one AZ, a burstable class, the 7-day backup floor the policies require. */
export const DEDICATED_NONPROD_SIZING: Readonly<DatabaseSizing> = {
  instanceClass: "db.t4g.medium",
  allocatedStorageGb: 50,
  maxAllocatedStorageGb: 200,
  multiAz: false,
  backupRetentionDays: 7,
};

/** Backup retention floor enforced by the schema and the rds-hardening policy. */
export const MIN_BACKUP_RETENTION_DAYS = 7;

/** The deployment a tier implies when the tenant file does not say. */
export function defaultDeployment(tier: Tier): Deployment {
  return tier === "dedicated" ? "dedicated" : "pooled";
}

/** Which deployments a tier may have: only enterprise may choose. */
export function allowedDeployments(tier: Tier): readonly Deployment[] {
  if (tier === "enterprise") return DEPLOYMENTS;
  return [defaultDeployment(tier)];
}

export function limitsFor(tier: Tier, overrides: Partial<TenantLimits> | undefined): TenantLimits {
  return { ...TIER_LIMITS[tier], ...overrides };
}

export function dedicatedSizing(env: string, overrides: Partial<DatabaseSizing> | undefined): DatabaseSizing {
  const base = env === "prod" ? DEDICATED_PROD_SIZING : DEDICATED_NONPROD_SIZING;
  return { ...base, ...overrides };
}

/** Whether a tenant gets its own KMS key even when pooled (enterprise) or always (dedicated). */
export function hasOwnKmsKey(tier: Tier, deployment: Deployment): boolean {
  return deployment === "dedicated" || tier === "enterprise";
}
