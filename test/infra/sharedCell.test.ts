/**
 * Shared cell stacks (docs/stacks.md), rendered offline under Pulumi's mock runtime by plan/render.
 * Exact resource sets and inputs per tenant; conventions; suspended and migrating tenants;
 * outputs; several renders in one process; onboarding tenant N+1 touches nothing else.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { cellResidents, type Fleet } from "../../infra/model/fleet.ts";
import { cellDbIdentifier } from "../../infra/model/infraNames.ts";
import { platformStackName, tags } from "../../infra/model/naming.ts";
import { planSubnets } from "../../infra/model/subnets.ts";
import { mockId } from "../../plan/render/mockOutputs.ts";
import { isSecretValue, type RenderedResource, type RenderedStack } from "../../plan/types.ts";
import {
  byTypeName, C, diffRenders, editYaml, exampleFleet, isTaggable, json, ofType, plain, render, shape, spokeEndpointsShape, subtree, tempFleet, upgradingStartupAlpha, walk, writeYaml, T,
} from "./support.ts";

/** The exact resources of one pooled tenant (`relSecrets` relative to its namespace). */
function pooledShape(id: string, relSecrets: string[], ownKey: boolean): string[] {
  const n = `tenant-${id}`;
  return [
    `${T.pooled} ${n}`,
    `${T.access} ${n}-db-access`,
    `${T.password} ${n}-db-access`,
    `${T.pgRole} ${n}-db-access`,
    `${T.pgSchema} ${n}-db-access`,
    `${T.pgGrant} ${n}-db-access-connect`,
    `${T.conn} ${n}-database`,
    `${T.secret} ${n}-database`,
    `${T.version} ${n}-database`,
    `${T.secrets} ${n}-secrets`,
    ...relSecrets.map((s) => `${T.secret} ${n}-secrets/${s}`),
    `${T.roleC} ${n}-role`,
    `${T.role} ${n}-role`,
    `${T.policyC} ${n}-access`,
    `${T.rolePolicy} ${n}-access`,
    `${T.configC} ${n}-config`,
    `${T.parameter} ${n}-config`,
    ...(ownKey ? [`${T.keyC} ${n}-key`, `${T.key} ${n}-key`, `${T.alias} ${n}-key`] : []),
    `${T.record} ${n}-dns`,
  ].sort();
}

/** The exact shared infrastructure of a cell with the given AZs, in a region whose hub has `hubAzs`. */
function cellShape(cell: string, azs: string[], prod: boolean, hubAzs: readonly string[]): string[] {
  const n = `cell-${cell}`;
  return [
    `${T.cell} ${n}`,
    `saas-tenancy:components:Network ${n}-network`,
    `${T.vpc} ${n}-network-vpc`,
    `aws:ec2/defaultSecurityGroup:DefaultSecurityGroup ${n}-network-default-sg`,
    ...azs.flatMap((az) => [
      `${T.subnet} ${n}-network-private-${az}`,
      `aws:ec2/routeTable:RouteTable ${n}-network-private-${az}`,
      `aws:ec2/routeTableAssociation:RouteTableAssociation ${n}-network-private-${az}`,
    ]),
    ...spokeEndpointsShape(n, azs),
    `saas-tenancy:components:DatabaseSecurityGroups ${n}-sg`,
    `${T.sg} ${n}-sg-app`,
    `${T.sg} ${n}-sg-db`,
    `${T.ingress} ${n}-sg-db-from-app`,
    ...hubAzs.map((az) => `${T.ingress} ${n}-sg-db-from-runner-${az}`),
    `saas-tenancy:components:SpokeAttachment ${n}-spoke`,
    `aws:ec2transitgateway/vpcAttachment:VpcAttachment ${n}-spoke`,
    `aws:ec2transitgateway/routeTableAssociation:RouteTableAssociation ${n}-spoke`,
    `aws:ec2transitgateway/routeTablePropagation:RouteTablePropagation ${n}-spoke`,
    ...azs.map((az) => `${T.route} ${n}-spoke-${az}`),
    `${T.egress} ${n}-sg-app-to-db`,
    `${T.keyC} ${n}-key`,
    `${T.key} ${n}-key`,
    `${T.alias} ${n}-key`,
    `${C("VpcFlowLogs")} ${n}-flow-logs`, `${T.logGroup} ${n}-flow-logs`, `${T.role} ${n}-flow-logs`, `${T.rolePolicy} ${n}-flow-logs`, `${T.flowLog} ${n}-flow-logs`,
    `saas-tenancy:components:EncryptedBucket ${n}-bucket`,
    `aws:s3/bucket:Bucket ${n}-bucket`,
    `aws:s3/bucketVersioning:BucketVersioning ${n}-bucket`,
    `aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration ${n}-bucket`,
    `aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock ${n}-bucket`,
    `aws:s3/bucketPolicy:BucketPolicy ${n}-bucket`,
    `aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration ${n}-bucket`, `aws:s3/bucketLogging:BucketLogging ${n}-bucket`,
    `saas-tenancy:components:PostgresInstance ${n}-db`,
    `${T.password} ${n}-db-master`,
    `${T.secret} ${n}-db-master`,
    `${T.version} ${n}-db-master`,
    `aws:rds/subnetGroup:SubnetGroup ${n}-db`,
    `aws:rds/parameterGroup:ParameterGroup ${n}-db`,
    `${T.rds} ${n}-db`,
    `${T.pgProvider} ${n}-db`,
    ...(prod ? [`random:index/randomId:RandomId ${n}-db-final-snapshot`] : []),
    `saas-tenancy:components:DatabaseHardening ${n}-db-hardening`,
    `${T.pgGrant} ${n}-db-hardening-public-connect`,
    `${T.pgGrant} ${n}-db-hardening-public-schema`,
    `${T.pgGrant} ${n}-db-hardening-public-connect-postgres`,
    `${T.pgGrant} ${n}-db-hardening-public-connect-template1`,
  ].sort();
}

function tenantNode(r: RenderedStack, id: string): RenderedResource {
  return byTypeName(r, T.pooled, `tenant-${id}`);
}

function inTenant(r: RenderedStack, id: string, type: string, name: string): RenderedResource {
  const hits = subtree(r, tenantNode(r, id).urn).filter((x) => x.type === type && x.name === name);
  expect(hits, `${type} ${name} under tenant-${id}`).toHaveLength(1);
  return hits[0]!;
}

