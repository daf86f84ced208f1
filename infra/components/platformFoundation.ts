import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { platformKeyPolicy, taskExecutionPolicy } from "../model/platformPolicies.ts";
import { SHARED_TENANT, platformKmsAlias, platformLogGroupName, taskExecutionRoleName } from "../model/naming.ts";
import { ecsTasksTrustPolicy } from "../model/platformPolicies.ts";
import { componentType, policyJson, tagsFor, type StackContext } from "./context.ts";
import { EncryptionKey } from "./encryptionKey.ts";

/** Days the platform's task logs are kept (the runner's logs are the record of every `pulumi up`). */
export const PLATFORM_LOG_RETENTION_DAYS = 365;

export interface PlatformFoundationArgs {
  ctx: StackContext;
  /** Regions whose control-plane secrets this region's tasks read (its own and the control plane's). */
  secretRegions: readonly string[];
  /** The control plane runs here too (its log group). */
  controlPlane: boolean;
}

/**
 * What every service of a platform stack shares: the platform key of the region (secrets,
 * database, log groups), the ECS cluster, the task execution role and the log groups.
 *
 * Child names (name = `platform-<region code>`): `<name>-key`, `<name>-cluster`,
 * `<name>-exec` (role, inline policy), `<name>-logs-<service>`. Never change them.
 */
export class PlatformFoundation extends pulumi.ComponentResource {
  readonly keyArn: pulumi.Output<string>;
  readonly clusterArn: pulumi.Output<string>;
  readonly executionRoleArn: pulumi.Output<string>;
  /** Log group names by service; `control-plane` only in the control plane's region. */
  readonly logGroups: Readonly<{ runner: string; "control-plane"?: string }>;

  constructor(name: string, args: PlatformFoundationArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("PlatformFoundation"), name, {}, opts);
    const { ctx } = args;
    const t = tagsFor(ctx, SHARED_TENANT);
    this.logGroups = {
      runner: platformLogGroupName(ctx.app, "runner"),
      ...(args.controlPlane ? { "control-plane": platformLogGroupName(ctx.app, "control-plane") } : {}),
    };
    const groups = Object.values(this.logGroups);
    const key = new EncryptionKey(
      `${name}-key`,
      {
        ctx,
        owner: SHARED_TENANT,
        description: `Platform of ${ctx.region}: control-plane secrets and database, platform log groups`,
        alias: platformKmsAlias(ctx.app, ctx.env, ctx.region),
        policy: policyJson(platformKeyPolicy(ctx.region, ctx.accountId, groups)),
        protect: true,
      },
      { parent: this },
    );
    this.keyArn = key.arn;
    for (const [service, group] of Object.entries(this.logGroups)) {
      new aws.cloudwatch.LogGroup(
        `${name}-logs-${service}`,
        { name: group, retentionInDays: PLATFORM_LOG_RETENTION_DAYS, kmsKeyId: key.arn, tags: t },
        { parent: this },
      );
    }
    const cluster = new aws.ecs.Cluster(
      `${name}-cluster`,
      { name: `${ctx.app}-${ctx.region}`, settings: [{ name: "containerInsights", value: "enabled" }], tags: t },
      { parent: this },
    );
    this.clusterArn = cluster.arn;
    const exec = new aws.iam.Role(
      `${name}-exec`,
      {
        name: taskExecutionRoleName(ctx.app, ctx.region),
        description: `ECS task execution in ${ctx.region}: image pull, task logs, the control plane's injected secrets`,
        assumeRolePolicy: policyJson(ecsTasksTrustPolicy(ctx.accountId)),
        tags: t,
      },
      { parent: this },
    );
    new aws.iam.RolePolicy(
      `${name}-exec`,
      {
        role: exec.name,
        name: "task-execution",
        policy: policyJson(taskExecutionPolicy({ region: ctx.region, accountId: ctx.accountId, app: ctx.app, env: ctx.env, logGroups: groups, secretRegions: args.secretRegions })),
      },
      { parent: this },
    );
    this.executionRoleArn = exec.arn;
    this.registerOutputs({ keyArn: this.keyArn, clusterArn: this.clusterArn, executionRoleArn: this.executionRoleArn });
  }
}
