import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { denyInsecureTransportPolicy } from "../model/accessPolicies.ts";
import type { BucketOnDestroy } from "../model/destroy.ts";
import { accessLogBucketName } from "../model/naming.ts";
import { componentType, policyJson, tagsFor, type StackContext } from "./context.ts";

/**
 * Days S3 keeps a noncurrent object version before expiring it: long enough to undo an overwrite
 * or delete found in a monthly review, short enough that a versioned bucket does not grow
 * forever (and that offboarding has little history to purge).
 */
export const NONCURRENT_VERSION_DAYS = 90;
/** Days before S3 aborts an unfinished multipart upload (its parts are billed until then). */
export const ABORT_MULTIPART_DAYS = 7;

export interface EncryptedBucketArgs {
  ctx: StackContext;
  owner: string;
  /** cellBucketName() or tenantBucketName(): global names, fixed forever. */
  bucket: string;
  kmsKeyArn: pulumi.Input<string>;
  /**
   * S3 Bucket Keys (fewer KMS calls). Off for cell buckets: with Bucket Keys the KMS encryption
   * context is the bucket, so a tenant role's decrypt could not be pinned to its prefix.
   */
  bucketKeyEnabled: boolean;
  /**
   * What a destroy of the stack does with the bucket (infra/model/destroy.ts bucketOnDestroy):
   * `refuse` (S3's BucketNotEmpty stops it while data is there), `keep` (the bucket, its data and
   * its settings leave the state, `retainOnDelete`: a released dedicated stack whose object copy is
   * not recorded), `empty` (`forceDestroy`: the provider deletes every version and delete marker,
   * then the bucket; only once the copy of its objects is recorded).
   * @default "refuse"
   */
  onDestroy?: BucketOnDestroy;
}

/**
 * A private, versioned bucket encrypted with a customer key, refusing plain HTTP. In @pulumi/aws
 * v7 versioning, encryption and the public access block are their own resources.
 * Noncurrent versions expire after NONCURRENT_VERSION_DAYS.
 * Every request is logged to the env's access log bucket (S3 server access logging).
 * Child names: `<name>` (bucket, versioning, encryption, public access block, policy, lifecycle, logging).
 */
export class EncryptedBucket extends pulumi.ComponentResource {
  readonly bucket: aws.s3.Bucket;

  constructor(name: string, args: EncryptedBucketArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("EncryptedBucket"), name, {}, opts);
    // forceDestroy only once a recorded backup holds the bucket's objects: a destroy never empties a bucket of tenant data before.
    const onDestroy = args.onDestroy ?? "refuse";
    const keep = onDestroy === "keep" ? { retainOnDelete: true } : {};
    this.bucket = new aws.s3.Bucket(name, { bucket: args.bucket, forceDestroy: onDestroy === "empty", tags: tagsFor(args.ctx, args.owner) }, { parent: this, ...keep });
    const versioning = new aws.s3.BucketVersioning(name, { bucket: this.bucket.id, versioningConfiguration: { status: "Enabled" } }, { parent: this, ...keep });
    new aws.s3.BucketServerSideEncryptionConfiguration(
      name,
      {
        bucket: this.bucket.id,
        rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: args.kmsKeyArn }, bucketKeyEnabled: args.bucketKeyEnabled }],
      },
      { parent: this, ...keep },
    );
    const block = new aws.s3.BucketPublicAccessBlock(
      name,
      { bucket: this.bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
      { parent: this, ...keep },
    );
    // After the block: S3 rejects policy writes racing a public-access-block change.
    new aws.s3.BucketPolicy(name, { bucket: this.bucket.id, policy: policyJson(denyInsecureTransportPolicy(args.bucket)) }, { parent: this, dependsOn: [block], ...keep });
    new aws.s3.BucketLifecycleConfiguration(
      name,
      {
        bucket: this.bucket.id,
        rules: [{
          id: "expire-noncurrent-versions",
          status: "Enabled",
          filter: {},
          noncurrentVersionExpiration: { noncurrentDays: NONCURRENT_VERSION_DAYS },
          abortIncompleteMultipartUpload: { daysAfterInitiation: ABORT_MULTIPART_DAYS },
        }],
      },
      // After versioning: S3 evaluates noncurrent-version rules only on a versioned bucket.
      { parent: this, dependsOn: [versioning], ...keep },
    );
    // Object-level access audit: S3 server access logs of every request to this bucket (key,
    // requester ARN, operation, status) to the env's log bucket in this region, owned by the
    // platform stack (infra/components/accessLogBucket.ts; docs/security.md, "Object access audit").
    // Partitioned by event time, so a question about one tenant and one day reads one prefix's day.
    new aws.s3.BucketLogging(
      name,
      {
        bucket: this.bucket.id,
        targetBucket: accessLogBucketName(args.ctx.app, args.ctx.env, args.ctx.region, args.ctx.accountId),
        targetPrefix: `${args.bucket}/`,
        targetObjectKeyFormat: { partitionedPrefix: { partitionDateSource: "EventTime" } },
      },
      { parent: this, ...keep },
    );
    this.registerOutputs({ bucket: this.bucket.bucket });
  }
}
