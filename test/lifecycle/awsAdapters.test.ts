/**
 * The AWS adapters of the lifecycle ports, without AWS and without network: real SDK v3 clients
 * (so commands, paginators, waiters and lib-storage's Upload run their own code) with a middleware
 * at the `initialize` step that records each command's name and input and answers it, before
 * any endpoint, signing or HTTP. The answers are what AWS documents; nothing here proves AWS
 * behaves so (docs/lifecycle.md: these adapters have not been run against AWS).
 */
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { RDSClient } from "@aws-sdk/client-rds";
import { S3Client } from "@aws-sdk/client-s3";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { AwsRefusedError, AwsTransientError } from "../../automation/lifecycle/adapters/awsErrors.ts";
import { RdsSnapshots } from "../../automation/lifecycle/adapters/rdsSnapshots.ts";
import { S3BackupStore } from "../../automation/lifecycle/adapters/s3Backups.ts";
import { AwsSecretsManager } from "../../automation/lifecycle/adapters/secretsManager.ts";
import { ConnectionDocumentError, SecretsManagerDatabaseLocator, stackFileRegions } from "../../automation/lifecycle/adapters/secretsManagerDatabases.ts";
import { JsonFileDatabaseLocator } from "../../automation/lifecycle/adapters/databases.ts";
import { MissingAdapterError } from "../../automation/lifecycle/adapters/unavailable.ts";
import { DirectoryBucketStore } from "../../automation/lifecycle/adapters/directoryBucket.ts";
import { lifecycleAwsPorts, lifecycleDatabases } from "../../automation/controlPlane.ts";
import type { ControlPlaneConfig } from "../../automation/config.ts";
import { PermanentError } from "../../automation/lifecycle/engine/engine.ts";
import type { ProtectionRelease } from "../../automation/lifecycle/ports.ts";

type Answer = (input: Record<string, unknown>) => unknown;
interface Call {
  command: string;
  region: string;
  input: Record<string, unknown>;
}

/** An AWS service error as the SDK raises it (name, fault, HTTP status). */
function awsError(name: string, status: number, message = name): Error {
  return Object.assign(new Error(message), { name, $fault: status >= 500 ? "server" : "client", $metadata: { httpStatusCode: status, requestId: "req-test" } });
}

interface Stackable {
  middlewareStack: { add(mw: unknown, opts: { step: "initialize"; name: string; priority: "high" }): void };
}

/** Records every command and answers it from `answers` (a list is consumed in order, the last repeats). */
function fake<C extends Stackable>(make: (region: string) => C, answers: Record<string, Answer | Answer[]>) {
  const calls: Call[] = [];
  const used: Record<string, number> = {};
  const factory = (region: string): C => {
    const client = make(region);
    client.middlewareStack.add(
      (_next: unknown, context: { commandName: string }) => async (args: { input: Record<string, unknown> }) => {
        const command = context.commandName;
        const { Body, ...rest } = args.input;
        calls.push({ command, region, input: Body === undefined ? rest : { ...rest, Body: "<body>" } });
        const a = answers[command];
        if (!a) throw new Error(`unexpected ${command}`);
        const i = used[command] = (used[command] ?? 0) + 1;
        const answer = Array.isArray(a) ? a[Math.min(i, a.length) - 1]! : a;
        const output = await answer(args.input);
        return { output: { $metadata: {}, ...(output as object) }, response: {} };
      },
      { step: "initialize", name: "fakeAws", priority: "high" },
    );
    return client;
  };
  return { calls, factory, commands: () => calls.map((c) => c.command) };
}

const throwing = (err: Error): Answer => () => {
  throw err;
};

// --- S3 ---------------------------------------------------------------------------------------

const platform = { app: "shop", accountId: "123456789012", regions: ["us-east-1", "eu-west-1"] };
const bucket = "shop-prod-use1-01-data-123456789012";
const key = "backups/tenants/acme/wf-1/prod-tenant_acme.sql.gz";
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function s3(answers: Record<string, Answer | Answer[]>) {
  return fake((region) => new S3Client({ region, credentials: { accessKeyId: "x", secretAccessKey: "y" } }), answers);
}

/** A readable that yields `total` bytes in 1 MiB chunks, and the bytes themselves. */
function body(total: number): { stream: Readable; bytes: Buffer } {
  const bytes = Buffer.alloc(total);
  for (let i = 0; i < total; i++) bytes[i] = (i * 31) % 251;
  const chunks: Buffer[] = [];
  for (let o = 0; o < total; o += 1 << 20) chunks.push(bytes.subarray(o, Math.min(total, o + (1 << 20))));
  return { stream: Readable.from(chunks), bytes };
}

