import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { MASTER_USERNAME, PG_SSLMODE, POSTGRES_PORT } from "../model/database.ts";
import { CONTROL_PLANE_PORT, hubLayout, planListenerRules } from "../model/hub.ts";
import {
  SHARED_TENANT, controlPlaneHostname, controlPlaneRoleName, controlPlaneSecretName, deployerRoleName,
} from "../model/naming.ts";
import { controlPlanePolicy, deployerPolicy, deployerTrustPolicy, ecsTasksTrustPolicy } from "../model/platformPolicies.ts";
import { componentType, policyJson, tagsFor, type StackContext } from "./context.ts";
import { PostgresInstance } from "./postgresInstance.ts";
import { WORKER_REGIONS_ENV } from "./runner.ts";

/** The control plane's own database: small, multi-AZ, two weeks of backups. */
export const CONTROL_PLANE_DB = {
  identifier: (app: string) => `${app}-control-plane`,
  dbName: "control_plane",
  instanceClass: "db.t4g.large",
  allocatedStorageGb: 50,
  /** Storage autoscaling ceiling: runs, events and workflow records grow with the fleet. */
  maxAllocatedStorageGb: 500,
  backupRetentionDays: 14,
} as const;
export const CONTROL_PLANE_CPU = "512";
export const CONTROL_PLANE_MEMORY_MB = "1024";
/** TLS 1.3 and 1.2 only (Elastic Load Balancing "Security policies for your Application Load Balancer"). */
export const ALB_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06";
/** The control plane's setting naming whose X-Forwarded-For it believes (automation/http/settings.ts). */
export const TRUST_PROXY_ENV = "TENANCY_TRUST_PROXY";
/** Resource name of the database URL secret: the offline renderer answers the platform StackReference with its ARN. */
export const DATABASE_URL_SECRET = "control-plane-database-url";

export interface ControlPlaneServiceArgs {
  ctx: StackContext;
  vpcId: pulumi.Input<string>;
  servicesSubnetIds: pulumi.Input<string>[];
  publicSubnetIds: pulumi.Input<string>[];
  image: string;
  clusterArn: pulumi.Input<string>;
  executionRoleArn: pulumi.Input<string>;
  keyArn: pulumi.Input<string>;
  logGroup: string;
  /**
   * The runners of every region, admitted by their subnets' CIDRs (runnerCidrs()): across the
   * Transit Gateway peering a security group cannot be referenced, and the runner subnets hold
   * nothing but runner tasks, so the local runner is admitted the same way.
   */
  runners: readonly { region: string; cidrs: readonly string[] }[];
}

/**
 * The control plane in its region (docs/control-plane.md, docs/network.md): an ECS Fargate
 * service behind an internet-facing ALB. HTTPS only (HTTP redirects), certificate for
 * `api.<domain>` validated in the platform's public zone; `/webhooks/stripe` open to anyone
 * (Stripe's deliveries are signature-checked), `/api/*` and `/console/*` only from the operator
 * CIDRs, everything else 404. The task group admits the ALB's group alone. Its own PostgreSQL
 * (no postgresql provider: the platform stack deploys before any path to a database exists);
 * its secrets in the global namespace; the control-plane role tenant roles trust (its task
 * role); the deployer role the runners assume for `pulumi up`.
 *
 * Child names (name = `control-plane`): `<name>-role`, `<name>-deployer`, `<name>-secret-<name>`,
 * `control-plane-database-url`, `<name>-alb-sg`, `<name>-task-sg`, `<name>-db-sg` and their rules,
 * `<name>-db`, `<name>-cert`, `<name>-cert-validation`, `<name>` (ALB, target group, task
 * definition, service), `<name>-https`, `<name>-http`, `<name>-rule-<key>`, `<name>-dns`. Never change them.
 */
export class ControlPlaneService extends pulumi.ComponentResource {
  readonly databaseUrlSecretArn: pulumi.Output<string>;
  readonly hostname: string;
  readonly loadBalancerDnsName: pulumi.Output<string>;

  constructor(name: string, args: ControlPlaneServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("ControlPlaneService"), name, {}, opts);
    const { ctx } = args;
    const t = tagsFor(ctx, SHARED_TENANT);
    const p = ctx.platform;

