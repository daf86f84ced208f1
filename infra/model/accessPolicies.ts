/**
 * IAM and KMS policy documents of the stacks, as plain data. Pure: the components serialise them
 * with pulumi.jsonStringify, so a key ARN may be an Output (type parameter V) while every other
 * ARN is a static string built from region, account and the naming conventions. No statement
 * ever names `*` as a resource of a data action, nor another tenant's namespace.
 */
import {
  masterSecretName, routingParameterPath, runtimeConfigParameterName, tenantObjectPrefix, tenantSecretPrefix,
} from "./naming.ts";

export interface PolicyStatement<V = string> {
  Sid: string;
  Effect: "Allow" | "Deny";
  Principal?: "*" | { AWS?: V | string; Service?: string };
  Action: string | string[];
  /** Absent in trust policies (IAM rejects a Resource there). */
  Resource?: V | string | (V | string)[];
  Condition?: Record<string, Record<string, V | string | (V | string)[]>>;
}

export interface PolicyDocument<V = string> {
  Version: "2012-10-17";
  Statement: PolicyStatement<V>[];
}

function doc<V>(...statements: PolicyStatement<V>[]): PolicyDocument<V> {
  return { Version: "2012-10-17", Statement: statements };
}

// --- ARNs ------------------------------------------------------------------------------------

/** Every secret of a tenant in an env (Secrets Manager appends `-XXXXXX` to names in ARNs: the `*` covers it). */
export function tenantSecretArnPattern(region: string, accountId: string, app: string, env: string, tenant: string): string {
  return `arn:aws:secretsmanager:${region}:${accountId}:secret:${tenantSecretPrefix(app, env, tenant)}*`;
}

/**
 * An SSM parameter's ARN: `parameter` followed by the name, whose leading "/" is not doubled
 * (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html#awssystemsmanager-resources-for-iam-policies).
 */
export function ssmParameterArn(region: string, accountId: string, name: string): string {
  return `arn:aws:ssm:${region}:${accountId}:parameter/${name.replace(/^\//, "")}`;
}

export function bucketArn(bucket: string): string {
  return `arn:aws:s3:::${bucket}`;
}

export function roleArn(accountId: string, roleName: string): string {
  return `arn:aws:iam::${accountId}:role/${roleName}`;
}

export function logGroupArn(region: string, accountId: string, name: string): string {
  return `arn:aws:logs:${region}:${accountId}:log-group:${name}`;
}

export function service(name: string, region: string): string {
  return `${name}.${region}.amazonaws.com`;
}

// --- Tenant role -----------------------------------------------------------------------------

/**
 * Trust policy of a tenant role: only the control-plane role may assume it, and only with the
 * session tag `tenant=<id>` (so a session of tenant a can never be a session of tenant b).
 */
export function tenantTrustPolicy(controlPlaneRoleArn: string, tenant: string): PolicyDocument {
  return doc({
    Sid: "ControlPlaneAssumesForThisTenant",
    Effect: "Allow",
    Principal: { AWS: controlPlaneRoleArn },
    Action: ["sts:AssumeRole", "sts:TagSession"],
    Condition: { StringEquals: { "aws:RequestTag/tenant": tenant } },
  });
}

export interface TenantAccessArgs<V> {
  region: string;
  accountId: string;
  app: string;
  env: string;
  tenant: string;
  /** The key that encrypts the tenant's secrets (cell key, or the tenant's own key). */
  secretsKeyArn: V;
  /**
   * Name the secrets key by its alias instead (a key another stack manages: the tenant's own key
   * moved to its dedicated stack while the cell still serves it). The grant is then on any key of
   * the account and region carrying that alias (condition kms:ResourceAliases).
   */
  secretsKeyAlias?: string;
  /** The bucket holding the tenant's objects, under tenantObjectPrefix (cell bucket or the tenant's own). */
  bucket: string;
  /** The key that encrypts the bucket. */
  bucketKeyArn: V;
  /**
   * S3 Bucket Keys on: S3 asks KMS with the bucket ARN as encryption context (dedicated buckets,
   * the tenant's alone). Off (cell buckets): the context is the object ARN, so decrypt can be
   * pinned to the tenant's prefix, at the price of one KMS request per object operation.
   */
  bucketKeyEnabled: boolean;
}

/**
 * The tenant role's only permissions: its runtime config document, its secrets, decrypting them via Secrets Manager with the
 * key that protects them (encryption context pinned to its namespace), its objects under
 * `tenants/<id>/`, and the KMS use S3 makes on its behalf for those objects (PutObject with
 * SSE-KMS needs GenerateDataKey). The master credentials of a dedicated database live inside the
 * tenant's namespace (`.../database/master`, docs/stacks.md) but are the platform's, not the tenant's:
 * an explicit Deny keeps them out of the tenant role's reach whatever the Allows say.
 */
