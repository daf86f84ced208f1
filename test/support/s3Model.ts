/**
 * A model of a versioned S3 bucket's object API, answering the SDK v3 commands the lifecycle's S3
 * adapter sends (test/lifecycle/s3ObjectCopies.test.ts installs it as a middleware: no request
 * leaves the process). A test double, not S3. The rules it keeps, each from AWS's documentation:
 * - a versioned bucket gives every PUT and copy a new version id, which becomes the current one
 *   (https://docs.aws.amazon.com/AmazonS3/latest/userguide/AddingObjectstoVersioningEnabledBuckets.html);
 * - a DELETE without a version id adds a delete marker as the current version; a DELETE with a
 *   version id removes that version for good, and the newest remaining one becomes current
 *   (https://docs.aws.amazon.com/AmazonS3/latest/userguide/DeletingObjectVersions.html);
 * - ListObjectVersions lists versions and delete markers by key, newest first, at most MaxKeys a
 *   page, continued from KeyMarker + VersionIdMarker
 *   (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectVersions.html);
 * - CopyObject copies a given version (CopySource `bucket/key?versionId=`) up to 5 GiB; larger
 *   objects need UploadPartCopy (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html);
 * - DeleteObjects takes at most 1,000 keys (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html).
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";

export interface ModelVersion {
  versionId: string;
  deleteMarker: boolean;
  body: Buffer;
  /** Size when the body is not held (a large object in a copy test). */
  size: number;
}

interface Input {
  [k: string]: unknown;
}

function awsError(name: string, status: number, message = name): Error {
  return Object.assign(new Error(message), { name, $fault: status >= 500 ? "server" : "client", $metadata: { httpStatusCode: status } });
}

