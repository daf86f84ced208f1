/**
 * A small stand-in for the real program (infra/program.ts), shaped like it: a cell has a VPC, a
 * PostgreSQL instance encrypted with the cell key, a bucket, and per resident a role, a schema,
 * namespaced secrets, an enterprise tenant's own key and a DNS record; a dedicated stack has the
 * tenant's key, VPC, database, zone, secrets and (with egress) a NAT gateway. Children hang off
 * components named by stable keys, as the real components do.
 *
 * The plan tests render with it in-process (renderStack's `program` option) and copy it into a
 * temporary repository as infra/program.ts, where `../../../infra/` imports become `./`, so the
 * revisions they commit run it through the real `tenantctl plan`. Its exact output is what the
 * tests assert: it does not follow the real program's changes.
 */
import * as aws from "@pulumi/aws";
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import { cellResidents, type Fleet } from "../../../infra/model/fleet.ts";
import {
  cellBucketName, dedicatedZoneName, parseStackName, pgTenantIdent, pooledHostname, tags, tenantSecretName,
} from "../../../infra/model/naming.ts";
import { dedicatedSizing, hasOwnKmsKey } from "../../../infra/model/tiers.ts";

export type StackOutputs = Record<string, unknown>;

/** Extra tags for every resource; the "edit infra" revision of the tests changes this line. */
const EXTRA_TAGS: Record<string, string> = {};

class Holder extends pulumi.ComponentResource {
  constructor(type: string, name: string, opts?: pulumi.ComponentResourceOptions) {
    super(`fixture:index:${type}`, name, {}, opts);
  }
}

/** The program, given the extra tags (in-process tests build each revision's variant with it). */
export function makeDefineStack(extraTags: Readonly<Record<string, string>>) {
  const tagsFor = (tenant: string, env: string, stack: string): Record<string, string> => ({ ...tags(tenant, env, stack), ...extraTags });
  return (fleet: Fleet, stackName: string) => build(fleet, stackName, tagsFor);
}

export const defineStack = makeDefineStack(EXTRA_TAGS);

/** The extra tags a revision's copy of this file declares (the line above defineStack's). */
export function extraTagsOf(programText: string): Record<string, string> {
  const m = /const EXTRA_TAGS: Record<string, string> = (\{.*\});/.exec(programText);
  if (!m) throw new Error("the fixture program has no EXTRA_TAGS line");
  return JSON.parse(m[1]!.replace(/^\{\s*\}$/, "{}")) as Record<string, string>;
}

type TagsFor = (tenant: string, env: string, stack: string) => Record<string, string>;