export function tenantAccessPolicy<V>(a: TenantAccessArgs<V>): PolicyDocument<V> {
  const secrets = tenantSecretArnPattern(a.region, a.accountId, a.app, a.env, a.tenant);
  const prefix = tenantObjectPrefix(a.tenant);
  const objects = `${bucketArn(a.bucket)}/${prefix}*`;
  const s3Context: Record<string, Record<string, string>> = a.bucketKeyEnabled
    ? { StringEquals: { "kms:ViaService": service("s3", a.region), "kms:EncryptionContext:aws:s3:arn": bucketArn(a.bucket) } }
    : { StringEquals: { "kms:ViaService": service("s3", a.region) }, StringLike: { "kms:EncryptionContext:aws:s3:arn": objects } };
  const master = `arn:aws:secretsmanager:${a.region}:${a.accountId}:secret:${masterSecretName(a.app, a.env, a.tenant)}*`;
  return doc<V>(
    {
      Sid: "ReadOwnSecrets",
      Effect: "Allow",
      Action: ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
      Resource: secrets,
    },
    {
      Sid: "DecryptOwnSecrets",
      Effect: "Allow",
      Action: "kms:Decrypt",
      Resource: a.secretsKeyAlias === undefined ? a.secretsKeyArn : `arn:aws:kms:${a.region}:${a.accountId}:key/*`,
      Condition: {
        StringEquals: { "kms:ViaService": service("secretsmanager", a.region) },
        StringLike: { "kms:EncryptionContext:SecretARN": secrets },
        ...(a.secretsKeyAlias === undefined ? {} : { "ForAnyValue:StringEquals": { "kms:ResourceAliases": a.secretsKeyAlias } }),
      },
    },
    {
      Sid: "OwnObjects",
      Effect: "Allow",
      Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
      Resource: objects,
    },
    {
      Sid: "ListOwnPrefix",
      Effect: "Allow",
      Action: "s3:ListBucket",
      Resource: bucketArn(a.bucket),
      Condition: { StringLike: { "s3:prefix": [prefix, `${prefix}*`] } },
    },
    {
      Sid: "OwnObjectsEncryption",
      Effect: "Allow",
      Action: ["kms:Decrypt", "kms:GenerateDataKey"],
      Resource: a.bucketKeyArn,
      Condition: s3Context,
    },
    {
      // Its own runtime config document only (exact ARN: no wildcard can reach another tenant's).
      Sid: "ReadOwnRuntimeConfig",
      Effect: "Allow",
      Action: ["ssm:GetParameter", "ssm:GetParameters"],
      Resource: ssmParameterArn(a.region, a.accountId, runtimeConfigParameterName(a.app, a.env, a.tenant)),
    },
    {
      Sid: "NeverPlatformMasterCredentials",
      Effect: "Deny",
      Action: "secretsmanager:*",
      Resource: master,
    },
  );
}

// --- Application role -------------------------------------------------------------------------

/**
 * The application role of an env (applicationRoleName): reads every tenant's runtime config
 * document of its env and the routing document of its env in every platform region, in the
 * account; no write, no secret, no other env. Parameters are String (not SecureString): no KMS
 * grant is needed, IAM alone decides who reads them.
 */
export function applicationRolePolicy(a: { accountId: string; app: string; env: string; regions: readonly string[] }): PolicyDocument {
  return doc(
    {
      Sid: "ReadRuntimeConfigOfEnv",
      Effect: "Allow",
      Action: ["ssm:GetParameter", "ssm:GetParameters"],
      Resource: a.regions.map((r) => ssmParameterArn(r, a.accountId, runtimeConfigParameterName(a.app, a.env, "*"))),
    },
    {
      Sid: "ReadRoutingOfEnv",
      Effect: "Allow",
      Action: ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
      Resource: a.regions.flatMap((r) => {
        const path = routingParameterPath(a.app, a.env, r);
        // GetParametersByPath is authorised on the path itself (no trailing "/"), the others on each parameter.
        return [ssmParameterArn(r, a.accountId, path.replace(/\/$/, "")), ssmParameterArn(r, a.accountId, `${path}*`)];
      }),
    },
  );
}

// --- KMS key policies ------------------------------------------------------------------------

/**
 * The account root administers the key. This is KMS's default statement: it lets IAM policies
 * (the deployer's, the tenant role's) grant use of the key; without it nobody could manage it.
 */
function accountRootStatement<V>(accountId: string): PolicyStatement<V> {
  return {
    Sid: "AccountRootAdministers",
    Effect: "Allow",
    Principal: { AWS: `arn:aws:iam::${accountId}:root` },
    Action: "kms:*",
    Resource: "*",
  };
}

/**
 * CloudWatch Logs may use the key for the listed log groups only (the encryption context names the
 * group: https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html).
 */
