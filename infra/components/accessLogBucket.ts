import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { accessLogBucketPolicy } from "../model/accessPolicies.ts";
import { accessLogBucketName, SHARED_TENANT } from "../model/naming.ts";
import { componentType, policyJson, tagsFor, type StackContext } from "./context.ts";

/**
 * Days S3 server access logs are kept: a year and a month, so a "who read this tenant's data"
 * question about last year's audit period can still be answered.
 */
export const ACCESS_LOG_RETENTION_DAYS = 400;
/** Days a noncurrent log version is kept (a log object is never rewritten by S3; this bounds accidents). */
export const ACCESS_LOG_NONCURRENT_DAYS = 30;

export interface AccessLogBucketArgs {
  /** The platform stack's context. */
  ctx: StackContext;
  /** The env whose buckets log here. */
  env: string;
}

/**
 * The S3 server access log bucket of one env in the stack's region (docs/security.md, "Object
 * access audit"). Hardened as a log bucket must be, and as server access logging allows:
 * - default encryption SSE-S3 (AES256): S3's log delivery cannot write to a bucket whose default
 *   is SSE-KMS with a customer key (https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html);
 * - Object Ownership `BucketOwnerEnforced` (ACLs off): delivery is granted by the bucket policy, to
 *   logging.s3.amazonaws.com for this account's buckets of the env only;
 * - public access blocked, plain HTTP refused, versioned, logs expired after
 *   ACCESS_LOG_RETENTION_DAYS; it does not log its own access (that would log its log deliveries);
 * - `retainOnDelete`: destroying the platform stack never deletes audit evidence.
 * Child names: `<name>` (bucket, ownership, public access block, versioning, encryption, policy, lifecycle). Never change them.
 */
export class AccessLogBucket extends pulumi.ComponentResource {
  readonly bucketName: string;

  constructor(name: string, args: AccessLogBucketArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("AccessLogBucket"), name, {}, opts);
    const { ctx } = args;
    // Tagged as the platform stack's resources (its env); the name says whose env logs here.
    const t = tagsFor(ctx, SHARED_TENANT);
    const keep = { parent: this, retainOnDelete: true };
    this.bucketName = accessLogBucketName(ctx.app, args.env, ctx.region, ctx.accountId);
    const bucket = new aws.s3.Bucket(name, { bucket: this.bucketName, forceDestroy: false, tags: t }, keep);
    new aws.s3.BucketOwnershipControls(name, { bucket: bucket.id, rule: { objectOwnership: "BucketOwnerEnforced" } }, keep);
    const block = new aws.s3.BucketPublicAccessBlock(
      name,
      { bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
      keep,
    );
    const versioning = new aws.s3.BucketVersioning(name, { bucket: bucket.id, versioningConfiguration: { status: "Enabled" } }, keep);
    new aws.s3.BucketServerSideEncryptionConfiguration(name, { bucket: bucket.id, rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }] }, keep);
    new aws.s3.BucketPolicy(
      name,
      { bucket: bucket.id, policy: policyJson(accessLogBucketPolicy(this.bucketName, ctx.accountId, `${ctx.app}-${args.env}-`)) },
      { ...keep, dependsOn: [block] },
    );
    new aws.s3.BucketLifecycleConfiguration(
      name,
      {
        bucket: bucket.id,
        rules: [{
          id: "expire-access-logs",
          status: "Enabled",
          filter: {},
          expiration: { days: ACCESS_LOG_RETENTION_DAYS },
          noncurrentVersionExpiration: { noncurrentDays: ACCESS_LOG_NONCURRENT_DAYS },
          abortIncompleteMultipartUpload: { daysAfterInitiation: 7 },
        }],
      },
      { ...keep, dependsOn: [versioning] },
    );
    this.registerOutputs({ bucket: this.bucketName });
  }
}