describe("S3BackupStore", () => {
  it("puts a small dump with one PutObject to the cell bucket, no encryption header (bucket default), then checks SSE-KMS and length on that version", async () => {
    const { stream, bytes } = body(3000);
    const f = s3({
      PutObjectCommand: () => ({ ETag: '"e1"', VersionId: "v1", ServerSideEncryption: "aws:kms" }),
      HeadObjectCommand: () => ({ ContentLength: 3000, ServerSideEncryption: "aws:kms", SSEKMSKeyId: "arn:aws:kms:us-east-1:123456789012:key/cell" }),
    });
    const store = new S3BackupStore({ ...platform, client: f.factory });
    const out = await store.put({ env: "prod", cell: "use1-01" }, key, stream);
    expect(out).toEqual({ location: `s3://${bucket}/${key}?versionId=v1`, bytes: 3000, sha256: sha(bytes) });
    expect(f.calls).toEqual([
      { command: "PutObjectCommand", region: "us-east-1", input: { Bucket: bucket, Key: key, ContentType: "application/gzip", Body: "<body>" } },
      { command: "HeadObjectCommand", region: "us-east-1", input: { Bucket: bucket, Key: key, VersionId: "v1" } },
    ]);
  });

  it("streams a large dump as a multipart upload (Create, UploadPart per part, Complete with every part's ETag) and hashes every byte", async () => {
    const total = 11 * 1024 * 1024 + 5;
    const { stream, bytes } = body(total);
    const parts: number[] = [];
    const f = s3({
      CreateMultipartUploadCommand: () => ({ UploadId: "up-1" }),
      UploadPartCommand: (i) => {
        parts.push((i.Body as Buffer).length);
        return { ETag: `"p${i.PartNumber}"` };
      },
      CompleteMultipartUploadCommand: () => ({ VersionId: "v2", ETag: '"m-3"' }),
      HeadObjectCommand: () => ({ ContentLength: total, ServerSideEncryption: "aws:kms" }),
    });
    const store = new S3BackupStore({ ...platform, client: f.factory, partSize: 5 * 1024 * 1024, queueSize: 2 });
    const out = await store.put({ env: "prod", cell: "euw1-02" }, key, stream);
    expect(out.sha256).toBe(sha(bytes));
    expect(out.bytes).toBe(total);
    expect(out.location).toBe(`s3://shop-prod-euw1-02-data-123456789012/${key}?versionId=v2`);
    expect(f.commands()).toEqual(["CreateMultipartUploadCommand", "UploadPartCommand", "UploadPartCommand", "UploadPartCommand", "CompleteMultipartUploadCommand", "HeadObjectCommand"]);
    expect(parts.reduce((a, b) => a + b, 0)).toBe(total);
    expect(f.calls.every((c) => c.region === "eu-west-1")).toBe(true);
    const create = f.calls[0]!.input;
    expect(create).not.toHaveProperty("ServerSideEncryption");
    expect(create).not.toHaveProperty("SSEKMSKeyId");
    const complete = f.calls.find((c) => c.command === "CompleteMultipartUploadCommand")!.input;
    expect(complete).toMatchObject({ UploadId: "up-1", MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"p1"' }, { PartNumber: 2, ETag: '"p2"' }, { PartNumber: 3, ETag: '"p3"' }] } });
  });

  it("aborts the multipart upload when the dump stream fails, and rejects", async () => {
    const chunk = Buffer.alloc(1 << 20, 7);
    async function* failing() {
      for (let i = 0; i < 7; i++) yield chunk;
      throw new Error("dump failed: connection lost");
    }
    const f = s3({
      CreateMultipartUploadCommand: () => ({ UploadId: "up-9" }),
      UploadPartCommand: (i) => ({ ETag: `"p${i.PartNumber}"` }),
      AbortMultipartUploadCommand: () => ({}),
    });
    const store = new S3BackupStore({ ...platform, client: f.factory, partSize: 5 * 1024 * 1024 });
    await expect(store.put({ env: "prod", cell: "use1-01" }, key, Readable.from(failing()))).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 50));
    const abort = f.calls.find((c) => c.command === "AbortMultipartUploadCommand");
    expect(abort?.input).toMatchObject({ Bucket: bucket, Key: key, UploadId: "up-9" });
    expect(f.commands()).not.toContain("CompleteMultipartUploadCommand");
  });

  it("refuses an object that S3 did not encrypt with KMS, and one whose stored length differs", async () => {
    const aes = s3({ PutObjectCommand: () => ({}), HeadObjectCommand: () => ({ ContentLength: 10, ServerSideEncryption: "AES256" }) });
    const err = await new S3BackupStore({ ...platform, client: aes.factory }).put({ env: "prod", cell: "use1-01" }, key, body(10).stream).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toMatch(/stored with encryption AES256, not SSE-KMS.*no backup was recorded/);
    const short = s3({ PutObjectCommand: () => ({}), HeadObjectCommand: () => ({ ContentLength: 9, ServerSideEncryption: "aws:kms" }) });
    await expect(new S3BackupStore({ ...platform, client: short.factory }).put({ env: "prod", cell: "use1-01" }, key, body(10).stream)).rejects.toThrow(/holds 9 bytes, 10 were sent/);
  });

  it("refuses keys outside backups/ (the tenant-writable tenants/<id>/ included) and cells of no platform region, sending nothing", async () => {
    const f = s3({});
    const store = new S3BackupStore({ ...platform, client: f.factory });
    const b1 = body(10).stream;
    await expect(store.put({ env: "prod", cell: "use1-01" }, "tenants/acme/dump.sql.gz", b1)).rejects.toThrow(/not under backups\//);
    expect(b1.destroyed).toBe(true);
    await expect(store.put({ env: "prod", cell: "use1-01" }, "backups/../tenants/acme/x", body(10).stream)).rejects.toBeInstanceOf(PermanentError);
    await expect(store.stat({ env: "prod", cell: "apse2-01" }, key)).rejects.toThrow(/no platform region has the code apse2/);
    expect(f.calls).toEqual([]);
  });

  it("translates S3 errors: AccessDenied is permanent and names the object, SlowDown is retried", async () => {
    const denied = s3({ PutObjectCommand: throwing(awsError("AccessDenied", 403, "Access Denied")) });
    const err = await new S3BackupStore({ ...platform, client: denied.factory }).put({ env: "prod", cell: "use1-01" }, key, body(10).stream).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AwsRefusedError);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toBe(`upload of s3://${bucket}/${key} failed: AWS said AccessDenied 403: Access Denied (request req-test); no backup was recorded`);
    const slow = s3({ PutObjectCommand: throwing(awsError("SlowDown", 503)) });
    const err2 = await new S3BackupStore({ ...platform, client: slow.factory }).put({ env: "prod", cell: "use1-01" }, key, body(10).stream).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(AwsTransientError);
    expect(err2).not.toBeInstanceOf(PermanentError);
  });

  it("check (preflight) HeadBucket's the cell bucket in its region and writes nothing; a missing bucket is permanent, a 503 retried", async () => {
    const f = s3({ HeadBucketCommand: [() => ({ BucketRegion: "us-east-1" }), throwing(awsError("NotFound", 404, "UnknownError")), throwing(awsError("ServiceUnavailable", 503))] });
    const store = new S3BackupStore({ ...platform, client: f.factory });
    expect(await store.check({ env: "prod", cell: "use1-01" })).toBe(`s3://${bucket}/backups/ (us-east-1)`);
    const missing = await store.check({ env: "prod", cell: "use1-01" }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(PermanentError);
    expect((missing as Error).message).toBe(`HeadBucket s3://${bucket} (us-east-1, the bucket of cell use1-01 in prod) failed: AWS said NotFound 404: UnknownError (request req-test); nothing was changed`);
    await expect(store.check({ env: "prod", cell: "use1-01" })).rejects.toBeInstanceOf(AwsTransientError);
    expect(f.calls).toEqual(Array(3).fill({ command: "HeadBucketCommand", region: "us-east-1", input: { Bucket: bucket } }));
    await expect(store.check({ env: "prod", cell: "apse2-01" })).rejects.toThrow(/no platform region has the code apse2/);
    expect(f.calls).toHaveLength(3);
  });

  it("stat reads the object back and hashes what S3 holds; a missing key is undefined", async () => {
    const { bytes } = body(4096);
    const f = s3({
      GetObjectCommand: [() => ({ Body: Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]), VersionId: "v7", ContentLength: 4096 }), throwing(awsError("NoSuchKey", 404))],
    });
    const store = new S3BackupStore({ ...platform, client: f.factory });
    expect(await store.stat({ env: "prod", cell: "use1-01" }, key)).toEqual({ location: `s3://${bucket}/${key}?versionId=v7`, bytes: 4096, sha256: sha(bytes) });
    expect(await store.stat({ env: "prod", cell: "use1-01" }, key)).toBeUndefined();
    expect(f.calls.map((c) => c.input)).toEqual([{ Bucket: bucket, Key: key }, { Bucket: bucket, Key: key }]);
  });
});

