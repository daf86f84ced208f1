/**
 * Hand-built stacks that follow every naming convention of docs/stacks.md (names from infra/model/naming.ts),
 * shaped like what the engine reports: inputs for Analyze, outputs (inputs plus computed ARNs and
 * ids, as the mock runtime and AWS produce them) for AnalyzeStack. Tests mutate a fresh copy and
 * assert the exact violations the pack reports.
 */
import {
  accessLogBucketName,
  cellBucketName,
  cellDatabaseSecretName,
  cellKmsAlias,
  databaseSecretName,
  dedicatedZoneName,
  masterSecretName,
  pgTenantIdent,
  pooledHostname,
  privateDbHostname,
  privateZoneName,
  tags,
  teamSecretName,
  tenantBucketName,
  tenantKmsAlias,
  tenantObjectPrefix,
  tenantRoleName,
  tenantSecretPrefix,
} from "../../infra/model/naming.ts";
import type { RenderedResource } from "../../plan/types.ts";
import { SECRET_SIG, SECRET_SIG_KEY } from "../../plan/types.ts";
import { analyzeStack, type AnalyzableResource } from "../../plan/analyze.ts";

export const APP = "tenancy";
export const ACCOUNT = "111111111111";
export const REGION = "us-east-1";
export const DOMAIN = "tenancy.example.com";
export const PROJECT = "saas-tenancy";
export const CONTROL_PLANE_ROLE = `arn:aws:iam::${ACCOUNT}:role/tenancy-control-plane`;

export interface FixtureResource {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  /** Computed outputs the provider adds to the inputs (ARNs, ids). */
  computed: Record<string, unknown>;
  /** Parent URN; "" puts the resource directly under the stack. */
  parent: string;
}

export interface FixtureStack {
  name: string;
  resources: FixtureResource[];
  outputs: Record<string, unknown>;
}

export function urnOf(stack: string, type: string, name: string): string {
  return `urn:pulumi:${stack}::${PROJECT}::${type}::${name}`;
}

/** A fresh, deep copy: tests mutate it freely. */
export function clone<T>(v: T): T {
  return structuredClone(v);
}

export function find(stack: FixtureStack, name: string): FixtureResource {
  const r = stack.resources.find((x) => x.name === name);
  if (!r) throw new Error(`fixture ${stack.name} has no resource "${name}"`);
  return r;
}

export function urn(stack: FixtureStack, name: string): string {
  const r = find(stack, name);
  return urnOf(stack.name, r.type, r.name);
}

/** Pulumi's wire form of a secret input, as the renderer keeps it. */
export function secret(value: unknown): Record<string, unknown> {
  return { [SECRET_SIG_KEY]: SECRET_SIG, value };
}

export function toResources(stack: FixtureStack): AnalyzableResource[] {
  const stackUrn = urnOf(stack.name, "pulumi:pulumi:Stack", `${PROJECT}-${stack.name}`);
  return [
    { urn: stackUrn, type: "pulumi:pulumi:Stack", name: `${PROJECT}-${stack.name}`, parent: "", inputs: {}, outputs: stack.outputs },
    ...stack.resources.map((r) => ({
      urn: urnOf(stack.name, r.type, r.name),
      type: r.type,
      name: r.name,
      parent: r.parent || stackUrn,
      inputs: r.inputs,
      outputs: { ...r.inputs, ...r.computed },
    })),
  ];
}

/** RenderedResource form (what `tenantctl plan` hands over: inputs, no outputs). */
export function toRendered(stack: FixtureStack): RenderedResource[] {
  return toResources(stack).map((r) => ({
    urn: r.urn,
    type: r.type,
    name: r.name,
    parent: r.parent ?? "",
    inputs: r.inputs,
    custom: r.type !== "pulumi:pulumi:Stack",
    options: { protect: false, retainOnDelete: false, deleteBeforeReplace: false, provider: "", ignoreChanges: [] },
  }));
}

export async function violationsOf(stack: FixtureStack) {
  return analyzeStack({ name: stack.name, resources: toResources(stack) as RenderedResource[] });
}

/** Violations of the stack after `mutate` ran on a copy of it. */
export async function violationsAfter(base: FixtureStack, mutate: (s: FixtureStack) => void) {
  const s = clone(base);
  mutate(s);
  return violationsOf(s);
}

function res(type: string, name: string, inputs: Record<string, unknown>, computed: Record<string, unknown> = {}): FixtureResource {
  return { type, name, inputs, computed, parent: "" };
}

