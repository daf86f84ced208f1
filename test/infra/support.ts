/**
 * Helpers of the infra tests: example and temporary fleets, lookups in a rendered stack, and
 * which AWS resource types are taggable (read from the installed SDK, not from a list kept here).
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { parse, stringify } from "yaml";
import { onTestFinished } from "vitest";
import { RUN_TEMP_ENV } from "../support/runTempDir.ts";
import { requireFleet, type Fleet } from "../../infra/model/fleet.ts";
import { renderStack } from "../../plan/render/render.ts";
import { isSecretValue, unwrapSecrets, type RenderedResource, type RenderedStack } from "../../plan/types.ts";

export const projectDir = resolve(import.meta.dirname, "../..");

export function exampleFleet(): Fleet {
  return requireFleet({ projectDir });
}

/**
 * Removes a temporary directory when the current test ends (passed or failed). Made outside a test
 * (beforeAll, module level, a describe body), it lives in the run's directory
 * (test/support/runTempDir.ts), removed when the whole run ends: a process `exit` handler does not
 * run when vitest stops a forked worker, and runs of the suite left hundreds of infra-fleet-*
 * directories behind.
 */
function fleetTempDir(): string {
  let inTest = true;
  let dir = "";
  try {
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  } catch {
    inTest = false; // vitest refuses the hook outside a running test
  }
  if (inTest) return (dir = mkdtempSync(join(tmpdir(), "infra-fleet-")));
  const runDir = process.env[RUN_TEMP_ENV];
  if (runDir === undefined) throw new Error(`${RUN_TEMP_ENV} is not set: run the tests through vitest.config.ts, whose global set-up makes the run's temporary directory`);
  return mkdtempSync(join(runDir, "infra-fleet-"));
}

