import { SHARED_TENANT, tenantKmsAlias } from "../../infra/model/naming.ts";
import { escapeRegExp, records, str, tenantOf } from "../lib/resource.ts";
import { at, StackIndex, T, type StackResourceView } from "../lib/stack.ts";
import type { StackPolicyDefinition, StackReport } from "../registry.ts";

/** The tenant an alias name claims: `alias/<app>/<env>/tenants/<t>` -> t, `.../cells/<c>` -> shared. */
function aliasOwner(name: string, appName: string): string | undefined {
  const m = new RegExp(`^alias/${escapeRegExp(appName)}/[a-z]{2,7}/(tenants|cells)/([^/]+)$`).exec(name);
  if (!m) return undefined;
  return m[1] === "cells" ? SHARED_TENANT : m[2];
}

function describeKey(key: StackResourceView | undefined, value: string): string {
  if (!key) return `"${value}" (not a key of this stack)`;
  return `key "${key.name}" (tagged tenant "${tenantOf(key) ?? "<none>"}")`;
}

/**
 * In a dedicated stack: `prop` of `r` must name a key tagged with the stack's tenant. `required`
 * says whether an unset value (an AWS managed key) is a violation here.
 */
function checkUsesTenantKey(
  r: StackResourceView,
  prop: string,
  value: unknown,
  tenant: string,
  index: StackIndex,
  report: StackReport,
  required: boolean,
): void {
  const v = str(value);
  if (v === undefined || v === "") {
    if (required) report(`${prop} is not set, so AWS encrypts it with an AWS managed key; use the key of tenant "${tenant}"`, r.urn);
    return;
  }
  const key = index.resolveKey(r, prop, v);
  if (key && tenantOf(key) === tenant) return;
  report(`${prop} names ${describeKey(key, v)}, not the key of tenant "${tenant}"`, r.urn);
}

/** The SSE default of a bucket-level encryption block (inline on the bucket or its own resource). */
function sseDefaults(sse: StackResourceView): Record<string, unknown>[] {
  return records(sse.props.rules).map((rule) => at(rule, "applyServerSideEncryptionByDefault")).filter((d): d is Record<string, unknown> => typeof d === "object" && d !== null);
}

function checkBucket(bucket: StackResourceView, tenant: string, index: StackIndex, report: StackReport): void {
  const configs = index.ofType(T.bucketSse).filter((c) => index.resolve(c, "bucket", [T.bucket]) === bucket);
  const inline = at(bucket.props, "serverSideEncryptionConfiguration", "rule", "applyServerSideEncryptionByDefault");
  const defaults: Array<{ from: StackResourceView; prop: string; d: Record<string, unknown> }> = [
    ...configs.flatMap((c) => sseDefaults(c).map((d, i) => ({ from: c, prop: `rules[${i}].applyServerSideEncryptionByDefault.kmsMasterKeyId`, d }))),
    ...(typeof inline === "object" && inline !== null
      ? [{ from: bucket, prop: "serverSideEncryptionConfiguration.rule.applyServerSideEncryptionByDefault.kmsMasterKeyId", d: inline as Record<string, unknown> }]
      : []),
  ];
  if (defaults.length === 0) {
    report(`bucket has no server-side encryption configuration, so S3 encrypts it with an S3 managed key; encrypt it with the key of tenant "${tenant}"`, bucket.urn);
    return;
  }
  for (const { from, prop, d } of defaults) {
    const algorithm = str(d.sseAlgorithm);
    if (algorithm !== "aws:kms" && algorithm !== "aws:kms:dsse") {
      report(`sseAlgorithm is "${algorithm ?? "<unset>"}"; the tenant's bucket is encrypted with aws:kms and the key of tenant "${tenant}"`, from.urn);
      continue;
    }
    checkUsesTenantKey(from, prop, d.kmsMasterKeyId, tenant, index, report, true);
  }
}

export const kmsTenantKey: StackPolicyDefinition = {
  kind: "stack",
  name: "kms-tenant-key",
  description:
    "KMS keys rotate, aliases in a tenant's namespace point at that tenant's key, and in a dedicated stack the tenant's secrets, bucket, log groups and database use the tenant's own key.",
  severity: "high",
  enforcementLevel: "advisory",
  remediationSteps:
    "Set enableKeyRotation: true; pass the tenant key's ARN as kmsKeyId / kmsMasterKeyId / performanceInsightsKmsKeyId of every dedicated-stack resource that stores data.",
  validate(resources, ctx, report) {
    const index = new StackIndex(resources);
    for (const key of index.ofType(T.key)) {
      if (key.props.enableKeyRotation !== true) report("enableKeyRotation is not true: KMS keys rotate", key.urn);
    }
    for (const alias of index.ofType(T.alias)) {
      const name = str(alias.props.name);
      const owner = name === undefined ? undefined : aliasOwner(name, ctx.settings.appName);
      if (owner === undefined) continue;
      const key = index.resolve(alias, "targetKeyId", [T.key]);
      if (!key || tenantOf(key) !== owner) {
        report(`alias "${name}" belongs to ${owner === SHARED_TENANT ? "a cell" : `tenant "${owner}"`} but targets ${describeKey(key, str(alias.props.targetKeyId) ?? "<unset>")}`, alias.urn);
      }
    }
    if (ctx.stack?.kind !== "dedicated") return;
    const tenant = ctx.stack.tenant;
    if (!index.ofType(T.key).some((k) => tenantOf(k) === tenant)) {
      const anchor = index.ofType(T.stack)[0] ?? resources[0]!;
      report(`the dedicated stack of tenant "${tenant}" has no KMS key tagged tenant=${tenant} (alias ${tenantKmsAlias(ctx.settings.appName, ctx.stack.env, tenant)})`, anchor.urn);
    }
    for (const s of index.ofType(T.secret)) checkUsesTenantKey(s, "kmsKeyId", s.props.kmsKeyId, tenant, index, report, true);
    for (const g of index.ofType(T.logGroup)) checkUsesTenantKey(g, "kmsKeyId", g.props.kmsKeyId, tenant, index, report, true);
    for (const db of index.ofType(T.rdsInstance)) {
      // An unset kmsKeyId on the instance is rds-hardening's violation (no customer key at all).
      checkUsesTenantKey(db, "kmsKeyId", db.props.kmsKeyId, tenant, index, report, false);
      if (db.props.performanceInsightsEnabled === true) {
        checkUsesTenantKey(db, "performanceInsightsKmsKeyId", db.props.performanceInsightsKmsKeyId, tenant, index, report, true);
      }
    }
    for (const b of index.ofType(T.bucket)) checkBucket(b, tenant, index, report);
  },
};
