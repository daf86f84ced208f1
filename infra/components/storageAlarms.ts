import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { alarmSpecProblems, alarmTopicName, type StorageAlarmSpec } from "../model/storageAlarms.ts";
import { componentType, tagsFor, type StackContext } from "./context.ts";

export interface StorageAlarmsArgs {
  ctx: StackContext;
  /** The cell id or the dedicated tenant id: names the topic. */
  owner: string;
  /** The topic's `tenant` tag: `shared` in a cell, the tenant in a dedicated stack. */
  ownerTag: string;
  /** pooledStorageAlarms / dedicatedStorageAlarms (infra/model/storageAlarms.ts). */
  alarms: readonly StorageAlarmSpec[];
}

/**
 * The stack's SNS topic `<app>-<env>-<owner>-alarms` and one CloudWatch alarm per spec, alarming
 * and recovering to that topic (docs/runtime-config.md). Operators subscribe to the topic (email,
 * chat, paging) out of band; the program declares no subscription. The topic is not encrypted:
 * CloudWatch cannot publish to a topic under the AWS-managed SNS key, and an alarm carries a
 * tenant id and a number, no tenant data.
 *
 * A tenant's alarm is declared while its tenant is, in the stack that serves (pooled) or holds
 * (dedicated) the storage it watches, and is deleted with it (offboarding, an upgrade's cutover, a
 * cell move's switch); a cell's own database alarm (`shared`) lives as long as the cell. Never retained.
 * Child names: `<name>-topic`, `<name>-<tenant or shared>-<key>`. Never change them.
 */
export class StorageAlarms extends pulumi.ComponentResource {
  readonly topicArn: pulumi.Output<string>;

  constructor(name: string, args: StorageAlarmsArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("StorageAlarms"), name, {}, opts);
    const { ctx } = args;
    // The specs come from the model, which only builds acceptable ones; an error here is a bug in it.
    const problems = args.alarms.flatMap(alarmSpecProblems);
    if (problems.length > 0) throw new Error(`storage alarms of ${ctx.stack}: CloudWatch would refuse them:\n - ${problems.join("\n - ")}`);
    const topic = new aws.sns.Topic(`${name}-topic`, { name: alarmTopicName(ctx.app, ctx.env, args.owner), tags: tagsFor(ctx, args.ownerTag) }, { parent: this });
    this.topicArn = topic.arn;
    for (const a of args.alarms) {
      new aws.cloudwatch.MetricAlarm(
        `${name}-${a.tenant}-${a.key}`,
        {
          name: a.alarmName,
          alarmDescription: a.description,
          namespace: a.namespace,
          metricName: a.metricName,
          dimensions: a.dimensions,
          statistic: a.statistic,
          period: a.period,
          evaluationPeriods: a.evaluationPeriods,
          threshold: a.threshold,
          comparisonOperator: a.comparisonOperator,
          treatMissingData: a.treatMissingData,
          alarmActions: [topic.arn],
          okActions: [topic.arn],
          tags: tagsFor(ctx, a.tenant),
        },
        { parent: this },
      );
    }
    this.registerOutputs({ topicArn: this.topicArn });
  }
}
