import { describe, expect, it } from "vitest";
import { add, C_KEY_ARN, CONTROL_PLANE_ROLE, dedicatedStack, find, sharedStack, tagsFor, urn, urnOf, violation, violationsAfter, violationsOf, type FixtureStack } from "../fixtures.ts";

const P = "iam-tenant-scope";
const D = dedicatedStack();
const S = sharedStack();
const CELL_BUCKET = "tenancy-prod-use1-01-data-111111111111";
const SECRETS = "arn:aws:secretsmanager:us-east-1:111111111111:secret:";
const ROLE = " (role of tenant \"globex\")";

function trust(condition: Record<string, unknown> | undefined, principal: unknown = { AWS: CONTROL_PLANE_ROLE }): string {
  return JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: principal, Action: "sts:AssumeRole", ...(condition ? { Condition: condition } : {}) }] });
}

function statements(...s: Record<string, unknown>[]): string {
  return JSON.stringify({ Version: "2012-10-17", Statement: s });
}

/** Replaces globex's role policy with the given statements. */
const globexPolicy = (...s: Record<string, unknown>[]) => (st: FixtureStack) => {
  find(st, "globex-role-policy").inputs.policy = statements(...s);
};
const allow = (Action: unknown, Resource: unknown, Condition?: Record<string, unknown>) => ({ Effect: "Allow", Action, Resource, ...(Condition ? { Condition } : {}) });

describe(`${P}: trust policy`, () => {
  it("passes a trust policy pinning the tenant through a session tag or a principal tag", async () => {
    expect(await violationsOf(S)).toEqual([]);
    const principalTag = trust({ StringEquals: { "aws:PrincipalTag/tenant": "globex" } });
    expect(await violationsAfter(S, (s) => (find(s, "globex-role").inputs.assumeRolePolicy = principalTag))).toEqual([]);
  });

  it("accepts an AWS service pinned to the platform account, and reports one that is not", async () => {
    const service = (condition?: Record<string, unknown>) => trust(condition, { Service: "vpc-flow-logs.amazonaws.com" });
    const pinned = service({ StringEquals: { "aws:SourceAccount": "111111111111" } });
    expect(await violationsAfter(S, (s) => (find(s, "globex-role").inputs.assumeRolePolicy = pinned))).toEqual([]);
    const bySource = service({ ArnLike: { "aws:SourceArn": "arn:aws:ec2:us-east-1:111111111111:vpc-flow-log/*" } });
    expect(await violationsAfter(S, (s) => (find(s, "globex-role").inputs.assumeRolePolicy = bySource))).toEqual([]);
    expect(await violationsAfter(S, (s) => (find(s, "globex-role").inputs.assumeRolePolicy = service()))).toEqual([
      violation(P, urn(S, "globex-role"), "assumeRolePolicy statement 0 trusts vpc-flow-logs.amazonaws.com without an aws:SourceAccount or aws:SourceArn condition on account 111111111111"),
    ]);
  });

  it("reports a trust policy for any principal", async () => {
    const doc = trust({ StringEquals: { "aws:RequestTag/tenant": "globex" } }, { AWS: "*" });
    expect(await violationsAfter(S, (s) => (find(s, "globex-role").inputs.assumeRolePolicy = doc))).toEqual([
      violation(P, urn(S, "globex-role"), 'assumeRolePolicy statement 0 trusts any principal ("*")'),
    ]);
  });

  it("reports a trust policy that does not pin the tenant", async () => {
    expect(await violationsAfter(S, (s) => (find(s, "globex-role").inputs.assumeRolePolicy = trust(undefined)))).toEqual([
      violation(P, urn(S, "globex-role"), 'assumeRolePolicy statement 0 does not pin the tenant: add a StringEquals condition on aws:PrincipalTag/tenant or aws:RequestTag/tenant equal to "globex"'),
    ]);
  });

  it("reports a wildcard tenant tag, loose or exact", async () => {
    const like = trust({ StringLike: { "aws:PrincipalTag/tenant": "*" } });
    expect(await violationsAfter(S, (s) => (find(s, "globex-role").inputs.assumeRolePolicy = like))).toEqual([
      violation(P, urn(S, "globex-role"), 'assumeRolePolicy statement 0 matches the tenant tag loosely (["*"]); pin it with StringEquals to "globex"'),
    ]);
    const equals = trust({ StringEquals: { "aws:PrincipalTag/tenant": "*" } });
    expect(await violationsAfter(S, (s) => (find(s, "globex-role").inputs.assumeRolePolicy = equals))).toEqual([
      violation(P, urn(S, "globex-role"), 'assumeRolePolicy statement 0 pins a wildcard tenant (["*"]); the role of tenant "globex" trusts only tenant "globex"'),
    ]);
  });

  it("reports a trust policy pinned to another tenant", async () => {
    const other = trust({ StringEquals: { "aws:RequestTag/tenant": ["globex", "initech"] } });
    expect(await violationsAfter(S, (s) => (find(s, "globex-role").inputs.assumeRolePolicy = other))).toEqual([
      violation(P, urn(S, "globex-role"), 'assumeRolePolicy statement 0 pins another tenant (["initech"]); the role of tenant "globex" trusts only tenant "globex"'),
    ]);
  });
});

