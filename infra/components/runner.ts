import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { POSTGRES_PORT } from "../model/database.ts";
import type { HubDestination } from "../model/hub.ts";
import { runnerTaskPolicy, ecsTasksTrustPolicy } from "../model/platformPolicies.ts";
import { SHARED_TENANT, runnerRoleName } from "../model/naming.ts";
import { componentType, policyJson, tagsFor, type StackContext } from "./context.ts";

/**
 * Fargate size of a runner task: `pulumi up` of a 1,000-tenant cell holds the whole stack's
 * state and the provider plugins in memory (BENCHMARKS.md: the plan of a 100-tenant cell alone
 * takes ~1 GB); 4 GB leaves room for the lifecycle copies' streams.
 */
export const RUNNER_CPU = "1024";
export const RUNNER_MEMORY_MB = "4096";
/** Environment variable naming the regions a worker takes stack runs for (automation/runs, region routing). */
export const WORKER_REGIONS_ENV = "TENANCY_WORKER_REGIONS";

export interface RunnerArgs {
  ctx: StackContext;
  vpcId: pulumi.Input<string>;
  /** The hub's runner subnets (hubLayout().runner): the CIDRs every spoke database of the region admits. */
  subnetIds: pulumi.Input<string>[];
  image: string;
  clusterArn: pulumi.Input<string>;
  executionRoleArn: pulumi.Input<string>;
  logGroup: string;
  /** The control plane's database URL secret (in the control plane's region; full ARN). */
  databaseUrlSecretArn: pulumi.Input<string>;
  /** Where its Postgres connections go: the region's spokes and the control plane's services subnets. */
  postgresDestinations: readonly Pick<HubDestination, "key" | "cidr">[];
}

/**
 * A region's runner (docs/deploying.md): an ECS Fargate service of the control plane's image
 * whose workers take the stack runs and lifecycle copies of this region only, in the hub VPC.
 * Its security group admits nothing; it sends HTTPS anywhere (AWS APIs through the endpoints,
 * GitHub and the state backend through NAT) and Postgres only to the region's spokes and the
 * control plane's database. ECS exec is on: it is how a person runs `pulumi up` by hand.
 *
 * Child names (name = `runner-<region code>`): `<name>-role` (role, inline policy), `<name>-sg`,
 * `<name>-https-out`, `<name>-pg-<destination key>`, `<name>` (task definition, service). Never change them.
 */
export class Runner extends pulumi.ComponentResource {
  readonly securityGroupId: pulumi.Output<string>;
  readonly roleArn: pulumi.Output<string>;

  constructor(name: string, args: RunnerArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("Runner"), name, {}, opts);
    const { ctx } = args;
    const t = tagsFor(ctx, SHARED_TENANT);
    const role = new aws.iam.Role(
      `${name}-role`,
      {
        name: runnerRoleName(ctx.app, ctx.region),
        description: `Runner of ${ctx.region}: assumes the deployer role to run pulumi up`,
        assumeRolePolicy: policyJson(ecsTasksTrustPolicy(ctx.accountId)),
        tags: t,
      },
      { parent: this },
    );
    new aws.iam.RolePolicy(`${name}-role`, { role: role.name, name: "runner", policy: policyJson(runnerTaskPolicy(ctx.accountId, ctx.app)) }, { parent: this });
    this.roleArn = role.arn;

    const sg = new aws.ec2.SecurityGroup(
      `${name}-sg`,
      { vpcId: args.vpcId, description: `Runner of ${ctx.region}: no ingress; HTTPS out, Postgres to the region's databases`, tags: t },
      { parent: this },
    );
    new aws.vpc.SecurityGroupEgressRule(
      `${name}-https-out`,
      { securityGroupId: sg.id, cidrIpv4: "0.0.0.0/0", ipProtocol: "tcp", fromPort: 443, toPort: 443, description: "AWS APIs, GitHub, the Pulumi state backend", tags: t },
      { parent: this },
    );
    for (const d of args.postgresDestinations) {
      new aws.vpc.SecurityGroupEgressRule(
        `${name}-pg-${d.key}`,
        { securityGroupId: sg.id, cidrIpv4: d.cidr, ipProtocol: "tcp", fromPort: POSTGRES_PORT, toPort: POSTGRES_PORT, description: `Postgres to ${d.key}`, tags: t },
        { parent: this },
      );
    }
    this.securityGroupId = sg.id;

    const taskDefinition = new aws.ecs.TaskDefinition(
      name,
      {
        family: `${ctx.app}-runner`,
        requiresCompatibilities: ["FARGATE"],
        networkMode: "awsvpc",
        cpu: RUNNER_CPU,
        memory: RUNNER_MEMORY_MB,
        executionRoleArn: args.executionRoleArn,
        taskRoleArn: role.arn,
        runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture: "X86_64" },
        containerDefinitions: pulumi.jsonStringify([
          {
            name: "runner",
            image: args.image,
            essential: true,
            environment: [{ name: WORKER_REGIONS_ENV, value: ctx.region }],
            secrets: [{ name: "DATABASE_URL", valueFrom: args.databaseUrlSecretArn }],
            readonlyRootFilesystem: false,
            logConfiguration: { logDriver: "awslogs", options: { "awslogs-group": args.logGroup, "awslogs-region": ctx.region, "awslogs-stream-prefix": "runner" } },
          },
        ]),
        tags: t,
      },
      { parent: this },
    );
    new aws.ecs.Service(
      name,
      {
        name: `${ctx.app}-runner`,
        cluster: args.clusterArn,
        taskDefinition: taskDefinition.arn,
        desiredCount: 1,
        launchType: "FARGATE",
        enableExecuteCommand: true,
        propagateTags: "SERVICE",
        networkConfiguration: { subnets: args.subnetIds, securityGroups: [sg.id], assignPublicIp: false },
        tags: t,
      },
      { parent: this },
    );
    this.registerOutputs({ securityGroupId: this.securityGroupId, roleArn: this.roleArn });
  }
}