/** A data bucket's versioning, noncurrent-version expiry and access logging (infra/components/encryptedBucket.ts). */
function bucketRetentionAudit(prefix: string, bucket: string, env: string): FixtureResource[] {
  return [
    res("aws:s3/bucketVersioning:BucketVersioning", `${prefix}-versioning`, { bucket, versioningConfiguration: { status: "Enabled" } }),
    res("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", `${prefix}-lifecycle`, {
      bucket,
      rules: [{ id: "expire-noncurrent-versions", status: "Enabled", filter: {}, noncurrentVersionExpiration: { noncurrentDays: 90 } }],
    }),
    res("aws:s3/bucketLogging:BucketLogging", `${prefix}-logging`, { bucket, targetBucket: accessLogBucketName(APP, env, REGION, ACCOUNT), targetPrefix: `${bucket}/` }),
  ];
}

const keyArn = (id: string) => `arn:aws:kms:${REGION}:${ACCOUNT}:key/${id}`;
const secretArn = (name: string, suffix: string) => `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}-${suffix}`;

function trustPolicy(tenant: string): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Principal: { AWS: CONTROL_PLANE_ROLE },
        Action: ["sts:AssumeRole", "sts:TagSession"],
        Condition: { StringEquals: { "aws:RequestTag/tenant": tenant } },
      },
    ],
  });
}

// --- dedicated-acme-prod ---------------------------------------------------------------------

export const DEDICATED_TENANT = "acme";
const D_KEY_ID = "0b1e6a2c-1111-4a4a-8b8b-acme00000001";
export const D_KEY_ARN = keyArn(D_KEY_ID);
export const D_MASTER_PASSWORD = "Qm9vdHN0cmFwLW1hc3Rlci1wdw4x7Kc2";
export const D_APP_PASSWORD = "YXBwLXJvbGUtcGFzc3dvcmQtYWNtZQz9";

