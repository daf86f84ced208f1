/**
 * Dedicated tenant stacks (docs/stacks.md), rendered offline under Pulumi's mock runtime. Exact resource
 * sets for prod and staging, peering and egress on and off, prod protections exactly where
 * intended, names and tags, a sizing change touching only the instance.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { Fleet } from "../../infra/model/fleet.ts";
import { platformStackName, tags } from "../../infra/model/naming.ts";
import { planSubnets } from "../../infra/model/subnets.ts";
import { mockId } from "../../plan/render/mockOutputs.ts";
import { isSecretValue, type RenderedResource, type RenderedStack } from "../../plan/types.ts";
import { byTypeName, C, diffRenders, editYaml, exampleFleet, isTaggable, json, ofType, plain, render, shape, spokeEndpointsShape, subtree, T, tempFleet, walk } from "./support.ts";

interface ShapeOpts {
  azs: string[];
  /** AZs of the region's hub: one runner rule on the database group each. Default us-east-1's. */
  hubAzs?: string[];
  egress?: { natAzs: string[] };
  peering?: boolean;
  secrets: string[];
  ingress?: boolean;
  /** Prod: the final snapshot's random suffix. */
  prod?: boolean;
}

const TGW = {
  attachment: "aws:ec2transitgateway/vpcAttachment:VpcAttachment",
  association: "aws:ec2transitgateway/routeTableAssociation:RouteTableAssociation",
  propagation: "aws:ec2transitgateway/routeTablePropagation:RouteTablePropagation",
  gateway: "aws:ec2transitgateway/transitGateway:TransitGateway",
  table: "aws:ec2transitgateway/routeTable:RouteTable",
} as const;

/** The exact resources of a dedicated stack (below the stack resource). */
function dedicatedShape(id: string, o: ShapeOpts): string[] {
  const n = `tenant-${id}`;
  return [
    "pulumi:providers:aws aws",
    `${C("DedicatedTenant")} ${n}`,
    `${C("TenantRole")} ${n}-role`, `${T.role} ${n}-role`,
    `${C("EncryptionKey")} ${n}-key`, `${T.key} ${n}-key`, `${T.alias} ${n}-key`,
    `${C("Network")} ${n}-network`, `${T.vpc} ${n}-network-vpc`, `aws:ec2/defaultSecurityGroup:DefaultSecurityGroup ${n}-network-default-sg`,
    ...o.azs.flatMap((az) => [`${T.subnet} ${n}-network-private-${az}`, `${T.routeTable} ${n}-network-private-${az}`, `${T.rta} ${n}-network-private-${az}`]),
    `${C("VpcFlowLogs")} ${n}-flow-logs`, `${T.logGroup} ${n}-flow-logs`, `${T.role} ${n}-flow-logs`, `${T.rolePolicy} ${n}-flow-logs`, `${T.flowLog} ${n}-flow-logs`,
    ...(o.egress
      ? [
          `${C("Egress")} ${n}-egress`, `${T.igw} ${n}-egress-igw`, `${T.routeTable} ${n}-egress-public`, `${T.route} ${n}-egress-public`,
          ...o.azs.flatMap((az) => [`${T.subnet} ${n}-egress-public-${az}`, `${T.rta} ${n}-egress-public-${az}`, `${T.route} ${n}-egress-private-${az}`]),
          ...o.egress.natAzs.flatMap((az) => [`${T.eip} ${n}-egress-nat-${az}`, `${T.nat} ${n}-egress-nat-${az}`]),
          `${T.egress} ${n}-sg-app-https-out`,
        ]
      : []),
    `${C("SpokeAttachment")} ${n}-spoke`, `${TGW.attachment} ${n}-spoke`, `${TGW.association} ${n}-spoke`, `${TGW.propagation} ${n}-spoke`,
    ...o.azs.map((az) => `${T.route} ${n}-spoke-${az}`),
    ...(o.hubAzs ?? ["us-east-1a", "us-east-1b"]).map((az) => `${T.ingress} ${n}-sg-db-from-runner-${az}`),
    ...(o.peering
      ? [`${C("CustomerPeering")} ${n}-peering`, `${T.pcx} ${n}-peering`, ...o.azs.map((az) => `${T.route} ${n}-peering-${az}`), `${T.ingress} ${n}-peering`]
      : []),
    ...spokeEndpointsShape(n, o.azs),
    `${C("DatabaseSecurityGroups")} ${n}-sg`, `${T.sg} ${n}-sg-app`, `${T.sg} ${n}-sg-db`, `${T.ingress} ${n}-sg-db-from-app`, `${T.egress} ${n}-sg-app-to-db`,
    `${C("EncryptedBucket")} ${n}-bucket`, `aws:s3/bucket:Bucket ${n}-bucket`, `aws:s3/bucketVersioning:BucketVersioning ${n}-bucket`,
    `aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration ${n}-bucket`,
    `aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock ${n}-bucket`, `aws:s3/bucketPolicy:BucketPolicy ${n}-bucket`,
    `aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration ${n}-bucket`, `aws:s3/bucketLogging:BucketLogging ${n}-bucket`,
    `${C("PostgresInstance")} ${n}-db`, `${T.password} ${n}-db-master`, `${T.secret} ${n}-db-master`, `${T.version} ${n}-db-master`,
    `aws:rds/subnetGroup:SubnetGroup ${n}-db`, `aws:rds/parameterGroup:ParameterGroup ${n}-db`, `${T.rds} ${n}-db`, `${T.pgProvider} ${n}-db`,
    ...(o.prod ? [`random:index/randomId:RandomId ${n}-db-final-snapshot`] : []),
    `${C("DatabaseHardening")} ${n}-db-hardening`, `${T.pgGrant} ${n}-db-hardening-public-connect`, `${T.pgGrant} ${n}-db-hardening-public-schema`,
    `${T.pgGrant} ${n}-db-hardening-public-connect-postgres`, `${T.pgGrant} ${n}-db-hardening-public-connect-template1`,
    `${C("TenantDatabaseAccess")} ${n}-db-access`, `${T.password} ${n}-db-access`, `${T.pgRole} ${n}-db-access`, `${T.pgSchema} ${n}-db-access`, `${T.pgGrant} ${n}-db-access-connect`,
    `${C("ConnectionSecret")} ${n}-database`, `${T.secret} ${n}-database`, `${T.version} ${n}-database`,
    `${C("TenantSecrets")} ${n}-secrets`, ...o.secrets.map((s) => `${T.secret} ${n}-secrets/${s}`),
    `${C("TenantRolePolicy")} ${n}-access`, `${T.rolePolicy} ${n}-access`,
    `${C("RuntimeConfig")} ${n}-config`, `${T.parameter} ${n}-config`,
    `${C("DedicatedDns")} ${n}-dns`, `${T.zone} ${n}-dns-public`, `${T.record} ${n}-dns-delegation`, `${T.zone} ${n}-dns-private`, `aws:route53/zoneAssociation:ZoneAssociation ${n}-dns-private-hub`, `${T.record} ${n}-dns-db`,
    ...(o.ingress ? [`${T.record} ${n}-dns-ingress`] : []),
    // Its share of the routing document (a top-level component beside the tenant's).
    `${C("RoutingShare")} routing`, `${T.parameter} routing-00`,
    // Its storage alarms and their topic (infra/model/storageAlarms.ts), top-level too.
    `${C("StorageAlarms")} storage-alarms`, `aws:sns/topic:Topic storage-alarms-topic`,
    `aws:cloudwatch/metricAlarm:MetricAlarm storage-alarms-${id}-bucket-size`, `aws:cloudwatch/metricAlarm:MetricAlarm storage-alarms-${id}-db-free-storage`,
  ].sort();
}