const fleet: Fleet = exampleFleet();
const CELLS = ["shared-prod-use1-01", "shared-prod-use1-02", "shared-prod-euw1-01", "shared-staging-use1-01"] as const;
const rendered = new Map<string, RenderedStack>();
const get = (name: string) => rendered.get(name)!;

beforeAll(async () => {
  for (const name of CELLS) rendered.set(name, await render(fleet, name));
});

describe("shared cell stacks: resource sets", () => {
  it("each cell renders the cell component, one PooledTenant per resident, its routing share and its storage alarms, nothing else at the top", () => {
    const expected: Record<string, string[]> = {
      "shared-prod-use1-01": ["freebie-one", "startup-alpha"],
      "shared-prod-use1-02": ["company-beta", "gamma-labs"],
      "shared-prod-euw1-01": ["bigcorp", "freebie-two"],
      "shared-staging-use1-01": ["gamma-labs", "startup-alpha"],
    };
    for (const name of CELLS) {
      const r = get(name);
      const root = byTypeName(r, T.stack, `saas-tenancy-${name}`);
      const cellId = fleet.cells.get(name)!.id;
      expect(r.tenants).toEqual(expected[name]);
      expect(shape(r.resources.filter((x) => x.parent === root.urn))).toEqual(
        ["pulumi:providers:aws aws", `${T.cell} cell-${cellId}`, `${C("RoutingShare")} routing`, `${C("StorageAlarms")} storage-alarms`, ...expected[name]!.map((id) => `${T.pooled} tenant-${id}`)].sort(),
      );
      // Everything is the stack, its AWS provider, the cell subtree, a tenant subtree, the routing
      // share (one page) or the storage alarms (the topic, an alarm per tenant served): no stray resources.
      expect(shape(subtree(r, byTypeName(r, C("RoutingShare"), "routing").urn))).toEqual([`${C("RoutingShare")} routing`, `${T.parameter} routing-00`].sort());
      expect(shape(subtree(r, byTypeName(r, C("StorageAlarms"), "storage-alarms").urn))).toEqual(
        [
          `${C("StorageAlarms")} storage-alarms`, "aws:sns/topic:Topic storage-alarms-topic", "aws:cloudwatch/metricAlarm:MetricAlarm storage-alarms-shared-db-free-storage",
          ...expected[name]!.map((id) => `aws:cloudwatch/metricAlarm:MetricAlarm storage-alarms-${id}-object-storage`),
        ].sort(),
      );
      const counted = 4 + 3 + expected[name]!.length + subtree(r, byTypeName(r, T.cell, `cell-${cellId}`).urn).length +
        expected[name]!.reduce((n, id) => n + subtree(r, tenantNode(r, id).urn).length, 0);
      expect(counted).toBe(r.resources.length);
    }
  });

  it("cell infrastructure is exactly: network per configured AZ, security groups, key, bucket, database, hardening", () => {
    for (const name of CELLS) {
      const cell = fleet.cells.get(name)!;
      const r = get(name);
      expect(shape(subtree(r, byTypeName(r, T.cell, `cell-${cell.id}`).urn))).toEqual(cellShape(cell.id, cell.config.azs, cell.env === "prod", fleet.platform.hubs[cell.region]!.azs));
    }
  });

  it("each pooled tenant is exactly: db access, connection secret, declared and team secrets, role, policy, DNS (+ key if enterprise)", () => {
    const cases: [string, string, string[], boolean][] = [
      ["shared-prod-use1-01", "freebie-one", [], false],
      ["shared-prod-use1-01", "startup-alpha", ["stripe_api_key"], false],
      ["shared-prod-use1-02", "company-beta", ["saml_signing_key"], true],
      ["shared-prod-use1-02", "gamma-labs", [], false],
      ["shared-prod-euw1-01", "bigcorp", ["teams/helpdesk/zendesk_token"], true],
      ["shared-prod-euw1-01", "freebie-two", [], false],
      ["shared-staging-use1-01", "gamma-labs", [], false],
      ["shared-staging-use1-01", "startup-alpha", ["stripe_api_key"], false],
    ];
    for (const [stack, id, secrets, ownKey] of cases) {
      const r = get(stack);
      expect(shape(subtree(r, tenantNode(r, id).urn)), `${stack} ${id}`).toEqual(pooledShape(id, secrets, ownKey));
    }
  });
});

