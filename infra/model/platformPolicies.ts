/**
 * IAM and KMS documents of the platform stacks (docs/network.md, docs/deploying.md), as plain
 * data like accessPolicies.ts: the control-plane role, the deployer role `pulumi up` runs as,
 * the runners' task roles, the ECS task execution role and the platform key. Pure; ARNs are
 * built from region, account and the naming conventions, so a role may be named before the
 * stack that creates it exists (trust through aws:PrincipalArn, which IAM accepts for a role
 * that does not exist yet, where a Principal naming it would be rejected).
 */
import { logGroupArn, roleArn, service, type PolicyDocument } from "./accessPolicies.ts";
import { deployerRoleName, globalSecretPrefix, runnerRoleName } from "./naming.ts";

function doc<V>(...statements: PolicyDocument<V>["Statement"]): PolicyDocument<V> {
  return { Version: "2012-10-17", Statement: statements };
}

/** ECS tasks of this account only (confused-deputy protection for a service principal). */
export function ecsTasksTrustPolicy(accountId: string): PolicyDocument {
  return doc({
    Sid: "EcsTasksOfThisAccount",
    Effect: "Allow",
    Principal: { Service: "ecs-tasks.amazonaws.com" },
    Action: "sts:AssumeRole",
    Condition: { StringEquals: { "aws:SourceAccount": accountId } },
  });
}

/**
 * The deployer role: assumed by the runners' task roles of every platform region (the runner
 * runs `pulumi up`), and by nothing else. A person deploys through a runner task (docs/deploying.md).
 */
export function deployerTrustPolicy(accountId: string, app: string, regions: readonly string[]): PolicyDocument {
  return doc({
    Sid: "RunnersAssume",
    Effect: "Allow",
    Principal: { AWS: `arn:aws:iam::${accountId}:root` },
    Action: "sts:AssumeRole",
    Condition: { ArnEquals: { "aws:PrincipalArn": regions.map((r) => roleArn(accountId, runnerRoleName(app, r))) } },
  });
}

/**
 * What `pulumi up` of every stack kind creates and changes: the services the program declares
 * resources of. IAM is limited to the roles and policies of this app (`<app>-*`), and to passing
 * them to the services that take a role (ECS tasks, VPC flow logs); nothing outside the account.
 */
export function deployerPolicy(accountId: string, app: string): PolicyDocument {
  return doc(
    {
      Sid: "ManageDeclaredServices",
      Effect: "Allow",
      Action: [
        "ec2:*", "rds:*", "kms:*", "secretsmanager:*", "s3:*", "route53:*", "logs:*", "ecs:*",
        "elasticloadbalancing:*", "acm:*", "ssm:GetParameter*", "ssm:DescribeParameters", "sts:GetCallerIdentity",
        // The storage alarms and their topics (infra/components/storageAlarms.ts).
        "cloudwatch:*", "sns:*",
      ],
      Resource: "*",
    },
    {
      // The runtime config and routing documents (docs/runtime-config.md): the AWS provider's
      // aws.ssm.Parameter creates and updates with PutParameter (tags on create need
      // AddTagsToResource), reads with GetParameter, DescribeParameters and ListTagsForResource,
      // and deletes with DeleteParameter (terraform-provider-aws internal/service/ssm/parameter.go).
      Sid: "ManageOwnParameters",
      Effect: "Allow",
      Action: ["ssm:PutParameter", "ssm:DeleteParameter", "ssm:AddTagsToResource", "ssm:RemoveTagsFromResource", "ssm:ListTagsForResource"],
      Resource: `arn:aws:ssm:*:${accountId}:parameter/${app}/*`,
    },
    {
      Sid: "ManageOwnRolesAndPolicies",
      Effect: "Allow",
      Action: ["iam:*Role*", "iam:*Policy*", "iam:TagRole", "iam:UntagRole", "iam:ListInstanceProfilesForRole"],
      Resource: [`arn:aws:iam::${accountId}:role/${app}-*`, `arn:aws:iam::${accountId}:policy/${app}-*`],
    },
    {
      Sid: "PassOwnRolesToServices",
      Effect: "Allow",
      Action: "iam:PassRole",
      Resource: `arn:aws:iam::${accountId}:role/${app}-*`,
      Condition: { StringEquals: { "iam:PassedToService": ["ecs-tasks.amazonaws.com", "vpc-flow-logs.amazonaws.com"] } },
    },
    {
      Sid: "ServiceLinkedRoles",
      Effect: "Allow",
      Action: "iam:CreateServiceLinkedRole",
      Resource: "*",
      Condition: { StringEquals: { "iam:AWSServiceName": ["ecs.amazonaws.com", "elasticloadbalancing.amazonaws.com", "rds.amazonaws.com"] } },
    },
  );
}

