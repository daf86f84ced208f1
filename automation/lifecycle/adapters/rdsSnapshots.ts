/**
 * DatabaseSnapshots on RDS (AWS SDK for JavaScript v3). Not run against AWS here: the tests drive
 * it through real SDK clients whose requests are answered in-process.
 *
 * The kept final snapshot must not depend on the tenant's KMS key: the destroy keeps that key
 * (EncryptionKey is retainOnDelete), but an operator may later disable it or schedule its deletion
 * by hand, and a snapshot under a deleted key is unreadable for good. So it is a copy under the
 * platform's backup key:
 *
 *   `<snapshotId>-src`  CreateDBSnapshot of the instance (encrypted with the tenant's key)
 *   `<snapshotId>`      CopyDBSnapshot of the above with KmsKeyId = the platform backup key
 *
 * `request` is idempotent and moves that along each time it is called (the offboarding step calls
 * it on every poll): nothing when the copy exists; CreateDBSnapshot when the source does not;
 * CopyDBSnapshot when the source is available. With `waitSeconds` > 0 it also waits (the SDK's
 * waitUntilDBSnapshotAvailable) that long for the source, so a small database's copy starts in the
 * same call; beyond that, waiting is the workflow's (it parks and polls `state`, which survives a
 * restart and holds no worker for the hours a large snapshot takes). `state` reports `available`
 * only when the copy is, and refuses a copy under another key than the configured one (when that
 * is given as an ARN). The `-src` snapshot is left in place (see docs/lifecycle.md). `check` (a workflow's
 * preflight) refuses a backup key ARN of another region and DescribeDBInstances the instance: it
 * exists in that region and this role may reach it. It changes nothing.
 */
import {
  CopyDBSnapshotCommand, CreateDBSnapshotCommand, DescribeDBInstancesCommand, DescribeDBSnapshotsCommand, ModifyDBInstanceCommand, RDSClient,
  waitUntilDBSnapshotAvailable, type DBSnapshot,
} from "@aws-sdk/client-rds";
import { MANAGED_BY } from "../../../infra/model/naming.ts";
import { PermanentError } from "../engine/engine.ts";
import type { DatabaseSnapshots, ProtectionRelease, SnapshotState } from "../ports.ts";
import { awsErrorName, AwsRefusedError, translateAwsError } from "./awsErrors.ts";
import { RegionalClients } from "./regionalClients.ts";

export const SOURCE_SUFFIX = "-src";

export interface RdsSnapshotsOptions {
  /** The platform backup key the kept copy is encrypted with: key ARN (checked), alias (`alias/...`) or key id, in every region used. */
  backupKmsKey: string;
  /** The RDS client of a region (tests inject clients whose requests never leave the process). */
  client?: (region: string) => RDSClient;
  /** Seconds `request` waits for the source snapshot (0: no waiting; the workflow polls). */
  waitSeconds?: number;
  /** The waiter's delay between polls, seconds (default 15). */
  waitDelaySeconds?: number;
}

const CREATING = new Set(["creating", "copying", "pending", "modifying", "upgrading"]);

function snapshotState(s: DBSnapshot): SnapshotState {
  const status = s.Status ?? "";
  if (status === "available") return "available";
  return CREATING.has(status) ? "creating" : "failed";
}

export class RdsSnapshots implements DatabaseSnapshots {
  private readonly clients = new RegionalClients<RDSClient>();
  constructor(private readonly opts: RdsSnapshotsOptions) {
    if (!opts.backupKmsKey) throw new Error("RdsSnapshots needs the platform backup KMS key");
  }

  private client(region: string): RDSClient {
    return this.clients.get(region, (r) => (this.opts.client ? this.opts.client(r) : new RDSClient({ region: r })));
  }