async function build(fleet: Fleet, stackName: string, tagsFor: TagsFor): Promise<StackOutputs> {
  const ref = parseStackName(stackName, fleet.platform.environments);
  const { appName: app, domain, awsAccountId } = fleet.platform;
  const env = ref.env;
  if (ref.kind === "shared") {
    const cell = fleet.cells.get(stackName)!;
    const root = new Holder("Cell", cell.id);
    const shared = tagsFor("shared", env, stackName);
    const key = new aws.kms.Key(`${cell.id}-key`, { description: `cell ${cell.id}`, enableKeyRotation: true, tags: shared }, { parent: root });
    new aws.ec2.Vpc(`${cell.id}-vpc`, { cidrBlock: cell.config.cidr, tags: shared }, { parent: root });
    const db = new aws.rds.Instance(`${cell.id}-db`, {
      identifier: `${app}-${env}-${cell.id}`,
      engine: "postgres",
      engineVersion: cell.config.dbEngineVersion ?? fleet.platform.cellDefaults.dbEngineVersion,
      instanceClass: cell.config.dbInstanceClass ?? fleet.platform.cellDefaults.dbInstanceClass,
      allocatedStorage: cell.config.dbAllocatedStorageGb ?? fleet.platform.cellDefaults.dbAllocatedStorageGb,
      storageType: "gp3",
      multiAz: env === "prod",
      storageEncrypted: true,
      kmsKeyId: key.arn,
      tags: shared,
    }, { parent: root, protect: env === "prod" });
    new aws.s3.Bucket(`${cell.id}-bucket`, { bucket: cellBucketName(app, env, cell.id, awsAccountId), tags: shared }, { parent: root });
    for (const t of cellResidents(fleet, cell)) {
      const mine = tagsFor(t.id, env, stackName);
      const holder = new Holder("Tenant", t.id, { parent: root });
      const ident = pgTenantIdent(t.id);
      new postgresql.Role(`${t.id}-role`, { name: ident, login: true, superuser: false }, { parent: holder });
      new postgresql.Schema(`${t.id}-schema`, { name: ident, owner: ident }, { parent: holder });
      for (const s of t.secrets) {
        new aws.secretsmanager.Secret(`${t.id}-${s}`, { name: tenantSecretName(app, env, t.id, s), kmsKeyId: key.arn, tags: mine }, { parent: holder });
      }
      if (hasOwnKmsKey(t.tier, t.deployment)) {
        new aws.kms.Key(`${t.id}-key`, { description: `tenant ${t.id}`, enableKeyRotation: true, tags: mine }, { parent: holder });
      }
      new aws.route53.Record(`${t.id}-dns`, {
        zoneId: fleet.platform.hostedZoneId, name: pooledHostname(t.id, domain), type: "CNAME", ttl: 300,
        records: [cell.config.ingressHostname],
      }, { parent: holder });
    }
    return { endpoint: db.endpoint };
  }

  if (ref.kind === "platform") {
    // The hub VPC stands for the platform stack: enough for plans of program edits to reach it.
    const hub = new aws.ec2.Vpc(`hub-${ref.region}`, { cidrBlock: fleet.platform.hubs[ref.region]!.cidr, tags: tagsFor("shared", env, stackName) });
    return { hubVpcId: hub.id };
  }
  const lt = fleet.tenants.get(ref.tenant)!;
  const t = lt.tenant;
  if (t.deployment !== "dedicated") throw new Error(`${stackName}: tenant ${t.id} is not dedicated`);
  const net = t.dedicated[env]!;
  const sizing = dedicatedSizing(env, net.database);
  const mine = tagsFor(t.id, env, stackName);
  const root = new Holder("Dedicated", t.id);
  const key = new aws.kms.Key(`${t.id}-key`, { description: `tenant ${t.id}`, enableKeyRotation: true, tags: mine }, { parent: root });
  const vpc = new aws.ec2.Vpc(`${t.id}-vpc`, { cidrBlock: net.cidr, tags: mine }, { parent: root });
  const db = new aws.rds.Instance(`${t.id}-db`, {
    identifier: `${app}-${env}-${t.id}`,
    engine: "postgres",
    instanceClass: sizing.instanceClass,
    allocatedStorage: sizing.allocatedStorageGb,
    storageType: "gp3",
    multiAz: sizing.multiAz,
    backupRetentionPeriod: sizing.backupRetentionDays,
    storageEncrypted: true,
    kmsKeyId: key.arn,
    tags: mine,
  }, { parent: root, protect: env === "prod" });
  new aws.route53.Zone(`${t.id}-zone`, { name: dedicatedZoneName(t.id, domain), tags: mine }, { parent: root });
  for (const s of t.secrets) {
    new aws.secretsmanager.Secret(`${t.id}-${s}`, { name: tenantSecretName(app, env, t.id, s), kmsKeyId: key.arn, tags: mine }, { parent: root });
  }
  if (t.features.egress) {
    const eip = new aws.ec2.Eip(`${t.id}-nat-ip`, { domain: "vpc", tags: mine }, { parent: root });
    new aws.ec2.NatGateway(`${t.id}-nat`, { allocationId: eip.id, subnetId: "subnet-0fixturepublic", tags: mine }, { parent: root, dependsOn: [vpc] });
  }
  return { endpoint: db.endpoint };
}