    // --- roles -------------------------------------------------------------------------------
    const role = new aws.iam.Role(
      `${name}-role`,
      {
        // Named before this stack existed (every tenant role's trust policy names it): never rename.
        name: controlPlaneRoleName(ctx.app),
        description: "The control plane: assumes tenant roles with a tenant session tag",
        assumeRolePolicy: policyJson(ecsTasksTrustPolicy(ctx.accountId)),
        tags: t,
      },
      { parent: this, protect: true },
    );
    new aws.iam.RolePolicy(
      `${name}-role`,
      { role: role.name, name: "control-plane", policy: policyJson(controlPlanePolicy({ region: ctx.region, accountId: ctx.accountId, app: ctx.app, env: ctx.env, keyArn: args.keyArn })) },
      { parent: this },
    );
    const deployer = new aws.iam.Role(
      `${name}-deployer`,
      {
        name: deployerRoleName(ctx.app),
        description: "pulumi up of every stack; assumed by the regional runners",
        assumeRolePolicy: policyJson(deployerTrustPolicy(ctx.accountId, ctx.app, p.regions)),
        maxSessionDuration: 12 * 3600,
        tags: t,
      },
      { parent: this },
    );
    new aws.iam.RolePolicy(`${name}-deployer`, { role: deployer.name, name: "deploy", policy: policyJson(deployerPolicy(ctx.accountId, ctx.app)) }, { parent: this });

    // --- secrets (values of the first two are set out of band) ------------------------------
    const outOfBand = Object.fromEntries(
      (["stripe-webhook-secret", "api-keys"] as const).map((secret) => [
        secret,
        new aws.secretsmanager.Secret(
          `${name}-secret-${secret}`,
          { name: controlPlaneSecretName(ctx.app, ctx.env, secret), description: `Control plane: ${secret} (set out of band)`, kmsKeyId: args.keyArn, tags: t },
          { parent: this },
        ),
      ]),
    ) as Record<"stripe-webhook-secret" | "api-keys", aws.secretsmanager.Secret>;

    // --- security groups ---------------------------------------------------------------------
    const albSg = new aws.ec2.SecurityGroup(`${name}-alb-sg`, { vpcId: args.vpcId, description: "Control plane ALB: HTTPS and HTTP (redirect) from anywhere", tags: t }, { parent: this });
    const taskSg = new aws.ec2.SecurityGroup(`${name}-task-sg`, { vpcId: args.vpcId, description: "Control plane tasks: from the ALB only", tags: t }, { parent: this });
    const dbSg = new aws.ec2.SecurityGroup(`${name}-db-sg`, { vpcId: args.vpcId, description: "Control plane database: the control plane and the runners", tags: t }, { parent: this });
    const rule = (kind: "in" | "out", n: string, a: Omit<aws.vpc.SecurityGroupIngressRuleArgs, "tags">) =>
      kind === "in"
        ? new aws.vpc.SecurityGroupIngressRule(`${name}-${n}`, { ...a, tags: t }, { parent: this })
        : new aws.vpc.SecurityGroupEgressRule(`${name}-${n}`, { ...a, tags: t }, { parent: this });
    const tcp = (port: number) => ({ ipProtocol: "tcp", fromPort: port, toPort: port });
    rule("in", "alb-https-in", { securityGroupId: albSg.id, cidrIpv4: "0.0.0.0/0", ...tcp(443), description: "HTTPS (Stripe webhooks, operators)" });
    rule("in", "alb-http-in", { securityGroupId: albSg.id, cidrIpv4: "0.0.0.0/0", ...tcp(80), description: "HTTP, redirected to HTTPS" });
    rule("out", "alb-to-task", { securityGroupId: albSg.id, referencedSecurityGroupId: taskSg.id, ...tcp(CONTROL_PLANE_PORT), description: "To the control plane tasks" });
    rule("in", "task-from-alb", { securityGroupId: taskSg.id, referencedSecurityGroupId: albSg.id, ...tcp(CONTROL_PLANE_PORT), description: "From the ALB only" });
    rule("out", "task-https-out", { securityGroupId: taskSg.id, cidrIpv4: "0.0.0.0/0", ...tcp(443), description: "Stripe, GitHub, AWS APIs" });
    rule("out", "task-to-db", { securityGroupId: taskSg.id, referencedSecurityGroupId: dbSg.id, ...tcp(POSTGRES_PORT), description: "Its database" });
    rule("in", "db-from-task", { securityGroupId: dbSg.id, referencedSecurityGroupId: taskSg.id, ...tcp(POSTGRES_PORT), description: "From the control plane" });
    for (const runner of args.runners) {
      runner.cidrs.forEach((cidr, i) => {
        rule("in", `db-from-runner-${runner.region}-${i}`, { securityGroupId: dbSg.id, cidrIpv4: cidr, ...tcp(POSTGRES_PORT), description: `From the ${runner.region} runner` });
      });
    }

