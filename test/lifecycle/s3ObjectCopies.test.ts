/**
 * The S3 adapter's copy and deletion of a tenant's objects (S3BackupStore copyObjects and
 * purgeObjects), on real SDK v3 clients whose commands a model of a versioned bucket answers
 * in-process (test/support/s3Model.ts): no request reaches AWS, nothing here proves AWS behaves so.
 */
import { describe, expect, it } from "vitest";
import { S3Client } from "@aws-sdk/client-s3";
import { S3BackupStore } from "../../automation/lifecycle/adapters/s3Backups.ts";
import { ChangedSinceCopyError } from "../../automation/lifecycle/ports.ts";
import { S3Model } from "../support/s3Model.ts";

const platform = { app: "shop", accountId: "123456789012", regions: ["us-east-1", "eu-west-1"] };
const CELL_BUCKET = "shop-prod-use1-01-data-123456789012";
const ACME_BUCKET = "shop-prod-acme-data-123456789012";
const PREFIX = "backups/tenants/alpha/wf-1/prod-objects/";

interface Stackable {
  add(mw: unknown, opts: { step: "initialize"; name: string; priority: "high" }): void;
}

/** A store whose clients the model answers; returns the commands sent, in order. */
function storeOn(model: S3Model): { store: S3BackupStore; calls: { command: string; region: string; input: Record<string, unknown> }[] } {
  const calls: { command: string; region: string; input: Record<string, unknown> }[] = [];
  const client = (region: string) => {
    const c = new S3Client({ region, credentials: { accessKeyId: "x", secretAccessKey: "y" } });
    (c.middlewareStack as unknown as Stackable).add(
      (_next: unknown, context: { commandName: string }) => async (args: { input: Record<string, unknown> }) => {
        const { Body, ...rest } = args.input;
        calls.push({ command: context.commandName, region, input: Body === undefined ? rest : { ...rest, Body: "<body>" } });
        return { output: { $metadata: {}, ...((await model.answer(context.commandName, args.input)) as object) }, response: {} };
      },
      { step: "initialize", name: "s3Model", priority: "high" },
    );
    return c;
  };
  return { store: new S3BackupStore({ ...platform, client }), calls };
}

/** alpha's prefix: a current object with an older version, an object deleted (marker current), a key with a space; and beta's object. */
function cellWithTenants(): S3Model {
  const m = new S3Model();
  m.put(CELL_BUCKET, "tenants/alpha/report.csv", "old report");
  m.put(CELL_BUCKET, "tenants/alpha/report.csv", "new report");
  m.put(CELL_BUCKET, "tenants/alpha/gone.txt", "deleted by the app");
  m.deleteCurrent(CELL_BUCKET, "tenants/alpha/gone.txt");
  m.put(CELL_BUCKET, "tenants/alpha/a b/ü.txt", "unicode");
  m.put(CELL_BUCKET, "tenants/beta/report.csv", "beta's");
  return m;
}

const alpha = { kind: "cell-prefix", env: "prod", cell: "use1-01", tenant: "alpha" } as const;

