/**
 * Per-tenant storage alarms (docs/runtime-config.md, "Limits: who enforces what"): what AWS can
 * measure of a tenant's storage, as CloudWatch alarm specs. Pure (no Pulumi): the stacks declare
 * them (infra/components/storageAlarms.ts) and the tests compare the renders with these.
 *
 * - dedicated: its own bucket's size (AWS/S3 BucketSizeBytes, daily) against `limits.storageGb`,
 *   and its own database's free storage (AWS/RDS FreeStorageSpace);
 * - pooled: S3 has no per-prefix storage metric and RDS none per schema, so CloudWatch cannot
 *   measure a pooled tenant's storage. The application reports it as the custom metric
 *   `<app>/Tenants` `ObjectStorageBytes` (dimensions Env, Tenant) that the tenant's runtime config
 *   names (`storage.usageMetric`, infra/model/runtimeConfig.ts), and the cell alarms on that
 *   against `limits.storageGb`; until the application publishes, the alarm stays INSUFFICIENT_DATA.
 *
 * Alarm names carry the declaring stack: PutMetricAlarm overwrites an alarm of the same name and
 * DeleteAlarms deletes by name, so two stacks (cells during a move, a cell and the dedicated stack
 * during an upgrade) must never share one.
 *
 * What AWS accepts of a metric alarm (alarmSpecProblems, checked for every spec a stack declares):
 * a name of 1-255 characters unique in the account and region, a period of 10, 20 or 30 s or a
 * multiple of 60, period x evaluation periods at most one day, a namespace without ':'
 * (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html,
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_limits.html; the
 * provider validates the same: terraform-provider-aws internal/service/cloudwatch/metric_alarm.go).
 * The number of metric alarms per account and region has no quota (the same limits page), so the
 * fleet quota check counts their topics, not them (infra/model/quotas.ts).
 */
import { cellDbIdentifier, dedicatedDbIdentifier } from "./infraNames.ts";
import { SHARED_TENANT, tenantBucketName } from "./naming.ts";
import type { Platform } from "./platform.ts";
import { runtimeConfigOf } from "./runtimeConfig.ts";
import type { Tenant } from "./schema.ts";
import { dedicatedSizing, limitsFor } from "./tiers.ts";

export const GIB = 1024 ** 3;
/**
 * A dedicated database alarms when its free storage stays under this fraction of its allocated
 * size for DB_FREE_STORAGE_PERIODS five-minute periods: storage autoscaling acts when free space
 * is under 10% for 5 minutes, so half an hour under it means autoscaling is at its ceiling
 * (`maxAllocatedStorage`) or in its 6-hour wait after the last change.
 */
export const DB_FREE_STORAGE_FRACTION = 0.1;
export const DB_FREE_STORAGE_PERIODS = 6;
/** S3 storage metrics are daily (https://docs.aws.amazon.com/AmazonS3/latest/userguide/metrics-dimensions.html). */
export const DAY_SECONDS = 86_400;

export interface StorageAlarmSpec {
  /** Stable key, part of the child resource name: never change. */
  key: "object-storage" | "bucket-size" | "db-free-storage";
  /** The tenant whose storage it watches, or `shared` for a cell's own database. */
  tenant: string;
  alarmName: string;
  description: string;
  namespace: string;
  metricName: string;
  dimensions: Record<string, string>;
  statistic: "Average" | "Maximum" | "Minimum";
  period: number;
  evaluationPeriods: number;
  threshold: number;
  comparisonOperator: "GreaterThanThreshold" | "LessThanThreshold";
  treatMissingData: "missing" | "notBreaching";
}

/** `<app>/<env>/tenants/<id>/<key>/<stack>`: the tenant's namespace, unique per declaring stack. */
export function storageAlarmName(app: string, env: string, tenant: string, key: StorageAlarmSpec["key"], stack: string): string {
  return `${app}/${env}/tenants/${tenant}/${key}/${stack}`;
}

/** Every cell and dedicated stack declares exactly one topic (counted by the quota check, infra/model/fleetLimits.ts). */
export const ALARM_TOPICS_PER_STACK = 1;

/** The SNS topic a cell or dedicated stack sends its alarms to: `<app>-<env>-<cell or tenant>-alarms`. */
export function alarmTopicName(app: string, env: string, owner: string): string {
  return `${app}-${env}-${owner}-alarms`;
}

/** The alarm a cell declares for a tenant it serves (the stack that publishes its runtime config). */
export function pooledStorageAlarms(platform: Platform, t: Tenant, env: string, stack: string): StorageAlarmSpec[] {
  const doc = runtimeConfigOf(platform, t, env);
  const metric = doc.storage.usageMetric;
  if (doc.stack !== stack || doc.deployment !== "pooled" || !metric) return [];
  const app = platform.appName;
  const gb = doc.limits.storageGb;
  return [{
    key: "object-storage",
    tenant: t.id,
    alarmName: storageAlarmName(app, env, t.id, "object-storage", stack),
    description: `Objects of tenant ${t.id} (${env}) under ${doc.storage.prefix} in ${doc.storage.bucket} exceed storageGb ${gb} GiB (reported by the application)`,
    // The metric the tenant's runtime config tells the application to publish.
    namespace: metric.namespace,
    metricName: metric.name,
    dimensions: { ...metric.dimensions },
    statistic: "Maximum",
    period: DAY_SECONDS,
    evaluationPeriods: 1,
    threshold: gb * GIB,
    comparisonOperator: "GreaterThanThreshold",
    treatMissingData: "missing",
  }];
}