describe("pooled tenant: key inputs", () => {
  it("Postgres role, schema and grant of a standard tenant follow docs/stacks.md and the tier limits", () => {
    const r = get("shared-prod-use1-01");
    const role = inTenant(r, "startup-alpha", T.pgRole, "tenant-startup-alpha-db-access");
    expect(isSecretValue(role.inputs.password)).toBe(true);
    const { password, ...rest } = plain(role);
    expect(password).toMatch(/^[0-9a-f]{32}$/);
    expect(rest).toEqual({
      name: "tenant_startup_alpha",
      login: true,
      connectionLimit: 20,
      statementTimeout: 15_000,
      searchPaths: ["tenant_startup_alpha"],
      superuser: false,
      createDatabase: false,
      createRole: false,
      bypassRowLevelSecurity: false,
      replication: false,
    });
    expect(plain(inTenant(r, "startup-alpha", T.pgSchema, "tenant-startup-alpha-db-access"))).toEqual({
      name: "tenant_startup_alpha", owner: "tenant_startup_alpha", database: "cell",
    });
    expect(plain(inTenant(r, "startup-alpha", T.pgGrant, "tenant-startup-alpha-db-access-connect"))).toEqual({
      database: "cell", role: "tenant_startup_alpha", objectType: "database", privileges: ["CONNECT"],
    });
    expect(plain(inTenant(r, "startup-alpha", T.password, "tenant-startup-alpha-db-access"))).toEqual({ length: 32, special: false });
  });

  it("tenant limit overrides reach the role (company-beta: 80 connections; enterprise statement timeout)", () => {
    const role = plain(inTenant(get("shared-prod-use1-02"), "company-beta", T.pgRole, "tenant-company-beta-db-access"));
    expect([role.connectionLimit, role.statementTimeout, role.name]).toEqual([80, 30_000, "tenant_company_beta"]);
  });

  it("the connection document is a secret naming the cell database, the tenant's role, schema and password", () => {
    const r = get("shared-prod-use1-01");
    const provider = plain(byTypeName(r, T.pgProvider, "cell-use1-01-db"));
    for (const id of ["freebie-one", "startup-alpha"]) {
      const ident = `tenant_${id.replace(/-/g, "_")}`;
      const version = inTenant(r, id, T.version, `tenant-${id}-database`);
      expect(isSecretValue(version.inputs.secretString)).toBe(true);
      const doc = json(plain(version).secretString);
      const rolePassword = plain(inTenant(r, id, T.pgRole, `tenant-${id}-db-access`)).password;
      expect(doc).toEqual({
        host: provider.host, port: 5432, database: "cell", user: ident, password: rolePassword, schema: ident,
        sslmode: "verify-full", sslrootcertUrl: "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem",
      });
      const secret = plain(inTenant(r, id, T.secret, `tenant-${id}-database`));
      expect(secret.name).toBe(`tenancy/prod/tenants/${id}/database`);
    }
  });

  it("secrets of standard tenants use the cell key; enterprise tenants' use their own key", () => {
    for (const [stack, cellId, standard, enterprise] of [
      ["shared-prod-use1-02", "use1-02", "gamma-labs", "company-beta"],
      ["shared-prod-euw1-01", "euw1-01", "freebie-two", "bigcorp"],
    ] as const) {
      const r = get(stack);
      const cellKey = plain(byTypeName(r, T.rds, `cell-${cellId}-db`)).kmsKeyId as string;
      expect(cellKey).toMatch(/^arn:aws:kms:[a-z0-9-]+:111111111111:key\//);
      const standardSecrets = subtree(r, tenantNode(r, standard).urn).filter((x) => x.type === T.secret);
      expect(standardSecrets.map((s) => plain(s).kmsKeyId)).toEqual(standardSecrets.map(() => cellKey));

      const own = subtree(r, tenantNode(r, enterprise).urn).filter((x) => x.type === T.secret).map((s) => plain(s).kmsKeyId);
      expect(new Set(own).size).toBe(1);
      expect(own[0]).not.toBe(cellKey);
      expect(own[0]).toMatch(/^arn:aws:kms:/);
      const policy = json(plain(inTenant(r, enterprise, T.rolePolicy, `tenant-${enterprise}-access`)).policy) as {
        Statement: { Sid: string; Resource: unknown }[];
      };
      const sid = (s: string) => policy.Statement.find((x) => x.Sid === s)!.Resource;
      expect([sid("DecryptOwnSecrets"), sid("OwnObjectsEncryption")]).toEqual([own[0], cellKey]);
    }
  });

  it("an enterprise tenant's key rotates, is aliased in its namespace, admits only the account root and its role, and is retained, not protected (offboarding and downgrade must pass)", () => {
    const r = get("shared-prod-euw1-01");
    const key = inTenant(r, "bigcorp", T.key, "tenant-bigcorp-key");
    const inputs = plain(key);
    expect([inputs.enableKeyRotation, inputs.deletionWindowInDays, key.options.protect, key.options.retainOnDelete]).toEqual([true, 30, false, true]);
    expect(plain(inTenant(r, "bigcorp", T.alias, "tenant-bigcorp-key")).name).toBe("alias/tenancy/prod/tenants/bigcorp");
    const policy = json(inputs.policy) as { Statement: { Principal: unknown }[] };
    expect(policy.Statement.map((s) => s.Principal)).toEqual([
      { AWS: "arn:aws:iam::111111111111:root" },
      { AWS: "arn:aws:iam::111111111111:role/tenancy-prod-t-bigcorp" },
    ]);
  });

  it("the IAM role trusts only the control-plane role with the tenant's session tag", () => {
    const role = plain(inTenant(get("shared-prod-use1-01"), "startup-alpha", T.role, "tenant-startup-alpha-role"));
    expect(role.name).toBe("tenancy-prod-t-startup-alpha");
    expect(json(role.assumeRolePolicy)).toEqual({
      Version: "2012-10-17",
      Statement: [{
        Sid: "ControlPlaneAssumesForThisTenant",
        Effect: "Allow",
        Principal: { AWS: "arn:aws:iam::111111111111:role/tenancy-control-plane" },
        Action: ["sts:AssumeRole", "sts:TagSession"],
        Condition: { StringEquals: { "aws:RequestTag/tenant": "startup-alpha" } },
      }],
    });
  });

  it("the role policy allows exactly the tenant's secrets, their key, and its prefix in the cell bucket", () => {
    const r = get("shared-prod-use1-01");
    const cellKey = plain(byTypeName(r, T.rds, "cell-use1-01-db")).kmsKeyId;
    const rp = plain(inTenant(r, "startup-alpha", T.rolePolicy, "tenant-startup-alpha-access"));
    expect([rp.role, rp.name]).toEqual(["tenancy-prod-t-startup-alpha", "tenant-access"]);
    const secrets = "arn:aws:secretsmanager:us-east-1:111111111111:secret:tenancy/prod/tenants/startup-alpha/*";
    const bucket = "arn:aws:s3:::tenancy-prod-use1-01-data-111111111111";
    expect(json(rp.policy)).toEqual({
      Version: "2012-10-17",
      Statement: [
        { Sid: "ReadOwnSecrets", Effect: "Allow", Action: ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], Resource: secrets },
        {
          Sid: "DecryptOwnSecrets", Effect: "Allow", Action: "kms:Decrypt", Resource: cellKey,
          Condition: { StringEquals: { "kms:ViaService": "secretsmanager.us-east-1.amazonaws.com" }, StringLike: { "kms:EncryptionContext:SecretARN": secrets } },
        },
        { Sid: "OwnObjects", Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], Resource: `${bucket}/tenants/startup-alpha/*` },
        {
          Sid: "ListOwnPrefix", Effect: "Allow", Action: "s3:ListBucket", Resource: bucket,
          Condition: { StringLike: { "s3:prefix": ["tenants/startup-alpha/", "tenants/startup-alpha/*"] } },
        },
        {
          Sid: "OwnObjectsEncryption", Effect: "Allow", Action: ["kms:Decrypt", "kms:GenerateDataKey"], Resource: cellKey,
          Condition: {
            StringEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com" },
            StringLike: { "kms:EncryptionContext:aws:s3:arn": `${bucket}/tenants/startup-alpha/*` },
          },
        },
        {
          Sid: "ReadOwnRuntimeConfig", Effect: "Allow", Action: ["ssm:GetParameter", "ssm:GetParameters"],
          Resource: "arn:aws:ssm:us-east-1:111111111111:parameter/tenancy/prod/tenants/startup-alpha/config",
        },
        {
          Sid: "NeverPlatformMasterCredentials", Effect: "Deny", Action: "secretsmanager:*",
          Resource: "arn:aws:secretsmanager:us-east-1:111111111111:secret:tenancy/prod/tenants/startup-alpha/database/master*",
        },
      ],
    });
  });

  it("DNS: <id>.<env domain> in the platform zone, to the cell ingress", () => {
    const r = get("shared-prod-use1-01");
    expect(plain(inTenant(r, "startup-alpha", T.record, "tenant-startup-alpha-dns"))).toEqual({
      zoneId: "Z0EXAMPLE0PARENT", name: "startup-alpha.tenancy.example.com", type: "CNAME", ttl: 60,
      records: ["ingress.shared-prod-use1-01.tenancy.example.com"],
    });
    const staging = plain(inTenant(get("shared-staging-use1-01"), "startup-alpha", T.record, "tenant-startup-alpha-dns"));
    expect([staging.name, staging.records]).toEqual(["startup-alpha.staging.tenancy.example.com", ["ingress.shared-staging-use1-01.tenancy.example.com"]]);
  });
});