function below(r: RenderedStack): RenderedResource[] {
  return r.resources.filter((x) => x.type !== "pulumi:pulumi:Stack");
}

const fleet: Fleet = exampleFleet();
const STACKS = ["dedicated-acme-prod", "dedicated-delta-health-prod", "dedicated-megacorp-prod", "dedicated-megacorp-staging"] as const;
const rendered = new Map<string, RenderedStack>();
const get = (name: string) => rendered.get(name)!;
const stripRule = (x: RenderedResource) => { const { tags: _t, description: _d, ...rest } = plain(x); return rest; };

beforeAll(async () => {
  for (const name of STACKS) rendered.set(name, await render(fleet, name));
});

describe("dedicated stacks: exact resource sets", () => {
  it("acme prod: 3 AZs, no egress, no peering, its declared and team secrets", () => {
    expect(shape(below(get("dedicated-acme-prod")))).toEqual(dedicatedShape("acme", {
      azs: ["us-east-1a", "us-east-1b", "us-east-1c"], prod: true,
      secrets: ["openai_api_key", "slack_bot_token", "teams/sales/webhook_secret", "teams/support/webhook_secret"],
    }));
  });

  it("delta-health prod (enterprise on dedicated, eu-west-1): 3 AZs in its region", () => {
    expect(shape(below(get("dedicated-delta-health-prod")))).toEqual(dedicatedShape("delta-health", {
      azs: ["eu-west-1a", "eu-west-1b", "eu-west-1c"], hubAzs: ["eu-west-1a", "eu-west-1b"], secrets: [], prod: true,
    }));
  });

  it("megacorp prod: egress with a NAT per AZ, peering with a route per AZ", () => {
    const azs = ["us-east-1a", "us-east-1b", "us-east-1c"];
    expect(shape(below(get("dedicated-megacorp-prod")))).toEqual(dedicatedShape("megacorp", {
      azs, egress: { natAzs: azs }, peering: true, prod: true, secrets: ["okta_client_secret", "teams/analytics/warehouse_password"],
    }));
  });

  it("megacorp staging: 2 AZs, one NAT, peering; no team secrets in staging", () => {
    expect(shape(below(get("dedicated-megacorp-staging")))).toEqual(dedicatedShape("megacorp", {
      azs: ["us-east-1a", "us-east-1b"], egress: { natAzs: ["us-east-1a"] }, peering: true, secrets: ["okta_client_secret"],
    }));
  });
});

/** The random suffix of a prod instance's final snapshot, as the (mock) provider computed it. */
function finalHex(r: RenderedStack, id: string): string {
  const hex = byTypeName(r, "random:index/randomId:RandomId", `tenant-${id}-db-final-snapshot`).outputs?.hex;
  expect(hex).toMatch(/^[0-9a-f]{8}$/);
  return String(hex);
}

describe("prod protections exactly where intended", () => {
  it("prod: Pulumi protect on the tenant key and the instance only; deletion protection and a named final snapshot", () => {
    for (const name of ["dedicated-acme-prod", "dedicated-delta-health-prod", "dedicated-megacorp-prod"]) {
      const r = get(name);
      const id = name.replace(/^dedicated-/, "").replace(/-prod$/, "");
      expect(r.resources.filter((x) => x.options.protect).map((x) => `${x.type} ${x.name}`).sort()).toEqual([`${T.key} tenant-${id}-key`, `${T.rds} tenant-${id}-db`]);
      const db = plain(byTypeName(r, T.rds, `tenant-${id}-db`));
      expect([db.deletionProtection, db.skipFinalSnapshot, db.finalSnapshotIdentifier]).toEqual([true, false, `tenancy-prod-${id}-final-${finalHex(r, id)}`]);
      // The suffix is drawn per instance: a new identifier draws a new one (keepers).
      expect(plain(byTypeName(r, "random:index/randomId:RandomId", `tenant-${id}-db-final-snapshot`))).toEqual({ byteLength: 4, keepers: { identifier: `tenancy-prod-${id}` } });
    }
  });

  it("staging: nothing protected, no deletion protection, no final snapshot", () => {
    const r = get("dedicated-megacorp-staging");
    expect(r.resources.filter((x) => x.options.protect)).toEqual([]);
    const db = plain(byTypeName(r, T.rds, "tenant-megacorp-db"));
    expect([db.deletionProtection, db.skipFinalSnapshot, db.finalSnapshotIdentifier]).toEqual([false, true, undefined]);
  });
});

describe("keys outlive their stack", () => {
  it("every KMS key is retained on delete, in prod and staging: kept snapshots and dumps need it", () => {
    for (const name of STACKS) {
      const keys = get(name).resources.filter((x) => x.type === T.key);
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.map((k) => [k.name, k.options.retainOnDelete])).toEqual(keys.map((k) => [k.name, true]));
      // Nothing else is retained: a retained resource is one more thing left behind by a destroy.
      expect(get(name).resources.filter((x) => x.options.retainOnDelete && x.type !== T.key)).toEqual([]);
    }
  });
});

