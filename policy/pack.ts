/**
 * The pack's policy list and metadata, importable without starting the analyzer's gRPC server
 * (only index.ts constructs the PolicyPack, which serves). analyze.ts and the tests use this.
 */
import { readFileSync } from "node:fs";
import type { EnforcementLevel, PolicyPackArgs } from "@pulumi/policy";
import { PolicyRegistry, toPulumiPolicy, type PulumiPolicy } from "./registry.ts";
import { DEFAULT_SETTINGS, withDefaults, type PackSettings } from "./settings.ts";
import { dedicatedStackSingleTenant } from "./policies/dedicated-stack-single-tenant.ts";
import { dnsTenantNames } from "./policies/dns-tenant-names.ts";
import { iamTenantScope } from "./policies/iam-tenant-scope.ts";
import { kmsTenantKey } from "./policies/kms-tenant-key.ts";
import { noPublicIngress } from "./policies/no-public-ingress.ts";
import { postgresTenantGrants } from "./policies/postgres-tenant-grants.ts";
import { rdsHardening } from "./policies/rds-hardening.ts";
import { routingOwnEnvRegion } from "./policies/routing-own-env-region.ts";
import { runtimeConfigOwnTenant } from "./policies/runtime-config-own-tenant.ts";
import { secretNamesUnique } from "./policies/secret-names-unique.ts";
import { secretNamespace } from "./policies/secret-namespace.ts";
import { secretsStaySecret } from "./policies/secrets-stay-secret.ts";
import { tenantBucketRetentionAudit } from "./policies/tenant-bucket-retention-audit.ts";
import { tenantTags } from "./policies/tenant-tags.ts";

/** Name of the pack (PulumiPolicy.yaml `name`); appears in every violation the CLI prints. */
export const PACK_NAME = "saas-tenancy-isolation";

/** Version from policy/package.json: the PolicyPack constructor requires one there too. */
export const PACK_VERSION: string = (
  JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** Level of any policy the pack does not list in MANDATORY_POLICIES. */
export const PACK_ENFORCEMENT_LEVEL: EnforcementLevel = "advisory";

export const registry = new PolicyRegistry()
  .add(tenantTags)
  .add(dedicatedStackSingleTenant)
  .add(secretNamespace)
  .add(kmsTenantKey)
  .add(iamTenantScope)
  .add(rdsHardening)
  .add(noPublicIngress)
  .add(postgresTenantGrants)
  .add(dnsTenantNames)
  .add(secretsStaySecret)
  .add(secretNamesUnique)
  .add(runtimeConfigOwnTenant)
  .add(routingOwnEnvRegion)
  .add(tenantBucketRetentionAudit);

/**
 * Policies that block an update. All of the pack's policies: each guards isolation between
 * tenants or a control whose absence is a finding on its own (docs/policy.md).
 */
export const MANDATORY_POLICIES: ReadonlySet<string> = new Set([
  "tenant-tags",
  "dedicated-stack-single-tenant",
  "secret-namespace",
  "kms-tenant-key",
  "iam-tenant-scope",
  "rds-hardening",
  "no-public-ingress",
  "postgres-tenant-grants",
  "dns-tenant-names",
  "secrets-stay-secret",
  "secret-names-unique",
  "runtime-config-own-tenant",
  "routing-own-env-region",
  "tenant-bucket-retention-audit",
]);

export function enforcementLevelOf(name: string): EnforcementLevel {
  return MANDATORY_POLICIES.has(name) ? "mandatory" : (registry.get(name)?.enforcementLevel ?? PACK_ENFORCEMENT_LEVEL);
}

/** The pack's policies with the given settings as config defaults (Pulumi.yaml's by default). */
export function packPolicies(settings: Partial<PackSettings> = {}): PulumiPolicy[] {
  const defaults = withDefaults(settings);
  return registry.definitions().map((def) => toPulumiPolicy(def, defaults, enforcementLevelOf(def.name)));
}

export const policies: PulumiPolicy[] = packPolicies();

export const packArgs: PolicyPackArgs = {
  policies,
  enforcementLevel: PACK_ENFORCEMENT_LEVEL,
  displayName: "saas-tenancy isolation",
  description: "Tenant isolation, secret namespacing and hardening for pooled cells and dedicated tenant stacks",
  tags: ["saas-tenancy", "multi-tenant", "aws"],
};

export { DEFAULT_SETTINGS };