async function bytesOf(body: unknown): Promise<Buffer> {
  if (body === undefined) return Buffer.alloc(0);
  if (typeof body === "string") return Buffer.from(body);
  if (body instanceof Uint8Array) return Buffer.from(body);
  const chunks: Buffer[] = [];
  for await (const c of body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

export class S3Model {
  /** bucket -> key -> versions, oldest first. */
  readonly buckets = new Map<string, Map<string, ModelVersion[]>>();
  private next = 1;
  /** Page size of ListObjectVersions (small, so the adapter's paging runs). */
  pageSize = 2;
  private readonly uploads = new Map<string, { bucket: string; key: string; size: number }>();

  bucket(name: string): Map<string, ModelVersion[]> {
    let b = this.buckets.get(name);
    if (!b) this.buckets.set(name, (b = new Map()));
    return b;
  }

  put(bucket: string, key: string, body: Buffer | string, size?: number): string {
    const versionId = `v${this.next++}`;
    const buf = Buffer.from(body);
    const versions = this.bucket(bucket).get(key) ?? [];
    versions.push({ versionId, deleteMarker: false, body: buf, size: size ?? buf.length });
    this.bucket(bucket).set(key, versions);
    return versionId;
  }

  /** DELETE without a version id: a delete marker becomes current. */
  deleteCurrent(bucket: string, key: string): string {
    const versionId = `m${this.next++}`;
    const versions = this.bucket(bucket).get(key) ?? [];
    versions.push({ versionId, deleteMarker: true, body: Buffer.alloc(0), size: 0 });
    this.bucket(bucket).set(key, versions);
    return versionId;
  }

  /** The current version's text, or undefined when the key has none or a delete marker is current. */
  current(bucket: string, key: string): string | undefined {
    const v = this.bucket(bucket).get(key)?.at(-1);
    return v && !v.deleteMarker ? v.body.toString("utf8") : undefined;
  }

  /** `<key>@<versionId>` of every version and delete marker (`<key>@<versionId>!` for markers), sorted. */
  listing(bucket: string, prefix = ""): string[] {
    return [...this.bucket(bucket)].filter(([k]) => k.startsWith(prefix)).flatMap(([k, vs]) => vs.map((v) => `${k}@${v.versionId}${v.deleteMarker ? "!" : ""}`)).sort();
  }

  private source(cs: string): { bucket: string; key: string; version: ModelVersion } {
    const m = /^([^/]+)\/(.+)\?versionId=(.+)$/.exec(cs);
    if (!m) throw awsError("InvalidArgument", 400, `CopySource ${cs} names no version`);
    const key = m[2]!.split("/").map(decodeURIComponent).join("/");
    const versionId = decodeURIComponent(m[3]!);
    const version = this.bucket(m[1]!).get(key)?.find((v) => v.versionId === versionId);
    if (!version || version.deleteMarker) throw awsError("NoSuchVersion", 404);
    return { bucket: m[1]!, key, version };
  }

  /** Answers by command name (the middleware calls `answer(commandName, input)`). */
  async answer(command: string, i: Input): Promise<unknown> {
    const bucket = String(i.Bucket);
    switch (command) {
      case "ListObjectVersionsCommand": {
        const prefix = typeof i.Prefix === "string" ? i.Prefix : "";
        const all = [...this.bucket(bucket)]
          .filter(([k]) => k.startsWith(prefix))
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .flatMap(([k, vs]) => vs.map((v, n) => ({ k, v, latest: n === vs.length - 1 })).reverse());
        let start = 0;
        if (typeof i.KeyMarker === "string") start = all.findIndex((e) => e.k === i.KeyMarker && e.v.versionId === i.VersionIdMarker) + 1;
        const page = all.slice(start, start + this.pageSize);
        const truncated = start + this.pageSize < all.length;
        const last = page.at(-1);
        return {
          Versions: page.filter((e) => !e.v.deleteMarker).map((e) => ({ Key: e.k, VersionId: e.v.versionId, IsLatest: e.latest, Size: e.v.size, ETag: `"${createHash("md5").update(e.v.body).digest("hex")}"` })),
          DeleteMarkers: page.filter((e) => e.v.deleteMarker).map((e) => ({ Key: e.k, VersionId: e.v.versionId, IsLatest: e.latest })),
          IsTruncated: truncated,
          ...(truncated && last ? { NextKeyMarker: last.k, NextVersionIdMarker: last.v.versionId } : {}),
        };
      }
      case "CopyObjectCommand": {
        const src = this.source(String(i.CopySource));
        if (src.version.size > 5 * 1024 ** 3) throw awsError("InvalidRequest", 400, "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120");
        return { VersionId: this.put(bucket, String(i.Key), src.version.body, src.version.size), CopyObjectResult: { ETag: '"copied"' } };
      }
      case "CreateMultipartUploadCommand": {
        const id = `up${this.next++}`;
        this.uploads.set(id, { bucket, key: String(i.Key), size: 0 });
        return { UploadId: id };
      }
      case "UploadPartCopyCommand": {
        const src = this.source(String(i.CopySource));
        const m = /^bytes=(\d+)-(\d+)$/.exec(String(i.CopySourceRange));
        if (!m || Number(m[2]) >= src.version.size) throw awsError("InvalidRange", 416);
        this.uploads.get(String(i.UploadId))!.size += Number(m[2]) - Number(m[1]) + 1;
        return { CopyPartResult: { ETag: `"p${String(i.PartNumber)}"` } };
      }
      case "CompleteMultipartUploadCommand": {
        const up = this.uploads.get(String(i.UploadId))!;
        this.uploads.delete(String(i.UploadId));
        return { VersionId: this.put(up.bucket, up.key, Buffer.alloc(0), up.size) };
      }
      case "PutObjectCommand":
        return { VersionId: this.put(bucket, String(i.Key), await bytesOf(i.Body)), ServerSideEncryption: "aws:kms" };
      case "HeadObjectCommand": {
        const v = this.bucket(bucket).get(String(i.Key))?.find((x) => x.versionId === i.VersionId) ?? this.bucket(bucket).get(String(i.Key))?.at(-1);
        if (!v || v.deleteMarker) throw awsError("NotFound", 404);
        return { ContentLength: v.size, ServerSideEncryption: "aws:kms", VersionId: v.versionId };
      }
      case "GetObjectCommand": {
        const v = this.bucket(bucket).get(String(i.Key))?.at(-1);
        if (!v || v.deleteMarker) throw awsError("NoSuchKey", 404);
        return { Body: Readable.from([v.body]), VersionId: v.versionId };
      }
      case "DeleteObjectsCommand": {
        const objects = (i.Delete as { Objects: { Key: string; VersionId?: string }[] }).Objects;
        if (objects.length > 1000) throw awsError("MalformedXML", 400, "more than 1,000 keys");
        for (const o of objects) {
          if (o.VersionId === undefined) {
            this.deleteCurrent(bucket, o.Key);
            continue;
          }
          const vs = (this.bucket(bucket).get(o.Key) ?? []).filter((v) => v.versionId !== o.VersionId);
          if (vs.length === 0) this.bucket(bucket).delete(o.Key);
          else this.bucket(bucket).set(o.Key, vs);
        }
        return { Errors: [] };
      }
      default:
        throw new Error(`the S3 model does not answer ${command}`);
    }
  }
}
