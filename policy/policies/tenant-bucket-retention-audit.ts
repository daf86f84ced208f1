import { accessLogBucketName } from "../../infra/model/naming.ts";
import { escapeRegExp, isRecord, records, str } from "../lib/resource.ts";
import { stackRegion } from "../lib/ssmDocuments.ts";
import { StackIndex, type StackResourceView } from "../lib/stack.ts";
import type { StackPolicyDefinition, StackReport } from "../registry.ts";

const BUCKET = "aws:s3/bucket:Bucket";
const VERSIONING = "aws:s3/bucketVersioning:BucketVersioning";
const LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration";
const LOGGING = "aws:s3/bucketLogging:BucketLogging";

/** A rule filter that selects every object of the bucket: none, `{}`, or an empty prefix. */
function wholeBucket(rule: Record<string, unknown>): boolean {
  const filter = rule.filter;
  const legacyPrefix = str(rule.prefix);
  if (legacyPrefix !== undefined && legacyPrefix !== "") return false;
  if (filter === undefined || filter === null) return true;
  if (!isRecord(filter)) return false;
  return Object.entries(filter).every(([k, v]) => v === undefined || v === null || (k === "prefix" && v === ""));
}

function expiresNoncurrent(rule: Record<string, unknown>): boolean {
  const days = rule.noncurrentVersionExpiration;
  return str(rule.status) === "Enabled" && isRecord(days) && typeof days.noncurrentDays === "number" && days.noncurrentDays > 0 && wholeBucket(rule);
}

/** The log bucket a data bucket must log to, and how a message names it. */
interface LogTarget {
  pattern: RegExp;
  shown: string;
}

function checkBucket(b: StackResourceView, index: StackIndex, logTarget: LogTarget, report: StackReport): void {
  const name = str(b.props.bucket) ?? b.name;
  const of = (type: string) => index.ofType(type).filter((c) => index.resolve(c, "bucket", [BUCKET]) === b);

  const versioned = of(VERSIONING).some((v) => isRecord(v.props.versioningConfiguration) && str(v.props.versioningConfiguration.status) === "Enabled");
  if (!versioned) report(`bucket ${name} is not versioned (no BucketVersioning with status Enabled): overwritten and deleted tenant objects cannot be recovered`, b.urn);

  const rules = of(LIFECYCLE).flatMap((l) => records(l.props.rules));
  if (!rules.some(expiresNoncurrent)) {
    report(
      `bucket ${name} has no enabled lifecycle rule expiring noncurrent versions over the whole bucket (noncurrentVersionExpiration.noncurrentDays, no filter): ` +
        "overwritten and deleted tenant objects are kept and billed forever, and an offboarded tenant's data outlives its deletion",
      b.urn,
    );
  }

  const logging = of(LOGGING);
  const targets = logging.map((l) => str(l.props.targetBucket) ?? "");
  if (logging.length === 0) {
    report(`bucket ${name} has no server access logging (BucketLogging): no record of who read or changed a tenant's objects`, b.urn);
  } else if (!targets.some((t) => t !== name && logTarget.pattern.test(t))) {
    report(`bucket ${name} logs its access to ${targets.map((t) => JSON.stringify(t)).join(", ")}, not to its env's access log bucket ${logTarget.shown}`, b.urn);
  }
}

/**
 * Tenant data must be recoverable for a while and then really gone, and who touched it must be
 * answerable (docs/storage.md). Every bucket of a cell or dedicated stack holds tenant data (the
 * cell bucket under `tenants/<id>/`, a dedicated tenant's own bucket), so each must be versioned,
 * have an enabled lifecycle rule over the whole bucket expiring noncurrent versions, and log its
 * requests with S3 server access logging to its env's access log bucket in its region (the
 * program's choice over CloudTrail data events; docs/storage.md says why). @pulumi/aws v7 declares
 * these as separate resources, found through their `bucket` input.
 */
export const tenantBucketRetentionAudit: StackPolicyDefinition = {
  kind: "stack",
  name: "tenant-bucket-retention-audit",
  description:
    "Every bucket of a cell or dedicated stack is versioned, expires noncurrent versions with an enabled whole-bucket lifecycle rule, and has S3 server access logging to its env's access log bucket.",
  severity: "high",
  enforcementLevel: "advisory",
  remediationSteps:
    "Build tenant buckets with EncryptedBucket (infra/components/encryptedBucket.ts): it declares BucketVersioning, BucketLifecycleConfiguration (expire-noncurrent-versions) and BucketLogging to accessLogBucketName (infra/model/naming.ts).",
  validate(resources, ctx, report) {
    const stack = ctx.stack;
    if (stack?.kind !== "shared" && stack?.kind !== "dedicated") return;
    const { appName: app, awsAccountId: account } = ctx.settings;
    const region = stackRegion(resources);
    // With the stack's provider region known, the exact log bucket; without it (no provider among
    // the resources), any region's log bucket of the env.
    const exact = region !== undefined ? accessLogBucketName(app, stack.env, region, account) : undefined;
    const logTarget: LogTarget = exact !== undefined
      ? { pattern: new RegExp(`^${escapeRegExp(exact)}$`), shown: exact }
      : { pattern: new RegExp(`^${escapeRegExp(`${app}-${stack.env}-`)}[a-z0-9]+${escapeRegExp(`-access-logs-${account}`)}$`), shown: `${app}-${stack.env}-<region code>-access-logs-${account}` };
    const index = new StackIndex(resources);
    for (const b of index.ofType(BUCKET)) checkBucket(b, index, logTarget, report);
  },
};