describe("suspended tenant (gamma-labs)", () => {
  it("keeps schema and secrets, loses LOGIN, and its name points at the suspension target, in every env", () => {
    for (const [stack, host] of [["shared-prod-use1-02", "gamma-labs.tenancy.example.com"], ["shared-staging-use1-01", "gamma-labs.staging.tenancy.example.com"]] as const) {
      const r = get(stack);
      expect(plain(inTenant(r, "gamma-labs", T.pgRole, "tenant-gamma-labs-db-access")).login).toBe(false);
      expect(plain(inTenant(r, "gamma-labs", T.pgSchema, "tenant-gamma-labs-db-access")).name).toBe("tenant_gamma_labs");
      const dns = plain(inTenant(r, "gamma-labs", T.record, "tenant-gamma-labs-dns"));
      expect([dns.name, dns.records]).toEqual([host, ["suspended.tenancy.example.com"]]);
    }
    // The active neighbour in the same cell keeps LOGIN and its ingress.
    const beta = get("shared-prod-use1-02");
    expect(plain(inTenant(beta, "company-beta", T.pgRole, "tenant-company-beta-db-access")).login).toBe(true);
  });

  it("suspending changes exactly the role's LOGIN, the DNS target and the runtime config's lifecycle (compare two renders)", async () => {
    const resumed = tempFleet((dir) => editYaml(dir, "tenants/gamma-labs.yaml", (d) => { delete d.lifecycle; }));
    const before = await render(resumed, "shared-prod-use1-02");
    const diff = diffRenders(before, get("shared-prod-use1-02"));
    expect(diff.added).toEqual([]);
    expect(diff.removed).toEqual([]);
    expect(diff.changed.map((u) => u.split("::").slice(-2).join("::"))).toEqual([
      "saas-tenancy:components:PooledTenant$aws:route53/record:Record::tenant-gamma-labs-dns",
      "saas-tenancy:components:PooledTenant$saas-tenancy:components:RuntimeConfig$aws:ssm/parameter:Parameter::tenant-gamma-labs-config",
      "saas-tenancy:components:PooledTenant$saas-tenancy:components:TenantDatabaseAccess$postgresql:index/role:Role::tenant-gamma-labs-db-access",
    ]);
  });
});

