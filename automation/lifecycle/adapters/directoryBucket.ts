/**
 * A local directory standing in for the cells' buckets: `<root>/<env>-<cell>/<key>`, and for a
 * dedicated tenant's bucket: `<root>/<env>-tenant-<id>/<key>`. Used by the tests (and usable by an
 * operator for a dry run); it is not S3, and its `file://` locations say so. It has no versions:
 * each file is one current version (version id `null`, its sha256 as its ETag), so a rewritten
 * file is a changed object. A production BackupStore writes to the cell bucket (versioned,
 * cell-key encrypted) with the S3 API (adapters/s3Backups.ts).
 */
import { createHash } from "node:crypto";
import { accessSync, constants, copyFileSync, createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { PermanentError } from "../engine/engine.ts";
import { tenantObjectPrefix } from "../../../infra/model/naming.ts";
import { ChangedSinceCopyError, type BackupStore, type CellBucketRef, type CopiedObject, type ObjectCopy, type ObjectCopyManifest, type ObjectPurge, type RecordedObjectCopy, type StoredObject, type TenantObjects } from "../ports.ts";

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

  /** The directory holding `source`'s objects, and the prefix their keys have there. */
  private sourceDir(source: TenantObjects): { dir: string; prefix: string } {
    if (source.kind === "tenant-bucket") return { dir: resolve(this.root, `${source.env}-tenant-${source.tenant}`), prefix: "" };
    const prefix = tenantObjectPrefix(source.tenant);
    return { dir: resolve(this.root, `${source.env}-${source.cell}`, prefix), prefix };
  }

  /** Every file below `dir` (keys relative to it, `/`-separated, sorted), unfinished writes left out. */
  private static files(dir: string): string[] {
    if (!existsSync(dir)) return [];
    return (readdirSync(dir, { recursive: true, withFileTypes: true }))
      .filter((d) => d.isFile() && !d.name.includes(".partial-"))
      .map((d) => relative(dir, join(d.parentPath, d.name)).split(sep).join("/"))
      .sort();
  }

  /** Removes `dir` and the directories below it that are empty (a file written meanwhile keeps its own). */
  private static removeEmptyDirs(dir: string): void {
    if (!existsSync(dir)) return;
    for (const d of readdirSync(dir, { withFileTypes: true })) if (d.isDirectory()) DirectoryBucketStore.removeEmptyDirs(join(dir, d.name));
    if (readdirSync(dir).length === 0) rmdirSync(dir);
  }

  private static sha256(path: string): string {
    return createHash("sha256").update(readFileSync(path)).digest("hex");
  }

  async copyObjects(source: TenantObjects, dest: CellBucketRef, destPrefix: string): Promise<ObjectCopy> {
    const { dir, prefix } = this.sourceDir(source);
    const objects: CopiedObject[] = [];
    for (const rel of DirectoryBucketStore.files(dir)) {
      const from = join(dir, rel);
      const copyKey = `${destPrefix}objects/${rel}`;
      const to = this.path(dest, copyKey);
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(from, to);
      objects.push({ key: prefix + rel, versionId: "null", bytes: statSync(from).size, etag: DirectoryBucketStore.sha256(from), copyKey });
    }
    const manifest: ObjectCopyManifest = { source: `file://${dir}/`, objects };
    const stored = await this.put(dest, `${destPrefix}manifest.json`, Readable.from([JSON.stringify(manifest, null, 1)]));
    return { manifest: stored, location: `file://${this.path(dest, `${destPrefix}objects`)}/`, objects: objects.length, bytes: objects.reduce((n, o) => n + o.bytes, 0) };
  }

  async purgeObjects(source: TenantObjects, copy: RecordedObjectCopy, opts: { verifyOnly?: boolean } = {}): Promise<ObjectPurge> {
    const manifestPath = this.path(copy.dest, copy.manifestKey);
    if (!existsSync(manifestPath)) throw new PermanentError(`the recorded object copy's manifest file://${manifestPath} is missing; nothing was deleted; take the backup again`);
    const text = readFileSync(manifestPath);
    const digest = createHash("sha256").update(text).digest("hex");
    if (digest !== copy.sha256) throw new PermanentError(`the manifest file://${manifestPath} has sha256 ${digest}, the backup record ${copy.sha256}; nothing was deleted; take the backup again`);
    const manifest = JSON.parse(text.toString("utf8")) as ObjectCopyManifest;
    const copied = new Set(manifest.objects.map((o) => `${o.key}\u0000${o.etag}`));
    const { dir, prefix } = this.sourceDir(source);
    const files = DirectoryBucketStore.files(dir);
    const changed = files.filter((rel) => !copied.has(`${prefix + rel}\u0000${DirectoryBucketStore.sha256(join(dir, rel))}`)).map((rel) => prefix + rel);
    if (changed.length > 0) throw new ChangedSinceCopyError(changed, `file://${dir}/`, `file://${manifestPath}`);
    if (opts.verifyOnly) return { versions: 0, deleteMarkers: 0 };
    for (const rel of files) rmSync(join(dir, rel));
    DirectoryBucketStore.removeEmptyDirs(dir);
    return { versions: files.length, deleteMarkers: 0 };
  }

  /** The file behind a location this store returned. */
  static fileOf(location: string): string {
    if (!location.startsWith("file://")) throw new Error(`${location} is not a directory-bucket location`);
    return location.slice("file://".length);
  }
}
