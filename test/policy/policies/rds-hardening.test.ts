import { describe, expect, it } from "vitest";
import { analyzeResources } from "../../../plan/analyze.ts";
import { dedicatedStack, find, sharedStack, urn, urnOf, violation, violationsAfter, violationsOf } from "../fixtures.ts";

const P = "rds-hardening";
const D = dedicatedStack();
const S = sharedStack();
const DB = urn(S, "cell-db");
const db = (s: typeof S) => find(s, "cell-db").inputs;

describe(P, () => {
  it("passes private, customer-key encrypted, backed-up prod databases", async () => {
    expect(await violationsOf(S)).toEqual([]);
    expect(await violationsOf(D)).toEqual([]);
  });

  it("reports a publicly accessible database", async () => {
    expect(await violationsAfter(S, (s) => (db(s).publiclyAccessible = true))).toEqual([
      violation(P, DB, "publiclyAccessible is true: a database is never reachable from the internet"),
    ]);
  });

  it("reports unencrypted storage", async () => {
    expect(await violationsAfter(S, (s) => (db(s).storageEncrypted = false))).toEqual([violation(P, DB, "storageEncrypted is not true: database storage is encrypted")]);
  });

  it("reports the AWS managed key, named or by default", async () => {
    expect(await violationsAfter(S, (s) => delete db(s).kmsKeyId)).toEqual([
      violation(P, DB, "kmsKeyId is not set: storage is encrypted with a customer managed KMS key, not the AWS managed one"),
    ]);
    expect(await violationsAfter(S, (s) => (db(s).kmsKeyId = "alias/aws/rds"))).toEqual([
      violation(P, DB, 'kmsKeyId is "alias/aws/rds": storage is encrypted with a customer managed KMS key, not the AWS managed one'),
    ]);
  });

  it("reports backups kept less than 7 days", async () => {
    expect(await violationsAfter(S, (s) => (db(s).backupRetentionPeriod = 6))).toEqual([violation(P, DB, "backupRetentionPeriod is 6: backups are kept at least 7 days")]);
    expect(await violationsAfter(S, (s) => delete db(s).backupRetentionPeriod)).toEqual([
      violation(P, DB, "backupRetentionPeriod is not set: backups are kept at least 7 days"),
    ]);
  });

  it("reports a prod database without deletion protection or final snapshot", async () => {
    expect(await violationsAfter(S, (s) => (db(s).deletionProtection = false))).toEqual([violation(P, DB, "deletionProtection is not true in prod")]);
    expect(await violationsAfter(S, (s) => (db(s).skipFinalSnapshot = true))).toEqual([
      violation(P, DB, "skipFinalSnapshot is true in prod: deleting the instance takes a final snapshot"),
    ]);
    expect(await violationsAfter(S, (s) => delete db(s).finalSnapshotIdentifier)).toEqual([
      violation(P, DB, "finalSnapshotIdentifier is not set in prod: the final snapshot needs a name (without one the delete fails)"),
    ]);
  });

  it("does not require deletion protection or a final snapshot outside prod", async () => {
    const stack = "shared-staging-use1-01";
    const tags = { tenant: "shared", env: "staging", stack, "managed-by": "saas-tenancy" };
    const instance = {
      urn: urnOf(stack, "aws:rds/instance:Instance", "cell-db"),
      type: "aws:rds/instance:Instance",
      name: "cell-db",
      inputs: { storageEncrypted: true, kmsKeyId: "arn:aws:kms:us-east-1:111111111111:key/k", backupRetentionPeriod: 7, deletionProtection: false, skipFinalSnapshot: true, tags },
    };
    expect(await analyzeResources([instance], stack)).toEqual([]);
    expect(await analyzeResources([{ ...instance, inputs: { ...instance.inputs, backupRetentionPeriod: 1 } }], stack)).toEqual([
      violation(P, instance.urn, "backupRetentionPeriod is 1: backups are kept at least 7 days"),
    ]);
  });
});