describe("cell infrastructure: key inputs", () => {
  it("database: encrypted with the cell key, private, SSL forced, prod protections in prod only", () => {
    const prod = get("shared-prod-use1-02");
    const staging = get("shared-staging-use1-01");
    const p = byTypeName(prod, T.rds, "cell-use1-02-db");
    const s = byTypeName(staging, T.rds, "cell-use1-01-db");
    const pick = (x: RenderedResource) => {
      const i = plain(x);
      return {
        identifier: i.identifier, engine: i.engine, engineVersion: i.engineVersion, instanceClass: i.instanceClass,
        allocatedStorage: i.allocatedStorage, storageEncrypted: i.storageEncrypted, publiclyAccessible: i.publiclyAccessible,
        multiAz: i.multiAz, backupRetentionPeriod: i.backupRetentionPeriod, deletionProtection: i.deletionProtection,
        skipFinalSnapshot: i.skipFinalSnapshot, finalSnapshotIdentifier: i.finalSnapshotIdentifier, dbName: i.dbName,
        username: i.username, parameterGroupName: i.parameterGroupName, dbSubnetGroupName: i.dbSubnetGroupName,
        autoMinorVersionUpgrade: i.autoMinorVersionUpgrade, maxAllocatedStorage: i.maxAllocatedStorage,
        enabledCloudwatchLogsExports: i.enabledCloudwatchLogsExports, applyImmediately: i.applyImmediately, protect: x.options.protect,
      };
    };
    expect(pick(p)).toEqual({
      identifier: "tenancy-prod-use1-02", engine: "postgres", engineVersion: "16", instanceClass: "db.r6g.large",
      allocatedStorage: 100, storageEncrypted: true, publiclyAccessible: false, multiAz: true, backupRetentionPeriod: 14,
      deletionProtection: true, skipFinalSnapshot: false, finalSnapshotIdentifier: `tenancy-prod-use1-02-final-${String(byTypeName(prod, "random:index/randomId:RandomId", "cell-use1-02-db-final-snapshot").outputs?.hex)}`, dbName: "cell",
      username: "platform_admin", parameterGroupName: "tenancy-prod-use1-02-postgres16", dbSubnetGroupName: "tenancy-prod-use1-02", autoMinorVersionUpgrade: true, maxAllocatedStorage: 2000,
      enabledCloudwatchLogsExports: ["postgresql"], applyImmediately: false, protect: true,
    });
    expect(pick(s)).toEqual({
      identifier: "tenancy-staging-use1-01", engine: "postgres", engineVersion: "16", instanceClass: "db.t4g.medium",
      allocatedStorage: 100, storageEncrypted: true, publiclyAccessible: false, multiAz: false, backupRetentionPeriod: 7,
      deletionProtection: false, skipFinalSnapshot: true, finalSnapshotIdentifier: undefined, dbName: "cell",
      username: "platform_admin", parameterGroupName: "tenancy-staging-use1-01-postgres16", dbSubnetGroupName: "tenancy-staging-use1-01", autoMinorVersionUpgrade: true, maxAllocatedStorage: 500,
      enabledCloudwatchLogsExports: ["postgresql"], applyImmediately: false, protect: false,
    });
    expect(isSecretValue(p.inputs.password)).toBe(true);
    // Every cell's parameter group has logical replication on (static: pending-reboot); see docs/lifecycle.md.
    for (const [stack, name] of [["shared-prod-use1-02", "cell-use1-02-db"], ["shared-staging-use1-01", "cell-use1-01-db"]] as const) {
      expect(plain(byTypeName(get(stack), "aws:rds/parameterGroup:ParameterGroup", name))).toMatchObject({
        family: "postgres16",
        parameters: [{ name: "rds.force_ssl", value: "1", applyMethod: "immediate" }, { name: "rds.logical_replication", value: "1", applyMethod: "pending-reboot" }],
      });
    }
    // Same key for storage, the master secret and the bucket.
    const key = plain(p).kmsKeyId;
    expect(plain(byTypeName(prod, T.secret, "cell-use1-02-db-master")).kmsKeyId).toBe(key);
    const sse = plain(byTypeName(prod, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "cell-use1-02-bucket"));
    expect(sse.rules).toEqual([{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: key }, bucketKeyEnabled: false }]);
  });

  it("Pulumi protect is set exactly on the prod cell key and the prod database (tenant keys are retained instead)", () => {
    const protectedIn = (r: RenderedStack) => r.resources.filter((x) => x.options.protect).map((x) => `${x.type} ${x.name}`).sort();
    expect(protectedIn(get("shared-prod-use1-01"))).toEqual([`${T.key} cell-use1-01-key`, `${T.rds} cell-use1-01-db`]);
    expect(protectedIn(get("shared-prod-euw1-01"))).toEqual([`${T.key} cell-euw1-01-key`, `${T.rds} cell-euw1-01-db`]);
    expect(protectedIn(get("shared-staging-use1-01"))).toEqual([]);
  });

  it("master credentials: generated, in the global namespace tagged shared, document kept secret", () => {
    const r = get("shared-prod-use1-01");
    const secret = plain(byTypeName(r, T.secret, "cell-use1-01-db-master"));
    expect([secret.name, secret.tags]).toEqual(["tenancy/prod/global/cells/use1-01/database", tags("shared", "prod", "shared-prod-use1-01")]);
    const version = byTypeName(r, T.version, "cell-use1-01-db-master");
    expect(isSecretValue(version.inputs.secretString)).toBe(true);
    const doc = json(plain(version).secretString) as Record<string, unknown>;
    const rds = plain(byTypeName(r, T.rds, "cell-use1-01-db"));
    expect(doc).toEqual({ engine: "postgres", host: plain(byTypeName(r, T.pgProvider, "cell-use1-01-db")).host, port: 5432, dbname: "cell", username: "platform_admin", password: rds.password });
  });

  it("postgresql provider: non-superuser master over required SSL on the cell instance", () => {
    const r = get("shared-prod-use1-01");
    const p = byTypeName(r, T.pgProvider, "cell-use1-01-db");
    expect(isSecretValue(p.inputs.password)).toBe(true);
    const { password, host, ...rest } = plain(p);
    expect(rest).toEqual({ superuser: "false", sslmode: "verify-full", sslrootcert: "/etc/ssl/certs/rds-global-bundle.pem", port: "5432", database: "cell", username: "platform_admin", connectTimeout: "15" });
    expect(host).toMatch(new RegExp(`^${cellDbIdentifier("tenancy", "prod", "use1-01")}\\.`));
    expect(password).toBe(plain(byTypeName(r, T.rds, "cell-use1-01-db")).password);
    // Every postgresql resource of the stack goes through that provider (a reference is `<urn>::<id>`).
    const pg = r.resources.filter((x) => x.type.startsWith("postgresql:"));
    // Hardening (4 grants), then role, schema and CONNECT per tenant.
    expect(pg.length).toBe(4 + 3 * r.tenants.length);
    for (const x of pg) expect(x.options.provider.startsWith(`${p.urn}::`), `${x.type} ${x.name}`).toBe(true);
  });

  it("hardening: PUBLIC loses CONNECT on the database and everything on schema public, and CONNECT and TEMP on postgres and template1; nothing else is granted to PUBLIC", () => {
    for (const name of CELLS) {
      const r = get(name);
      const toPublic = ofType(r, T.pgGrant).filter((g) => plain(g).role === "public").map(plain);
      expect(toPublic).toEqual([
        { database: "cell", role: "public", objectType: "database", privileges: [] },
        { database: "postgres", role: "public", objectType: "database", privileges: [] },
        { database: "template1", role: "public", objectType: "database", privileges: [] },
        { database: "cell", role: "public", objectType: "schema", schema: "public", privileges: [] },
      ]);
    }
  });

  it("network: the configured CIDR, one planned private subnet per AZ, 5432 admitted only from the app group and the region's runner subnets", () => {
    const cell = fleet.cells.get("shared-prod-use1-02")!;
    const r = get(cell.stack);
    expect(plain(byTypeName(r, T.vpc, "cell-use1-02-network-vpc")).cidrBlock).toBe("10.2.0.0/16");
    const plan = planSubnets({ vpcCidr: cell.config.cidr, azs: cell.config.azs });
    expect(ofType(r, T.subnet).map((s) => { const i = plain(s); return { az: i.availabilityZone, cidr: i.cidrBlock, pub: i.mapPublicIpOnLaunch }; }))
      .toEqual(plan.private.map((p) => ({ ...p, pub: false })));
    // The DB group (the instance's) admits 5432 from the app group (the group whose egress goes to
    // the DB group) and from the us-east-1 runner subnets (not the hub /16); no other ingress rule exists in the cell.
    const dbSg = (plain(byTypeName(r, T.rds, "cell-use1-02-db")).vpcSecurityGroupIds as string[])[0];
    const appToDb = plain(byTypeName(r, T.egress, "cell-use1-02-sg-app-to-db"));
    expect(appToDb).toMatchObject({ referencedSecurityGroupId: dbSg, ipProtocol: "tcp", fromPort: 5432, toPort: 5432 });
    const appSg = appToDb.securityGroupId;
    expect(appSg).not.toBe(dbSg);
    const strip = (x: RenderedResource) => { const { tags: _t, description: _d, ...rest } = plain(x); return rest; };
    const byKind = (x: Record<string, unknown>) => ("cidrIpv4" in x ? 1 : 0);
    expect(ofType(r, T.ingress).filter((x) => plain(x).fromPort === 5432).map(strip).sort((a, b) => byKind(a) - byKind(b))).toEqual([
      { securityGroupId: dbSg, referencedSecurityGroupId: appSg, ipProtocol: "tcp", fromPort: 5432, toPort: 5432 },
      { securityGroupId: dbSg, cidrIpv4: "10.0.0.0/20", ipProtocol: "tcp", fromPort: 5432, toPort: 5432 },
      { securityGroupId: dbSg, cidrIpv4: "10.0.16.0/20", ipProtocol: "tcp", fromPort: 5432, toPort: 5432 },
    ]);
    // The only other ingress rules: the endpoints' group admitting 443 from each of the cell's private subnets.
    const endpointsSg = mockId(T.sg, "cell-use1-02-endpoints", cell.stack);
    expect(ofType(r, T.ingress).filter((x) => plain(x).fromPort !== 5432).map(strip)).toEqual(
      plan.private.map((p) => ({ securityGroupId: endpointsSg, cidrIpv4: p.cidr, ipProtocol: "tcp", fromPort: 443, toPort: 443 })),
    );
  });

  it("spoke: attached to its region's Transit Gateway, associated with `spokes`, propagated into `hub`, the hub CIDR routed from every private table", () => {
    for (const name of CELLS) {
      const cell = fleet.cells.get(name)!;
      const r = get(name);
      const n = `cell-${cell.id}-spoke`;
      const code = cell.region === "us-east-1" ? "use1" : "euw1";
      // The ids the platform stack's resources get (the offline StackReference answers with them).
      const tgw = mockId("aws:ec2transitgateway/transitGateway:TransitGateway", `transit-${code}`, platformStackName(cell.region));
      const hubTable = mockId("aws:ec2transitgateway/routeTable:RouteTable", `transit-${code}-hub`, platformStackName(cell.region));
      const spokesTable = mockId("aws:ec2transitgateway/routeTable:RouteTable", `transit-${code}-spokes`, platformStackName(cell.region));
      const attachment = byTypeName(r, "aws:ec2transitgateway/vpcAttachment:VpcAttachment", n);
      expect(plain(attachment)).toEqual({
        transitGatewayId: tgw,
        vpcId: mockId(T.vpc, `cell-${cell.id}-network-vpc`, name),
        subnetIds: cell.config.azs.map((az) => mockId(T.subnet, `cell-${cell.id}-network-private-${az}`, name)),
        transitGatewayDefaultRouteTableAssociation: false,
        transitGatewayDefaultRouteTablePropagation: false,
        dnsSupport: "enable",
        securityGroupReferencingSupport: "disable",
        tags: tags("shared", cell.env, name),
      });
      const attachmentId = mockId("aws:ec2transitgateway/vpcAttachment:VpcAttachment", n, name);
      expect(plain(byTypeName(r, "aws:ec2transitgateway/routeTableAssociation:RouteTableAssociation", n))).toEqual({ transitGatewayAttachmentId: attachmentId, transitGatewayRouteTableId: spokesTable });
      expect(plain(byTypeName(r, "aws:ec2transitgateway/routeTablePropagation:RouteTablePropagation", n))).toEqual({ transitGatewayAttachmentId: attachmentId, transitGatewayRouteTableId: hubTable });
      const hubCidr = fleet.platform.hubs[cell.region]!.cidr;
      expect(ofType(r, T.route).map(plain)).toEqual(
        cell.config.azs.map((az) => ({ routeTableId: mockId(T.routeTable, `cell-${cell.id}-network-private-${az}`, name), destinationCidrBlock: hubCidr, transitGatewayId: tgw })),
      );
    }
  });

  it("bucket: named for the cell and account, versioned, public access blocked, TLS only", () => {
    const r = get("shared-prod-use1-01");
    const n = "cell-use1-01-bucket";
    expect(plain(byTypeName(r, "aws:s3/bucket:Bucket", n)).bucket).toBe("tenancy-prod-use1-01-data-111111111111");
    expect(plain(byTypeName(r, "aws:s3/bucketVersioning:BucketVersioning", n)).versioningConfiguration).toEqual({ status: "Enabled" });
    expect(plain(byTypeName(r, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", n))).toEqual({
      bucket: "tenancy-prod-use1-01-data-111111111111", blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true,
    });
    const policy = json(plain(byTypeName(r, "aws:s3/bucketPolicy:BucketPolicy", n)).policy) as { Statement: { Effect: string; Condition: unknown }[] };
    expect(policy.Statement.map((s) => [s.Effect, s.Condition])).toEqual([["Deny", { Bool: { "aws:SecureTransport": "false" } }]]);
  });
});