/**
 * A runner's task: it assumes the deployer role, and opens ECS exec sessions (how a person runs
 * `pulumi up` by hand); nothing else (its database URL comes in through the execution role).
 */
export function runnerTaskPolicy(accountId: string, app: string): PolicyDocument {
  return doc(
    { Sid: "AssumeDeployer", Effect: "Allow", Action: "sts:AssumeRole", Resource: roleArn(accountId, deployerRoleName(app)) },
    {
      Sid: "EcsExecSessions",
      Effect: "Allow",
      Action: ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"],
      Resource: "*",
    },
  );
}

/**
 * The control-plane role (the control plane's task role): it assumes tenant roles with a tenant
 * session tag (their trust policies name this role) and reads the platform's global secrets.
 */
export function controlPlanePolicy<V>(a: { region: string; accountId: string; app: string; env: string; keyArn: V }): PolicyDocument<V> {
  return doc<V>(
    {
      Sid: "AssumeTenantRolesWithTag",
      Effect: "Allow",
      Action: ["sts:AssumeRole", "sts:TagSession"],
      Resource: `arn:aws:iam::${a.accountId}:role/${a.app}-*-t-*`,
    },
    {
      Sid: "ReadGlobalSecrets",
      Effect: "Allow",
      Action: ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
      Resource: `arn:aws:secretsmanager:${a.region}:${a.accountId}:secret:${globalSecretPrefix(a.app, a.env)}*`,
    },
    {
      Sid: "DecryptGlobalSecrets",
      Effect: "Allow",
      Action: "kms:Decrypt",
      Resource: a.keyArn,
      Condition: { StringEquals: { "kms:ViaService": service("secretsmanager", a.region) } },
    },
  );
}

/**
 * The ECS task execution role of a region: pull the image from ECR, write the tasks' log groups,
 * read the secrets injected into the tasks (the control plane's, in the global namespace;
 * decrypted through Secrets Manager). A runner outside the control plane's region reads the
 * database URL secret of that region by its full ARN (ECS resolves a secret of another region
 * when given the full ARN).
 */
export function taskExecutionPolicy(a: { region: string; accountId: string; app: string; env: string; logGroups: readonly string[]; secretRegions: readonly string[] }): PolicyDocument {
  return doc(
    { Sid: "PullImages", Effect: "Allow", Action: ["ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"], Resource: "*" },
    {
      Sid: "WriteTaskLogs",
      Effect: "Allow",
      Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
      Resource: a.logGroups.map((g) => `${logGroupArn(a.region, a.accountId, g)}:*`),
    },
    {
      Sid: "ReadInjectedSecrets",
      Effect: "Allow",
      Action: "secretsmanager:GetSecretValue",
      Resource: a.secretRegions.map((r) => `arn:aws:secretsmanager:${r}:${a.accountId}:secret:${globalSecretPrefix(a.app, a.env)}control-plane/*`),
    },
    {
      Sid: "DecryptInjectedSecrets",
      Effect: "Allow",
      Action: "kms:Decrypt",
      // The platform keys of the regions holding the secrets; only as Secrets Manager decrypts them.
      Resource: a.secretRegions.map((r) => `arn:aws:kms:${r}:${a.accountId}:key/*`),
      Condition: { StringEquals: { "kms:ViaService": a.secretRegions.map((r) => service("secretsmanager", r)) } },
    },
  );
}

/** The platform key of a region: account root (IAM grants use), CloudWatch Logs for the platform's log groups. */
export function platformKeyPolicy(region: string, accountId: string, logGroups: readonly string[]): PolicyDocument {
  return doc(
    { Sid: "AccountRootAdministers", Effect: "Allow", Principal: { AWS: `arn:aws:iam::${accountId}:root` }, Action: "kms:*", Resource: "*" },
    {
      Sid: "CloudWatchLogsEncryptsPlatformLogGroups",
      Effect: "Allow",
      Principal: { Service: service("logs", region) },
      Action: ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
      Resource: "*",
      Condition: { ArnEquals: { "kms:EncryptionContext:aws:logs:arn": logGroups.map((g) => logGroupArn(region, accountId, g)) } },
    },
  );
}