function logsEncryptStatement<V>(sid: string, region: string, accountId: string, groups: readonly string[]): PolicyStatement<V> {
  return {
    Sid: sid,
    Effect: "Allow",
    Principal: { Service: service("logs", region) },
    Action: ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
    Resource: "*",
    Condition: { ArnEquals: { "kms:EncryptionContext:aws:logs:arn": groups.map((g) => logGroupArn(region, accountId, g)) } },
  };
}

/**
 * A cell key: the account root (tenant roles get use through their IAM policies, encryption
 * context pinned) and CloudWatch Logs for the cell's own log groups (its VPC flow logs).
 */
export function cellKeyPolicy(accountId: string, logs?: { region: string; logGroupNames: readonly string[] }): PolicyDocument {
  const statements: PolicyStatement<string>[] = [accountRootStatement(accountId)];
  if (logs && logs.logGroupNames.length > 0) statements.push(logsEncryptStatement("CloudWatchLogsEncryptsCellLogGroups", logs.region, accountId, logs.logGroupNames));
  return doc(...statements);
}

export interface TenantKeyPolicyArgs<V> {
  region: string;
  accountId: string;
  /** The tenant role (an Output: the role must exist before KMS accepts it as a principal). */
  tenantRoleArn: V;
  /** Log groups encrypted with the key (flow logs of a dedicated VPC): CloudWatch Logs may use it for those only. */
  logGroupNames?: readonly string[];
}

/**
 * A tenant key: the account root, the tenant's role (through Secrets Manager and S3 only), and
 * CloudWatch Logs for the tenant's own log groups. No other principal.
 */
export function tenantKeyPolicy<V>(a: TenantKeyPolicyArgs<V>): PolicyDocument<V> {
  const statements: PolicyStatement<V>[] = [
    accountRootStatement<V>(a.accountId),
    {
      Sid: "TenantRoleUsesThroughServices",
      Effect: "Allow",
      Principal: { AWS: a.tenantRoleArn },
      Action: ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
      Resource: "*",
      Condition: { StringEquals: { "kms:ViaService": [service("secretsmanager", a.region), service("s3", a.region)] } },
    },
  ];
  const groups = a.logGroupNames ?? [];
  if (groups.length > 0) statements.push(logsEncryptStatement("CloudWatchLogsEncryptsTenantLogGroups", a.region, a.accountId, groups));
  return doc(...statements);
}

// --- VPC flow logs ---------------------------------------------------------------------------

/** VPC Flow Logs may assume the delivery role only for this account's flow logs (confused-deputy guard). */
export function flowLogTrustPolicy(region: string, accountId: string): PolicyDocument {
  return doc({
    Sid: "VpcFlowLogsDelivers",
    Effect: "Allow",
    Principal: { Service: "vpc-flow-logs.amazonaws.com" },
    Action: "sts:AssumeRole",
    Condition: {
      StringEquals: { "aws:SourceAccount": accountId },
      ArnLike: { "aws:SourceArn": `arn:aws:ec2:${region}:${accountId}:vpc-flow-log/*` },
    },
  });
}

/** Write access to the one log group. */
export function flowLogDeliveryPolicy(region: string, accountId: string, logGroupName: string): PolicyDocument {
  return doc({
    Sid: "WriteFlowLogs",
    Effect: "Allow",
    Action: ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
    Resource: [`${logGroupArn(region, accountId, logGroupName)}:*`],
  });
}

// --- Buckets ---------------------------------------------------------------------------------

/** Every bucket refuses plain-HTTP requests (Security Hub S3.5). */
export function denyInsecureTransportPolicy(bucket: string): PolicyDocument {
  return doc({
    Sid: "DenyInsecureTransport",
    Effect: "Deny",
    Principal: "*",
    Action: "s3:*",
    Resource: [bucketArn(bucket), `${bucketArn(bucket)}/*`],
    Condition: { Bool: { "aws:SecureTransport": "false" } },
  });
}

/**
 * The access log bucket's policy: S3's log delivery service may write objects, only for source
 * buckets of this account whose names are the env's (`<app>-<env>-*`), as AWS's documented
 * bucket-policy grant for server access logging has it
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html);
 * plain HTTP is refused as on every bucket.
 */
export function accessLogBucketPolicy(logBucket: string, accountId: string, sourceBucketPrefix: string): PolicyDocument {
  return doc(
    {
      Sid: "S3ServerAccessLogDelivery",
      Effect: "Allow",
      Principal: { Service: "logging.s3.amazonaws.com" },
      Action: "s3:PutObject",
      Resource: `${bucketArn(logBucket)}/*`,
      Condition: { ArnLike: { "aws:SourceArn": `arn:aws:s3:::${sourceBucketPrefix}*` }, StringEquals: { "aws:SourceAccount": accountId } },
    },
    ...denyInsecureTransportPolicy(logBucket).Statement,
  );
}