describe("conventions on every cell", () => {
  it("every taggable AWS resource carries exactly tenant/env/stack/managed-by, tenant = owner", () => {
    let checked = 0;
    for (const name of CELLS) {
      const r = get(name);
      const cell = fleet.cells.get(name)!;
      const owner = new Map<string, string>();
      for (const x of subtree(r, byTypeName(r, T.cell, `cell-${cell.id}`).urn)) owner.set(x.urn, "shared");
      for (const x of subtree(r, byTypeName(r, C("RoutingShare"), "routing").urn)) owner.set(x.urn, "shared");
      // The alarm topic and the database's alarm are the cell's; each other alarm is its tenant's (storage-alarms-<tenant>-object-storage).
      for (const x of subtree(r, byTypeName(r, C("StorageAlarms"), "storage-alarms").urn)) {
        owner.set(x.urn, /^storage-alarms-(.+)-object-storage$/.exec(x.name)?.[1] ?? "shared");
      }
      for (const id of r.tenants) for (const x of subtree(r, tenantNode(r, id).urn)) owner.set(x.urn, id);
      for (const x of r.resources.filter((x) => x.type.startsWith("aws:"))) {
        if (isTaggable(x.type)) {
          expect(x.inputs.tags, `${x.type} ${x.name}`).toEqual(tags(owner.get(x.urn)!, cell.env, name));
          checked++;
        } else {
          expect(x.inputs.tags, `${x.type} ${x.name}`).toBeUndefined();
        }
      }
    }
    // Cell with k AZs in a region whose hub has 2: vpc, default SG, k subnets, k route tables,
    // 2 groups, 4 rules (app, app-to-db, one per runner subnet), TGW attachment, key, bucket,
    // subnet group, parameter group, instance, master secret = 15 + 2k. Tenant: connection secret,
    // role, runtime config parameter, its declared secrets, its key if enterprise.
    // 19+2+3 + 21+4+2 + 19+4+2 + 19+2+3 = 100, plus one parameter per tenant and one routing
    // page per cell = 112. Endpoints, per cell: a group, k rules, 5 interface and the S3 gateway
    // endpoint, 2 app egress rules = 9 + k: 11 + 12 + 11 + 11 = 45, so 157. Flow logs, per cell: log
    // group, delivery role, flow log = 3, so 169. Storage alarms, per cell: the topic, its database's
    // alarm and an alarm per tenant served (2 in each cell) = 4, so 185.
    expect(checked).toBe(185);
    expect(isTaggable("aws:kms/alias:Alias")).toBe(false);
    expect(isTaggable("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")).toBe(true);
  });

  it("names: secrets in the owner's namespace, tenant roles and aliases by convention, no name mentions a non-resident", () => {
    for (const name of CELLS) {
      const r = get(name);
      const cell = fleet.cells.get(name)!;
      const env = cell.env;
      for (const id of r.tenants) {
        const under = subtree(r, tenantNode(r, id).urn);
        for (const s of under.filter((x) => x.type === T.secret)) expect(plain(s).name).toMatch(new RegExp(`^tenancy/${env}/tenants/${id}/`));
        for (const s of under.filter((x) => x.type === T.role)) expect(plain(s).name).toBe(`tenancy-${env}-t-${id}`);
        for (const s of under.filter((x) => x.type === T.alias)) expect(plain(s).name).toBe(`alias/tenancy/${env}/tenants/${id}`);
        for (const s of under.filter((x) => x.type.startsWith("postgresql:index/role") || x.type.startsWith("postgresql:index/schema"))) {
          expect(plain(s).name).toBe(`tenant_${id.replace(/-/g, "_")}`);
        }
        const text = JSON.stringify(under.map(plain));
        for (const other of fleet.tenants.keys()) if (other !== id) expect(text.includes(other), `${id} mentions ${other}`).toBe(false);
      }
      expect(plain(byTypeName(r, T.alias, `cell-${cell.id}-key`)).name).toBe(`alias/tenancy/${env}/cells/${cell.id}`);
    }
  });
});