    // --- database ----------------------------------------------------------------------------
    const db = new PostgresInstance(
      `${name}-db`,
      {
        ctx,
        owner: SHARED_TENANT,
        identifier: CONTROL_PLANE_DB.identifier(ctx.app),
        dbName: CONTROL_PLANE_DB.dbName,
        engineVersion: p.cellDefaults.dbEngineVersion,
        instanceClass: CONTROL_PLANE_DB.instanceClass,
        allocatedStorageGb: CONTROL_PLANE_DB.allocatedStorageGb,
        maxAllocatedStorageGb: CONTROL_PLANE_DB.maxAllocatedStorageGb,
        multiAz: true,
        backupRetentionDays: CONTROL_PLANE_DB.backupRetentionDays,
        prod: true,
        kmsKeyArn: args.keyArn,
        performanceInsightsKmsKeyArn: args.keyArn,
        subnetIds: args.servicesSubnetIds,
        securityGroupIds: [dbSg.id],
        masterSecretName: controlPlaneSecretName(ctx.app, ctx.env, "database"),
        manageObjects: false,
      },
      { parent: this },
    );
    const urlSecret = new aws.secretsmanager.Secret(
      DATABASE_URL_SECRET,
      { name: `${controlPlaneSecretName(ctx.app, ctx.env, "database")}-url`, description: "DATABASE_URL of the control plane and the runners", kmsKeyId: args.keyArn, tags: t },
      { parent: this },
    );
    new aws.secretsmanager.SecretVersion(
      DATABASE_URL_SECRET,
      {
        secretId: urlSecret.id,
        secretString: pulumi.secret(pulumi.interpolate`postgresql://${MASTER_USERNAME}:${db.masterPassword}@${db.address}:${db.port}/${CONTROL_PLANE_DB.dbName}?sslmode=${PG_SSLMODE}`),
      },
      { parent: this },
    );
    this.databaseUrlSecretArn = urlSecret.arn;

    // --- certificate, load balancer, DNS -----------------------------------------------------
    this.hostname = controlPlaneHostname(p.domain);
    const cert = new aws.acm.Certificate(`${name}-cert`, { domainName: this.hostname, validationMethod: "DNS", tags: t }, { parent: this });
    // One name, one validation record: index 0 is the only option (no resource is created in an apply).
    const validation = cert.domainValidationOptions[0]!;
    const validationRecord = new aws.route53.Record(
      `${name}-cert-validation`,
      { zoneId: p.hostedZoneId, name: validation.resourceRecordName, type: validation.resourceRecordType, records: [validation.resourceRecordValue], ttl: 300, allowOverwrite: true },
      { parent: this },
    );
    const validated = new aws.acm.CertificateValidation(`${name}-cert`, { certificateArn: cert.arn, validationRecordFqdns: [validationRecord.fqdn] }, { parent: this });