// --- RDS ----------------------------------------------------------------------------------------

const platformKey = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555";
const instance = "shop-prod-acme";
const snap = "shop-prod-acme-offboard-7d2c4f0e";
const src = `${snap}-src`;
const notFound = throwing(awsError("DBSnapshotNotFoundFault", 404, "DBSnapshot not found"));
const snapshot = (id: string, Status: string, KmsKeyId?: string): Answer => () => ({ DBSnapshots: [{ DBSnapshotIdentifier: id, Status, ...(KmsKeyId ? { KmsKeyId } : {}) }] });

function rds(describe: Record<string, Answer | Answer[]>, more: Record<string, Answer | Answer[]> = {}) {
  const used: Record<string, number> = {};
  return fake((region) => new RDSClient({ region, credentials: { accessKeyId: "x", secretAccessKey: "y" } }), {
    DescribeDBSnapshotsCommand: (i) => {
      const id = i.DBSnapshotIdentifier as string;
      const a = describe[id] ?? notFound;
      const n = used[id] = (used[id] ?? 0) + 1;
      return (Array.isArray(a) ? a[Math.min(n, a.length) - 1]! : a)(i);
    },
    ...more,
  });
}

const release = { kind: "offboarding", stack: "dedicated-acme-prod", workflowId: "wf-1", backupId: "42", gracePeriodEndedAt: "2026-04-01T00:00:00.000Z" } as unknown as ProtectionRelease;