/** A copy of the example fleet in a temporary directory, changed by `edit`, then loaded (and validated). */
export function tempFleet(edit: (dir: string) => void): Fleet {
  const dir = fleetTempDir();
  cpSync(join(projectDir, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
  cpSync(join(projectDir, "tenants"), join(dir, "tenants"), { recursive: true });
  cpSync(join(projectDir, "stacks"), join(dir, "stacks"), { recursive: true });
  edit(dir);
  return requireFleet({ projectDir: dir });
}

/** Rewrites a YAML file of a temporary fleet (path relative to it). */
export function editYaml(dir: string, rel: string, mutate: (doc: Record<string, unknown>) => void): void {
  const path = join(dir, rel);
  const doc = (existsSync(path) ? parse(readFileSync(path, "utf8")) : {}) as Record<string, unknown>;
  mutate(doc);
  writeFileSync(path, stringify(doc));
}

export function writeYaml(dir: string, rel: string, doc: unknown): void {
  writeFileSync(join(dir, rel), stringify(doc));
}

/**
 * The example fleet with startup-alpha upgraded to dedicated (prod and staging, from cell use1-01),
 * its tenant file at `phase` of the upgrade (no `migration` block: the upgrade has finished), and
 * its two dedicated stack files.
 */
export function upgradingStartupAlpha(phase?: string): Fleet {
  return tempFleet((dir) => {
    editYaml(dir, "tenants/startup-alpha.yaml", (d) => {
      d.tier = "dedicated";
      delete d.placement;
      d.dedicated = { prod: { cidr: "10.68.0.0/16" }, staging: { cidr: "10.69.0.0/16" } };
      if (phase) d.migration = { phase, from: { prod: "use1-01", staging: "use1-01" }, fromTier: "standard", startedAt: "2026-01-10T09:00:00Z" };
    });
    for (const env of ["prod", "staging"]) writeYaml(dir, `stacks/Pulumi.dedicated-startup-alpha-${env}.yaml`, { config: { "aws:region": "us-east-1" } });
  });
}

// --- Lookups ---------------------------------------------------------------------------------

export function byTypeName(r: RenderedStack, type: string, name: string): RenderedResource {
  const hits = r.resources.filter((x) => x.type === type && x.name === name);
  if (hits.length !== 1) throw new Error(`${r.name}: expected one ${type} named ${name}, found ${hits.length}`);
  return hits[0]!;
}

export function ofType(r: RenderedStack, type: string): RenderedResource[] {
  return r.resources.filter((x) => x.type === type);
}

/** The resource `urn` and everything below it. */
export function subtree(r: RenderedStack, urn: string): RenderedResource[] {
  const below = new Set([urn]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const x of r.resources) {
      if (!below.has(x.urn) && below.has(x.parent)) {
        below.add(x.urn);
        grew = true;
      }
    }
  }
  return r.resources.filter((x) => below.has(x.urn));
}

/** `type name` of each resource, sorted: the shape of a (sub)stack. */
export function shape(resources: readonly RenderedResource[]): string[] {
  return resources.map((x) => `${x.type} ${x.name}`).sort();
}

/** Plain inputs (secret markers removed). */
export function plain(x: RenderedResource): Record<string, unknown> {
  return unwrapSecrets(x.inputs) as Record<string, unknown>;
}

export function json(value: unknown): unknown {
  if (typeof value !== "string") throw new Error(`expected a JSON string, got ${typeof value}`);
  return JSON.parse(value);
}

/** Differences between two renders of the same stack, by URN. */
export function diffRenders(a: RenderedStack, b: RenderedStack): { added: string[]; removed: string[]; changed: string[] } {
  const left = new Map(a.resources.map((x) => [x.urn, x]));
  const right = new Map(b.resources.map((x) => [x.urn, x]));
  const added = [...right.keys()].filter((u) => !left.has(u)).sort();
  const removed = [...left.keys()].filter((u) => !right.has(u)).sort();
  const changed = [...left.keys()]
    .filter((u) => right.has(u))
    .filter((u) => {
      const l = left.get(u)!;
      const r = right.get(u)!;
      return !isDeepStrictEqual(l.inputs, r.inputs) || !isDeepStrictEqual(l.options, r.options) || l.parent !== r.parent;
    })
    .sort();
  return { added, removed, changed };
}

/** Every value in a JSON-like tree that is wrapped as a secret, and every plain string. */
export function walk(v: unknown, visit: (value: unknown, secret: boolean) => void, secret = false): void {
  if (isSecretValue(v)) return walk(v.value, visit, true);
  visit(v, secret);
  if (Array.isArray(v)) v.forEach((x) => walk(x, visit, secret));
  else if (v && typeof v === "object") Object.values(v).forEach((x) => walk(x, visit, secret));
}

// --- Taggable types, from the SDK ------------------------------------------------------------

const taggable = new Map<string, boolean>();

/**
 * Whether an AWS resource type takes `tags`, read from its Args interface in the installed
 * @pulumi/aws (aws:ec2/vpc:Vpc -> node_modules/@pulumi/aws/ec2/vpc.d.ts, `interface VpcArgs`).
 */
export function isTaggable(type: string): boolean {
  const known = taggable.get(type);
  if (known !== undefined) return known;
  const m = /^aws:([a-zA-Z0-9]+)\/([a-zA-Z0-9]+):([A-Za-z0-9]+)$/.exec(type);
  if (!m) throw new Error(`not an AWS resource type token: ${type}`);
  const [, mod, file, cls] = m as unknown as [string, string, string, string];
  const dts = readFileSync(join(projectDir, "node_modules/@pulumi/aws", mod, `${file}.d.ts`), "utf8");
  const start = dts.indexOf(`export interface ${cls}Args {`);
  if (start < 0) throw new Error(`${type}: no ${cls}Args in the SDK`);
  const body = dts.slice(start, dts.indexOf("\n}", start));
  const result = /\n\s+tags\?: /.test(body);
  taggable.set(type, result);
  return result;
}

/** renderStack without the SDK's per-promise stack traces (only used for its leak report): same result, faster. */
export function render(fleet: Fleet, stackName: string): Promise<RenderedStack> {
  return renderStack(fleet, stackName, { fastPromises: true });
}

/**
 * The exact resources of a spoke VPC's endpoints (VpcEndpoints `<n>-endpoints`, rules admitting
 * each private subnet's AZ) and the app group's two egress rules to them (DatabaseSecurityGroups `<n>-sg`).
 */
export function spokeEndpointsShape(n: string, azs: readonly string[]): string[] {
  return [
    `${C("VpcEndpoints")} ${n}-endpoints`, `${T.sg} ${n}-endpoints`,
    ...azs.map((az) => `${T.ingress} ${n}-endpoints-from-${az}`),
    ...["secretsmanager", "ssm", "kms", "sts", "logs", "s3"].map((s) => `aws:ec2/vpcEndpoint:VpcEndpoint ${n}-endpoints-${s}`),
    `${T.egress} ${n}-sg-app-to-endpoints`, `${T.egress} ${n}-sg-app-to-s3`,
  ];
}

/** Type tokens the infra tests look up, components included. */
export const C = (cls: string) => `saas-tenancy:components:${cls}`;
export const T = {
  stack: "pulumi:pulumi:Stack",
  cell: "saas-tenancy:components:SharedCell",
  pooled: "saas-tenancy:components:PooledTenant",
  access: "saas-tenancy:components:TenantDatabaseAccess",
  conn: "saas-tenancy:components:ConnectionSecret",
  secrets: "saas-tenancy:components:TenantSecrets",
  roleC: "saas-tenancy:components:TenantRole",
  policyC: "saas-tenancy:components:TenantRolePolicy",
  keyC: "saas-tenancy:components:EncryptionKey",
  password: "random:index/randomPassword:RandomPassword",
  pgRole: "postgresql:index/role:Role",
  pgSchema: "postgresql:index/schema:Schema",
  pgGrant: "postgresql:index/grant:Grant",
  pgProvider: "pulumi:providers:postgresql",
  secret: "aws:secretsmanager/secret:Secret",
  version: "aws:secretsmanager/secretVersion:SecretVersion",
  role: "aws:iam/role:Role",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  key: "aws:kms/key:Key",
  alias: "aws:kms/alias:Alias",
  record: "aws:route53/record:Record",
  rds: "aws:rds/instance:Instance",
  vpc: "aws:ec2/vpc:Vpc",
  subnet: "aws:ec2/subnet:Subnet",
  sg: "aws:ec2/securityGroup:SecurityGroup",
  ingress: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
  egress: "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
  zone: "aws:route53/zone:Zone",
  routeTable: "aws:ec2/routeTable:RouteTable",
  rta: "aws:ec2/routeTableAssociation:RouteTableAssociation",
  route: "aws:ec2/route:Route",
  nat: "aws:ec2/natGateway:NatGateway",
  eip: "aws:ec2/eip:Eip",
  igw: "aws:ec2/internetGateway:InternetGateway",
  pcx: "aws:ec2/vpcPeeringConnection:VpcPeeringConnection",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  flowLog: "aws:ec2/flowLog:FlowLog",
  configC: "saas-tenancy:components:RuntimeConfig",
  parameter: "aws:ssm/parameter:Parameter",
} as const;
