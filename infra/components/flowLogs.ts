import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { flowLogDeliveryPolicy, flowLogTrustPolicy } from "../model/accessPolicies.ts";
import { componentType, policyJson, tagsFor, type StackContext } from "./context.ts";

export interface VpcFlowLogsArgs {
  ctx: StackContext;
  owner: string;
  vpcId: pulumi.Input<string>;
  /** flowLogGroupName(): also listed in the key's policy, so CloudWatch Logs may use the key for it. */
  logGroupName: string;
  /** flowLogRoleName(). */
  roleName: string;
  /** The key encrypting the log group (a dedicated tenant's key). */
  kmsKeyArn: pulumi.Input<string>;
  retentionInDays: number;
  /**
   * What is logged: every flow (a dedicated VPC: one tenant's traffic, the forensic record) or
   * only rejected ones (a cell: the multi-tenant bulk of accepted database traffic is not worth
   * its ingestion; docs/network.md, "Flow logs").
   */
  trafficType: "ALL" | "REJECT";
}

/**
 * VPC flow logs to a KMS-encrypted CloudWatch log group with a retention, through a delivery
 * role only VPC Flow Logs of this account may assume.
 *
 * A destroy (offboarding, a cell taken down) deletes the log group with its logs, like every
 * resource but the key: kept, its name would make the stack impossible to create again (a
 * returning tenant, a re-created cell). What to export first is in docs/network.md, "Flow logs".
 *
 * Child names: `<name>` (log group, role, role policy, flow log).
 */
export class VpcFlowLogs extends pulumi.ComponentResource {
  constructor(name: string, args: VpcFlowLogsArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("VpcFlowLogs"), name, {}, opts);
    const { ctx } = args;
    const t = tagsFor(ctx, args.owner);
    const group = new aws.cloudwatch.LogGroup(
      name,
      { name: args.logGroupName, kmsKeyId: args.kmsKeyArn, retentionInDays: args.retentionInDays, tags: t },
      { parent: this },
    );
    const role = new aws.iam.Role(
      name,
      { name: args.roleName, assumeRolePolicy: policyJson(flowLogTrustPolicy(ctx.region, ctx.accountId)), tags: t },
      { parent: this },
    );
    new aws.iam.RolePolicy(
      name,
      { role: role.name, name: "deliver-flow-logs", policy: policyJson(flowLogDeliveryPolicy(ctx.region, ctx.accountId, args.logGroupName)) },
      { parent: this },
    );
    new aws.ec2.FlowLog(
      name,
      {
        vpcId: args.vpcId,
        trafficType: args.trafficType,
        logDestinationType: "cloud-watch-logs",
        logDestination: group.arn,
        iamRoleArn: role.arn,
        tags: t,
      },
      { parent: this },
    );
    this.registerOutputs({ logGroupArn: group.arn });
  }
}