describe("RdsSnapshots", () => {
  it("requests a final snapshot: CreateDBSnapshot of the source under its own id, then reports creating", async () => {
    const f = rds({ [src]: [notFound, snapshot(src, "creating")] }, { CreateDBSnapshotCommand: () => ({ DBSnapshot: { DBSnapshotIdentifier: src, Status: "creating" } }) });
    const rdsPort = new RdsSnapshots({ backupKmsKey: platformKey, client: f.factory });
    await rdsPort.request(instance, snap, "us-east-1");
    expect(f.calls.map((c) => [c.command, c.input])).toEqual([
      ["DescribeDBSnapshotsCommand", { DBSnapshotIdentifier: snap }],
      ["DescribeDBSnapshotsCommand", { DBSnapshotIdentifier: src }],
      ["CreateDBSnapshotCommand", { DBInstanceIdentifier: instance, DBSnapshotIdentifier: src, Tags: [{ Key: "managed-by", Value: "saas-tenancy" }, { Key: "final-snapshot-of", Value: instance }] }],
    ]);
    expect(await rdsPort.state(snap, "us-east-1")).toBe("creating");
  });

  it("copies an available source under the platform key, and is available only when the copy is (under that key)", async () => {
    const f = rds(
      { [src]: snapshot(src, "available", "arn:aws:kms:us-east-1:123456789012:key/tenant"), [snap]: [notFound, notFound, snapshot(snap, "copying", platformKey), snapshot(snap, "available", platformKey)] },
      { CopyDBSnapshotCommand: () => ({ DBSnapshot: { DBSnapshotIdentifier: snap, Status: "copying" } }) },
    );
    const rdsPort = new RdsSnapshots({ backupKmsKey: platformKey, client: f.factory });
    // The source is available but nothing is copied yet: still creating.
    expect(await rdsPort.state(snap, "us-east-1")).toBe("creating");
    await rdsPort.request(instance, snap, "us-east-1");
    const copy = f.calls.find((c) => c.command === "CopyDBSnapshotCommand")!;
    expect(copy.input).toEqual({ SourceDBSnapshotIdentifier: src, TargetDBSnapshotIdentifier: snap, KmsKeyId: platformKey, Tags: [{ Key: "managed-by", Value: "saas-tenancy" }, { Key: "final-snapshot-of", Value: instance }] });
    expect(f.commands()).not.toContain("CreateDBSnapshotCommand");
    expect(await rdsPort.state(snap, "us-east-1")).toBe("creating");
    expect(await rdsPort.state(snap, "us-east-1")).toBe("available");
    // Requested again once the copy exists: one look, nothing else.
    const before = f.calls.length;
    await rdsPort.request(instance, snap, "us-east-1");
    expect(f.calls.slice(before).map((c) => c.command)).toEqual(["DescribeDBSnapshotsCommand"]);
  });

  it("refuses a copy under another key, a failed source, and a missing snapshot", async () => {
    const other = rds({ [snap]: snapshot(snap, "available", "arn:aws:kms:us-east-1:123456789012:key/tenant") });
    await expect(new RdsSnapshots({ backupKmsKey: platformKey, client: other.factory }).state(snap, "us-east-1")).rejects.toThrow(/not the platform backup key .*would not outlive the tenant's key/);
    const failed = rds({ [src]: snapshot(src, "failed") });
    expect(await new RdsSnapshots({ backupKmsKey: platformKey, client: failed.factory }).state(snap, "us-east-1")).toBe("failed");
    const none = rds({});
    expect(await new RdsSnapshots({ backupKmsKey: platformKey, client: none.factory }).state(snap, "us-east-1")).toBe("missing");
  });

  it("waits with the SDK waiter when asked, and copies in the same call once the source is available", async () => {
    const f = rds({ [src]: [notFound, snapshot(src, "creating"), snapshot(src, "available")] }, {
      CreateDBSnapshotCommand: () => ({}),
      CopyDBSnapshotCommand: () => ({}),
    });
    await new RdsSnapshots({ backupKmsKey: "alias/shop/platform/backups", client: f.factory, waitSeconds: 10, waitDelaySeconds: 1 }).request(instance, snap, "eu-west-1");
    expect(f.commands()).toEqual([
      "DescribeDBSnapshotsCommand", "DescribeDBSnapshotsCommand", "CreateDBSnapshotCommand",
      "DescribeDBSnapshotsCommand", "DescribeDBSnapshotsCommand", // the waiter: creating, then available
      "DescribeDBSnapshotsCommand", "CopyDBSnapshotCommand",
    ]);
    expect(f.calls.at(-1)!.input).toMatchObject({ KmsKeyId: "alias/shop/platform/backups" });
    expect(f.calls.every((c) => c.region === "eu-west-1")).toBe(true);
  });

  it("refuses a key ARN of another region before copying", async () => {
    const f = rds({ [src]: snapshot(src, "available") }, { CopyDBSnapshotCommand: () => ({}) });
    await expect(new RdsSnapshots({ backupKmsKey: platformKey, client: f.factory }).request(instance, snap, "eu-west-1")).rejects.toThrow(/is in us-east-1, the snapshot in eu-west-1/);
    expect(f.commands()).not.toContain("CopyDBSnapshotCommand");
  });

  it("translates errors: a busy instance is retried, a KMS key RDS cannot use is permanent", async () => {
    const busy = rds({}, { CreateDBSnapshotCommand: throwing(awsError("InvalidDBInstanceState", 400, "Instance is not available")) });
    const e1 = await new RdsSnapshots({ backupKmsKey: platformKey, client: busy.factory }).request(instance, snap, "us-east-1").catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(AwsTransientError);
    expect((e1 as Error).message).toMatch(/^CreateDBSnapshot .*-src of shop-prod-acme \(us-east-1\) failed: AWS said InvalidDBInstanceState 400.*no snapshot was taken and nothing was deleted$/);
    const kms = rds({ [src]: snapshot(src, "available") }, { CopyDBSnapshotCommand: throwing(awsError("KMSKeyNotAccessibleFault", 400)) });
    const e2 = await new RdsSnapshots({ backupKmsKey: platformKey, client: kms.factory }).request(instance, snap, "us-east-1").catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(PermanentError);
    expect((e2 as Error).message).toMatch(/CopyDBSnapshot .* failed: AWS said KMSKeyNotAccessibleFault/);
  });

  it("check (preflight) finds the instance with DescribeDBInstances and changes nothing; refuses a missing instance and a backup key ARN of another region", async () => {
    const f = rds({}, { DescribeDBInstancesCommand: [() => ({ DBInstances: [{ DBInstanceIdentifier: instance, DeletionProtection: true }] }), throwing(awsError("DBInstanceNotFoundFault", 404))] });
    const port = new RdsSnapshots({ backupKmsKey: platformKey, client: f.factory });
    expect(await port.check(instance, "us-east-1")).toBe(`RDS us-east-1: a snapshot of ${instance} copied under ${platformKey}`);
    const gone = await port.check(instance, "us-east-1").catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(PermanentError);
    expect((gone as Error).message).toBe(`RDS instance ${instance} does not exist in us-east-1: there is nothing to take a final snapshot of; nothing was changed`);
    expect(f.calls.map((c) => [c.command, c.input])).toEqual(Array(2).fill(["DescribeDBInstancesCommand", { DBInstanceIdentifier: instance }]));
    await expect(port.check(instance, "eu-west-1")).rejects.toThrow(/is in us-east-1, the snapshot in eu-west-1/);
    expect(f.calls).toHaveLength(2);
  });

  it("turns deletion protection off with ModifyDBInstance only when it is on; a gone instance needs nothing", async () => {
    const on = rds({}, { DescribeDBInstancesCommand: () => ({ DBInstances: [{ DBInstanceIdentifier: instance, DeletionProtection: true }] }), ModifyDBInstanceCommand: () => ({}) });
    await new RdsSnapshots({ backupKmsKey: platformKey, client: on.factory }).disableDeletionProtection(instance, "us-east-1", release);
    expect(on.calls.map((c) => [c.command, c.input])).toEqual([
      ["DescribeDBInstancesCommand", { DBInstanceIdentifier: instance }],
      ["ModifyDBInstanceCommand", { DBInstanceIdentifier: instance, DeletionProtection: false, ApplyImmediately: true }],
    ]);
    const off = rds({}, { DescribeDBInstancesCommand: () => ({ DBInstances: [{ DBInstanceIdentifier: instance, DeletionProtection: false }] }) });
    await new RdsSnapshots({ backupKmsKey: platformKey, client: off.factory }).disableDeletionProtection(instance, "us-east-1", release);
    expect(off.commands()).toEqual(["DescribeDBInstancesCommand"]);
    const gone = rds({}, { DescribeDBInstancesCommand: throwing(awsError("DBInstanceNotFoundFault", 404)) });
    await new RdsSnapshots({ backupKmsKey: platformKey, client: gone.factory }).disableDeletionProtection(instance, "us-east-1", release);
    expect(gone.commands()).toEqual(["DescribeDBInstancesCommand"]);
    const denied = rds({}, { DescribeDBInstancesCommand: () => ({ DBInstances: [{ DBInstanceIdentifier: instance, DeletionProtection: true }] }), ModifyDBInstanceCommand: throwing(awsError("AccessDenied", 403)) });
    await expect(new RdsSnapshots({ backupKmsKey: platformKey, client: denied.factory }).disableDeletionProtection(instance, "us-east-1", release)).rejects.toThrow(
      /ModifyDBInstance shop-prod-acme DeletionProtection=false \(us-east-1, release for dedicated-acme-prod, backup 42\) failed: AWS said AccessDenied 403.*deletion protection is still on/,
    );
  });
});

// --- Secrets Manager -------------------------------------------------------------------------------

const secretName = "shop/prod/tenants/acme/database";
const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:shop/prod/tenants/acme/database-AbCdEf";

function sm(answers: Record<string, Answer | Answer[]>) {
  return fake((region) => new SecretsManagerClient({ region, credentials: { accessKeyId: "x", secretAccessKey: "y" } }), answers);
}

describe("AwsSecretsManager", () => {
  it("finds the secret by exact name across ListSecrets pages and schedules its deletion by ARN with the recovery window", async () => {
    const f = sm({
      ListSecretsCommand: (i) =>
        i.NextToken === undefined
          ? { SecretList: [{ Name: `${secretName}/master`, ARN: "arn:...:master" }], NextToken: "page-2" }
          : { SecretList: [{ Name: secretName, ARN: arn }] },
      DeleteSecretCommand: () => ({ ARN: arn, Name: secretName, DeletionDate: new Date("2026-05-01T00:00:00Z") }),
    });
    const r = await new AwsSecretsManager({ client: f.factory }).scheduleDeletion(secretName, "us-east-1", 30);
    expect(r).toEqual({ name: secretName, state: "scheduled", deletionDate: "2026-05-01T00:00:00.000Z" });
    const list = { Filters: [{ Key: "name", Values: [secretName] }], IncludePlannedDeletion: true, MaxResults: 100 };
    expect(f.calls.map((c) => [c.command, c.input])).toEqual([
      ["ListSecretsCommand", list],
      ["ListSecretsCommand", { ...list, NextToken: "page-2" }],
      ["DeleteSecretCommand", { SecretId: arn, RecoveryWindowInDays: 30 }],
    ]);
    expect(JSON.stringify(f.calls)).not.toContain("ForceDeleteWithoutRecovery");
  });

  it("reports a secret already scheduled, or absent, without deleting anything", async () => {
    const scheduled = sm({ ListSecretsCommand: () => ({ SecretList: [{ Name: secretName, ARN: arn, DeletedDate: new Date("2026-04-01T00:00:00Z") }] }) });
    expect(await new AwsSecretsManager({ client: scheduled.factory }).scheduleDeletion(secretName, "us-east-1", 7)).toEqual({ name: secretName, state: "already-scheduled" });
    expect(scheduled.commands()).toEqual(["ListSecretsCommand"]);
    const absent = sm({ ListSecretsCommand: () => ({ SecretList: [] }) });
    expect(await new AwsSecretsManager({ client: absent.factory }).scheduleDeletion(secretName, "us-east-1", 7)).toEqual({ name: secretName, state: "absent" });
    expect(absent.commands()).toEqual(["ListSecretsCommand"]);
  });

  it("a secret scheduled by someone else between listing and deleting is reported as already scheduled", async () => {
    const f = sm({
      ListSecretsCommand: [() => ({ SecretList: [{ Name: secretName, ARN: arn }] }), () => ({ SecretList: [{ Name: secretName, ARN: arn, DeletedDate: new Date() }] })],
      DeleteSecretCommand: throwing(awsError("InvalidRequestException", 400, "You can't perform this operation on the secret because it was marked for deletion.")),
    });
    expect(await new AwsSecretsManager({ client: f.factory }).scheduleDeletion(secretName, "us-east-1", 30)).toEqual({ name: secretName, state: "already-scheduled" });
    expect(f.commands()).toEqual(["ListSecretsCommand", "DeleteSecretCommand", "ListSecretsCommand"]);
  });

  it("check (preflight) lists one secret of the region, reading no value and deleting nothing; access denied is permanent", async () => {
    const f = sm({ ListSecretsCommand: [() => ({ SecretList: [{ Name: secretName, ARN: arn }] }), throwing(awsError("AccessDeniedException", 400, "not authorized"))] });
    const port = new AwsSecretsManager({ client: f.factory });
    expect(await port.check("eu-west-1")).toBe("Secrets Manager eu-west-1: DeleteSecret with a recovery window");
    const err = await port.check("eu-west-1").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toBe("ListSecrets (eu-west-1) failed: AWS said AccessDeniedException 400: not authorized (request req-test); nothing was changed");
    expect(f.calls).toEqual(Array(2).fill({ command: "ListSecretsCommand", region: "eu-west-1", input: { MaxResults: 1 } }));
  });

  it("refuses a recovery window AWS does not allow before any call, and makes access denied permanent", async () => {
    const none = sm({});
    await expect(new AwsSecretsManager({ client: none.factory }).scheduleDeletion(secretName, "us-east-1", 0)).rejects.toBeInstanceOf(PermanentError);
    await expect(new AwsSecretsManager({ client: none.factory }).scheduleDeletion(secretName, "us-east-1", 31)).rejects.toThrow(/allows 7 to 30/);
    expect(none.calls).toEqual([]);
    const denied = sm({ ListSecretsCommand: () => ({ SecretList: [{ Name: secretName, ARN: arn }] }), DeleteSecretCommand: throwing(awsError("AccessDeniedException", 400, "not authorized")) });
    const err = await new AwsSecretsManager({ client: denied.factory }).scheduleDeletion(secretName, "us-east-1", 30).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toBe(`DeleteSecret ${secretName} with a 30-day recovery window (us-east-1) failed: AWS said AccessDeniedException 400: not authorized (request req-test); the secret was not scheduled for deletion`);
  });
});

describe("AwsSecretsManager versions (credential rotation)", () => {
  const wf = "0b7d3c1e-5f43-4d8e-9a51-2f8b1c3d4e5f";
  it("reads AWSCURRENT and a version by id; a missing version is undefined, a secret without AWSCURRENT is permanent", async () => {
    const f = sm({
      GetSecretValueCommand: [
        () => ({ VersionId: "v1", VersionStages: ["AWSCURRENT"], SecretString: "{}" }),
        throwing(awsError("ResourceNotFoundException", 400, "Secrets Manager can't find the specified secret value for VersionId")),
        throwing(awsError("ResourceNotFoundException", 400, "no such secret")),
      ],
    });
    const port = new AwsSecretsManager({ client: f.factory });
    expect(await port.current(secretName, "us-east-1")).toEqual({ versionId: "v1", stages: ["AWSCURRENT"], secretString: "{}" });
    expect(await port.version(secretName, "us-east-1", wf)).toBeUndefined();
    await expect(port.current(secretName, "us-east-1")).rejects.toThrow(`secret ${secretName} (us-east-1) does not exist or has no AWSCURRENT version; its stack creates it (pulumi up), nothing was rotated`);
    expect(f.calls.map((c) => c.input)).toEqual([
      { SecretId: secretName, VersionStage: "AWSCURRENT" },
      { SecretId: secretName, VersionId: wf },
      { SecretId: secretName, VersionStage: "AWSCURRENT" },
    ]);
  });

  it("writes the pending version with the workflow id as ClientRequestToken and only AWSPENDING", async () => {
    const f = sm({ PutSecretValueCommand: () => ({ VersionId: wf, VersionStages: ["AWSPENDING"] }) });
    await new AwsSecretsManager({ client: f.factory }).putPending(secretName, "us-east-1", wf, '{"password":"p"}');
    expect(f.calls).toEqual([{ command: "PutSecretValueCommand", region: "us-east-1", input: { SecretId: secretName, ClientRequestToken: wf, SecretString: '{"password":"p"}', VersionStages: ["AWSPENDING"] } }]);
  });

  it("promotes: AWSCURRENT moved from the current version, AWSPENDING removed; a second promote only looks", async () => {
    const f = sm({
      DescribeSecretCommand: [() => ({ VersionIdsToStages: { v1: ["AWSCURRENT"], [wf]: ["AWSPENDING"] } }), () => ({ VersionIdsToStages: { v1: ["AWSPREVIOUS"], [wf]: ["AWSCURRENT"] } })],
      UpdateSecretVersionStageCommand: () => ({}),
    });
    const port = new AwsSecretsManager({ client: f.factory });
    expect(await port.promote(secretName, "us-east-1", wf)).toEqual({ previousVersionId: "v1" });
    expect(await port.promote(secretName, "us-east-1", wf)).toEqual({ previousVersionId: null });
    expect(f.calls.map((c) => [c.command, c.input])).toEqual([
      ["DescribeSecretCommand", { SecretId: secretName }],
      ["UpdateSecretVersionStageCommand", { SecretId: secretName, VersionStage: "AWSCURRENT", MoveToVersionId: wf, RemoveFromVersionId: "v1" }],
      ["UpdateSecretVersionStageCommand", { SecretId: secretName, VersionStage: "AWSPENDING", RemoveFromVersionId: wf }],
      ["DescribeSecretCommand", { SecretId: secretName }],
    ]);
  });

  it("refuses to promote a version the secret does not have, moving nothing", async () => {
    const f = sm({ DescribeSecretCommand: () => ({ VersionIdsToStages: { v1: ["AWSCURRENT"] } }) });
    await expect(new AwsSecretsManager({ client: f.factory }).promote(secretName, "us-east-1", wf)).rejects.toThrow(`secret ${secretName} (us-east-1) has no version ${wf}; it cannot become AWSCURRENT`);
    expect(f.commands()).toEqual(["DescribeSecretCommand"]);
  });
});

// --- Secrets Manager connection documents (DatabaseLocator) -----------------------------------------

/** A project with the real Pulumi.yaml (app `tenancy`) and stack files naming their regions. */
function projectWithStacks(): string {
  const root = mkdtempSync(join(tmpdir(), "sm-databases-"));
  copyFileSync(join(process.cwd(), "Pulumi.yaml"), join(root, "Pulumi.yaml"));
  mkdirSync(join(root, "stacks"));
  for (const cell of ["shared-prod-use1-01", "shared-prod-euw1-01"]) copyFileSync(join(process.cwd(), "stacks", `Pulumi.${cell}.yaml`), join(root, "stacks", `Pulumi.${cell}.yaml`));
  writeFileSync(join(root, "stacks", "Pulumi.dedicated-globex-prod.yaml"), "config:\n  aws:region: eu-west-1\n");
  writeFileSync(join(root, "stacks", "Pulumi.dedicated-initech-staging.yaml"), "config:\n  aws:region: ap-south-1\n");
  return root;
}

/** What infra/components/postgresInstance.ts writes (values made up; never sent anywhere). */
const document = (over: Record<string, unknown> = {}) =>
  JSON.stringify({ engine: "postgres", host: "tenancy-prod-euw1-01.abc.eu-west-1.rds.amazonaws.com", port: 5432, dbname: "cell", username: "platform_admin", password: "pw-not-real-0001", ...over });

const RDS_CA = "-----BEGIN CERTIFICATE-----\nMIIB-test-bundle\n-----END CERTIFICATE-----\n";

describe("SecretsManagerDatabaseLocator", () => {
  const root = projectWithStacks();
  const regionOf = stackFileRegions(root);

  it("reads the cell's and the dedicated tenant's connection documents by name in the stack's region, as TLS-verified, time-limited pg settings", async () => {
    const f = sm({
      GetSecretValueCommand: [
        () => ({ Name: "tenancy/prod/global/cells/euw1-01/database", SecretString: document() }),
        () => ({ Name: "tenancy/prod/tenants/globex/database/master", SecretString: document({ host: "globex.internal", port: "5433", dbname: "app" }) }),
        () => ({ Name: "tenancy/prod/global/cells/use1-01/database", SecretString: document({ host: "cell-use1", engine: undefined }) }),
      ],
    });
    const locator = new SecretsManagerDatabaseLocator({ app: "tenancy", regionOf, ca: RDS_CA, client: f.factory });
    expect(await locator.cell("prod", "euw1-01")).toEqual({
      host: "tenancy-prod-euw1-01.abc.eu-west-1.rds.amazonaws.com", port: 5432, database: "cell", user: "platform_admin", password: "pw-not-real-0001",
      ssl: { rejectUnauthorized: true, ca: RDS_CA }, connectionTimeoutMillis: 10_000,
    });
    expect(await locator.dedicated("globex", "prod")).toMatchObject({ host: "globex.internal", port: 5433, database: "app", ssl: { rejectUnauthorized: true, ca: RDS_CA } });
    expect(await locator.cell("prod", "use1-01")).toMatchObject({ host: "cell-use1", port: 5432 });
    expect(f.calls).toEqual([
      { command: "GetSecretValueCommand", region: "eu-west-1", input: { SecretId: "tenancy/prod/global/cells/euw1-01/database" } },
      { command: "GetSecretValueCommand", region: "eu-west-1", input: { SecretId: "tenancy/prod/tenants/globex/database/master" } },
      { command: "GetSecretValueCommand", region: "us-east-1", input: { SecretId: "tenancy/prod/global/cells/use1-01/database" } },
    ]);
    // Without a CA bundle: still verified (Node's CAs), with the timeout given.
    const g = sm({ GetSecretValueCommand: () => ({ SecretString: document() }) });
    expect(await new SecretsManagerDatabaseLocator({ app: "tenancy", regionOf, connectTimeoutMs: 3_000, client: g.factory }).cell("prod", "euw1-01")).toMatchObject({
      ssl: { rejectUnauthorized: true }, connectionTimeoutMillis: 3_000,
    });
  });

  it("names the secret, the region and what is wrong: absent, not JSON, missing or mistyped fields, binary; never the value", async () => {
    const answers: Answer[] = [
      throwing(awsError("ResourceNotFoundException", 400, "Secrets Manager can't find the specified secret.")),
      () => ({ SecretString: "postgres://platform_admin:pw-not-real-0001@host/cell" }),
      () => ({ SecretString: JSON.stringify({ username: "platform_admin", password: "pw-not-real-0001" }) }),
      () => ({ SecretString: document({ dbname: "" }) }),
      () => ({ SecretString: document({ port: "five", engine: "mysql" }) }),
      () => ({ SecretString: "[1, 2]" }),
      () => ({ SecretBinary: new Uint8Array([1, 2, 3]) }),
    ];
    const f = sm({ GetSecretValueCommand: answers });
    const locator = new SecretsManagerDatabaseLocator({ app: "tenancy", regionOf, client: f.factory });
    const name = "secret tenancy/prod/global/cells/euw1-01/database (eu-west-1)";
    const expected = `expected the JSON object stack shared-prod-euw1-01 writes: { "host", "port", "dbname", "username", "password" } (infra/components/postgresInstance.ts)`;
    const errors: Error[] = [];
    for (let i = 0; i < answers.length; i++) errors.push((await locator.cell("prod", "euw1-01").catch((e: unknown) => e)) as Error);
    for (const e of errors) {
      expect(e).toBeInstanceOf(ConnectionDocumentError);
      expect(e).toBeInstanceOf(PermanentError);
      expect(e.message).not.toContain("pw-not-real");
    }
    expect(errors.map((e) => e.message)).toEqual([
      `${name} does not exist: stack shared-prod-euw1-01 writes it when it is deployed (or it was deleted); no database was connected to. ` +
        "Deploy the stack, or give this database's connection string in TENANCY_LIFECYCLE_DATABASES",
      `${name} is not JSON; ${expected}`,
      `${name} lacks host, port, dbname (it has password, username: the shape of an RDS-managed master secret, which holds only the credentials); ${expected}`,
      `${name}: dbname is empty; ${expected}`,
      `${name}: port is not a port number, engine is not "postgres"; ${expected}`,
      `${name} is JSON but not an object; ${expected}`,
      `${name} holds a binary value (SecretBinary), not the JSON connection document stack shared-prod-euw1-01 writes`,
    ]);
  });

  it("leaves AWS errors to the shared translation (access denied permanent, throttling retried) and refuses a stack without a stack file before any call", async () => {
    const f = sm({ GetSecretValueCommand: [throwing(awsError("AccessDeniedException", 400, "not authorized")), throwing(awsError("ThrottlingException", 400))] });
    const locator = new SecretsManagerDatabaseLocator({ app: "tenancy", regionOf, client: f.factory });
    const denied = await locator.dedicated("globex", "prod").catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(AwsRefusedError);
    expect((denied as Error).message).toBe(
      "GetSecretValue tenancy/prod/tenants/globex/database/master (eu-west-1) failed: AWS said AccessDeniedException 400: not authorized (request req-test); no database was connected to",
    );
    await expect(locator.dedicated("globex", "prod")).rejects.toBeInstanceOf(AwsTransientError);
    const none = await locator.dedicated("hooli", "prod").catch((e: unknown) => e);
    expect(none).toBeInstanceOf(ConnectionDocumentError);
    expect((none as Error).message).toMatch(/^the region of stack dedicated-hooli-prod is unknown: .*Pulumi\.dedicated-hooli-prod\.yaml cannot be read \(ENOENT\); its secrets cannot be located$/);
    await expect(locator.dedicated("initech", "staging")).rejects.toThrow(/^the region of stack dedicated-initech-staging is unknown: .*must be one of the platform regions: us-east-1, eu-west-1/);
    expect(f.calls).toHaveLength(2);
  });

  it("the settings it returns make pg insist on TLS and give up on a server that does not answer", async () => {
    // Local stand-ins for a database server (no cloud): one that refuses TLS ('N' to the
    // SSLRequest, as a server without SSL does), one that accepts the connection and says nothing.
    const servers: Server[] = [];
    const listen = async (onConnect: (sock: import("node:net").Socket) => void): Promise<number> => {
      const server = createServer(onConnect);
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      return (server.address() as { port: number }).port;
    };
    const noTls = await listen((sock) => sock.once("data", () => sock.write("N")));
    const silent = await listen(() => undefined);
    try {
      const f = sm({ GetSecretValueCommand: [() => ({ SecretString: document({ host: "127.0.0.1", port: noTls }) }), () => ({ SecretString: document({ host: "127.0.0.1", port: silent }) })] });
      const locator = new SecretsManagerDatabaseLocator({ app: "tenancy", regionOf, connectTimeoutMs: 300, client: f.factory });
      const plain = new pg.Client(await locator.cell("prod", "euw1-01"));
      await expect(plain.connect()).rejects.toThrow(/does not support SSL/);
      const slow = new pg.Client(await locator.cell("prod", "euw1-01"));
      const started = Date.now();
      await expect(slow.connect()).rejects.toThrow(/timeout/i);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      for (const s of servers) s.close();
    }
  });

  afterAll(() => rmSync(root, { recursive: true, force: true }));
});

// --- wiring ----------------------------------------------------------------------------------------

describe("lifecycleAwsPorts (control plane wiring)", () => {
  const base = { repoDir: process.cwd() } as unknown as ControlPlaneConfig;
  const lifecycle = { databasesFile: "x.json", intervalSeconds: 30, workflows: {} } as unknown as NonNullable<ControlPlaneConfig["lifecycle"]>;

  it("uses the AWS adapters only with TENANCY_LIFECYCLE_AWS on; by default the steps refuse naming the setting", async () => {
    const off = lifecycleAwsPorts({ ...base, lifecycle });
    const err = await off.secrets.scheduleDeletion(secretName, "us-east-1", 30).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingAdapterError);
    expect((err as Error).message).toMatch(/is off \(TENANCY_LIFECYCLE_AWS\)/);
    await expect(off.snapshots.state(snap, "us-east-1")).rejects.toBeInstanceOf(MissingAdapterError);
    expect(lifecycleAwsPorts({ ...base, lifecycle: { ...lifecycle, backupDir: "/tmp" } }).backups).toBeInstanceOf(DirectoryBucketStore);
    const on = lifecycleAwsPorts({ ...base, lifecycle: { ...lifecycle, aws: { backupKmsKey: "alias/shop/platform/backups", snapshotWaitSeconds: 0 } } });
    expect(on.backups).toBeInstanceOf(S3BackupStore);
    expect(on.snapshots).toBeInstanceOf(RdsSnapshots);
    expect(on.secrets).toBeInstanceOf(AwsSecretsManager);
  });

  it("connects through the TENANCY_LIFECYCLE_DATABASES file when given (it wins), else with TENANCY_LIFECYCLE_AWS on through Secrets Manager, else not at all", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sm-wiring-"));
    try {
      const file = join(dir, "dbs.json");
      writeFileSync(file, JSON.stringify({ "shared-prod-use1-01": "postgres://admin@cell/cell?sslmode=verify-full" }));
      const aws = { backupKmsKey: "alias/shop/platform/backups", snapshotWaitSeconds: 0 };
      expect(lifecycleDatabases({ ...base, lifecycle: { ...lifecycle, databasesFile: file } })).toBeInstanceOf(JsonFileDatabaseLocator);
      expect(lifecycleDatabases({ ...base, lifecycle: { ...lifecycle, databasesFile: file, aws } })).toBeInstanceOf(JsonFileDatabaseLocator);
      const { databasesFile: _none, ...withoutFile } = lifecycle;
      expect(lifecycleDatabases({ ...base, lifecycle: { ...withoutFile, aws } })).toBeInstanceOf(SecretsManagerDatabaseLocator);
      // Neither: the worker runs; a step that connects fails at once naming both settings.
      const none = lifecycleDatabases({ ...base, lifecycle: withoutFile });
      const refusal = await none.cell("prod", "use1-01").catch((e: unknown) => e);
      expect(refusal).toBeInstanceOf(MissingAdapterError);
      expect((refusal as Error).message).toBe(
        "this step connects to the database of cell use1-01 (prod) as its master user, but the control plane knows no connection for it: TENANCY_LIFECYCLE_DATABASES is not set and TENANCY_LIFECYCLE_AWS is off; " +
          "set TENANCY_LIFECYCLE_DATABASES to a JSON file mapping stack names to postgres:// URLs, or TENANCY_LIFECYCLE_AWS: on (connection documents in Secrets Manager), and retry the workflow",
      );
      await expect(none.dedicated("acme", "prod")).rejects.toThrow(/^this step connects to the dedicated database of acme \(prod\) as its master user/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
