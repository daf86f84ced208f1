/**
 * Proof that the pack catches what it claims (docs/policy.md): the example fleet renders
 * clean, then each case makes one realistic mistake in the rendered stack and exactly the policy
 * that owns that rule must fire, and nothing else.
 */
import { resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { requireFleet } from "../../infra/model/fleet.ts";
import { renderStack } from "../../plan/render/render.ts";
import type { RenderedResource, RenderedStack } from "../../plan/types.ts";
import { fleetAnalyzer } from "../../plan/planStacks.ts";

const fleet = requireFleet({ projectDir: resolve(import.meta.dirname, "../..") });
const analyze = fleetAnalyzer(fleet);
const CELL = "shared-prod-use1-01";
const DEDICATED = "dedicated-acme-prod";
const PLATFORM = "platform-us-east-1";
const stacks = new Map<string, RenderedStack>();

type Props = Record<string, unknown>;

function find(stack: RenderedStack, type: string, name: string): RenderedResource {
  const r = stack.resources.find((x) => x.type === type && x.name === name);
  if (!r) throw new Error(`no ${type} ${name} in ${stack.name}`);
  return r;
}

/** Applies the same edit to a resource's inputs and outputs (the engine would see both). */
function edit(stack: RenderedStack, type: string, name: string, fn: (p: Props) => void): void {
  const r = find(stack, type, name);
  fn(r.inputs);
  if (r.outputs) fn(r.outputs);
}

function editJson(stack: RenderedStack, type: string, name: string, key: string, fn: (doc: { Statement: Props[] }) => void): void {
  edit(stack, type, name, (p) => {
    const doc = JSON.parse(p[key] as string) as { Statement: Props[] };
    fn(doc);
    p[key] = JSON.stringify(doc);
  });
}

function add(stack: RenderedStack, like: RenderedResource, type: string, name: string, inputs: Props): void {
  const urn = like.urn.replace(/::[^:]+::[^:]*$/, `::${type}::${name}`);
  stack.resources.push({ ...like, urn, type, name, inputs, outputs: { ...inputs } });
}

const tags = (tenant: string, stack: string) => ({ tenant, env: "prod", stack, "managed-by": "saas-tenancy" });
const unwrap = (v: unknown) => (v as { value: unknown }).value;

interface Case {
  name: string;
  stack: string;
  policy: string;
  mutate: (s: RenderedStack) => void;
}

const cases: Case[] = [
  { name: "a publicly accessible cell database", stack: CELL, policy: "rds-hardening",
    mutate: (s) => edit(s, "aws:rds/instance:Instance", "cell-use1-01-db", (p) => (p.publiclyAccessible = true)) },
  { name: "one day of backups", stack: DEDICATED, policy: "rds-hardening",
    mutate: (s) => edit(s, "aws:rds/instance:Instance", "tenant-acme-db", (p) => (p.backupRetentionPeriod = 1)) },
  { name: "a prod database without deletion protection", stack: CELL, policy: "rds-hardening",
    mutate: (s) => edit(s, "aws:rds/instance:Instance", "cell-use1-01-db", (p) => (p.deletionProtection = false)) },
  { name: "a prod database that skips its final snapshot", stack: DEDICATED, policy: "rds-hardening",
    mutate: (s) => edit(s, "aws:rds/instance:Instance", "tenant-acme-db", (p) => (p.skipFinalSnapshot = true)) },
  { name: "port 5432 open to the world", stack: CELL, policy: "no-public-ingress",
    mutate: (s) => edit(s, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "cell-use1-01-sg-db-from-runner-us-east-1a", (p) => (p.cidrIpv4 = "0.0.0.0/0")) },
  { name: "the control plane's database admitting 5432 from the world", stack: PLATFORM, policy: "no-public-ingress",
    mutate: (s) => edit(s, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "control-plane-db-from-runner-eu-west-1-0", (p) => (p.cidrIpv4 = "0.0.0.0/0")) },
  { name: "a tenant's host name in the platform stack", stack: PLATFORM, policy: "dns-tenant-names",
    mutate: (s) => edit(s, "aws:route53/record:Record", "control-plane-dns", (p) => (p.name = "acme.tenancy.example.com")) },
  { name: "SSH open to all of IPv6 inline on a security group", stack: DEDICATED, policy: "no-public-ingress",
    mutate: (s) => edit(s, "aws:ec2/securityGroup:SecurityGroup", "tenant-acme-sg-app", (p) => (p.ingress = [{ protocol: "tcp", fromPort: 22, toPort: 22, ipv6CidrBlocks: ["::/0"] }])) },
  { name: "RDP open to the world by a separate rule", stack: CELL, policy: "no-public-ingress",
    mutate: (s) => add(s, find(s, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "cell-use1-01-sg-db-from-app"), "aws:ec2/securityGroupRule:SecurityGroupRule", "rdp-debug",
      { type: "ingress", protocol: "tcp", fromPort: 3389, toPort: 3389, cidrBlocks: ["0.0.0.0/0"], securityGroupId: "sg-0123" }) },
  { name: "a tenant's secret created in another tenant's namespace", stack: CELL, policy: "secret-namespace",
    mutate: (s) => edit(s, "aws:secretsmanager/secret:Secret", "tenant-startup-alpha-secrets/stripe_api_key", (p) => (p.name = "tenancy/prod/tenants/freebie-one/stripe_api_key")) },
  { name: "a tenant secret under the platform's global namespace", stack: CELL, policy: "secret-namespace",
    mutate: (s) => edit(s, "aws:secretsmanager/secret:Secret", "tenant-freebie-one-database", (p) => (p.name = "tenancy/prod/global/freebie-one-database")) },
  { name: "a VPC missing its stack tag", stack: CELL, policy: "tenant-tags",
    mutate: (s) => edit(s, "aws:ec2/vpc:Vpc", "cell-use1-01-network-vpc", (p) => delete (p.tags as Props).stack) },
  { name: "a KMS key missing its managed-by tag", stack: DEDICATED, policy: "tenant-tags",
    mutate: (s) => edit(s, "aws:kms/key:Key", "tenant-acme-key", (p) => delete (p.tags as Props)["managed-by"]) },
  { name: "a tag naming the wrong tenant in a dedicated stack", stack: DEDICATED, policy: "dedicated-stack-single-tenant",
    mutate: (s) => edit(s, "aws:ec2/securityGroup:SecurityGroup", "tenant-acme-sg-app", (p) => (p.tags = tags("megacorp", DEDICATED))) },
  { name: "a key without rotation", stack: CELL, policy: "kms-tenant-key",
    mutate: (s) => edit(s, "aws:kms/key:Key", "cell-use1-01-key", (p) => (p.enableKeyRotation = false)) },
  { name: "dedicated flow logs not encrypted with the tenant key", stack: DEDICATED, policy: "kms-tenant-key",
    mutate: (s) => edit(s, "aws:cloudwatch/logGroup:LogGroup", "tenant-acme-flow-logs", (p) => delete p.kmsKeyId) },
  { name: "a tenant role reading every secret", stack: CELL, policy: "iam-tenant-scope",
    mutate: (s) => editJson(s, "aws:iam/rolePolicy:RolePolicy", "tenant-freebie-one-access", "policy", (d) => (d.Statement[0]!.Resource = "*")) },
  { name: "a tenant role reading another tenant's secrets", stack: CELL, policy: "iam-tenant-scope",
    mutate: (s) => editJson(s, "aws:iam/rolePolicy:RolePolicy", "tenant-freebie-one-access", "policy", (d) => (d.Statement[0]!.Resource = "arn:aws:secretsmanager:us-east-1:111111111111:secret:tenancy/prod/tenants/startup-alpha/*")) },
  { name: "a tenant role writing another tenant's objects", stack: CELL, policy: "iam-tenant-scope",
    mutate: (s) => editJson(s, "aws:iam/rolePolicy:RolePolicy", "tenant-freebie-one-access", "policy", (d) => (d.Statement[2]!.Resource = "arn:aws:s3:::tenancy-prod-use1-01-data-111111111111/tenants/startup-alpha/*")) },
  { name: "a trust policy with a wildcard tenant tag", stack: CELL, policy: "iam-tenant-scope",
    mutate: (s) => editJson(s, "aws:iam/role:Role", "tenant-freebie-one-role", "assumeRolePolicy", (d) => (d.Statement[0]!.Condition = { StringLike: { "aws:RequestTag/tenant": "*" } })) },
  { name: "a trust policy open to any principal", stack: DEDICATED, policy: "iam-tenant-scope",
    mutate: (s) => editJson(s, "aws:iam/role:Role", "tenant-acme-role", "assumeRolePolicy", (d) => (d.Statement[0]!.Principal = "*")) },
  { name: "a superuser tenant role", stack: CELL, policy: "postgres-tenant-grants",
    mutate: (s) => edit(s, "postgresql:index/role:Role", "tenant-freebie-one-db-access", (p) => (p.superuser = true)) },
  { name: "a tenant role that bypasses row-level security", stack: DEDICATED, policy: "postgres-tenant-grants",
    mutate: (s) => edit(s, "postgresql:index/role:Role", "tenant-acme-db-access", (p) => (p.bypassRowLevelSecurity = true)) },
  { name: "a grant on another tenant's schema", stack: CELL, policy: "postgres-tenant-grants",
    mutate: (s) => add(s, find(s, "postgresql:index/grant:Grant", "tenant-freebie-one-db-access-connect"), "postgresql:index/grant:Grant", "tenant-freebie-one-peek",
      { database: "cell", objectType: "table", schema: "tenant_startup_alpha", privileges: ["SELECT"], role: "tenant_freebie_one" }) },
  { name: "CONNECT granted to PUBLIC", stack: CELL, policy: "postgres-tenant-grants",
    mutate: (s) => edit(s, "postgresql:index/grant:Grant", "cell-use1-01-db-hardening-public-connect", (p) => (p.privileges = ["CONNECT"])) },
  { name: "a DNS record for a tenant of another cell", stack: CELL, policy: "dns-tenant-names",
    mutate: (s) => edit(s, "aws:route53/record:Record", "tenant-freebie-one-dns", (p) => (p.name = "company-beta.tenancy.example.com")) },
  { name: "a dedicated zone outside <id>.dedicated.<domain>", stack: DEDICATED, policy: "dns-tenant-names",
    mutate: (s) => edit(s, "aws:route53/zone:Zone", "tenant-acme-dns-public", (p) => (p.name = "acme-corp.example.net")) },
  { name: "the master password copied into a tag", stack: CELL, policy: "secrets-stay-secret",
    mutate: (s) => edit(s, "aws:rds/instance:Instance", "cell-use1-01-db", (p) => ((p.tags as Props).debug = unwrap(p.password))) },
  { name: "a placeholder secret value", stack: DEDICATED, policy: "secrets-stay-secret",
    mutate: (s) => edit(s, "aws:secretsmanager/secretVersion:SecretVersion", "tenant-acme-database", (p) => (p.secretString = "changeme")) },
  { name: "a second secret with the connection document's name", stack: CELL, policy: "secret-names-unique",
    mutate: (s) => add(s, find(s, "aws:secretsmanager/secret:Secret", "tenant-freebie-one-database"), "aws:secretsmanager/secret:Secret", "tenant-freebie-one-secrets/database",
      { ...find(s, "aws:secretsmanager/secret:Secret", "tenant-freebie-one-database").inputs }) },
  { name: "a tenant's runtime config naming another tenant's connection document", stack: CELL, policy: "runtime-config-own-tenant",
    mutate: (s) => edit(s, "aws:ssm/parameter:Parameter", "tenant-freebie-one-config", (p) => {
      p.insecureValue = String(p.insecureValue).replace("tenants/freebie-one/database", "tenants/startup-alpha/database");
    }) },
  { name: "a cell's routing page routing a tenant of another cell", stack: CELL, policy: "routing-own-env-region",
    mutate: (s) => edit(s, "aws:ssm/parameter:Parameter", "routing-00", (p) => {
      const share = JSON.parse(String(p.insecureValue)) as { routes: Record<string, string> };
      share.routes["company-beta"] = "ingress.shared-prod-use1-01.tenancy.example.com";
      p.insecureValue = JSON.stringify(share);
    }) },
  { name: "a dedicated bucket whose lifecycle no longer expires noncurrent versions", stack: DEDICATED, policy: "tenant-bucket-retention-audit",
    mutate: (s) => edit(s, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "tenant-acme-bucket", (p) => {
      for (const rule of p.rules as Props[]) delete rule.noncurrentVersionExpiration;
    }) },
];

beforeAll(async () => {
  for (const name of [CELL, DEDICATED, PLATFORM]) stacks.set(name, await renderStack(fleet, name, { fastPromises: true }));
});

describe("policy pack against the example fleet", () => {
  it("the clean stacks have no violations", async () => {
    for (const s of stacks.values()) expect(await analyze(s)).toEqual([]);
  });

  it("has at least 25 cases covering every policy", () => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
    expect(new Set(cases.map((c) => c.policy)).size).toBe(14);
  });

  it.each(cases)("catches $name ($policy)", async (c) => {
    const mutated = structuredClone(stacks.get(c.stack)!);
    c.mutate(mutated);
    const violations = await analyze(mutated);
    expect(violations.length).toBeGreaterThan(0);
    expect([...new Set(violations.map((v) => v.policy))]).toEqual([c.policy]);
    expect(violations.every((v) => v.level === "mandatory")).toBe(true);
  });
});