describe("database", () => {
  const pick = (r: RenderedStack, id: string) => {
    const i = plain(byTypeName(r, T.rds, `tenant-${id}-db`));
    return {
      identifier: i.identifier, instanceClass: i.instanceClass, allocatedStorage: i.allocatedStorage, multiAz: i.multiAz,
      backupRetentionPeriod: i.backupRetentionPeriod, engineVersion: i.engineVersion, dbName: i.dbName, publiclyAccessible: i.publiclyAccessible,
      storageEncrypted: i.storageEncrypted, performanceInsightsEnabled: i.performanceInsightsEnabled,
    };
  };
  const common = { engineVersion: "16", dbName: "app", publiclyAccessible: false, storageEncrypted: true, performanceInsightsEnabled: true };

  it("sizing: tier defaults per env, tenant overrides win", () => {
    expect(pick(get("dedicated-acme-prod"), "acme")).toEqual({
      identifier: "tenancy-prod-acme", instanceClass: "db.r6g.large", allocatedStorage: 200, multiAz: true, backupRetentionPeriod: 14, ...common,
    });
    expect(pick(get("dedicated-megacorp-prod"), "megacorp")).toEqual({
      identifier: "tenancy-prod-megacorp", instanceClass: "db.r6g.xlarge", allocatedStorage: 500, multiAz: true, backupRetentionPeriod: 14, ...common,
    });
    expect(pick(get("dedicated-megacorp-staging"), "megacorp")).toEqual({
      identifier: "tenancy-staging-megacorp", instanceClass: "db.t4g.medium", allocatedStorage: 50, multiAz: false, backupRetentionPeriod: 7, ...common,
    });
  });

  it("the tenant key encrypts storage, Performance Insights, the master secret, the app secrets, the bucket and the flow logs", () => {
    const r = get("dedicated-acme-prod");
    const db = plain(byTypeName(r, T.rds, "tenant-acme-db"));
    const key = db.kmsKeyId as string;
    // The alias's target is the tenant key: the instance's key is that key's ARN.
    const keyId = plain(byTypeName(r, T.alias, "tenant-acme-key")).targetKeyId as string;
    expect(key).toBe(`arn:aws:kms:us-east-1:111111111111:key/${keyId}`);
    expect(db.performanceInsightsKmsKeyId).toBe(key);
    for (const s of ofType(r, T.secret)) expect(plain(s).kmsKeyId, s.name).toBe(key);
    expect(plain(byTypeName(r, T.logGroup, "tenant-acme-flow-logs")).kmsKeyId).toBe(key);
    const sse = plain(byTypeName(r, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "tenant-acme-bucket"));
    expect(sse.rules).toEqual([{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: key }, bucketKeyEnabled: true }]);
    expect(plain(byTypeName(r, T.secret, "tenant-acme-db-master")).name).toBe("tenancy/prod/tenants/acme/database/master");
    expect(plain(byTypeName(r, "aws:rds/parameterGroup:ParameterGroup", "tenant-acme-db")).parameters).toEqual([{ name: "rds.force_ssl", value: "1", applyMethod: "immediate" }]);
  });

  it("tenant role, schema and grants inside the dedicated database, hardened as in cells, via its own provider", () => {
    for (const [name, id, limit, timeout] of [["dedicated-acme-prod", "acme", 200, 60_000], ["dedicated-delta-health-prod", "delta-health", 50, 30_000]] as const) {
      const r = get(name);
      const ident = `tenant_${id.replace(/-/g, "_")}`;
      const { password, ...role } = plain(byTypeName(r, T.pgRole, `tenant-${id}-db-access`));
      expect(typeof password).toBe("string");
      expect(role).toEqual({
        name: ident, login: true, connectionLimit: limit, statementTimeout: timeout, searchPaths: [ident],
        superuser: false, createDatabase: false, createRole: false, bypassRowLevelSecurity: false, replication: false,
      });
      // A destroy of the stack drops the schema with its tables (RESTRICT would stop the destroy).
      expect(plain(byTypeName(r, T.pgSchema, `tenant-${id}-db-access`))).toEqual({ name: ident, owner: ident, database: "app", dropCascade: true });
      expect(ofType(r, T.pgGrant).map(plain)).toEqual([
        { database: "app", role: "public", objectType: "database", privileges: [] },
        // The instance's other databases: PUBLIC loses CONNECT and TEMP there too.
        { database: "postgres", role: "public", objectType: "database", privileges: [] },
        { database: "template1", role: "public", objectType: "database", privileges: [] },
        { database: "app", role: "public", objectType: "schema", schema: "public", privileges: [] },
        { database: "app", role: ident, objectType: "database", privileges: ["CONNECT"] },
      ]);
      const provider = byTypeName(r, T.pgProvider, `tenant-${id}-db`);
      expect(plain(provider)).toMatchObject({ superuser: "false", sslmode: "verify-full", sslrootcert: "/etc/ssl/certs/rds-global-bundle.pem", database: "app", username: "platform_admin" });
      for (const x of r.resources.filter((y) => y.type.startsWith("postgresql:"))) expect(x.options.provider.startsWith(`${provider.urn}::`)).toBe(true);
      const doc = json(plain(byTypeName(r, T.version, `tenant-${id}-database`)).secretString);
      expect(isSecretValue(byTypeName(r, T.version, `tenant-${id}-database`).inputs.secretString)).toBe(true);
      expect(doc).toEqual({
        host: plain(provider).host, port: 5432, database: "app", user: ident, password, schema: ident,
        sslmode: "verify-full", sslrootcertUrl: "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem",
      });
    }
  });

  it("a change of tier sizing changes only the DB instance", async () => {
    const resized = tempFleet((dir) =>
      editYaml(dir, "tenants/acme.yaml", (d) => {
        (d.dedicated as { prod: Record<string, unknown> }).prod.database = { instanceClass: "db.r6g.2xlarge", allocatedStorageGb: 400, backupRetentionDays: 21 };
      }),
    );
    const after = await render(resized, "dedicated-acme-prod");
    const diff = diffRenders(get("dedicated-acme-prod"), after);
    expect([diff.added, diff.removed]).toEqual([[], []]);
    // The instance, and the free-storage alarm whose threshold is 10% of the allocated storage
    // (infra/model/storageAlarms.ts): updated in place, same name.
    const alarm = byTypeName(after, "aws:cloudwatch/metricAlarm:MetricAlarm", "storage-alarms-acme-db-free-storage");
    expect(diff.changed).toEqual([byTypeName(after, T.rds, "tenant-acme-db").urn, alarm.urn].sort());
    expect(plain(byTypeName(after, T.rds, "tenant-acme-db"))).toMatchObject({ instanceClass: "db.r6g.2xlarge", allocatedStorage: 400, backupRetentionPeriod: 21 });
    const before = plain(byTypeName(get("dedicated-acme-prod"), "aws:cloudwatch/metricAlarm:MetricAlarm", "storage-alarms-acme-db-free-storage"));
    expect([before.threshold, plain(alarm).threshold]).toEqual([Math.round(20 * 1024 ** 3), Math.round(40 * 1024 ** 3)]);
    expect(plain(alarm).name).toBe(before.name);
  });
});

