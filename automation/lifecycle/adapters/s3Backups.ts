/**
 * BackupStore on the cells' S3 buckets (AWS SDK for JavaScript v3). Not run against AWS here:
 * the tests drive it through real SDK clients whose requests are answered in-process.
 *
 * - The bucket is the cell's: cellBucketName(app, env, cell, account) from Pulumi.yaml's platform
 *   object, in the region whose code the cell id carries (use1-01 -> us-east-1).
 * - Keys must be under `backups/` (workflows/backup.ts dumpKey: `backups/tenants/<id>/...`), outside
 *   `tenants/<id>/`, the prefix the tenant's own role may write and delete: a final backup the
 *   tenant could delete would not be one. Any other key is refused.
 * - `put` streams the body with `@aws-sdk/lib-storage` Upload (multipart above one part; an
 *   aborted stream aborts the multipart upload, so no parts are left behind), sending no
 *   encryption header: the bucket's default encryption (SSE-KMS with the cell key) applies. It
 *   hashes the bytes as they pass, then HeadObject's the version it wrote and refuses unless S3
 *   reports SSE-KMS and the same length.
 * - `stat` reads the object back (GetObject) and hashes what S3 holds: a verification, not a
 *   lookup of a stored digest.
 * - `check` (a workflow's preflight) HeadBucket's the cell bucket in its region: the bucket
 *   exists there and this role may reach it (s3:ListBucket). It writes nothing.
 */
import { createHash } from "node:crypto";
import { PassThrough, Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { cellBucketName, regionCode } from "../../../infra/model/naming.ts";
import { awsErrorName, AwsRefusedError, translateAwsError } from "./awsErrors.ts";
import type { BackupStore, CellBucketRef, StoredObject } from "../ports.ts";
import { RegionalClients } from "./regionalClients.ts";

export const BACKUP_KEY_PREFIX = "backups/";
/** 16 MiB parts: up to 160 GiB per dump (S3 allows 10,000 parts), 64 MiB in memory with 4 in flight. */
export const DEFAULT_PART_SIZE = 16 * 1024 * 1024;

export interface S3BackupStoreOptions {
  /** Platform appName (Pulumi.yaml). */
  app: string;
  /** Platform awsAccountId: part of every bucket name. */
  accountId: string;
  /** Platform regions: a cell's region is the one whose code starts its id. */
  regions: readonly string[];
  /** The S3 client of a region (tests inject clients whose requests never leave the process). */
  client?: (region: string) => S3Client;
  partSize?: number;
  queueSize?: number;
}

export class S3BackupStore implements BackupStore {
  private readonly clients = new RegionalClients<S3Client>();
  constructor(private readonly opts: S3BackupStoreOptions) {}

  private regionOf(cell: string): string {
    const code = cell.split("-")[0];
    const region = this.opts.regions.find((r) => regionCode(r) === code);
    if (!region) throw new AwsRefusedError(`cell ${cell}: no platform region has the code ${code} (regions: ${this.opts.regions.join(", ")}); nothing was written`, "UnknownRegion");
    return region;
  }

  private client(region: string): S3Client {
    return this.clients.get(region, (r) => (this.opts.client ? this.opts.client(r) : new S3Client({ region: r })));
  }

  private target(ref: CellBucketRef, key: string): { bucket: string; client: S3Client } {
    if (!key.startsWith(BACKUP_KEY_PREFIX) || key.split("/").some((s) => s === ".." || s === "")) {
      throw new AwsRefusedError(`object key ${key} is not under ${BACKUP_KEY_PREFIX} (final backups stay outside the prefixes tenants may write); nothing was written`, "BadKey");
    }
    return { bucket: cellBucketName(this.opts.app, ref.env, ref.cell, this.opts.accountId), client: this.client(this.regionOf(ref.cell)) };
  }

  async check(ref: CellBucketRef): Promise<string> {
    const { bucket, client } = this.target(ref, BACKUP_KEY_PREFIX + "check");
    const region = this.regionOf(ref.cell);
    try {
      await client.send(new HeadBucketCommand({ Bucket: bucket }));
    } catch (err) {
      throw translateAwsError(err, `HeadBucket s3://${bucket} (${region}, the bucket of cell ${ref.cell} in ${ref.env})`, "nothing was changed");
    }
    return `s3://${bucket}/${BACKUP_KEY_PREFIX} (${region})`;
  }

  async put(ref: CellBucketRef, key: string, body: Readable): Promise<StoredObject> {
    let bucket: string, client: S3Client;
    try {
      ({ bucket, client } = this.target(ref, key));
    } catch (err) {
      // Nobody will read the dump: end its stream (without an error of its own) so the writer stops.
      body.destroy();
      throw err;
    }
    const where = `s3://${bucket}/${key}`;
    const hash = createHash("sha256");
    let bytes = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        bytes += chunk.length;
        done(null, chunk);
      },
    });
    const counted = new PassThrough();
    const upload = new Upload({
      client,
      params: { Bucket: bucket, Key: key, Body: counted, ContentType: key.endsWith(".gz") ? "application/gzip" : "application/octet-stream" },
      partSize: this.opts.partSize ?? DEFAULT_PART_SIZE,
      queueSize: this.opts.queueSize ?? 4,
      leavePartsOnError: false,
    });
    const feeding = pipeline(body, tap, counted);
    // A failing source must stop the upload (and abort its multipart upload) too.
    feeding.catch(() => void upload.abort().catch(() => undefined));
    let versionId: string | undefined;
    try {
      const [, out] = await Promise.all([feeding, upload.done()]);
      versionId = (out as { VersionId?: string }).VersionId;
    } catch (err) {
      // Nobody reads the rest of the dump: end its stream so the writer stops too.
      body.destroy();
      if (!(err as { $metadata?: unknown } | null)?.$metadata) throw err;
      throw translateAwsError(err, `upload of ${where}`, "no backup was recorded");
    }
    const sha256 = hash.digest("hex");
    let head;
    try {
      head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) }));
    } catch (err) {
      throw translateAwsError(err, `HeadObject of ${where} after its upload`, "no backup was recorded");
    }
    if (head.ServerSideEncryption !== "aws:kms" && head.ServerSideEncryption !== "aws:kms:dsse") {
      throw new AwsRefusedError(`${where} was stored with encryption ${head.ServerSideEncryption ?? "none"}, not SSE-KMS: the bucket's default encryption is not the cell key; no backup was recorded`, "NotKmsEncrypted");
    }
    if (head.ContentLength !== bytes) {
      throw new AwsRefusedError(`${where} holds ${head.ContentLength} bytes, ${bytes} were sent; no backup was recorded`, "LengthMismatch");
    }
    return { location: versionId ? `${where}?versionId=${encodeURIComponent(versionId)}` : where, bytes, sha256 };
  }

  async stat(ref: CellBucketRef, key: string): Promise<StoredObject | undefined> {
    const { bucket, client } = this.target(ref, key);
    const where = `s3://${bucket}/${key}`;
    try {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const hash = createHash("sha256");
      let bytes = 0;
      for await (const chunk of out.Body as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        bytes += chunk.length;
      }
      return { location: out.VersionId ? `${where}?versionId=${encodeURIComponent(out.VersionId)}` : where, bytes, sha256: hash.digest("hex") };
    } catch (err) {
      if (awsErrorName(err) === "NoSuchKey" || awsErrorName(err) === "NotFound") return undefined;
      throw translateAwsError(err, `GetObject of ${where}`, "nothing was changed");
    }
  }
}
