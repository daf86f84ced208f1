/**
 * A local directory standing in for the cells' buckets: `<root>/<env>-<cell>/<key>`. Used by the
 * tests (and usable by an operator for a dry run); it is not S3, and its `file://` locations say
 * so. A production BackupStore writes to the cell bucket (versioned, cell-key encrypted) with
 * the S3 API (adapters/s3Backups.ts).
 */
import { createHash } from "node:crypto";
import { accessSync, constants, createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { dirname, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { PermanentError } from "../engine/engine.ts";
import type { BackupStore, CellBucketRef, StoredObject } from "../ports.ts";

export class DirectoryBucketStore implements BackupStore {
  readonly root: string;
  constructor(root: string) {
    this.root = resolve(root);
  }

  private path(bucket: CellBucketRef, key: string): string {
    const abs = resolve(this.root, `${bucket.env}-${bucket.cell}`, key);
    if (!abs.startsWith(this.root + sep)) throw new Error(`object key ${key} leaves the bucket directory`);
    return abs;
  }

  /** The root must be a directory this process may write to (the cell's directory is made by `put`). */
  async check(bucket: CellBucketRef): Promise<string> {
    const where = resolve(this.root, `${bucket.env}-${bucket.cell}`);
    try {
      if (!statSync(this.root).isDirectory()) throw new Error("not a directory");
      accessSync(this.root, constants.W_OK);
    } catch (err) {
      throw new PermanentError(
        `the directory standing in for the cell buckets, ${this.root}, is not usable (${(err as Error).message}); create it writable for the control plane, or change TENANCY_LIFECYCLE_BACKUP_DIR`,
      );
    }
    return `directory ${where} (a local directory standing in for the cell bucket, not S3)`;
  }

  async put(bucket: CellBucketRef, key: string, body: Readable): Promise<StoredObject> {
    const path = this.path(bucket, key);
    mkdirSync(dirname(path), { recursive: true });
    const tmp = `${path}.partial-${process.pid}`;
    const hash = createHash("sha256");
    let bytes = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        bytes += chunk.length;
        done(null, chunk);
      },
    });
    await pipeline(body, tap, createWriteStream(tmp));
    renameSync(tmp, path);
    return { location: `file://${path}`, bytes, sha256: hash.digest("hex") };
  }

  async stat(bucket: CellBucketRef, key: string): Promise<StoredObject | undefined> {
    const path = this.path(bucket, key);
    if (!existsSync(path)) return undefined;
    const hash = createHash("sha256");
    await pipeline(createReadStream(path), hash);
    return { location: `file://${path}`, bytes: statSync(path).size, sha256: hash.digest("hex") };
  }

  /** The file behind a location this store returned. */
  static fileOf(location: string): string {
    if (!location.startsWith("file://")) throw new Error(`${location} is not a directory-bucket location`);
    return location.slice("file://".length);
  }
}