describe("network", () => {
  it("private subnets from the planner on the tenant CIDR; flow logs of all traffic to the tenant's log group", () => {
    const r = get("dedicated-acme-prod");
    expect(plain(byTypeName(r, T.vpc, "tenant-acme-network-vpc"))).toMatchObject({ cidrBlock: "10.66.0.0/16", enableDnsSupport: true, enableDnsHostnames: true });
    const plan = planSubnets({ vpcCidr: "10.66.0.0/16", azs: ["us-east-1a", "us-east-1b", "us-east-1c"] });
    expect(ofType(r, T.subnet).map((s) => ({ az: plain(s).availabilityZone, cidr: plain(s).cidrBlock }))).toEqual(plan.private);
    const vpcId = mockId(T.vpc, "tenant-acme-network-vpc", "dedicated-acme-prod");
    expect(plain(byTypeName(r, T.flowLog, "tenant-acme-flow-logs"))).toMatchObject({
      vpcId, trafficType: "ALL", logDestinationType: "cloud-watch-logs",
      logDestination: "arn:aws:logs:us-east-1:111111111111:log-group:/tenancy/prod/tenants/acme/vpc-flow-logs",
      iamRoleArn: "arn:aws:iam::111111111111:role/tenancy-prod-flowlogs-acme",
    });
    expect(plain(byTypeName(r, T.logGroup, "tenant-acme-flow-logs"))).toMatchObject({ name: "/tenancy/prod/tenants/acme/vpc-flow-logs", retentionInDays: 365 });
    const role = plain(byTypeName(r, T.role, "tenant-acme-flow-logs"));
    expect(json(role.assumeRolePolicy)).toMatchObject({ Statement: [{ Principal: { Service: "vpc-flow-logs.amazonaws.com" }, Condition: { StringEquals: { "aws:SourceAccount": "111111111111" } } }] });
    expect(json(plain(byTypeName(r, T.rolePolicy, "tenant-acme-flow-logs")).policy)).toMatchObject({
      Statement: [{ Resource: ["arn:aws:logs:us-east-1:111111111111:log-group:/tenancy/prod/tenants/acme/vpc-flow-logs:*"] }],
    });
  });

  it("egress on: a NAT per AZ in prod, each private subnet routed to its own AZ's NAT; public subnets give no public IPs", () => {
    const r = get("dedicated-megacorp-prod");
    for (const az of ["us-east-1a", "us-east-1b", "us-east-1c"]) {
      expect(plain(byTypeName(r, T.route, `tenant-megacorp-egress-private-${az}`))).toEqual({
        routeTableId: mockId(T.routeTable, `tenant-megacorp-network-private-${az}`, "dedicated-megacorp-prod"), destinationCidrBlock: "0.0.0.0/0", natGatewayId: mockId(T.nat, `tenant-megacorp-egress-nat-${az}`, "dedicated-megacorp-prod"),
      });
      expect(plain(byTypeName(r, T.nat, `tenant-megacorp-egress-nat-${az}`))).toMatchObject({
        subnetId: mockId(T.subnet, `tenant-megacorp-egress-public-${az}`, "dedicated-megacorp-prod"), allocationId: mockId(T.eip, `tenant-megacorp-egress-nat-${az}`, "dedicated-megacorp-prod"), connectivityType: "public",
      });
    }
    const plan = planSubnets({ vpcCidr: "10.64.0.0/16", azs: ["us-east-1a", "us-east-1b", "us-east-1c"], publicSubnets: true });
    expect(ofType(r, T.subnet).filter((s) => s.name.includes("-egress-public-")).map((s) => ({ az: plain(s).availabilityZone, cidr: plain(s).cidrBlock, pub: plain(s).mapPublicIpOnLaunch })))
      .toEqual(plan.public.map((p) => ({ ...p, pub: false })));
    expect(plain(byTypeName(r, T.route, "tenant-megacorp-egress-public"))).toEqual({
      routeTableId: mockId(T.routeTable, "tenant-megacorp-egress-public", "dedicated-megacorp-prod"), destinationCidrBlock: "0.0.0.0/0", gatewayId: mockId(T.igw, "tenant-megacorp-egress-igw", "dedicated-megacorp-prod"),
    });
  });

  it("egress on outside prod: one NAT in the first AZ serves every private subnet", () => {
    const r = get("dedicated-megacorp-staging");
    const nat = mockId(T.nat, "tenant-megacorp-egress-nat-us-east-1a", "dedicated-megacorp-staging");
    expect(ofType(r, T.nat)).toHaveLength(1);
    for (const az of ["us-east-1a", "us-east-1b"]) expect(plain(byTypeName(r, T.route, `tenant-megacorp-egress-private-${az}`)).natGatewayId).toBe(nat);
  });

  it("egress on vs off (same tenant): exactly the Egress component and the app's HTTPS egress rule appear, nothing else changes", async () => {
    // 3 more Elastic IPs in us-east-1 than the AWS default of 5 allows: the quota is raised too.
    const withEgress = tempFleet((dir) => {
      editYaml(dir, "tenants/acme.yaml", (d) => { d.features = { egress: true }; });
      editYaml(dir, "Pulumi.yaml", (d) => {
        const quotas = ((d.config as Record<string, { value: Record<string, unknown> }>)["saas-tenancy:platform"]!.value.quotas) as { regions: Record<string, Record<string, number>> };
        quotas.regions["us-east-1"]!.elasticIpsPerRegion = 10;
      });
    });
    const on = await render(withEgress, "dedicated-acme-prod");
    const diff = diffRenders(get("dedicated-acme-prod"), on);
    expect([diff.removed, diff.changed]).toEqual([[], []]);
    const expected = [...subtree(on, byTypeName(on, C("Egress"), "tenant-acme-egress").urn), byTypeName(on, T.egress, "tenant-acme-sg-app-https-out")];
    expect(diff.added).toEqual(expected.map((x) => x.urn).sort());
    expect(ofType(on, T.nat)).toHaveLength(3);
    expect(stripRule(byTypeName(on, T.egress, "tenant-acme-sg-app-https-out"))).toEqual({
      securityGroupId: mockId(T.sg, "tenant-acme-sg-app", "dedicated-acme-prod"), cidrIpv4: "0.0.0.0/0", ipProtocol: "tcp", fromPort: 443, toPort: 443,
    });
  });

  it("peering on vs off: exactly the requester connection to the customer's VPC, its routes and the app rule, all limited to the customer CIDR", async () => {
    const customerVpc = { accountId: "333333333333", vpcId: "vpc-0feedfacefeedface", cidr: "192.168.0.0/16" };
    const peered = tempFleet((dir) => editYaml(dir, "tenants/acme.yaml", (d) => {
      d.features = { vpcPeering: true };
      (d.dedicated as Record<string, Record<string, unknown>>).prod!.customerVpc = customerVpc;
    }));
    const on = await render(peered, "dedicated-acme-prod");
    const diff = diffRenders(get("dedicated-acme-prod"), on);
    expect([diff.removed, diff.changed]).toEqual([[], []]);
    expect(diff.added).toEqual(subtree(on, byTypeName(on, C("CustomerPeering"), "tenant-acme-peering").urn).map((x) => x.urn).sort());
    const pcx = mockId(T.pcx, "tenant-acme-peering", "dedicated-acme-prod");
    // Requester side in our account; the customer's account accepts (cross-account: no autoAccept).
    expect(plain(byTypeName(on, T.pcx, "tenant-acme-peering"))).toEqual({
      vpcId: mockId(T.vpc, "tenant-acme-network-vpc", "dedicated-acme-prod"), peerVpcId: "vpc-0feedfacefeedface", peerOwnerId: "333333333333", autoAccept: false, tags: tags("acme", "prod", "dedicated-acme-prod"),
    });
    for (const az of ["us-east-1a", "us-east-1b", "us-east-1c"]) {
      expect(plain(byTypeName(on, T.route, `tenant-acme-peering-${az}`))).toEqual({
        routeTableId: mockId(T.routeTable, `tenant-acme-network-private-${az}`, "dedicated-acme-prod"), destinationCidrBlock: "192.168.0.0/16", vpcPeeringConnectionId: pcx,
      });
    }
    // HTTPS from the customer CIDR to the app group; the database group admits nothing from it.
    expect(stripRule(byTypeName(on, T.ingress, "tenant-acme-peering"))).toEqual({
      securityGroupId: mockId(T.sg, "tenant-acme-sg-app", "dedicated-acme-prod"), cidrIpv4: "192.168.0.0/16", ipProtocol: "tcp", fromPort: 443, toPort: 443,
    });
    const dbSg = mockId(T.sg, "tenant-acme-sg-db", "dedicated-acme-prod");
    expect(ofType(on, T.ingress).filter((x) => plain(x).securityGroupId === dbSg).map((x) => plain(x).cidrIpv4 ?? "app-group").sort()).toEqual(["10.0.0.0/20", "10.0.16.0/20", "app-group"]);
  });

  it("spoke: attached to its region's Transit Gateway (the platform stack's ids), associated with `spokes`, propagated into `hub`, the hub CIDR routed", () => {
    const cases = [
      { stack: "dedicated-acme-prod", id: "acme", code: "use1", hub: "10.0.0.0/16", azs: ["us-east-1a", "us-east-1b", "us-east-1c"] },
      { stack: "dedicated-delta-health-prod", id: "delta-health", code: "euw1", hub: "10.255.0.0/16", azs: ["eu-west-1a", "eu-west-1b", "eu-west-1c"] },
      { stack: "dedicated-megacorp-staging", id: "megacorp", code: "use1", hub: "10.0.0.0/16", azs: ["us-east-1a", "us-east-1b"] },
    ];
    for (const c of cases) {
      const r = get(c.stack);
      const n = `tenant-${c.id}-spoke`;
      const tgw = mockId(TGW.gateway, `transit-${c.code}`, platformStackName(c.stack.includes("delta") ? "eu-west-1" : "us-east-1"));
      const env = c.stack.endsWith("staging") ? "staging" : "prod";
      expect(plain(byTypeName(r, TGW.attachment, n))).toEqual({
        transitGatewayId: tgw,
        vpcId: mockId(T.vpc, `tenant-${c.id}-network-vpc`, c.stack),
        subnetIds: c.azs.map((az) => mockId(T.subnet, `tenant-${c.id}-network-private-${az}`, c.stack)),
        transitGatewayDefaultRouteTableAssociation: false,
        transitGatewayDefaultRouteTablePropagation: false,
        dnsSupport: "enable",
        securityGroupReferencingSupport: "disable",
        tags: tags(c.id, env, c.stack),
      });
      const attachment = mockId(TGW.attachment, n, c.stack);
      expect(plain(byTypeName(r, TGW.association, n))).toEqual({ transitGatewayAttachmentId: attachment, transitGatewayRouteTableId: mockId(TGW.table, `transit-${c.code}-spokes`, platformStackName(c.stack.includes("delta") ? "eu-west-1" : "us-east-1")) });
      expect(plain(byTypeName(r, TGW.propagation, n))).toEqual({ transitGatewayAttachmentId: attachment, transitGatewayRouteTableId: mockId(TGW.table, `transit-${c.code}-hub`, platformStackName(c.stack.includes("delta") ? "eu-west-1" : "us-east-1")) });
      for (const az of c.azs) {
        expect(plain(byTypeName(r, T.route, `${n}-${az}`))).toEqual({ routeTableId: mockId(T.routeTable, `tenant-${c.id}-network-private-${az}`, c.stack), destinationCidrBlock: c.hub, transitGatewayId: tgw });
      }
    }
  });

  it("the database admits 5432 from the app group and the region's runner subnets only, with or without peering; nothing is open to the world", () => {
    const acme = get("dedicated-acme-prod");
    const dbSg = mockId(T.sg, "tenant-acme-sg-db", "dedicated-acme-prod");
    expect(plain(byTypeName(acme, T.rds, "tenant-acme-db")).vpcSecurityGroupIds).toEqual([dbSg]);
    const byCidr = (a: Record<string, unknown>, b: Record<string, unknown>) => String(a.cidrIpv4 ?? "").localeCompare(String(b.cidrIpv4 ?? ""));
    expect(ofType(acme, T.ingress).filter((x) => plain(x).securityGroupId === dbSg).map(stripRule).sort(byCidr)).toEqual([
      { securityGroupId: dbSg, referencedSecurityGroupId: mockId(T.sg, "tenant-acme-sg-app", "dedicated-acme-prod"), ipProtocol: "tcp", fromPort: 5432, toPort: 5432 },
      { securityGroupId: dbSg, cidrIpv4: "10.0.0.0/20", ipProtocol: "tcp", fromPort: 5432, toPort: 5432 },
      { securityGroupId: dbSg, cidrIpv4: "10.0.16.0/20", ipProtocol: "tcp", fromPort: 5432, toPort: 5432 },
    ]);
    // eu-west-1: its own region's runner, never us-east-1's.
    const delta = get("dedicated-delta-health-prod");
    const deltaDb = mockId(T.sg, "tenant-delta-health-sg-db", "dedicated-delta-health-prod");
    expect(ofType(delta, T.ingress).filter((x) => plain(x).securityGroupId === deltaDb).map((x) => plain(x).cidrIpv4 ?? "app-group").sort()).toEqual(["10.255.0.0/20", "10.255.16.0/20", "app-group"]);
    // The endpoints' group admits 443 from each of the VPC's own private subnets, nothing else.
    for (const name of STACKS) {
      const r = get(name);
      const n = r.resources.find((x) => x.type === C("DedicatedTenant"))!.name;
      const endpointsSg = mockId(T.sg, `${n}-endpoints`, name);
      const subnets = ofType(r, T.subnet).filter((x) => x.name.startsWith(`${n}-network-private-`)).map((x) => plain(x).cidrBlock);
      const others = ofType(r, T.ingress).map(plain).filter((i) => i.securityGroupId === endpointsSg);
      expect(others.map((i) => i.cidrIpv4).sort(), name).toEqual([...subnets].sort());
      for (const i of others) expect(i, name).toMatchObject({ securityGroupId: endpointsSg, ipProtocol: "tcp", fromPort: 443, toPort: 443 });
    }
    const mega = get("dedicated-megacorp-prod");
    const megaDb = mockId(T.sg, "tenant-megacorp-sg-db", "dedicated-megacorp-prod");
    expect(ofType(mega, T.ingress).filter((x) => plain(x).securityGroupId === megaDb).map((x) => plain(x).cidrIpv4 ?? "app-group").sort()).toEqual(["10.0.0.0/20", "10.0.16.0/20", "app-group"]);
    for (const name of STACKS) {
      for (const x of ofType(get(name), T.ingress)) expect(String(plain(x).cidrIpv4 ?? "")).not.toMatch(/\/0$/);
      for (const x of ofType(get(name), T.sg)) expect([plain(x).ingress, plain(x).egress]).toEqual([undefined, undefined]);
    }
  });
});