describe(`${P}: identity policies`, () => {
  const at = (stack: FixtureStack, name: string, message: string) => violation(P, urn(stack, name), message);

  it("passes the tenant's secrets, prefix, listing with a prefix condition, and the cell key through Secrets Manager", async () => {
    expect(await violationsOf(S)).toEqual([]);
    expect(await violationsOf(D)).toEqual([]);
    const context = allow("kms:Decrypt", C_KEY_ARN, { StringLike: { "kms:EncryptionContext:SecretARN": `${SECRETS}tenancy/prod/tenants/globex/*` } });
    expect(await violationsAfter(S, globexPolicy(context, allow("logs:CreateLogStream", "*")))).toEqual([]);
    const objects = allow(["kms:Decrypt", "kms:GenerateDataKey"], C_KEY_ARN, {
      StringEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com" },
      StringLike: { "kms:EncryptionContext:aws:s3:arn": `arn:aws:s3:::${CELL_BUCKET}/tenants/globex/*` },
    });
    expect(await violationsAfter(S, globexPolicy(objects))).toEqual([]);
  });

  it("reports a '*' resource on Secrets Manager, KMS or S3 actions", async () => {
    expect(await violationsAfter(S, globexPolicy(allow(["secretsmanager:GetSecretValue", "logs:PutLogEvents"], "*")))).toEqual([
      at(S, "globex-role-policy", `policy statement 0 resource "*" allows secretsmanager:GetSecretValue on every resource ("*")${ROLE}`),
    ]);
    expect(await violationsAfter(S, globexPolicy(allow("s3:*", "*"), allow("kms:Decrypt", "*")))).toEqual([
      at(S, "globex-role-policy", `policy statement 0 resource "*" allows s3:* on every resource ("*")${ROLE}`),
      at(S, "globex-role-policy", `policy statement 1 resource "*" allows kms:Decrypt on every resource ("*")${ROLE}`),
    ]);
  });

  it("reports another tenant's secrets and a prefix that is not the whole namespace", async () => {
    expect(await violationsAfter(S, globexPolicy(allow("secretsmanager:GetSecretValue", `${SECRETS}tenancy/prod/tenants/initech/*`)))).toEqual([
      at(S, "globex-role-policy", `policy statement 0 resource "${SECRETS}tenancy/prod/tenants/initech/*" is outside the tenant's secret namespace "tenancy/prod/tenants/globex/"${ROLE}`),
    ]);
    expect(await violationsAfter(S, globexPolicy(allow("secretsmanager:GetSecretValue", `${SECRETS}tenancy/prod/tenants/glob*`)))).toEqual([
      at(S, "globex-role-policy", `policy statement 0 resource "${SECRETS}tenancy/prod/tenants/glob*" is outside the tenant's secret namespace "tenancy/prod/tenants/globex/"${ROLE}`),
    ]);
  });

  it("reports a resource in another account", async () => {
    const arn = "arn:aws:secretsmanager:us-east-1:222222222222:secret:tenancy/prod/tenants/globex/*";
    expect(await violationsAfter(S, globexPolicy(allow("secretsmanager:GetSecretValue", arn)))).toEqual([
      at(S, "globex-role-policy", `policy statement 0 resource "${arn}" names account 222222222222, not the platform account 111111111111${ROLE}`),
    ]);
  });

  it("reports another tenant's prefix, the whole cell bucket, and bucket wildcards", async () => {
    expect(await violationsAfter(S, globexPolicy(allow("s3:GetObject", `arn:aws:s3:::${CELL_BUCKET}/tenants/initech/*`)))).toEqual([
      at(S, "globex-role-policy", `policy statement 0 resource "arn:aws:s3:::${CELL_BUCKET}/tenants/initech/*" is outside the tenant's prefix "tenants/globex/" of the cell bucket${ROLE}`),
    ]);
    expect(await violationsAfter(S, globexPolicy(allow("s3:ListBucket", `arn:aws:s3:::${CELL_BUCKET}`)))).toEqual([
      at(S, "globex-role-policy", `policy statement 0 resource "arn:aws:s3:::${CELL_BUCKET}" is the whole cell bucket; allow only s3:ListBucket on it, with an s3:prefix condition under "tenants/globex/"${ROLE}`),
    ]);
    expect(await violationsAfter(S, globexPolicy(allow("s3:GetObject", "arn:aws:s3:::*/tenants/globex/*")))).toEqual([
      at(S, "globex-role-policy", `policy statement 0 resource "arn:aws:s3:::*/tenants/globex/*" is a wildcard over buckets${ROLE}`),
    ]);
  });

  it("reports the cell key without a Secrets Manager condition, and keys outside the stack", async () => {
    expect(await violationsAfter(S, globexPolicy(allow("kms:Decrypt", C_KEY_ARN)))).toEqual([
      at(
        S,
        "globex-role-policy",
        `policy statement 0 resource "${C_KEY_ARN}" is the shared cell key (cell-key); use it only with a kms:ViaService condition on Secrets Manager, or an encryption-context condition (kms:EncryptionContext:SecretARN under "tenancy/prod/tenants/globex/", kms:EncryptionContext:aws:s3:arn under the tenant's objects)${ROLE}`,
      ),
    ]);
    const othersObjects = allow("kms:Decrypt", C_KEY_ARN, { StringLike: { "kms:EncryptionContext:aws:s3:arn": `arn:aws:s3:::${CELL_BUCKET}/tenants/*` } });
    expect((await violationsAfter(S, globexPolicy(othersObjects))).map((v) => v.message)).toEqual([
      `policy statement 0 resource "${C_KEY_ARN}" is the shared cell key (cell-key); use it only with a kms:ViaService condition on Secrets Manager, or an encryption-context condition (kms:EncryptionContext:SecretARN under "tenancy/prod/tenants/globex/", kms:EncryptionContext:aws:s3:arn under the tenant's objects)${ROLE}`,
    ]);
    const other = "arn:aws:kms:us-east-1:111111111111:key/ffffffff-0000-0000-0000-000000000000";
    expect(await violationsAfter(S, globexPolicy(allow("kms:Decrypt", other)))).toEqual([
      at(S, "globex-role-policy", `policy statement 0 resource "${other}" is not a key of this stack, so its tenant cannot be checked${ROLE}`),
    ]);
  });

  it("accepts a key named by the tenant's alias (kms:ResourceAliases), and reports an alias condition naming anything else", async () => {
    const byAlias = (aliases: unknown, op = "ForAnyValue:StringEquals") =>
      allow("kms:Decrypt", "arn:aws:kms:us-east-1:111111111111:key/*", { [op]: { "kms:ResourceAliases": aliases } });
    expect(await violationsAfter(S, globexPolicy(byAlias("alias/tenancy/prod/tenants/globex")))).toEqual([]);
    expect(await violationsAfter(S, globexPolicy(byAlias(["alias/tenancy/prod/tenants/globex", "alias/tenancy/prod/tenants/initech"])))).toEqual([
      at(S, "globex-role-policy", `policy statement 0 resource "arn:aws:kms:us-east-1:111111111111:key/*" is a wildcard over KMS keys narrowed to aliases ["alias/tenancy/prod/tenants/globex","alias/tenancy/prod/tenants/initech"], not only the tenant's "alias/tenancy/prod/tenants/globex"${ROLE}`),
    ]);
    // StringLike would allow a pattern; only the exact set operator counts.
    expect((await violationsAfter(S, globexPolicy(byAlias("alias/tenancy/prod/tenants/globex", "ForAnyValue:StringLike")))).map((v) => v.message)).toEqual([
      `policy statement 0 resource "arn:aws:kms:us-east-1:111111111111:key/*" is a wildcard over KMS keys${ROLE}`,
    ]);
  });

  it("reports a database user other than the tenant's", async () => {
    const arn = "arn:aws:rds-db:us-east-1:111111111111:dbuser:db-ABCDEFGHIJKL/tenant_initech";
    expect(await violationsAfter(S, globexPolicy(allow("rds-db:connect", arn)))).toEqual([
      at(S, "globex-role-policy", `policy statement 0 resource "${arn}" connects as database user "tenant_initech", not the tenant's "tenant_globex"${ROLE}`),
    ]);
  });

  it("reports other services' ARNs that name another tenant", async () => {
    const arn = "arn:aws:iam::111111111111:role/tenancy-prod-t-initech";
    expect(await violationsAfter(S, globexPolicy(allow("sts:AssumeRole", arn)))).toEqual([
      at(S, "globex-role-policy", `policy statement 0 resource "${arn}" names the IAM role "tenancy-prod-t-initech" of another tenant${ROLE}`),
    ]);
  });

  it("reports NotAction and NotResource", async () => {
    expect(await violationsAfter(S, globexPolicy({ Effect: "Allow", NotAction: "iam:*", Resource: "*" }))).toEqual([
      at(S, "globex-role-policy", "policy statement 0 uses NotAction, which allows everything it does not list"),
    ]);
  });

  it("reports a document that is not a policy", async () => {
    expect(await violationsAfter(S, (s) => (find(s, "globex-role-policy").inputs.policy = "[]"))).toEqual([
      at(S, "globex-role-policy", "policy is not a JSON object"),
    ]);
  });

  it("checks inline policies on the role, tenant-tagged managed policies and attachments", async () => {
    const wide = statements(allow("s3:GetObject", "*"));
    expect(await violationsAfter(S, (s) => (find(s, "globex-role").inputs.inlinePolicies = [{ name: "extra", policy: wide }]))).toEqual([
      at(S, "globex-role", `inline policy "extra" statement 0 resource "*" allows s3:GetObject on every resource ("*")${ROLE}`),
    ]);
    const policyUrn = urnOf(S.name, "aws:iam/policy:Policy", "globex-extra");
    expect(await violationsAfter(S, (s) => add(s, "aws:iam/policy:Policy", "globex-extra", { policy: wide, tags: tagsFor(s, "globex") }))).toEqual([
      violation(P, policyUrn, `policy statement 0 resource "*" allows s3:GetObject on every resource ("*")${ROLE}`),
    ]);
    const attachment = { role: "tenancy-prod-t-globex", policyArn: "arn:aws:iam::aws:policy/AmazonS3FullAccess" };
    expect(await violationsAfter(S, (s) => add(s, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "globex-s3", attachment))).toEqual([
      violation(
        P,
        urnOf(S.name, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "globex-s3"),
        'attaches policy "arn:aws:iam::aws:policy/AmazonS3FullAccess" to the role of tenant "globex"; it is not defined in this stack, so its statements cannot be checked',
      ),
    ]);
  });

  it("checks a dedicated role against its own bucket and key", async () => {
    const role = (...s: Record<string, unknown>[]) => (st: FixtureStack) => (find(st, "acme-role-policy").inputs.policy = statements(...s));
    expect(await violationsAfter(D, role(allow("s3:GetObject", `arn:aws:s3:::${CELL_BUCKET}/tenants/acme/*`)))).toEqual([]);
    expect(await violationsAfter(D, role(allow("s3:GetObject", "arn:aws:s3:::tenancy-prod-globex-data-111111111111/*")))).toEqual([
      violation(
        P,
        urn(D, "acme-role-policy"),
        'policy statement 0 resource "arn:aws:s3:::tenancy-prod-globex-data-111111111111/*" is neither the tenant\'s bucket "tenancy-prod-acme-data-111111111111" nor a cell bucket (role of tenant "acme")',
      ),
    ]);
    expect(await violationsAfter(D, role(allow("kms:Decrypt", "arn:aws:kms:us-east-1:111111111111:alias/tenancy/prod/tenants/globex")))).toEqual([
      violation("dedicated-stack-single-tenant", urn(D, "acme-role-policy"), 'input policy names the KMS alias "alias/tenancy/prod/tenants/globex" of tenant "globex"; the dedicated stack of tenant "acme" holds only its own'),
      violation(P, urn(D, "acme-role-policy"), 'policy statement 0 resource "arn:aws:kms:us-east-1:111111111111:alias/tenancy/prod/tenants/globex" is not the tenant\'s KMS alias "alias/tenancy/prod/tenants/acme" (role of tenant "acme")'),
    ]);
  });
});
