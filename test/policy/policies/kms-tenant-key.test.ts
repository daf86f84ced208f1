import { describe, expect, it } from "vitest";
import { analyzeResources } from "../../../plan/analyze.ts";
import { add, C_KEY_ARN, dedicatedStack, find, remove, sharedStack, tagsFor, urn, urnOf, violation, violationsAfter, violationsOf } from "../fixtures.ts";

const P = "kms-tenant-key";
const D = dedicatedStack();
const S = sharedStack();
const ALIAS = "aws:kms/alias:Alias";
const notTenantKey = (prop: string, what: string) => `${prop} names ${what}, not the key of tenant "acme"`;
const unknownKey = `"${C_KEY_ARN}" (not a key of this stack)`;
const unset = (prop: string) => `${prop} is not set, so AWS encrypts it with an AWS managed key; use the key of tenant "acme"`;

describe(P, () => {
  it("passes rotating keys, aliases on their own tenant's key, and dedicated data on the tenant key", async () => {
    expect(await violationsOf(D)).toEqual([]);
    expect(await violationsOf(S)).toEqual([]);
  });

  it("accepts the tenant key named by its alias", async () => {
    expect(await violationsAfter(D, (s) => (find(s, "acme-flow-logs").inputs.kmsKeyId = "alias/tenancy/prod/tenants/acme"))).toEqual([]);
  });

  it("reports a key without rotation", async () => {
    expect(await violationsAfter(S, (s) => (find(s, "cell-key").inputs.enableKeyRotation = false))).toEqual([
      violation(P, urn(S, "cell-key"), "enableKeyRotation is not true: KMS keys rotate"),
    ]);
  });

  it("reports a tenant alias that targets the cell key", async () => {
    const alias = { name: "alias/tenancy/prod/tenants/globex", targetKeyId: C_KEY_ARN };
    expect(await violationsAfter(S, (s) => add(s, ALIAS, "globex-key-alias", alias))).toEqual([
      violation(P, urnOf(S.name, ALIAS, "globex-key-alias"), 'alias "alias/tenancy/prod/tenants/globex" belongs to tenant "globex" but targets key "cell-key" (tagged tenant "shared")'),
    ]);
  });

  it("reports a cell alias that targets a key outside the stack", async () => {
    const other = "arn:aws:kms:us-east-1:111111111111:key/ffffffff-0000-0000-0000-000000000000";
    expect(await violationsAfter(S, (s) => (find(s, "cell-key-alias").inputs.targetKeyId = other))).toEqual([
      violation(P, urn(S, "cell-key-alias"), `alias "alias/tenancy/prod/cells/use1-01" belongs to a cell but targets "${other}" (not a key of this stack)`),
    ]);
  });

  it("reports a dedicated secret on the AWS managed key or another key", async () => {
    expect(await violationsAfter(D, (s) => delete find(s, "acme-database-secret").inputs.kmsKeyId)).toEqual([
      violation(P, urn(D, "acme-database-secret"), unset("kmsKeyId")),
    ]);
    expect(await violationsAfter(D, (s) => (find(s, "acme-database-secret").inputs.kmsKeyId = C_KEY_ARN))).toEqual([
      violation(P, urn(D, "acme-database-secret"), notTenantKey("kmsKeyId", unknownKey)),
    ]);
  });

  it("reports a dedicated log group not on the tenant key", async () => {
    expect(await violationsAfter(D, (s) => delete find(s, "acme-flow-logs").inputs.kmsKeyId)).toEqual([violation(P, urn(D, "acme-flow-logs"), unset("kmsKeyId"))]);
  });

  it("reports a dedicated database or its Performance Insights on another key", async () => {
    expect(await violationsAfter(D, (s) => (find(s, "acme-db").inputs.kmsKeyId = C_KEY_ARN))).toEqual([
      violation(P, urn(D, "acme-db"), notTenantKey("kmsKeyId", unknownKey)),
    ]);
    expect(await violationsAfter(D, (s) => delete find(s, "acme-db").inputs.performanceInsightsKmsKeyId)).toEqual([
      violation(P, urn(D, "acme-db"), unset("performanceInsightsKmsKeyId")),
    ]);
  });

  it("accepts any key tagged with the stack's tenant", async () => {
    const arn = "arn:aws:kms:us-east-1:111111111111:key/scratch";
    expect(
      await violationsAfter(D, (s) => {
        add(s, "aws:kms/key:Key", "scratch-key", { enableKeyRotation: true, tags: tagsFor(s, "acme") }, { arn });
        find(s, "acme-flow-logs").inputs.kmsKeyId = arn;
      }),
    ).toEqual([]);
  });

  it("reports a dedicated bucket without KMS encryption", async () => {
    expect(await violationsAfter(D, (s) => remove(s, "acme-bucket-sse"))).toEqual([
      violation(P, urn(D, "acme-bucket"), 'bucket has no server-side encryption configuration, so S3 encrypts it with an S3 managed key; encrypt it with the key of tenant "acme"'),
    ]);
    const aes = { applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } };
    expect(await violationsAfter(D, (s) => (find(s, "acme-bucket-sse").inputs.rules = [aes]))).toEqual([
      violation(P, urn(D, "acme-bucket-sse"), 'sseAlgorithm is "AES256"; the tenant\'s bucket is encrypted with aws:kms and the key of tenant "acme"'),
    ]);
    const cellKey = { applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: C_KEY_ARN } };
    expect(await violationsAfter(D, (s) => (find(s, "acme-bucket-sse").inputs.rules = [cellKey]))).toEqual([
      violation(P, urn(D, "acme-bucket-sse"), notTenantKey("rules[0].applyServerSideEncryptionByDefault.kmsMasterKeyId", unknownKey)),
    ]);
  });

  it("reports a dedicated stack that has no key of its tenant", async () => {
    const stack = "dedicated-acme-prod";
    const stackUrn = urnOf(stack, "pulumi:pulumi:Stack", "saas-tenancy-dedicated-acme-prod");
    const logs = urnOf(stack, "aws:cloudwatch/logGroup:LogGroup", "acme-logs");
    const tags = { tenant: "acme", env: "prod", stack, "managed-by": "saas-tenancy" };
    const resources = [
      { urn: stackUrn, type: "pulumi:pulumi:Stack", name: "saas-tenancy-dedicated-acme-prod", inputs: {} },
      { urn: logs, type: "aws:cloudwatch/logGroup:LogGroup", name: "acme-logs", inputs: { name: "/acme", tags } },
    ];
    expect(await analyzeResources(resources, stack)).toEqual([
      violation(P, stackUrn, 'the dedicated stack of tenant "acme" has no KMS key tagged tenant=acme (alias alias/tenancy/prod/tenants/acme)'),
      violation(P, logs, unset("kmsKeyId")),
    ]);
  });
});
