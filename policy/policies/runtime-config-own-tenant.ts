import {
  CELL_ID_PATTERN, cellBucketName, databaseSecretName, dedicatedZoneName, pgTenantIdent, pooledHostname, tenantBucketName, tenantObjectPrefix,
} from "../../infra/model/naming.ts";
import { objectStorageMetric, RUNTIME_CONFIG_KEYS } from "../../infra/model/runtimeConfig.ts";
import { domainOf, escapeRegExp, isRecord, tenantOf } from "../lib/resource.ts";
import { documentParameters, documentValue, renderedTenants, stackRegion, unknownKeys } from "../lib/ssmDocuments.ts";
import type { PolicyContext } from "../lib/resource.ts";
import type { StackPolicyDefinition } from "../registry.ts";
import { tenantReferences } from "./dedicated-stack-single-tenant.ts";

/** Whose data a wrong value names, for the message: ` (names tenant "x")`, or "". */
function namedTenant(value: unknown, own: string, others: ReadonlySet<string>, ctx: PolicyContext): string {
  if (typeof value !== "string") return "";
  for (const ref of tenantReferences(value, ctx.settings)) {
    if (ref.what === "schema" ? ref.tenant !== pgTenantIdent(own) : ref.tenant !== own) return ` (names tenant "${ref.tenant}")`;
  }
  // A tenant bucket `<app>-<env>-<id>-data-<account>` (a cell's has a cell id where the tenant id is).
  const bucket = new RegExp(`^${escapeRegExp(ctx.settings.appName)}-[a-z]{2,7}-(.+)-data-\\d{12}$`).exec(value);
  if (bucket && bucket[1] !== own && !CELL_ID_PATTERN.test(bucket[1]!)) return ` (names tenant "${bucket[1]}")`;
  for (const other of others) {
    if (other !== own && new RegExp(`(?<![a-z0-9-])${escapeRegExp(other)}(?![a-z0-9-])`).test(value)) return ` (names tenant "${other}")`;
  }
  return "";
}

/**
 * A tenant's runtime configuration document (`/<app>/<env>/tenants/<id>/config`,
 * docs/runtime-config.md) is read by that tenant's role and the application, which serves the
 * tenant from it: a document carrying another tenant's connection document, bucket, URL or id
 * would hand the application the wrong tenant's resources. So the name, the tag and every field
 * that names something must be the tenant's own, in the stack's env and region, and the document
 * has no key beyond RUNTIME_CONFIG_KEYS (infra/model/runtimeConfig.ts).
 */
export const runtimeConfigOwnTenant: StackPolicyDefinition = {
  kind: "stack",
  name: "runtime-config-own-tenant",
  description:
    "Each tenant's runtime config document (/<app>/<env>/tenants/<id>/config) is tagged with that tenant, lies in a stack serving it in the stack's env and region, and names only that tenant: id, env, stack, URL, connection document, bucket and prefix.",
  severity: "critical",
  enforcementLevel: "advisory",
  remediationSteps:
    "Publish the document with RuntimeConfig (infra/components/runtimeConfig.ts), whose value runtimeConfigOf (infra/model/runtimeConfig.ts) derives from the tenant's own file; never copy one tenant's document into another's.",
  validate(resources, ctx, report) {
    const { appName: app, awsAccountId: account } = ctx.settings;
    const stack = ctx.stack;
    const region = stackRegion(resources);
    const { tagged } = renderedTenants(resources);
    for (const p of documentParameters(resources, app)) {
      const { doc, name, resource: r } = p;
      if (doc.kind !== "config" && doc.kind !== "tenant-other") continue;
      const id = doc.tenant;
      const tag = tenantOf(r);
      if (tag !== id) report(`parameter "${name}" lies in the namespace of tenant "${id}" but is tagged tenant ${tag === undefined ? "(none)" : `"${tag}"`}`, r.urn);
      if (stack?.kind === "platform") {
        report(`parameter "${name}" is a tenant document in platform stack ${ctx.stackName}; only the stack serving the tenant publishes it`, r.urn);
        continue;
      }
      if (stack === undefined) continue;
      if (doc.env !== stack.env) report(`parameter "${name}" is in env ${doc.env}, stack ${ctx.stackName} in env ${stack.env}`, r.urn);
      if (stack.kind === "dedicated" && id !== stack.tenant) report(`parameter "${name}" of tenant "${id}" is in the dedicated stack of tenant "${stack.tenant}"`, r.urn);
      if (doc.kind === "tenant-other") {
        report(`parameter "${name}" in the namespace of tenant "${id}" is not its runtime config (${`/${app}/${doc.env}/tenants/${id}/config`}); the program publishes no other tenant parameter`, r.urn);
        continue;
      }
      const parsed = documentValue(r);
      if ("error" in parsed) {
        report(`runtime config "${name}" ${parsed.error}`, r.urn);
        continue;
      }
      const value = parsed.value;
      const extra = unknownKeys(value, RUNTIME_CONFIG_KEYS);
      if (extra.length > 0) report(`runtime config of tenant "${id}" has key${extra.length > 1 ? "s" : ""} ${extra.map((k) => `"${k}"`).join(", ")} the document does not define (RUNTIME_CONFIG_KEYS in infra/model/runtimeConfig.ts)`, r.urn);
      const domain = domainOf(ctx.settings, doc.env);
      const storage = isRecord(value.storage) ? value.storage : {};
      const expected: [string, unknown, string][] = [
        ["tenant", value.tenant, id],
        ["env", value.env, doc.env],
        ["stack", value.stack, ctx.stackName],
        ["deployment", value.deployment, stack.kind === "shared" ? "pooled" : "dedicated"],
        ["url", value.url, `https://${stack.kind === "shared" ? pooledHostname(id, domain) : dedicatedZoneName(id, domain)}`],
        ["connectionDocument", value.connectionDocument, databaseSecretName(app, doc.env, id)],
        ["storage.bucket", storage.bucket, stack.kind === "shared" ? cellBucketName(app, doc.env, stack.cell, account) : tenantBucketName(app, doc.env, id, account)],
        ["storage.prefix", storage.prefix, tenantObjectPrefix(id)],
      ];
      if (region !== undefined) expected.push(["region", value.region, region]);
      for (const [field, actual, want] of expected) {
        if (actual === want) continue;
        report(`runtime config of tenant "${id}": ${field} is ${JSON.stringify(actual) ?? "missing"}${namedTenant(actual, id, tagged, ctx)}, expected ${JSON.stringify(want)}`, r.urn);
      }
      // A pooled tenant's stored bytes are published to the metric its document names (the cell's
      // storage alarm watches it); a dedicated tenant's bucket is measured by S3 and names none.
      const usage = storage.usageMetric === undefined ? undefined : JSON.stringify(storage.usageMetric);
      const wantUsage = stack.kind === "shared" ? JSON.stringify(objectStorageMetric(app, doc.env, id)) : undefined;
      if (usage !== wantUsage) {
        report(`runtime config of tenant "${id}": storage.usageMetric is ${usage ?? "missing"}${namedTenant(usage, id, tagged, ctx)}, expected ${wantUsage ?? "none (S3 measures a dedicated tenant's own bucket)"}`, r.urn);
      }
    }
  },
};
