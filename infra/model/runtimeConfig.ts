/**
 * A tenant's runtime configuration document (docs/runtime-config.md): what the application reads at
 * `/<app>/<env>/tenants/<id>/config` (SSM Parameter Store) to serve the tenant: tier, deployment,
 * region, lifecycle, effective limits and features, its URL, where its objects live and the NAME
 * of its connection document (never a secret value). Pure (no Pulumi): the stacks publish it, the
 * console shows it, the policy pack checks it, all from this one function.
 */
import {
  cellBucketName, cellStackName, databaseSecretName, runtimeConfigParameterName, tenantBucketName, tenantObjectPrefix,
} from "./naming.ts";
import type { Platform } from "./platform.ts";
import { routeOf } from "./routes.ts";
import type { Tenant } from "./schema.ts";
import { limitsFor, type TenantLimits, type Tier } from "./tiers.ts";

/** Version of the document's shape: the application refuses a version it does not know. */
export const RUNTIME_CONFIG_SCHEMA_VERSION = 1;

/**
 * SSM Standard parameters hold up to 4 KB (4,096 bytes), Advanced up to 8 KB
 * (https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html).
 * Every document of this program is sized to fit Standard, whatever `ssmParameterTier` says: the
 * tier is then a matter of the parameter count only (the quota check, infra/model/quotas.ts), and a
 * platform can move to Advanced in place (never back: the provider would replace each parameter).
 */
export const SSM_STANDARD_MAX_BYTES = 4096;

export interface RuntimeConfig {
  schemaVersion: typeof RUNTIME_CONFIG_SCHEMA_VERSION;
  tenant: string;
  env: string;
  /** The tier whose limits apply now: during an upgrade, the cell's tier until cutover. */
  tier: Tier;
  deployment: "pooled" | "dedicated";
  region: string;
  lifecycle: Tenant["lifecycle"];
  /** The stack serving the tenant in this env (the one that publishes this document). */
  stack: string;
  limits: TenantLimits;
  /**
   * The features the application acts on. `egress` and `vpcPeering` are built by the dedicated
   * stack itself (NAT, peering) and are not here: the application has nothing to do for them.
   */
  features: { sso: boolean; customModel: boolean };
  url: string;
  /** Name of the connection document in Secrets Manager; the application reads it with its own permission. */
  connectionDocument: string;
  /**
   * Where the tenant's objects live; `storageGb` applies to everything under the prefix. A pooled
   * tenant's document also names the CloudWatch metric the application publishes its stored bytes
   * to (`usageMetric`): AWS measures no prefix of a shared bucket, and the cell's storage alarm
   * watches exactly this metric (infra/model/storageAlarms.ts, docs/runtime-config.md).
   */
  storage: { bucket: string; prefix: string; usageMetric?: UsageMetric };
}

/** A custom CloudWatch metric the application publishes (PutMetricData) for one tenant env. */
export interface UsageMetric {
  namespace: string;
  name: string;
  dimensions: { Env: string; Tenant: string };
}

/** Namespace of the metrics the application publishes per tenant. */
export function tenantMetricNamespace(app: string): string {
  return `${app}/Tenants`;
}
/** Bytes stored under a pooled tenant's prefix, every object version counted. */
export const OBJECT_STORAGE_METRIC = "ObjectStorageBytes";

/** The metric a pooled tenant's stored bytes are published to. */
export function objectStorageMetric(app: string, env: string, tenant: string): UsageMetric {
  return { namespace: tenantMetricNamespace(app), name: OBJECT_STORAGE_METRIC, dimensions: { Env: env, Tenant: tenant } };
}

/**
 * Every key of the document, in its order. The policy pack refuses a document with any other key
 * (`runtime-config-own-tenant`): nothing beyond these can carry another tenant's data.
 */
export const RUNTIME_CONFIG_KEYS = [
  "schemaVersion", "tenant", "env", "tier", "deployment", "region", "lifecycle", "stack", "limits", "features", "url", "connectionDocument", "storage",
] as const satisfies readonly (keyof RuntimeConfig)[];

/**
 * The document of tenant `t` in `env`, as the stack serving it publishes it. While an upgrade
 * has not reached cutover the cell serves the tenant with the tier it had there
 * (`migration.fromTier`), so that tier's limits apply and the cell publishes the document; from
 * cutover on the dedicated stack does (the document changes hands with the tenant's identity,
 * infra/model/handover.ts).
 */
export function runtimeConfigOf(platform: Platform, t: Tenant, env: string): RuntimeConfig {
  if (!(env in t.environments)) throw new Error(`tenant ${t.id} has no environment ${env} (declared: ${Object.keys(t.environments).join(", ")})`);
  const route = routeOf({ platform }, t, env);
  const fromCell = route.deployment === "pooled";
  const tier = fromCell && t.deployment === "dedicated" && t.migration ? t.migration.fromTier : t.tier;
  const app = platform.appName;
  // The serving cell (routeOf knows upgrades and cell moves): the bucket is that cell's.
  const cell = route.stack.slice(cellStackName(env, "").length);
  const bucket = fromCell ? cellBucketName(app, env, cell, platform.awsAccountId) : tenantBucketName(app, env, t.id, platform.awsAccountId);
  return {
    schemaVersion: RUNTIME_CONFIG_SCHEMA_VERSION,
    tenant: t.id,
    env,
    tier,
    deployment: route.deployment,
    region: t.region,
    lifecycle: t.lifecycle,
    stack: route.stack,
    limits: limitsFor(tier, t.limits),
    features: { sso: t.features.sso, customModel: t.features.customModel },
    url: route.url,
    connectionDocument: databaseSecretName(app, env, t.id),
    storage: { bucket, prefix: tenantObjectPrefix(t.id), ...(fromCell ? { usageMetric: objectStorageMetric(app, env, t.id) } : {}) },
  };
}

/** The parameter's value: JSON with the keys in the order above (a stable text, so an unchanged document is no diff). */
export function renderRuntimeConfig(doc: RuntimeConfig): string {
  const text = JSON.stringify(doc);
  const bytes = new TextEncoder().encode(text).length;
  if (bytes > SSM_STANDARD_MAX_BYTES) {
    throw new Error(`runtime config of ${doc.tenant} (${doc.env}) is ${bytes} bytes, over the ${SSM_STANDARD_MAX_BYTES} of an SSM Standard parameter; shorten the document (infra/model/runtimeConfig.ts)`);
  }
  return text;
}

/** Where the document of `t` in `env` is published, and its text: what the console shows on the tenant page. */
export function runtimeConfigParameter(platform: Platform, t: Tenant, env: string): { name: string; value: string; document: RuntimeConfig } {
  const document = runtimeConfigOf(platform, t, env);
  return { name: runtimeConfigParameterName(platform.appName, env, t.id), value: renderRuntimeConfig(document), document };
}