    const alb = new aws.lb.LoadBalancer(
      name,
      {
        name: `${ctx.app}-control-plane`,
        internal: false,
        loadBalancerType: "application",
        subnets: args.publicSubnetIds,
        securityGroups: [albSg.id],
        dropInvalidHeaderFields: true,
        tags: t,
      },
      { parent: this },
    );
    this.loadBalancerDnsName = alb.dnsName;
    const targets = new aws.lb.TargetGroup(
      name,
      {
        name: `${ctx.app}-control-plane`,
        port: CONTROL_PLANE_PORT,
        protocol: "HTTP",
        targetType: "ip",
        vpcId: args.vpcId,
        healthCheck: { path: "/healthz", matcher: "200" },
        tags: t,
      },
      { parent: this },
    );
    const https = new aws.lb.Listener(
      `${name}-https`,
      {
        loadBalancerArn: alb.arn,
        port: 443,
        protocol: "HTTPS",
        sslPolicy: ALB_SSL_POLICY,
        certificateArn: validated.certificateArn,
        defaultActions: [{ type: "fixed-response", fixedResponse: { contentType: "text/plain", statusCode: "404", messageBody: "not found" } }],
        tags: t,
      },
      { parent: this },
    );
    new aws.lb.Listener(
      `${name}-http`,
      {
        loadBalancerArn: alb.arn,
        port: 80,
        protocol: "HTTP",
        defaultActions: [{ type: "redirect", redirect: { protocol: "HTTPS", port: "443", statusCode: "HTTP_301" } }],
        tags: t,
      },
      { parent: this },
    );
    for (const r of planListenerRules(p.controlPlane.operatorCidrs)) {
      new aws.lb.ListenerRule(
        `${name}-rule-${r.key}`,
        {
          listenerArn: https.arn,
          priority: r.priority,
          actions: [{ type: "forward", targetGroupArn: targets.arn }],
          conditions: [{ pathPattern: { values: r.paths } }, ...(r.sourceCidrs ? [{ sourceIp: { values: r.sourceCidrs } }] : [])],
          tags: t,
        },
        { parent: this },
      );
    }
    new aws.route53.Record(
      `${name}-dns`,
      { zoneId: p.hostedZoneId, name: this.hostname, type: "A", aliases: [{ name: alb.dnsName, zoneId: alb.zoneId, evaluateTargetHealth: true }] },
      { parent: this },
    );

    // --- the service -------------------------------------------------------------------------
    const taskDefinition = new aws.ecs.TaskDefinition(
      name,
      {
        family: `${ctx.app}-control-plane`,
        requiresCompatibilities: ["FARGATE"],
        networkMode: "awsvpc",
        cpu: CONTROL_PLANE_CPU,
        memory: CONTROL_PLANE_MEMORY_MB,
        executionRoleArn: args.executionRoleArn,
        taskRoleArn: role.arn,
        runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture: "X86_64" },
        containerDefinitions: pulumi.jsonStringify([
          {
            name: "control-plane",
            image: args.image,
            essential: true,
            portMappings: [{ containerPort: CONTROL_PLANE_PORT, protocol: "tcp" }],
            // The control plane takes no stack runs itself: each region's runner does, the only task
            // with a path to that region's databases (docs/control-plane.md, "Region routing").
            environment: [
              { name: "PORT", value: String(CONTROL_PLANE_PORT) },
              { name: WORKER_REGIONS_ENV, value: "none" },
              // The ALB's nodes live in the hub's public subnets: X-Forwarded-For is believed from them
              // alone, so the failed-key limit and the warn logs see the real client, not the ALB
              // (docs/security.md); a client's own X-Forwarded-For entries are not trusted.
              { name: TRUST_PROXY_ENV, value: hubLayout(p, ctx.region).public.map((s) => s.cidr).join(",") },
            ],
            // From Secrets Manager at task start (the execution role reads control-plane/* secrets), never `environment`.
            secrets: [
              { name: "DATABASE_URL", valueFrom: urlSecret.arn },
              { name: "STRIPE_WEBHOOK_SECRET", valueFrom: outOfBand["stripe-webhook-secret"].arn },
            ],
            logConfiguration: { logDriver: "awslogs", options: { "awslogs-group": args.logGroup, "awslogs-region": ctx.region, "awslogs-stream-prefix": "control-plane" } },
          },
        ]),
        tags: t,
      },
      { parent: this },
    );
    new aws.ecs.Service(
      name,
      {
        name: `${ctx.app}-control-plane`,
        cluster: args.clusterArn,
        taskDefinition: taskDefinition.arn,
        desiredCount: 2,
        launchType: "FARGATE",
        propagateTags: "SERVICE",
        networkConfiguration: { subnets: args.servicesSubnetIds, securityGroups: [taskSg.id], assignPublicIp: false },
        loadBalancers: [{ targetGroupArn: targets.arn, containerName: "control-plane", containerPort: CONTROL_PLANE_PORT }],
        tags: t,
      },
      // The target group must be attached to a listener before ECS registers targets in it.
      { parent: this, dependsOn: [https] },
    );
    this.registerOutputs({ hostname: this.hostname, databaseUrlSecretArn: this.databaseUrlSecretArn });
  }
}