/** The alarms a dedicated stack declares for its tenant, from provisioning on (its bucket and database exist from then). */
export function dedicatedStorageAlarms(platform: Platform, t: Tenant, env: string, stack: string): StorageAlarmSpec[] {
  if (t.deployment !== "dedicated") return [];
  const app = platform.appName;
  const gb = limitsFor(t.tier, t.limits).storageGb;
  const bucket = tenantBucketName(app, env, t.id, platform.awsAccountId);
  const db = dedicatedDbIdentifier(app, env, t.id);
  const allocatedGb = dedicatedSizing(env, t.dedicated[env]?.database).allocatedStorageGb;
  return [
    {
      key: "bucket-size",
      tenant: t.id,
      alarmName: storageAlarmName(app, env, t.id, "bucket-size", stack),
      description: `Bucket ${bucket} of tenant ${t.id} (${env}, every version counted) exceeds storageGb ${gb} GiB`,
      namespace: "AWS/S3",
      metricName: "BucketSizeBytes",
      dimensions: { BucketName: bucket, StorageType: "StandardStorage" },
      statistic: "Average",
      period: DAY_SECONDS,
      evaluationPeriods: 1,
      threshold: gb * GIB,
      comparisonOperator: "GreaterThanThreshold",
      // S3 reports no size for an empty bucket.
      treatMissingData: "notBreaching",
    },
    {
      key: "db-free-storage",
      tenant: t.id,
      alarmName: storageAlarmName(app, env, t.id, "db-free-storage", stack),
      description: `Database ${db} of tenant ${t.id} (${env}) has had under ${DB_FREE_STORAGE_FRACTION * 100}% of its ${allocatedGb} GiB free for ${DB_FREE_STORAGE_PERIODS * 5} minutes: storage autoscaling is at its ceiling or waiting`,
      ...dbFreeStorage(db, allocatedGb),
    },
  ];
}

/**
 * The alarm a cell declares on its own database, shared by every pooled tenant it holds: no metric
 * measures one tenant's schema (docs/runtime-config.md), but the shared instance filling up stops
 * all of them, so its free storage is watched like a dedicated database's. Child key `shared`
 * (never a tenant id: reserved), name `<app>/<env>/cells/<cell>/db-free-storage/<stack>`.
 */
export function cellStorageAlarms(
  platform: Platform,
  cell: { id: string; env: string; config: { dbAllocatedStorageGb?: number | undefined } },
  stack: string,
): StorageAlarmSpec[] {
  const app = platform.appName;
  const db = cellDbIdentifier(app, cell.env, cell.id);
  const allocatedGb = cell.config.dbAllocatedStorageGb ?? platform.cellDefaults.dbAllocatedStorageGb;
  return [{
    key: "db-free-storage",
    tenant: SHARED_TENANT,
    alarmName: `${app}/${cell.env}/cells/${cell.id}/db-free-storage/${stack}`,
    description: `Database ${db} of cell ${cell.id} (${cell.env}), shared by its pooled tenants, has had under ${DB_FREE_STORAGE_FRACTION * 100}% of its ${allocatedGb} GiB free for ${DB_FREE_STORAGE_PERIODS * 5} minutes: storage autoscaling is at its ceiling or waiting`,
    ...dbFreeStorage(db, allocatedGb),
  }];
}

function dbFreeStorage(db: string, allocatedGb: number): Omit<StorageAlarmSpec, "key" | "tenant" | "alarmName" | "description"> {
  return {
    namespace: "AWS/RDS",
    metricName: "FreeStorageSpace",
    dimensions: { DBInstanceIdentifier: db },
    statistic: "Minimum",
    period: 300,
    evaluationPeriods: DB_FREE_STORAGE_PERIODS,
    threshold: Math.round(allocatedGb * DB_FREE_STORAGE_FRACTION * GIB),
    comparisonOperator: "LessThanThreshold",
    treatMissingData: "missing",
  };
}

/** PutMetricAlarm's own limits (cited in the header). */
export const ALARM_NAME_MAX = 255;
export const ALARM_EVALUATION_MAX_SECONDS = 86_400;

/** What AWS would refuse in a spec: one message per problem, empty when PutMetricAlarm accepts it. */
export function alarmSpecProblems(a: StorageAlarmSpec): string[] {
  const out: string[] = [];
  if (a.alarmName.length < 1 || a.alarmName.length > ALARM_NAME_MAX) out.push(`alarm name ${JSON.stringify(a.alarmName)} has ${a.alarmName.length} characters; CloudWatch allows 1-${ALARM_NAME_MAX}`);
  if (![10, 20, 30].includes(a.period) && (a.period <= 0 || a.period % 60 !== 0)) out.push(`period ${a.period} s of ${a.alarmName}: CloudWatch allows 10, 20, 30 or a multiple of 60`);
  if (a.period * a.evaluationPeriods > ALARM_EVALUATION_MAX_SECONDS) {
    out.push(`${a.alarmName} evaluates ${a.period} s x ${a.evaluationPeriods} periods = ${a.period * a.evaluationPeriods} s; CloudWatch allows at most ${ALARM_EVALUATION_MAX_SECONDS} s (one day)`);
  }
  if (a.namespace.includes(":")) out.push(`namespace ${JSON.stringify(a.namespace)} of ${a.alarmName} contains ':', which CloudWatch refuses`);
  return out;
}