describe("S3BackupStore: copying a tenant's objects", () => {
  it("copies exactly the current versions under tenants/<id>/ by version id, server-side, then writes the manifest beside them", async () => {
    const m = cellWithTenants();
    const { store, calls } = storeOn(m);
    const copy = await store.copyObjects(alpha, { env: "prod", cell: "use1-01" }, PREFIX);
    expect(copy).toMatchObject({ location: `s3://${CELL_BUCKET}/${PREFIX}objects/`, objects: 2, bytes: 17 });
    expect(m.current(CELL_BUCKET, `${PREFIX}objects/report.csv`)).toBe("new report");
    expect(m.current(CELL_BUCKET, `${PREFIX}objects/a b/ü.txt`)).toBe("unicode");
    // Not copied: the noncurrent version, the key whose current version is a delete marker, beta's.
    expect(m.listing(CELL_BUCKET, PREFIX).map((l) => l.replace(/@.*/, ""))).toEqual([`${PREFIX}manifest.json`, `${PREFIX}objects/a b/ü.txt`, `${PREFIX}objects/report.csv`]);
    const copies = calls.filter((c) => c.command === "CopyObjectCommand").map((c) => c.input);
    expect(copies).toEqual([
      { Bucket: CELL_BUCKET, Key: `${PREFIX}objects/a b/ü.txt`, CopySource: `${CELL_BUCKET}/tenants/alpha/a%20b/%C3%BC.txt?versionId=v5` },
      { Bucket: CELL_BUCKET, Key: `${PREFIX}objects/report.csv`, CopySource: `${CELL_BUCKET}/tenants/alpha/report.csv?versionId=v2` },
    ]);
    // Listed page by page (2 entries a page in the model: 5 entries under the prefix, 3 pages).
    expect(calls.filter((c) => c.command === "ListObjectVersionsCommand").map((c) => [c.input.KeyMarker ?? null, c.input.VersionIdMarker ?? null])).toEqual([
      [null, null], ["tenants/alpha/gone.txt", "m4"], ["tenants/alpha/report.csv", "v2"],
    ]);
    const manifest = JSON.parse(m.current(CELL_BUCKET, `${PREFIX}manifest.json`)!) as { source: string; objects: unknown[] };
    expect(manifest).toEqual({
      source: `s3://${CELL_BUCKET}/tenants/alpha/`,
      objects: [
        { key: "tenants/alpha/a b/ü.txt", versionId: "v5", bytes: 7, etag: expect.any(String), copyKey: `${PREFIX}objects/a b/ü.txt` },
        { key: "tenants/alpha/report.csv", versionId: "v2", bytes: 10, etag: expect.any(String), copyKey: `${PREFIX}objects/report.csv` },
      ],
    });
    expect(copy.manifest.location).toBe(`s3://${CELL_BUCKET}/${PREFIX}manifest.json?versionId=v9`);
  });

  it("copies a dedicated tenant's whole bucket into the cell bucket of its region; an object over 5 GiB goes by multipart copy in 512 MiB ranges", async () => {
    const m = new S3Model();
    m.put(ACME_BUCKET, "exports/big.parquet", "", 6 * 1024 ** 3);
    m.put(ACME_BUCKET, "logo.svg", "<svg/>");
    const { store, calls } = storeOn(m);
    const copy = await store.copyObjects({ kind: "tenant-bucket", env: "prod", tenant: "acme", region: "us-east-1" }, { env: "prod", cell: "use1-01" }, "backups/tenants/acme/wf-2/prod-objects/");
    expect([copy.objects, copy.bytes]).toEqual([2, 6 * 1024 ** 3 + 6]);
    const ranges = calls.filter((c) => c.command === "UploadPartCopyCommand").map((c) => c.input.CopySourceRange);
    expect(ranges).toHaveLength(12);
    expect([ranges[0], ranges[11]]).toEqual([`bytes=0-${512 * 1024 ** 2 - 1}`, `bytes=${11 * 512 * 1024 ** 2}-${6 * 1024 ** 3 - 1}`]);
    expect(m.bucket(CELL_BUCKET).get("backups/tenants/acme/wf-2/prod-objects/objects/exports/big.parquet")?.at(-1)?.size).toBe(6 * 1024 ** 3);
    expect(calls.filter((c) => c.command === "CopyObjectCommand").map((c) => c.input.CopySource)).toEqual([`${ACME_BUCKET}/logo.svg?versionId=v2`]);
  });

  it("refuses to copy across regions (a tenant's data stays in its region) and to write outside backups/, copying nothing", async () => {
    const m = new S3Model();
    m.put("shop-prod-acme-data-123456789012", "x", "x");
    const { store, calls } = storeOn(m);
    await expect(store.copyObjects({ kind: "tenant-bucket", env: "prod", tenant: "acme", region: "eu-west-1" }, { env: "prod", cell: "use1-01" }, PREFIX)).rejects.toThrow(
      `the objects of s3://${ACME_BUCKET}/ are in eu-west-1, cell use1-01 in us-east-1: a tenant's data stays in its region; nothing was copied`,
    );
    await expect(store.copyObjects(alpha, { env: "prod", cell: "use1-01" }, "tenants/alpha/")).rejects.toThrow(/is not under backups\//);
    expect(calls).toEqual([]);
  });
});

describe("S3BackupStore: deleting a tenant's objects after their copy", () => {
  it("deletes every version and delete marker under the prefix by version id; beta's stay; a second call deletes nothing", async () => {
    const m = cellWithTenants();
    const { store, calls } = storeOn(m);
    const copy = await store.copyObjects(alpha, { env: "prod", cell: "use1-01" }, PREFIX);
    const recorded = { dest: { env: "prod", cell: "use1-01" }, manifestKey: `${PREFIX}manifest.json`, sha256: copy.manifest.sha256 };
    calls.length = 0;
    expect(await store.purgeObjects(alpha, recorded)).toEqual({ versions: 4, deleteMarkers: 1 });
    expect(m.listing(CELL_BUCKET, "tenants/")).toEqual(["tenants/beta/report.csv@v6"]);
    const deletes = calls.filter((c) => c.command === "DeleteObjectsCommand").map((c) => c.input.Delete);
    expect(deletes).toEqual([{
      Objects: [
        { Key: "tenants/alpha/a b/ü.txt", VersionId: "v5" }, { Key: "tenants/alpha/gone.txt", VersionId: "m4" }, { Key: "tenants/alpha/gone.txt", VersionId: "v3" },
        { Key: "tenants/alpha/report.csv", VersionId: "v2" }, { Key: "tenants/alpha/report.csv", VersionId: "v1" },
      ],
      Quiet: true,
    }]);
    // The copies are untouched.
    expect(m.current(CELL_BUCKET, `${PREFIX}objects/report.csv`)).toBe("new report");
    expect(await store.purgeObjects(alpha, recorded)).toEqual({ versions: 0, deleteMarkers: 0 });
  });

  it("refuses while a current version is not in the manifest (written after the copy), deleting nothing; verifyOnly deletes nothing either", async () => {
    const m = cellWithTenants();
    const { store, calls } = storeOn(m);
    const copy = await store.copyObjects(alpha, { env: "prod", cell: "use1-01" }, PREFIX);
    const recorded = { dest: { env: "prod", cell: "use1-01" }, manifestKey: `${PREFIX}manifest.json`, sha256: copy.manifest.sha256 };
    expect(await store.purgeObjects(alpha, recorded, { verifyOnly: true })).toEqual({ versions: 0, deleteMarkers: 0 });
    m.put(CELL_BUCKET, "tenants/alpha/report.csv", "newer report");
    const before = m.listing(CELL_BUCKET, "tenants/");
    const err = await store.purgeObjects(alpha, recorded).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChangedSinceCopyError);
    expect((err as Error).message).toBe(
      `s3://${CELL_BUCKET}/tenants/alpha/ holds 1 current object version(s) that the recorded copy s3://${CELL_BUCKET}/${PREFIX}manifest.json does not (written after it): tenants/alpha/report.csv (version v10); nothing was deleted; take the backup again (re-run offboard.backup) or find who writes there`,
    );
    expect(m.listing(CELL_BUCKET, "tenants/")).toEqual(before);
    expect(calls.filter((c) => c.command === "DeleteObjectsCommand")).toEqual([]);
  });

  it("negative control: a manifest that is not the recorded one (digest differs) is refused before anything is listed or deleted", async () => {
    const m = cellWithTenants();
    const { store, calls } = storeOn(m);
    await store.copyObjects(alpha, { env: "prod", cell: "use1-01" }, PREFIX);
    calls.length = 0;
    await expect(store.purgeObjects(alpha, { dest: { env: "prod", cell: "use1-01" }, manifestKey: `${PREFIX}manifest.json`, sha256: "0".repeat(64) })).rejects.toThrow(/has sha256 [0-9a-f]{64}, the backup record 0{64}; nothing was deleted/);
    expect(calls.map((c) => c.command)).toEqual(["GetObjectCommand"]);
  });
});