  private keyFor(region: string): string {
    const key = this.opts.backupKmsKey;
    const arn = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):\d{12}:/.exec(key);
    if (arn && arn[1] !== region) {
      throw new AwsRefusedError(`the platform backup key ${key} is in ${arn[1]}, the snapshot in ${region}: give the key as an alias that exists in every region; no snapshot was copied`, "KeyRegion");
    }
    return key;
  }

  private async describe(region: string, id: string): Promise<DBSnapshot | undefined> {
    try {
      const out = await this.client(region).send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: id }));
      return out.DBSnapshots?.find((s) => s.DBSnapshotIdentifier === id);
    } catch (err) {
      if (awsErrorName(err) === "DBSnapshotNotFoundFault" || awsErrorName(err) === "DBSnapshotNotFound") return undefined;
      throw translateAwsError(err, `DescribeDBSnapshots ${id} (${region})`, "nothing was deleted");
    }
  }

  async check(instance: string, region: string): Promise<string> {
    const key = this.keyFor(region);
    let found;
    try {
      const out = await this.client(region).send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: instance }));
      found = out.DBInstances?.find((i) => i.DBInstanceIdentifier === instance);
    } catch (err) {
      if (awsErrorName(err) !== "DBInstanceNotFoundFault" && awsErrorName(err) !== "DBInstanceNotFound") {
        throw translateAwsError(err, `DescribeDBInstances ${instance} (${region})`, "nothing was changed");
      }
    }
    if (!found) throw new AwsRefusedError(`RDS instance ${instance} does not exist in ${region}: there is nothing to take a final snapshot of; nothing was changed`, "DBInstanceNotFound");
    return `RDS ${region}: a snapshot of ${instance} copied under ${key}`;
  }

  async request(instance: string, snapshotId: string, region: string): Promise<void> {
    const client = this.client(region);
    if (await this.describe(region, snapshotId)) return;
    const sourceId = `${snapshotId}${SOURCE_SUFFIX}`;
    const tags = [{ Key: "managed-by", Value: MANAGED_BY }, { Key: "final-snapshot-of", Value: instance }];
    let source = await this.describe(region, sourceId);
    if (!source) {
      try {
        await client.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: instance, DBSnapshotIdentifier: sourceId, Tags: tags }));
      } catch (err) {
        if (awsErrorName(err) !== "DBSnapshotAlreadyExistsFault" && awsErrorName(err) !== "DBSnapshotAlreadyExists") {
          throw translateAwsError(err, `CreateDBSnapshot ${sourceId} of ${instance} (${region})`, "no snapshot was taken and nothing was deleted");
        }
      }
      source = { DBSnapshotIdentifier: sourceId, Status: "creating" };
    }
    if (source.Status !== "available" && (this.opts.waitSeconds ?? 0) > 0) {
      const delay = this.opts.waitDelaySeconds ?? 15;
      // Failure and timeout both end the wait; `state` reports what the snapshot then is.
      await waitUntilDBSnapshotAvailable(
        { client, maxWaitTime: Math.max(this.opts.waitSeconds!, delay + 1), minDelay: delay, maxDelay: delay },
        { DBSnapshotIdentifier: sourceId },
      ).catch(() => undefined);
      source = (await this.describe(region, sourceId)) ?? source;
    }
    if (source.Status !== "available") return;
    try {
      await client.send(new CopyDBSnapshotCommand({
        SourceDBSnapshotIdentifier: sourceId,
        TargetDBSnapshotIdentifier: snapshotId,
        KmsKeyId: this.keyFor(region),
        Tags: tags,
      }));
    } catch (err) {
      if (awsErrorName(err) === "DBSnapshotAlreadyExistsFault" || awsErrorName(err) === "DBSnapshotAlreadyExists") return;
      throw translateAwsError(err, `CopyDBSnapshot ${sourceId} -> ${snapshotId} under ${this.opts.backupKmsKey} (${region})`, "the final snapshot is not kept under the platform key yet and nothing was deleted");
    }
  }

  async state(snapshotId: string, region: string): Promise<SnapshotState> {
    const copy = await this.describe(region, snapshotId);
    if (copy) {
      const key = this.opts.backupKmsKey;
      if (key.startsWith("arn:") && copy.KmsKeyId !== key) {
        throw new PermanentError(`RDS snapshot ${snapshotId} is encrypted with ${copy.KmsKeyId ?? "no key"}, not the platform backup key ${key}: it would not outlive the tenant's key; nothing was deleted`);
      }
      return snapshotState(copy);
    }
    const source = await this.describe(region, `${snapshotId}${SOURCE_SUFFIX}`);
    if (!source) return "missing";
    // An available source means the copy is yet to be requested (the next `request` does it).
    return snapshotState(source) === "failed" ? "failed" : "creating";
  }

  async disableDeletionProtection(instance: string, region: string, release: ProtectionRelease): Promise<void> {
    if (release.kind !== "offboarding" || !release.backupId) throw new PermanentError(`no valid protection release for ${instance}; deletion protection stays on`);
    const client = this.client(region);
    let current;
    try {
      const out = await client.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: instance }));
      current = out.DBInstances?.find((i) => i.DBInstanceIdentifier === instance);
    } catch (err) {
      // Already gone (a destroy after a crash): nothing left to protect.
      if (awsErrorName(err) === "DBInstanceNotFoundFault" || awsErrorName(err) === "DBInstanceNotFound") return;
      throw translateAwsError(err, `DescribeDBInstances ${instance} (${region})`, "deletion protection was not changed");
    }
    if (!current || current.DeletionProtection === false) return;
    try {
      await client.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: instance, DeletionProtection: false, ApplyImmediately: true }));
    } catch (err) {
      throw translateAwsError(err, `ModifyDBInstance ${instance} DeletionProtection=false (${region}, release for ${release.stack}, backup ${release.backupId})`, "deletion protection is still on and nothing was deleted");
    }
  }
}