describe("outputs", () => {
  it("cell facts and the routing map; no secret value in them", () => {
    const r = get("shared-prod-use1-01");
    const vpcId = r.outputs.cell && (r.outputs.cell as { vpcId: string }).vpcId;
    expect(vpcId).toMatch(/^vpc-0[0-9a-f]{16}$/);
    expect(r.outputs).toEqual({
      kind: "shared",
      cell: {
        id: "use1-01", env: "prod", region: "us-east-1", vpcId,
        dbEndpoint: expect.stringMatching(/^tenancy-prod-use1-01\.[a-z0-9]+\.us-east-1\.rds\.amazonaws\.com:5432$/),
        tenants: ["freebie-one", "startup-alpha"], tenantsPlaced: 2, capacity: 50,
      },
      routes: {
        "freebie-one": { url: "https://freebie-one.tenancy.example.com", stack: "shared-prod-use1-01", databaseSecretName: "tenancy/prod/tenants/freebie-one/database" },
        "startup-alpha": { url: "https://startup-alpha.tenancy.example.com", stack: "shared-prod-use1-01", databaseSecretName: "tenancy/prod/tenants/startup-alpha/database" },
      },
    });
    expect((get("shared-staging-use1-01").outputs.cell as { capacity: number }).capacity).toBe(20);
  });

  it("no output of any cell holds a secret or a generated password", () => {
    for (const name of CELLS) {
      const r = get(name);
      const passwords = new Set(ofType(r, T.pgRole).map((x) => plain(x).password as string));
      passwords.add(plain(byTypeName(r, T.pgProvider, `cell-${fleet.cells.get(name)!.id}-db`)).password as string);
      expect(passwords.size).toBe(r.tenants.length + 1);
      walk(r.outputs, (v, secret) => {
        expect(secret).toBe(false);
        if (typeof v === "string") for (const p of passwords) expect(v.includes(p)).toBe(false);
      });
    }
  });
});

describe("several stacks in one process", () => {
  it("rendering another cell in between leaves a cell's render identical, and nothing leaks between cells", async () => {
    const again = await render(fleet, "shared-prod-use1-01");
    expect(again).toEqual(get("shared-prod-use1-01"));
    const a = get("shared-prod-use1-01");
    const b = get("shared-prod-use1-02");
    expect(a.resources.every((x) => x.urn.startsWith("urn:pulumi:shared-prod-use1-01::"))).toBe(true);
    expect(b.resources.every((x) => x.urn.startsWith("urn:pulumi:shared-prod-use1-02::"))).toBe(true);
    const tenantTags = (r: RenderedStack) => new Set(r.resources.map((x) => (x.inputs.tags as { tenant?: string } | undefined)?.tenant).filter(Boolean));
    expect(tenantTags(a)).toEqual(new Set(["shared", "freebie-one", "startup-alpha"]));
    expect(tenantTags(b)).toEqual(new Set(["shared", "company-beta", "gamma-labs"]));
  });
});