export function dedicatedStack(): FixtureStack {
  const t = DEDICATED_TENANT;
  const env = "prod";
  const stack = `dedicated-${t}-${env}`;
  const tg = () => ({ ...tags(t, env, stack) });
  const bucket = tenantBucketName(APP, env, t, ACCOUNT);
  const masterName = masterSecretName(APP, env, t);
  const dbName = databaseSecretName(APP, env, t);
  const zone = dedicatedZoneName(t, DOMAIN);
  const ident = pgTenantIdent(t);
  const role = tenantRoleName(APP, env, t);
  const dbAddress = `tenancy-prod-acme.c0ffee123456.${REGION}.rds.amazonaws.com`;
  return {
    name: stack,
    outputs: { url: `https://${zone}`, databaseSecretName: dbName },
    resources: [
      res("aws:kms/key:Key", "acme-key", { description: "acme data key", enableKeyRotation: true, deletionWindowInDays: 30, tags: tg() }, { arn: D_KEY_ARN, keyId: D_KEY_ID }),
      res("aws:kms/alias:Alias", "acme-key-alias", { name: tenantKmsAlias(APP, env, t), targetKeyId: D_KEY_ARN }, { arn: `arn:aws:kms:${REGION}:${ACCOUNT}:${tenantKmsAlias(APP, env, t)}` }),
      res("random:index/randomPassword:RandomPassword", "acme-master-password", { length: 32, special: false }, { result: D_MASTER_PASSWORD }),
      res("random:index/randomPassword:RandomPassword", "acme-app-password", { length: 32, special: false }, { result: D_APP_PASSWORD }),
      res("aws:secretsmanager/secret:Secret", "acme-master-secret", { name: masterName, kmsKeyId: D_KEY_ARN, recoveryWindowInDays: 30, tags: tg() }, { arn: secretArn(masterName, "Ab12Cd") }),
      res("aws:secretsmanager/secretVersion:SecretVersion", "acme-master-secret-version", {
        secretId: secretArn(masterName, "Ab12Cd"),
        secretString: secret(JSON.stringify({ username: "master", password: D_MASTER_PASSWORD })),
      }),
      res("aws:secretsmanager/secret:Secret", "acme-database-secret", { name: dbName, kmsKeyId: D_KEY_ARN, tags: tg() }, { arn: secretArn(dbName, "Ef34Gh") }),
      res("aws:secretsmanager/secretVersion:SecretVersion", "acme-database-secret-version", {
        secretId: secretArn(dbName, "Ef34Gh"),
        secretString: secret(
          JSON.stringify({ host: privateDbHostname(t, "prod"), port: 5432, dbname: "app", username: ident, password: D_APP_PASSWORD, schema: ident }),
        ),
      }),
      res(
        "aws:rds/instance:Instance",
        "acme-db",
        {
          identifier: "tenancy-prod-acme",
          engine: "postgres",
          engineVersion: "16.4",
          instanceClass: "db.r6g.large",
          allocatedStorage: 200,
          username: "master",
          password: secret(D_MASTER_PASSWORD),
          storageEncrypted: true,
          kmsKeyId: D_KEY_ARN,
          publiclyAccessible: false,
          multiAz: true,
          backupRetentionPeriod: 14,
          deletionProtection: true,
          skipFinalSnapshot: false,
          finalSnapshotIdentifier: "tenancy-prod-acme-final",
          performanceInsightsEnabled: true,
          performanceInsightsKmsKeyId: D_KEY_ARN,
          tags: tg(),
        },
        { address: dbAddress, arn: `arn:aws:rds:${REGION}:${ACCOUNT}:db:tenancy-prod-acme` },
      ),
      res(
        "aws:ec2/securityGroup:SecurityGroup",
        "acme-db-sg",
        {
          description: "acme database",
          vpcId: "vpc-0acme",
          ingress: [{ protocol: "tcp", fromPort: 5432, toPort: 5432, securityGroups: ["sg-0acmeapp"], cidrBlocks: [] }],
          egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }],
          tags: tg(),
        },
        { arn: `arn:aws:ec2:${REGION}:${ACCOUNT}:security-group/sg-0acmedb` },
      ),
      res("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "acme-db-from-control-plane", {
        securityGroupId: "sg-0acmedb",
        ipProtocol: "tcp",
        fromPort: 5432,
        toPort: 5432,
        cidrIpv4: "10.0.0.0/16",
        tags: tg(),
      }),
      res("aws:ec2/securityGroupRule:SecurityGroupRule", "acme-app-https", {
        type: "ingress",
        securityGroupId: "sg-0acmeapp",
        protocol: "tcp",
        fromPort: 443,
        toPort: 443,
        cidrBlocks: ["0.0.0.0/0"],
      }),
      res("aws:cloudwatch/logGroup:LogGroup", "acme-flow-logs", { name: "/tenancy/prod/acme/vpc-flow-logs", kmsKeyId: D_KEY_ARN, retentionInDays: 90, tags: tg() }),
      res("aws:s3/bucket:Bucket", "acme-bucket", { bucket, tags: tg() }, { arn: `arn:aws:s3:::${bucket}` }),
      res("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "acme-bucket-sse", {
        bucket,
        rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: D_KEY_ARN }, bucketKeyEnabled: true }],
      }),
      ...bucketRetentionAudit("acme-bucket", bucket, env),
      res("aws:route53/zone:Zone", "acme-zone", { name: zone, tags: tg() }, { zoneId: "ZACMEPUBLIC0001" }),
      res("aws:route53/record:Record", "acme-zone-delegation", { zoneId: "Z0EXAMPLE0PARENT", name: zone, type: "NS", ttl: 300, records: ["ns-1.awsdns-1.com"] }),
      res("aws:route53/record:Record", "acme-ingress", { zoneId: "ZACMEPUBLIC0001", name: zone, type: "CNAME", ttl: 60, records: ["ingress.acme.example.net"] }),
      res("aws:route53/zone:Zone", "acme-private-zone", { name: privateZoneName(t, "prod"), vpcs: [{ vpcId: "vpc-0acme" }], tags: tg() }, { zoneId: "ZACMEPRIVATE001" }),
      res("aws:route53/record:Record", "acme-db-record", { zoneId: "ZACMEPRIVATE001", name: "db", type: "CNAME", ttl: 60, records: [dbAddress] }),
      res("aws:iam/role:Role", "acme-role", { name: role, assumeRolePolicy: trustPolicy(t), tags: tg() }, { arn: `arn:aws:iam::${ACCOUNT}:role/${role}` }),
      res("aws:iam/rolePolicy:RolePolicy", "acme-role-policy", {
        role,
        policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            { Sid: "Secrets", Effect: "Allow", Action: ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], Resource: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${tenantSecretPrefix(APP, env, t)}*` },
            { Sid: "Key", Effect: "Allow", Action: ["kms:Decrypt", "kms:GenerateDataKey"], Resource: D_KEY_ARN },
            { Sid: "Objects", Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], Resource: `arn:aws:s3:::${bucket}/*` },
            { Sid: "List", Effect: "Allow", Action: "s3:ListBucket", Resource: `arn:aws:s3:::${bucket}` },
          ],
        }),
      }),
      res("pulumi:providers:postgresql", "acme-pg", { host: dbAddress, port: 5432, username: "master", password: secret(D_MASTER_PASSWORD), superuser: false, sslmode: "require" }),
      res("postgresql:index/role:Role", "acme-pg-role", {
        name: ident,
        login: true,
        password: secret(D_APP_PASSWORD),
        superuser: false,
        createDatabase: false,
        createRole: false,
        bypassRowLevelSecurity: false,
        replication: false,
        searchPaths: [ident],
        connectionLimit: 50,
      }),
      res("postgresql:index/schema:Schema", "acme-pg-schema", { name: ident, owner: ident, database: "app" }),
      res("postgresql:index/grant:Grant", "acme-pg-connect", { database: "app", role: ident, objectType: "database", privileges: ["CONNECT"] }),
      res("postgresql:index/grant:Grant", "acme-pg-revoke-public-create", { database: "app", role: "public", schema: "public", objectType: "schema", privileges: [] }),
      res("postgresql:index/defaultPrivileges:DefaultPrivileges", "acme-pg-default-tables", {
        database: "app",
        role: ident,
        owner: ident,
        schema: ident,
        objectType: "table",
        privileges: ["SELECT", "INSERT", "UPDATE", "DELETE"],
      }),
    ],
  };
}

// --- shared-prod-use1-01 -----------------------------------------------------------------------

export const CELL = "use1-01";
export const POOLED = ["globex", "initech"] as const;
const C_KEY_ID = "0c2f7b3d-2222-4b4b-9c9c-cell00000001";
export const C_KEY_ARN = keyArn(C_KEY_ID);
export const C_MASTER_PASSWORD = "Y2VsbC1tYXN0ZXItcGFzc3dvcmQtMDE0";

function pooledTenant(t: string, env: string, stack: string, cellBucket: string, password: string): FixtureResource[] {
  const tg = () => ({ ...tags(t, env, stack) });
  const ident = pgTenantIdent(t);
  const dbName = databaseSecretName(APP, env, t);
  const role = tenantRoleName(APP, env, t);
  const prefix = tenantObjectPrefix(t);
  return [
    res("random:index/randomPassword:RandomPassword", `${t}-password`, { length: 32, special: false }, { result: password }),
    res("aws:secretsmanager/secret:Secret", `${t}-database-secret`, { name: dbName, kmsKeyId: C_KEY_ARN, tags: tg() }, { arn: secretArn(dbName, "Xy12Zw") }),
    res("aws:secretsmanager/secretVersion:SecretVersion", `${t}-database-secret-version`, {
      secretId: secretArn(dbName, "Xy12Zw"),
      secretString: secret(JSON.stringify({ host: "cell.example.internal", port: 5432, dbname: "cell", username: ident, password, schema: ident })),
    }),
    res(
      "aws:secretsmanager/secret:Secret",
      `${t}-team-data-warehouse`,
      { name: teamSecretName(APP, env, t, "data", "warehouse"), kmsKeyId: C_KEY_ARN, tags: tg() },
      { arn: secretArn(teamSecretName(APP, env, t, "data", "warehouse"), "Tm56Qr") },
    ),
    res("aws:iam/role:Role", `${t}-role`, { name: role, assumeRolePolicy: trustPolicy(t), tags: tg() }, { arn: `arn:aws:iam::${ACCOUNT}:role/${role}` }),
    res("aws:iam/rolePolicy:RolePolicy", `${t}-role-policy`, {
      role,
      policy: JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          { Sid: "Secrets", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${tenantSecretPrefix(APP, env, t)}*` },
          {
            Sid: "DecryptViaSecretsManager",
            Effect: "Allow",
            Action: "kms:Decrypt",
            Resource: C_KEY_ARN,
            Condition: { StringEquals: { "kms:ViaService": `secretsmanager.${REGION}.amazonaws.com` } },
          },
          { Sid: "Objects", Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject"], Resource: `arn:aws:s3:::${cellBucket}/${prefix}*` },
          { Sid: "List", Effect: "Allow", Action: "s3:ListBucket", Resource: `arn:aws:s3:::${cellBucket}`, Condition: { StringLike: { "s3:prefix": [`${prefix}*`] } } },
        ],
      }),
    }),
    res("aws:route53/record:Record", `${t}-dns`, { zoneId: "Z0EXAMPLE0PARENT", name: pooledHostname(t, DOMAIN), type: "CNAME", ttl: 60, records: ["ingress-use1-01.tenancy.example.com"] }),
    res("postgresql:index/role:Role", `${t}-pg-role`, { name: ident, login: true, password: secret(password), searchPaths: [ident], superuser: false, statementTimeout: 30000 }),
    res("postgresql:index/schema:Schema", `${t}-pg-schema`, { name: ident, owner: ident, database: "cell" }),
    res("postgresql:index/grant:Grant", `${t}-pg-connect`, { database: "cell", role: ident, objectType: "database", privileges: ["CONNECT"] }),
    res("postgresql:index/grant:Grant", `${t}-pg-tables`, { database: "cell", role: ident, schema: ident, objectType: "table", privileges: ["SELECT", "INSERT", "UPDATE", "DELETE"] }),
  ];
}

export function sharedStack(): FixtureStack {
  const env = "prod";
  const stack = `shared-${env}-${CELL}`;
  const tg = () => ({ ...tags("shared", env, stack) });
  const bucket = cellBucketName(APP, env, CELL, ACCOUNT);
  const cellSecret = cellDatabaseSecretName(APP, env, CELL);
  return {
    name: stack,
    outputs: { cell: CELL, tenants: [...POOLED] },
    resources: [
      res("aws:kms/key:Key", "cell-key", { description: "cell use1-01", enableKeyRotation: true, tags: tg() }, { arn: C_KEY_ARN, keyId: C_KEY_ID }),
      res("aws:kms/alias:Alias", "cell-key-alias", { name: cellKmsAlias(APP, env, CELL), targetKeyId: C_KEY_ID }),
      res("random:index/randomPassword:RandomPassword", "cell-master-password", { length: 32, special: false }, { result: C_MASTER_PASSWORD }),
      res("aws:secretsmanager/secret:Secret", "cell-database-secret", { name: cellSecret, kmsKeyId: C_KEY_ARN, tags: tg() }, { arn: secretArn(cellSecret, "Ce11Aa") }),
      res("aws:secretsmanager/secretVersion:SecretVersion", "cell-database-secret-version", {
        secretId: secretArn(cellSecret, "Ce11Aa"),
        secretString: secret(JSON.stringify({ username: "master", password: C_MASTER_PASSWORD })),
      }),
      res("aws:rds/instance:Instance", "cell-db", {
        identifier: "tenancy-prod-use1-01",
        engine: "postgres",
        instanceClass: "db.r6g.large",
        username: "master",
        password: secret(C_MASTER_PASSWORD),
        storageEncrypted: true,
        kmsKeyId: C_KEY_ARN,
        publiclyAccessible: false,
        backupRetentionPeriod: 7,
        deletionProtection: true,
        finalSnapshotIdentifier: "tenancy-prod-use1-01-final",
        tags: tg(),
      }),
      res("aws:ec2/securityGroup:SecurityGroup", "cell-db-sg", {
        description: "cell database",
        ingress: [
          { protocol: "tcp", fromPort: 5432, toPort: 5432, securityGroups: ["sg-0cellapp"] },
          { protocol: "tcp", fromPort: 5432, toPort: 5432, cidrBlocks: ["10.0.0.0/16"] },
        ],
        tags: tg(),
      }),
      res("aws:s3/bucket:Bucket", "cell-bucket", { bucket, tags: tg() }, { arn: `arn:aws:s3:::${bucket}` }),
      res("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "cell-bucket-sse", {
        bucket,
        rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: C_KEY_ARN } }],
      }),
      ...bucketRetentionAudit("cell-bucket", bucket, env),
      res("postgresql:index/grant:Grant", "cell-revoke-public-connect", { database: "cell", role: "public", objectType: "database", privileges: [] }),
      ...pooledTenant("globex", env, stack, bucket, "Z2xvYmV4LXJvbGUtcGFzc3dvcmQtMDAx"),
      ...pooledTenant("initech", env, stack, bucket, "aW5pdGVjaC1yb2xlLXBhc3N3b3JkLTAy"),
    ],
  };
}

/** The violation the pack reports, at the level the pack gives every policy (mandatory). */
export function violation(policy: string, urnValue: string, message: string) {
  return { policy, level: "mandatory" as const, urn: urnValue, message };
}

/** Adds a resource (tagged like its neighbours when `tagged`) and returns it. */
export function add(
  stack: FixtureStack,
  type: string,
  name: string,
  inputs: Record<string, unknown>,
  computed: Record<string, unknown> = {},
): FixtureResource {
  const r: FixtureResource = { type, name, inputs, computed, parent: "" };
  stack.resources.push(r);
  return r;
}

/** The tags of docs/stacks.md for a resource of `tenant` in this fixture stack. */
export function tagsFor(stack: FixtureStack, tenant: string): Record<string, string> {
  const env = stack.name.startsWith("shared-") ? stack.name.split("-")[1]! : stack.name.split("-").at(-1)!;
  return { ...tags(tenant, env, stack.name) };
}

export function remove(stack: FixtureStack, name: string): void {
  stack.resources = stack.resources.filter((r) => r.name !== name);
}
