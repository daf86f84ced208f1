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
 * - `copyObjects` lists the source's versions (ListObjectVersions, paged by key and version-id
 *   marker) and copies each current version, by its version id, server-side: CopyObject up to
 *   5 GiB, above that a multipart copy (UploadPartCopy per COPY_PART_SIZE range; S3 refuses a
 *   CopyObject over 5 GiB, https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html).
 *   No encryption header: the cell bucket's default (SSE-KMS, cell key) encrypts the copy, so it
 *   stays readable once the tenant's own key is gone. Then the manifest is written with `put`.
 * - `purgeObjects` reads the manifest back (GetObject, digest compared with the record), lists the
 *   versions again, refuses while a current version is not in the manifest, and deletes every
 *   version and delete marker by version id with DeleteObjects (up to 1,000 keys a request,
 *   https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html); a version id makes the
 *   delete permanent in a versioned bucket (no new delete marker), as the provider's forceDestroy
 *   does (terraform-provider-aws internal/service/s3/delete.go EmptyBucket).
 */
import { createHash } from "node:crypto";
import { PassThrough, Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand, DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand,
  HeadObjectCommand, ListObjectVersionsCommand, S3Client, UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { cellBucketName, regionCode, tenantBucketName, tenantObjectPrefix } from "../../../infra/model/naming.ts";
import { awsErrorName, AwsRefusedError, translateAwsError } from "./awsErrors.ts";
import {
  ChangedSinceCopyError, type BackupStore, type CellBucketRef, type CopiedObject, type ObjectCopy, type ObjectCopyManifest, type ObjectPurge, type RecordedObjectCopy,
  type StoredObject, type TenantObjects,
} from "../ports.ts";
import { RegionalClients } from "./regionalClients.ts";

export const BACKUP_KEY_PREFIX = "backups/";
/** 16 MiB parts: up to 160 GiB per dump (S3 allows 10,000 parts), 64 MiB in memory with 4 in flight. */
export const DEFAULT_PART_SIZE = 16 * 1024 * 1024;
/** The largest object CopyObject copies in one request (S3's limit). */
export const MAX_SINGLE_COPY_BYTES = 5 * 1024 ** 3;
/** Ranges of a multipart copy: 512 MiB, so 10,000 parts reach S3's 5 TiB object limit. */
export const COPY_PART_SIZE = 512 * 1024 ** 2;
/** Keys DeleteObjects takes in one request. */
export const DELETE_BATCH = 1000;

/** One entry of ListObjectVersions: a version or a delete marker. */
interface ListedVersion {
  key: string;
  versionId: string;
  isLatest: boolean;
  deleteMarker: boolean;
  bytes: number;
  etag: string;
}

/** CopySource: bucket/key?versionId=..., the key URL-encoded segment by segment (S3's rule). */
export function copySource(bucket: string, key: string, versionId: string): string {
  return `${bucket}/${key.split("/").map(encodeURIComponent).join("/")}?versionId=${encodeURIComponent(versionId)}`;
}

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

  /** The bucket, key prefix, region and client of a tenant's objects. */
  private objectsOf(source: TenantObjects): { bucket: string; prefix: string; region: string; client: S3Client } {
    if (source.kind === "cell-prefix") {
      const region = this.regionOf(source.cell);
      return { bucket: cellBucketName(this.opts.app, source.env, source.cell, this.opts.accountId), prefix: tenantObjectPrefix(source.tenant), region, client: this.client(region) };
    }
    if (!this.opts.regions.includes(source.region)) throw new AwsRefusedError(`tenant ${source.tenant}: region ${source.region} is not a platform region (${this.opts.regions.join(", ")}); nothing was copied`, "UnknownRegion");
    return { bucket: tenantBucketName(this.opts.app, source.env, source.tenant, this.opts.accountId), prefix: "", region: source.region, client: this.client(source.region) };
  }

  /** Every version and delete marker under the prefix, page by page. */
  private async listVersions(client: S3Client, bucket: string, prefix: string): Promise<ListedVersion[]> {
    const out: ListedVersion[] = [];
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    for (;;) {
      let page;
      try {
        page = await client.send(new ListObjectVersionsCommand({ Bucket: bucket, ...(prefix ? { Prefix: prefix } : {}), ...(keyMarker !== undefined ? { KeyMarker: keyMarker } : {}), ...(versionMarker !== undefined ? { VersionIdMarker: versionMarker } : {}) }));
      } catch (err) {
        throw translateAwsError(err, `ListObjectVersions s3://${bucket}/${prefix}`, "nothing was deleted");
      }
      for (const v of page.Versions ?? []) out.push({ key: v.Key!, versionId: v.VersionId ?? "null", isLatest: v.IsLatest === true, deleteMarker: false, bytes: v.Size ?? 0, etag: v.ETag ?? "" });
      for (const m of page.DeleteMarkers ?? []) out.push({ key: m.Key!, versionId: m.VersionId ?? "null", isLatest: m.IsLatest === true, deleteMarker: true, bytes: 0, etag: "" });
      if (page.IsTruncated !== true) return out;
      keyMarker = page.NextKeyMarker;
      versionMarker = page.NextVersionIdMarker;
    }
  }

  /** A server-side copy of one version (CopyObject, or a multipart copy above 5 GiB). */
  private async copyVersion(client: S3Client, from: { bucket: string; key: string; versionId: string; bytes: number }, to: { bucket: string; key: string }): Promise<void> {
    const source = copySource(from.bucket, from.key, from.versionId);
    const what = `copy of s3://${from.bucket}/${from.key} (version ${from.versionId}) to s3://${to.bucket}/${to.key}`;
    if (from.bytes <= MAX_SINGLE_COPY_BYTES) {
      try {
        await client.send(new CopyObjectCommand({ Bucket: to.bucket, Key: to.key, CopySource: source }));
      } catch (err) {
        throw translateAwsError(err, what, "no backup was recorded");
      }
      return;
    }
    let uploadId: string | undefined;
    try {
      uploadId = (await client.send(new CreateMultipartUploadCommand({ Bucket: to.bucket, Key: to.key }))).UploadId;
      const parts: { ETag: string; PartNumber: number }[] = [];
      for (let start = 0, n = 1; start < from.bytes; start += COPY_PART_SIZE, n++) {
        const end = Math.min(from.bytes, start + COPY_PART_SIZE) - 1;
        const out = await client.send(new UploadPartCopyCommand({ Bucket: to.bucket, Key: to.key, UploadId: uploadId, PartNumber: n, CopySource: source, CopySourceRange: `bytes=${start}-${end}` }));
        parts.push({ ETag: out.CopyPartResult?.ETag ?? "", PartNumber: n });
      }
      await client.send(new CompleteMultipartUploadCommand({ Bucket: to.bucket, Key: to.key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
    } catch (err) {
      // No parts left behind (they are billed until aborted or the bucket's abort rule).
      if (uploadId) await client.send(new AbortMultipartUploadCommand({ Bucket: to.bucket, Key: to.key, UploadId: uploadId })).catch(() => undefined);
      throw translateAwsError(err, what, "no backup was recorded");
    }
  }

  async copyObjects(source: TenantObjects, dest: CellBucketRef, destPrefix: string): Promise<ObjectCopy> {
    const manifestKey = `${destPrefix}manifest.json`;
    const target = this.target(dest, manifestKey);
    const src = this.objectsOf(source);
    const destRegion = this.regionOf(dest.cell);
    if (src.region !== destRegion) {
      throw new AwsRefusedError(`the objects of s3://${src.bucket}/${src.prefix} are in ${src.region}, cell ${dest.cell} in ${destRegion}: a tenant's data stays in its region; nothing was copied`, "CrossRegion");
    }
    const objects: CopiedObject[] = [];
    for (const v of await this.listVersions(src.client, src.bucket, src.prefix)) {
      if (!v.isLatest || v.deleteMarker) continue;
      const copyKey = `${destPrefix}objects/${v.key.slice(src.prefix.length)}`;
      await this.copyVersion(src.client, { bucket: src.bucket, key: v.key, versionId: v.versionId, bytes: v.bytes }, { bucket: target.bucket, key: copyKey });
      objects.push({ key: v.key, versionId: v.versionId, bytes: v.bytes, etag: v.etag, copyKey });
    }
    const manifest: ObjectCopyManifest = { source: `s3://${src.bucket}/${src.prefix}`, objects };
    const stored = await this.put(dest, manifestKey, Readable.from([Buffer.from(JSON.stringify(manifest, null, 1))]));
    return { manifest: stored, location: `s3://${target.bucket}/${destPrefix}objects/`, objects: objects.length, bytes: objects.reduce((n, o) => n + o.bytes, 0) };
  }

  async purgeObjects(source: TenantObjects, copy: RecordedObjectCopy, opts: { verifyOnly?: boolean } = {}): Promise<ObjectPurge> {
    const { bucket: destBucket, client: destClient } = this.target(copy.dest, copy.manifestKey);
    const where = `s3://${destBucket}/${copy.manifestKey}`;
    let text: Buffer;
    try {
      const out = await destClient.send(new GetObjectCommand({ Bucket: destBucket, Key: copy.manifestKey }));
      const chunks: Buffer[] = [];
      for await (const chunk of out.Body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(chunk));
      text = Buffer.concat(chunks);
    } catch (err) {
      if (awsErrorName(err) === "NoSuchKey") throw new AwsRefusedError(`the recorded object copy's manifest ${where} is missing; nothing was deleted; take the backup again`, "NoSuchKey");
      throw translateAwsError(err, `GetObject of ${where}`, "nothing was deleted");
    }
    const digest = createHash("sha256").update(text).digest("hex");
    if (digest !== copy.sha256) throw new AwsRefusedError(`the manifest ${where} has sha256 ${digest}, the backup record ${copy.sha256}; nothing was deleted; take the backup again`, "ManifestChanged");
    const manifest = JSON.parse(text.toString("utf8")) as ObjectCopyManifest;
    const copied = new Set(manifest.objects.map((o) => `${o.key}\u0000${o.versionId}`));
    const src = this.objectsOf(source);
    const versions = await this.listVersions(src.client, src.bucket, src.prefix);
    const changed = versions.filter((v) => v.isLatest && !v.deleteMarker && !copied.has(`${v.key}\u0000${v.versionId}`)).map((v) => `${v.key} (version ${v.versionId})`);
    if (changed.length > 0) throw new ChangedSinceCopyError(changed, `s3://${src.bucket}/${src.prefix}`, where);
    if (opts.verifyOnly) return { versions: 0, deleteMarkers: 0 };
    for (let i = 0; i < versions.length; i += DELETE_BATCH) {
      const batch = versions.slice(i, i + DELETE_BATCH);
      let out;
      try {
        out = await src.client.send(new DeleteObjectsCommand({ Bucket: src.bucket, Delete: { Objects: batch.map((v) => ({ Key: v.key, VersionId: v.versionId })), Quiet: true } }));
      } catch (err) {
        throw translateAwsError(err, `DeleteObjects in s3://${src.bucket}/${src.prefix}`, "what was deleted stays deleted (all of it was copied); retry to delete the rest");
      }
      const errors = out.Errors ?? [];
      if (errors.length > 0) {
        const e = errors[0]!;
        throw translateAwsError(
          Object.assign(new Error(`${e.Key} (version ${e.VersionId}): ${e.Message}`), { name: e.Code ?? "Error", $fault: e.Code === "InternalError" ? "server" : "client", $metadata: {} }),
          `DeleteObjects in s3://${src.bucket}/${src.prefix} (${errors.length} of ${batch.length} refused)`,
          "what was deleted stays deleted (all of it was copied); retry to delete the rest",
        );
      }
    }
    return { versions: versions.filter((v) => !v.deleteMarker).length, deleteMarkers: versions.filter((v) => v.deleteMarker).length };
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