describe("onboarding tenant N+1", () => {
  it("adds exactly the new tenant's resources and leaves every other resource's inputs unchanged", async () => {
    const grown = tempFleet((dir) =>
      writeYaml(dir, "tenants/newco.yaml", {
        id: "newco", displayName: "NewCo", tier: "standard", region: "us-east-1",
        secrets: ["github_token"], environments: { prod: { teams: { ops: { secrets: ["pager_key"] } } } }, placement: { prod: "use1-01" },
      }),
    );
    expect(cellResidents(grown, grown.cells.get("shared-prod-use1-01")!).map((t) => t.id)).toEqual(["freebie-one", "newco", "startup-alpha"]);
    const after = await render(grown, "shared-prod-use1-01");
    const diff = diffRenders(get("shared-prod-use1-01"), after);
    expect(diff.removed).toEqual([]);
    // The cell's routing page lists it: the only other change.
    expect(diff.changed).toEqual([byTypeName(after, T.parameter, "routing-00").urn]);
    expect(JSON.parse(String(plain(byTypeName(after, T.parameter, "routing-00")).insecureValue)).routes).toEqual({
      "freebie-one": "ingress.shared-prod-use1-01.tenancy.example.com", newco: "ingress.shared-prod-use1-01.tenancy.example.com", "startup-alpha": "ingress.shared-prod-use1-01.tenancy.example.com",
    });
    const newTenant = subtree(after, tenantNode(after, "newco").urn);
    // Its subtree and its storage alarm (under the cell's StorageAlarms, beside the others').
    const alarm = byTypeName(after, "aws:cloudwatch/metricAlarm:MetricAlarm", "storage-alarms-newco-object-storage");
    expect(diff.added).toEqual([...newTenant.map((x) => x.urn), alarm.urn].sort());
    expect(plain(alarm)).toMatchObject({ name: "tenancy/prod/tenants/newco/object-storage/shared-prod-use1-01", dimensions: { Env: "prod", Tenant: "newco" }, threshold: 25 * 1024 ** 3 });
    expect(shape(newTenant)).toEqual(pooledShape("newco", ["github_token", "teams/ops/pager_key"], false));
  });
});

describe("a tenant migrating from the cell to its dedicated stack", () => {
  function migratingFleet(phase: "copying" | "cutover") {
    return upgradingStartupAlpha(phase);
  }

  it("is served from the cell exactly as before, its identity marked retainOnDelete, until cutover", async () => {
    const f = migratingFleet("copying");
    const r = await render(f, "shared-prod-use1-01");
    const n = "tenant-startup-alpha";
    const tenantSubtree = subtree(r, tenantNode(r, "startup-alpha").urn);
    expect(shape(tenantSubtree)).toEqual(pooledShape("startup-alpha", ["stripe_api_key"], false));
    // Same inputs as when it was pooled (limits of its former tier included): only the retain flags differ.
    const pooled = subtree(get("shared-prod-use1-01"), tenantNode(get("shared-prod-use1-01"), "startup-alpha").urn);
    expect(tenantSubtree.map(plain)).toEqual(pooled.map(plain));
    const identity = [T.role, T.rolePolicy, T.secret, T.version, T.parameter];
    expect(tenantSubtree.filter((x) => x.custom && x.options.retainOnDelete).map((x) => x.type).sort()).toEqual(
      tenantSubtree.filter((x) => identity.includes(x.type as never)).map((x) => x.type).sort(),
    );
    expect(plain(inTenant(r, "startup-alpha", T.pgRole, `${n}-db-access`)).login).toBe(true);
    expect(plain(inTenant(r, "startup-alpha", T.secret, `${n}-database`)).name).toBe("tenancy/prod/tenants/startup-alpha/database");
    expect(plain(inTenant(r, "startup-alpha", T.record, `${n}-dns`)).records).toEqual(["ingress.shared-prod-use1-01.tenancy.example.com"]);
    expect((r.outputs.routes as Record<string, unknown>)["startup-alpha"]).toEqual({
      url: "https://startup-alpha.tenancy.example.com", stack: "shared-prod-use1-01", databaseSecretName: "tenancy/prod/tenants/startup-alpha/database",
    });

    // The cell and the dedicated stack never claim the same account-wide name.
    const d = await render(f, "dedicated-startup-alpha-prod");
    const names = (x: RenderedStack) =>
      x.resources.filter((y) => [T.secret, T.role, T.alias, "aws:s3/bucket:Bucket"].includes(y.type as never)).map((y) => String(plain(y).name ?? plain(y).bucket));
    const cellNames = names(r);
    expect(cellNames.length).toBeGreaterThan(3);
    expect(names(d).filter((x) => cellNames.includes(x))).toEqual([]);
  });

  it("from cutover the cell keeps only the schema, the role without LOGIN and the pooled name, pointing at the dedicated zone", async () => {
    const r = await render(migratingFleet("cutover"), "shared-prod-use1-01");
    const n = "tenant-startup-alpha";
    expect(shape(subtree(r, tenantNode(r, "startup-alpha").urn))).toEqual([
      `${T.pooled} ${n}`, `${T.access} ${n}-db-access`, `${T.password} ${n}-db-access`, `${T.pgRole} ${n}-db-access`,
      `${T.pgSchema} ${n}-db-access`, `${T.pgGrant} ${n}-db-access-connect`, `${T.record} ${n}-dns`,
    ].sort());
    expect(plain(inTenant(r, "startup-alpha", T.pgRole, "tenant-startup-alpha-db-access")).login).toBe(false);
    // Re-pointed with the same fixed low TTL as ever (docs/lifecycle.md, "DNS and the TTL"): never lowered ahead, never raised after.
    expect(plain(inTenant(r, "startup-alpha", T.record, "tenant-startup-alpha-dns"))).toEqual({
      zoneId: "Z0EXAMPLE0PARENT", name: "startup-alpha.tenancy.example.com", type: "CNAME", ttl: 60, records: ["startup-alpha.dedicated.tenancy.example.com"],
    });
    expect((r.outputs.routes as Record<string, unknown>)["startup-alpha"]).toEqual({
      url: "https://startup-alpha.dedicated.tenancy.example.com", stack: "dedicated-startup-alpha-prod", databaseSecretName: "tenancy/prod/tenants/startup-alpha/database",
    });
  });
});