describe("keys, IAM and bucket", () => {
  it("the key policy names only the account root, the tenant role and CloudWatch Logs for the tenant's log group", () => {
    const key = plain(byTypeName(get("dedicated-delta-health-prod"), T.key, "tenant-delta-health-key"));
    expect([key.enableKeyRotation, key.deletionWindowInDays]).toEqual([true, 30]);
    expect(json(key.policy)).toEqual({
      Version: "2012-10-17",
      Statement: [
        { Sid: "AccountRootAdministers", Effect: "Allow", Principal: { AWS: "arn:aws:iam::111111111111:root" }, Action: "kms:*", Resource: "*" },
        {
          Sid: "TenantRoleUsesThroughServices", Effect: "Allow", Principal: { AWS: "arn:aws:iam::111111111111:role/tenancy-prod-t-delta-health" },
          Action: ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"], Resource: "*",
          Condition: { StringEquals: { "kms:ViaService": ["secretsmanager.eu-west-1.amazonaws.com", "s3.eu-west-1.amazonaws.com"] } },
        },
        {
          Sid: "CloudWatchLogsEncryptsTenantLogGroups", Effect: "Allow", Principal: { Service: "logs.eu-west-1.amazonaws.com" },
          Action: ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"], Resource: "*",
          Condition: { ArnEquals: { "kms:EncryptionContext:aws:logs:arn": ["arn:aws:logs:eu-west-1:111111111111:log-group:/tenancy/prod/tenants/delta-health/vpc-flow-logs"] } },
        },
      ],
    });
    expect(plain(byTypeName(get("dedicated-delta-health-prod"), T.alias, "tenant-delta-health-key")).name).toBe("alias/tenancy/prod/tenants/delta-health");
  });

  it("the tenant role: pinned trust; policy on its secrets, its key and its prefix of its own bucket", () => {
    const r = get("dedicated-acme-prod");
    const key = plain(byTypeName(r, T.rds, "tenant-acme-db")).kmsKeyId;
    const role = plain(byTypeName(r, T.role, "tenant-acme-role"));
    expect(role.name).toBe("tenancy-prod-t-acme");
    expect(json(role.assumeRolePolicy)).toMatchObject({
      Statement: [{ Principal: { AWS: "arn:aws:iam::111111111111:role/tenancy-control-plane" }, Condition: { StringEquals: { "aws:RequestTag/tenant": "acme" } } }],
    });
    const secrets = "arn:aws:secretsmanager:us-east-1:111111111111:secret:tenancy/prod/tenants/acme/*";
    const bucket = "arn:aws:s3:::tenancy-prod-acme-data-111111111111";
    const policy = json(plain(byTypeName(r, T.rolePolicy, "tenant-acme-access")).policy) as { Statement: Record<string, unknown>[] };
    expect(policy.Statement.map((s) => [s.Sid, s.Resource, s.Condition])).toEqual([
      ["ReadOwnSecrets", secrets, undefined],
      ["DecryptOwnSecrets", key, { StringEquals: { "kms:ViaService": "secretsmanager.us-east-1.amazonaws.com" }, StringLike: { "kms:EncryptionContext:SecretARN": secrets } }],
      ["OwnObjects", `${bucket}/tenants/acme/*`, undefined],
      ["ListOwnPrefix", bucket, { StringLike: { "s3:prefix": ["tenants/acme/", "tenants/acme/*"] } }],
      ["OwnObjectsEncryption", key, { StringEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com", "kms:EncryptionContext:aws:s3:arn": bucket } }],
      ["ReadOwnRuntimeConfig", "arn:aws:ssm:us-east-1:111111111111:parameter/tenancy/prod/tenants/acme/config", undefined],
      // The database's master credentials sit in the tenant's namespace but are never the tenant's.
      ["NeverPlatformMasterCredentials", "arn:aws:secretsmanager:us-east-1:111111111111:secret:tenancy/prod/tenants/acme/database/master*", undefined],
    ]);
  });

  it("the tenant's own bucket: named for tenant and account, versioned, blocked, TLS only", () => {
    const r = get("dedicated-acme-prod");
    expect(plain(byTypeName(r, "aws:s3/bucket:Bucket", "tenant-acme-bucket"))).toMatchObject({ bucket: "tenancy-prod-acme-data-111111111111", forceDestroy: false });
    expect(plain(byTypeName(r, "aws:s3/bucketVersioning:BucketVersioning", "tenant-acme-bucket")).versioningConfiguration).toEqual({ status: "Enabled" });
    expect(plain(byTypeName(r, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "tenant-acme-bucket"))).toMatchObject({
      blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true,
    });
    // Noncurrent versions expire (a versioned bucket does not grow forever), after versioning is on.
    const lifecycle = byTypeName(r, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "tenant-acme-bucket");
    expect(plain(lifecycle).rules).toEqual([{
      id: "expire-noncurrent-versions", status: "Enabled", filter: {},
      noncurrentVersionExpiration: { noncurrentDays: 90 }, abortIncompleteMultipartUpload: { daysAfterInitiation: 7 },
    }]);
    // Every request logged to the env's access log bucket in the region (the platform stack's), under the bucket's own name.
    const logging = plain(byTypeName(r, "aws:s3/bucketLogging:BucketLogging", "tenant-acme-bucket"));
    expect({ ...logging, bucket: undefined }).toEqual({
      bucket: undefined, targetBucket: "tenancy-prod-use1-access-logs-111111111111", targetPrefix: "tenancy-prod-acme-data-111111111111/",
      targetObjectKeyFormat: { partitionedPrefix: { partitionDateSource: "EventTime" } },
    });
  });
});

describe("DNS", () => {
  it("public zone <id>.dedicated.<env domain>, NS delegation in the platform zone, private zone <id>.<env>.internal with db.<id>.<env>.internal", () => {
    for (const [name, id, zoneName, env] of [
      ["dedicated-acme-prod", "acme", "acme.dedicated.tenancy.example.com", "prod"],
      ["dedicated-megacorp-staging", "megacorp", "megacorp.dedicated.staging.tenancy.example.com", "staging"],
    ] as const) {
      const r = get(name);
      expect(plain(byTypeName(r, T.zone, `tenant-${id}-dns-public`))).toMatchObject({ name: zoneName, forceDestroy: false });
      const ns = r.outputs.nameServers as string[];
      expect(ns).toHaveLength(4);
      expect(plain(byTypeName(r, T.record, `tenant-${id}-dns-delegation`))).toEqual({ zoneId: "Z0EXAMPLE0PARENT", name: zoneName, type: "NS", ttl: 172_800, records: ns });
      const zone = byTypeName(r, T.zone, `tenant-${id}-dns-private`);
      expect(plain(zone)).toMatchObject({
        name: `${id}.${env}.internal`, vpcs: [{ vpcId: mockId(T.vpc, `tenant-${id}-network-vpc`, name), vpcRegion: "us-east-1" }],
      });
      // The tenant VPC is the creation-time association; every other VPC is a separate association
      // the next up leaves alone (ignoreChanges on the inline list); the hub's is the program's.
      expect(zone.options.ignoreChanges).toEqual(["vpcs"]);
      const db = plain(byTypeName(r, T.record, `tenant-${id}-dns-db`));
      expect(db.zoneId).toMatch(/^Z[0-9A-F]{20}$/);
      expect(plain(byTypeName(r, "aws:route53/zoneAssociation:ZoneAssociation", `tenant-${id}-dns-private-hub`))).toEqual({
        zoneId: db.zoneId, vpcId: mockId(T.vpc, "hub-use1-network-vpc", "platform-us-east-1"), vpcRegion: "us-east-1",
      });
      expect([db.name, db.type, db.records]).toEqual([`db.${id}.${env}.internal`, "CNAME", [plain(byTypeName(r, T.pgProvider, `tenant-${id}-db`)).host]]);
    }
  });

  it("the apex ingress ALIAS comes from the stack's saas-tenancy:ingress; bad settings fail with the file and key", async () => {
    const withIngress = tempFleet((dir) =>
      editYaml(dir, "stacks/Pulumi.dedicated-acme-prod.yaml", (d) => {
        (d.config as Record<string, unknown>)["saas-tenancy:ingress"] = { dnsName: "acme-alb-123.us-east-1.elb.amazonaws.com", zoneId: "Z35SXDOTRQ7X7K" };
      }),
    );
    const on = await render(withIngress, "dedicated-acme-prod");
    const publicZoneId = plain(byTypeName(on, T.record, "tenant-acme-dns-ingress")).zoneId;
    expect(publicZoneId).toMatch(/^Z[0-9A-Z]+$/);
    expect(publicZoneId).not.toBe(plain(byTypeName(on, T.record, "tenant-acme-dns-db")).zoneId);
    expect(plain(byTypeName(on, T.record, "tenant-acme-dns-ingress"))).toEqual({
      zoneId: publicZoneId, name: "acme.dedicated.tenancy.example.com", type: "A",
      aliases: [{ name: "acme-alb-123.us-east-1.elb.amazonaws.com", zoneId: "Z35SXDOTRQ7X7K", evaluateTargetHealth: true }],
    });
    const bad = tempFleet((dir) =>
      editYaml(dir, "stacks/Pulumi.dedicated-acme-prod.yaml", (d) => { (d.config as Record<string, unknown>)["saas-tenancy:ingress"] = { dnsName: "x" }; }),
    );
    await expect(render(bad, "dedicated-acme-prod")).rejects.toThrow(/Pulumi\.dedicated-acme-prod\.yaml: invalid ingress settings:\n - config\.saas-tenancy:ingress\.dnsName: must be a DNS name/);
  });
});

describe("conventions and outputs", () => {
  it("every taggable AWS resource is tagged tenant=<id>, and no input names another tenant", () => {
    const counts: Record<string, number> = {};
    for (const name of STACKS) {
      const r = get(name);
      const ref = fleet.stacks.get(name)!.ref as { tenant: string; env: string };
      counts[name] = 0;
      for (const x of r.resources.filter((y) => y.type.startsWith("aws:"))) {
        if (isTaggable(x.type)) {
          expect(x.inputs.tags, `${x.type} ${x.name}`).toEqual(tags(ref.tenant, ref.env, name));
          counts[name]++;
        } else expect(x.inputs.tags).toBeUndefined();
      }
      const text = JSON.stringify(r.resources.map(plain));
      for (const other of fleet.tenants.keys()) if (other !== ref.tenant) expect(text.includes(other), `${name} mentions ${other}`).toBe(false);
    }
    // acme: role, key, vpc, default SG, 3 subnets, 3 route tables, log group, flow-log role, flow log,
    // TGW attachment, 2 groups, 4 rules (app, app-to-db, 2 runner subnets), bucket, master secret,
    // subnet group, parameter group, instance, connection secret, 4 declared secrets, 2 zones,
    // runtime config parameter, routing share = 34; endpoints: a group, 3 rules (one per subnet),
    // 5 interface and the S3 gateway endpoint, 2 app egress rules to them = 46; storage alarms: the
    // topic and 2 alarms = 49.
    expect(counts["dedicated-acme-prod"]).toBe(49);
  });

  it("suspending a dedicated tenant changes only its role's LOGIN and the lifecycle in its runtime config", async () => {
    const suspended = tempFleet((dir) => editYaml(dir, "tenants/acme.yaml", (d) => { d.lifecycle = "suspended"; }));
    const after = await render(suspended, "dedicated-acme-prod");
    const diff = diffRenders(get("dedicated-acme-prod"), after);
    expect(diff).toEqual({ added: [], removed: [], changed: [byTypeName(after, T.pgRole, "tenant-acme-db-access").urn, byTypeName(after, T.parameter, "tenant-acme-config").urn].sort() });
    expect(plain(byTypeName(after, T.pgRole, "tenant-acme-db-access")).login).toBe(false);
    expect(JSON.parse(String(plain(byTypeName(after, T.parameter, "tenant-acme-config")).insecureValue)).lifecycle).toBe("suspended");
  });

  it("outputs: routing entry, VPC id, DB endpoint, zone and name servers; nothing secret", () => {
    const r = get("dedicated-acme-prod");
    expect(r.outputs).toEqual({
      kind: "dedicated",
      tenant: "acme",
      route: { url: "https://acme.dedicated.tenancy.example.com", stack: "dedicated-acme-prod", databaseSecretName: "tenancy/prod/tenants/acme/database" },
      vpcId: mockId(T.vpc, "tenant-acme-network-vpc", "dedicated-acme-prod"),
      dbEndpoint: `${plain(byTypeName(r, T.pgProvider, "tenant-acme-db")).host}:5432`,
      privateDbHostname: "db.acme.prod.internal",
      zoneName: "acme.dedicated.tenancy.example.com",
      nameServers: expect.arrayContaining([expect.stringMatching(/^ns-\d+\.awsdns-\d+\./)]),
    });
    expect((get("dedicated-megacorp-prod").outputs as { peeringConnectionId: string }).peeringConnectionId).toBe(mockId(T.pcx, "tenant-megacorp-peering", "dedicated-megacorp-prod"));
    for (const name of STACKS) {
      const passwords = ofType(get(name), T.pgRole).map((x) => plain(x).password as string);
      walk(get(name).outputs, (v, secret) => {
        expect(secret).toBe(false);
        if (typeof v === "string") for (const p of passwords) expect(v.includes(p)).toBe(false);
      });
    }
  });
});

describe("a tenant upgrading from a cell (infra/model/handover.ts)", () => {
  function migrating(phase: "provisioning" | "copying" | "cutover" | "cleanup", fromTier: "standard" | "enterprise") {
    return tempFleet((dir) => {
      editYaml(dir, "tenants/startup-alpha.yaml", (d) => {
        d.tier = "dedicated";
        delete d.placement;
        d.dedicated = { prod: { cidr: "10.68.0.0/16" }, staging: { cidr: "10.69.0.0/16" } };
        d.migration = { phase, from: { prod: "use1-01", staging: "use1-01" }, fromTier, startedAt: "2026-01-10T09:00:00Z" };
      });
      for (const env of ["prod", "staging"]) editYaml(dir, `stacks/Pulumi.dedicated-startup-alpha-${env}.yaml`, (d) => void (d.config = { "aws:region": "us-east-1" }));
    });
  }
  const n = "tenant-startup-alpha";
  const identity = [
    `${C("TenantRole")} ${n}-role`, `${T.role} ${n}-role`, `${C("ConnectionSecret")} ${n}-database`, `${T.secret} ${n}-database`, `${T.version} ${n}-database`,
    `${C("TenantSecrets")} ${n}-secrets`, `${T.secret} ${n}-secrets/stripe_api_key`, `${C("TenantRolePolicy")} ${n}-access`, `${T.rolePolicy} ${n}-access`,
    `${C("RuntimeConfig")} ${n}-config`, `${T.parameter} ${n}-config`,
  ];
  const full = dedicatedShape("startup-alpha", { azs: ["us-east-1a", "us-east-1b", "us-east-1c"], secrets: ["stripe_api_key"], prod: true });

  it("before cutover: everything but the identity the cell still manages; the key policy names the existing role by ARN", async () => {
    for (const phase of ["provisioning", "copying"] as const) {
      const r = await render(migrating(phase, "standard"), "dedicated-startup-alpha-prod");
      // Nor its routing share: the cell routes the tenant until cutover.
      expect(shape(below(r))).toEqual(full.filter((x) => !identity.includes(x) && !x.endsWith(" routing") && !x.endsWith(" routing-00")));
      const policy = JSON.parse(String(plain(byTypeName(r, T.key, `${n}-key`)).policy)) as { Statement: Array<{ Sid?: string; Principal?: { AWS?: string } }> };
      expect(policy.Statement.find((s) => s.Sid === "TenantRoleUsesThroughServices")?.Principal?.AWS).toBe("arn:aws:iam::111111111111:role/tenancy-prod-t-startup-alpha");
      // A key of its own from the start; its alias changes no hands, so it is not retained.
      expect(byTypeName(r, T.alias, `${n}-key`).options.retainOnDelete).toBe(false);
      expect(byTypeName(r, T.key, `${n}-key`).options.aliases).toBeUndefined();
    }
  });

  it("from cutover: the full stack; the identity components alias the URNs the state move gives them and are retained until cleanup ends", async () => {
    const cut = await render(migrating("cutover", "standard"), "dedicated-startup-alpha-prod");
    expect(shape(below(cut))).toEqual(full);
    const comp = (cls: string, suffix: string) => byTypeName(cut, C(cls), `${n}${suffix}`);
    const moved = (cls: string, suffix: string) => `urn:pulumi:dedicated-startup-alpha-prod::saas-tenancy::${C("PooledTenant")}$${C(cls)}::${n}${suffix}`;
    for (const [cls, suffix] of [["TenantRole", "-role"], ["ConnectionSecret", "-database"], ["TenantSecrets", "-secrets"], ["TenantRolePolicy", "-access"], ["RuntimeConfig", "-config"]] as const) {
      expect(comp(cls, suffix).options.aliases).toEqual([moved(cls, suffix)]);
    }
    // The children inherit their component's alias (the engine's rule): e.g. the role itself.
    expect(byTypeName(cut, T.role, `${n}-role`).options.aliases).toEqual([`urn:pulumi:dedicated-startup-alpha-prod::saas-tenancy::${C("PooledTenant")}$${C("TenantRole")}$${T.role}::${n}-role`]);
    // A standard tenant had no key in the cell: its dedicated key claims nothing.
    expect(comp("EncryptionKey", "-key").options.aliases).toBeUndefined();
    for (const x of cut.resources.filter((y) => y.custom && identity.includes(`${y.type} ${y.name}`))) expect(x.options.retainOnDelete, x.urn).toBe(true);

    const done = await render(
      tempFleet((dir) => {
        editYaml(dir, "tenants/startup-alpha.yaml", (d) => {
          d.tier = "dedicated";
          delete d.placement;
          d.dedicated = { prod: { cidr: "10.68.0.0/16" }, staging: { cidr: "10.69.0.0/16" } };
        });
        for (const env of ["prod", "staging"]) editYaml(dir, `stacks/Pulumi.dedicated-startup-alpha-${env}.yaml`, (d) => void (d.config = { "aws:region": "us-east-1" }));
      }),
      "dedicated-startup-alpha-prod",
    );
    expect(done.resources.filter((x) => x.options.aliases?.some((a) => a.includes(C("PooledTenant"))))).toEqual([]);
    expect(done.resources.filter((x) => x.custom && x.options.retainOnDelete).map((x) => x.type).sort()).toEqual([T.key]);
  });

  it("an enterprise tenant's key (moved before provisioning) is claimed by alias from the first update", async () => {
    const r = await render(migrating("provisioning", "enterprise"), "dedicated-startup-alpha-prod");
    expect(byTypeName(r, C("EncryptionKey"), `${n}-key`).options.aliases).toEqual([
      `urn:pulumi:dedicated-startup-alpha-prod::saas-tenancy::${C("PooledTenant")}$${C("EncryptionKey")}::${n}-key`,
    ]);
    // Its alias came from the cell: retained while the migration lasts.
    expect(byTypeName(r, T.alias, `${n}-key`).options.retainOnDelete).toBe(true);
  });
});
