import { envOf, str } from "../lib/resource.ts";
import { T } from "../lib/stack.ts";
import type { ResourcePolicyDefinition } from "../registry.ts";

/** Shortest backup retention the platform accepts, in days (docs/policy.md, rds-hardening: backups >= 7 days). */
export const MIN_BACKUP_RETENTION_DAYS = 7;

export const rdsHardening: ResourcePolicyDefinition = {
  kind: "resource",
  name: "rds-hardening",
  description:
    "RDS instances are not publicly accessible, encrypt storage with a customer managed KMS key, keep backups for at least 7 days, and in prod have deletion protection and a final snapshot.",
  severity: "high",
  enforcementLevel: "advisory",
  remediationSteps:
    "Set publiclyAccessible: false, storageEncrypted: true, kmsKeyId: <tenant or cell key ARN>, backupRetentionPeriod >= 7; in prod deletionProtection: true, skipFinalSnapshot: false and a finalSnapshotIdentifier.",
  types: [T.rdsInstance],
  validate({ props }, ctx, report) {
    if (props.publiclyAccessible === true) {
      report("publiclyAccessible is true: a database is never reachable from the internet");
    }
    if (props.storageEncrypted !== true) {
      report("storageEncrypted is not true: database storage is encrypted");
    }
    const kmsKeyId = str(props.kmsKeyId) ?? "";
    if (kmsKeyId === "" || /(^|:)alias\/aws\/rds$/.test(kmsKeyId)) {
      report(`kmsKeyId is ${kmsKeyId === "" ? "not set" : `"${kmsKeyId}"`}: storage is encrypted with a customer managed KMS key, not the AWS managed one`);
    }
    const retention = props.backupRetentionPeriod;
    if (typeof retention !== "number" || retention < MIN_BACKUP_RETENTION_DAYS) {
      report(`backupRetentionPeriod is ${typeof retention === "number" ? retention : "not set"}: backups are kept at least ${MIN_BACKUP_RETENTION_DAYS} days`);
    }
    if (envOf({ props }, ctx) !== "prod") return;
    if (props.deletionProtection !== true) {
      report("deletionProtection is not true in prod");
    }
    if (props.skipFinalSnapshot === true) {
      report("skipFinalSnapshot is true in prod: deleting the instance takes a final snapshot");
    } else if ((str(props.finalSnapshotIdentifier) ?? "") === "") {
      report("finalSnapshotIdentifier is not set in prod: the final snapshot needs a name (without one the delete fails)");
    }
  },
};
