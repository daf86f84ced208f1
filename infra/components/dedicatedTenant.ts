import * as pulumi from "@pulumi/pulumi";
import { roleArn, tenantKeyPolicy } from "../model/accessPolicies.ts";
import { databaseLoginAllowed, isProd } from "../model/database.ts";
import { bucketOnDestroy, destroyReleased } from "../model/destroy.ts";
import { dedicatedDbIdentifier, flowLogGroupName, flowLogRoleName, FLOW_LOG_RETENTION_DAYS } from "../model/infraNames.ts";
import { cellOwnsIdentity, hadOwnKeyInCell, handoverAlias, type HandoverSuffix } from "../model/handover.ts";
import {
  DEDICATED_DATABASE, databaseSecretName, masterSecretName, tenantBucketName, tenantKmsAlias, tenantRoleName,
} from "../model/naming.ts";
import type { DedicatedTenant as DedicatedTenantFile } from "../model/schema.ts";
import { dedicatedAzs, planSubnets } from "../model/subnets.ts";
import { runnerAdminCidrs } from "../model/hub.ts";
import { hubOf } from "../model/platform.ts";
import { SpokeAttachment } from "./spokeAttachment.ts";
import { CustomerPeering } from "./customerPeering.ts";
import { dedicatedSizing, limitsFor } from "../model/tiers.ts";
import { ConnectionSecret } from "./connectionSecret.ts";
import { RuntimeConfig } from "./runtimeConfig.ts";
import { componentType, policyJson, type StackContext } from "./context.ts";
import { DatabaseHardening } from "./databaseHardening.ts";
import { DatabaseSecurityGroups } from "./databaseSecurityGroups.ts";
import { DedicatedDns, type IngressAlias } from "./dedicatedDns.ts";
import { Egress } from "./egress.ts";
import { EncryptedBucket } from "./encryptedBucket.ts";
import { EncryptionKey } from "./encryptionKey.ts";
import { VpcFlowLogs } from "./flowLogs.ts";
import { Network } from "./network.ts";
import { PostgresInstance } from "./postgresInstance.ts";
import { spokeEndpointsArgs, VpcEndpoints } from "./vpcEndpoints.ts";
import { rotatedDocumentOf, TenantDatabaseAccess } from "./tenantDatabaseAccess.ts";
import { TenantRole, TenantRolePolicy } from "./tenantRole.ts";
import { TenantSecrets } from "./tenantSecrets.ts";

export interface DedicatedTenantArgs {
  ctx: StackContext;
  tenant: DedicatedTenantFile;
  /** Apex ALIAS of the public zone (stack config `saas-tenancy:ingress`); none until the load balancer exists. */
  ingress?: IngressAlias;
}

/**
 * Everything of one dedicated tenant in one env (docs/stacks.md): its KMS key, VPC (flow logs,
 * VPC endpoints, optional egress and peering), security groups, RDS with the tenant's role and schema, bucket,
 * secrets, IAM role and DNS. Every resource is tagged tenant=<id>; nothing names another tenant.
 *
 * Prod, exactly: 3 AZs by default, a NAT per AZ (with egress), RDS deletion protection + final
 * snapshot + `protect`, KMS key `protect`. Nothing else is protected.
 *
 * Once the offboarding has recorded the tenant's final backup (`offboarding.finalBackupAt`,
 * infra/model/destroy.ts): `forceDestroy` on both zones, RDS deletion protection off, and the bucket
 * emptied by the destroy (`forceDestroy`) once the copy of its objects is recorded too
 * (`offboarding.objectBackupAt`), kept (`retainOnDelete`, with its data and settings) otherwise, so that the destroy that follows can finish (docs/lifecycle.md); never before.
 *
 * A tenant upgrading from a cell (a `migration` block; infra/model/handover.ts): before cutover
 * the cell still manages its identity resources (role, access policy, secrets, connection
 * document, runtime config), so this stack does not declare them and names the role by ARN. From cutover on it
 * declares them with an alias to the URN the workflow's state move gave them. An own key the
 * tenant had in the cell was moved here before provisioning: it is declared with such an alias
 * from the start. While the migration lasts all of them are `retainOnDelete`.
 *
 * Child names (name = `tenant-<id>`): `<name>-role`, `<name>-key`, `<name>-network`,
 * `<name>-flow-logs`, `<name>-egress`, `<name>-spoke`, `<name>-endpoints`, `<name>-peering`, `<name>-sg`, `<name>-bucket`, `<name>-db`,
 * `<name>-db-hardening`, `<name>-db-access`, `<name>-database`, `<name>-secrets`, `<name>-access`,
 * `<name>-config`, `<name>-dns`. Never change them.
 */
export class DedicatedTenant extends pulumi.ComponentResource {
  readonly vpcId: pulumi.Output<string>;
  readonly dbEndpoint: pulumi.Output<string>;
  readonly nameServers: pulumi.Output<string[]>;
  readonly zoneName: string;
  readonly privateDbHostname: string;
  readonly peeringConnectionId?: pulumi.Output<string>;

  constructor(name: string, args: DedicatedTenantArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("DedicatedTenant"), name, {}, opts);
    const { ctx, tenant: t } = args;
    const net = t.dedicated[ctx.env];
    if (!net) throw new Error(`tenant ${t.id} has no dedicated.${ctx.env} block (network and sizing of this env)`);
    const prod = isProd(ctx.env);
    const owner = t.id;
    const logGroupName = flowLogGroupName(ctx.app, ctx.env, t.id);

    const migration = t.migration;
    const cellOwned = migration !== undefined && cellOwnsIdentity(migration.phase);
    const retainOnDelete = migration !== undefined;
    // Final backup of every env recorded by the offboarding: a destroy may empty the bucket and zones.
    const released = destroyReleased(t);
    const handedOver = (suffix: HandoverSuffix): pulumi.ComponentResourceOptions => {
      const alias = handoverAlias(t, ctx.env, ctx.stack, suffix);
      return { parent: this, ...(alias ? { aliases: [alias] } : {}) };
    };

    // Role before key: the key policy names the role, and KMS rejects a principal that does not exist.
    // Before cutover the role exists already, managed by the cell: named by its ARN.
    const role = cellOwned ? undefined : new TenantRole(`${name}-role`, { ctx, tenant: t.id, retainOnDelete }, handedOver("-role"));
    const tenantRoleArn = role ? role.arn : roleArn(ctx.accountId, tenantRoleName(ctx.app, ctx.env, t.id));
    const key = new EncryptionKey(
      `${name}-key`,
      {
        ctx,
        owner,
        description: `Tenant ${t.id} (${ctx.env}): database, bucket, secrets, flow logs`,
        alias: tenantKmsAlias(ctx.app, ctx.env, t.id),
        policy: policyJson(tenantKeyPolicy({ region: ctx.region, accountId: ctx.accountId, tenantRoleArn, logGroupNames: [logGroupName] })),
        protect: prod,
        // Only a key that came from the cell changes hands; one this stack made goes with it.
        retainOnDelete: retainOnDelete && hadOwnKeyInCell(t),
      },
      handedOver("-key"),
    );

    const plan = planSubnets({ vpcCidr: net.cidr, azs: dedicatedAzs(ctx.region, ctx.env, net.azCount), publicSubnets: t.features.egress });
    const network = new Network(`${name}-network`, { ctx, owner, vpcCidr: net.cidr, privateSubnets: plan.private }, { parent: this });
    new VpcFlowLogs(
      `${name}-flow-logs`,
      {
        ctx,
        owner,
        vpcId: network.vpcId,
        logGroupName,
        roleName: flowLogRoleName(ctx.app, ctx.env, t.id),
        kmsKeyArn: key.arn,
        retentionInDays: FLOW_LOG_RETENTION_DAYS,
        trafficType: "ALL",
      },
      { parent: this },
    );
    if (t.features.egress) {
      new Egress(
        `${name}-egress`,
        { ctx, owner, vpcId: network.vpcId, publicSubnets: plan.public, privateRouteTables: network.privateRouteTables, natPerAz: prod },
        { parent: this },
      );
    }
    new SpokeAttachment(
      `${name}-spoke`,
      { ctx, owner, vpcId: network.vpcId, subnetIds: network.privateSubnetIds, privateRouteTables: network.privateRouteTables, hubCidr: hubOf(ctx.platform, ctx.region).cidr },
      { parent: this },
    );
    const endpoints = new VpcEndpoints(`${name}-endpoints`, spokeEndpointsArgs(ctx, owner, "dedicated", network, plan.private), { parent: this });
    const groups = new DatabaseSecurityGroups(
      `${name}-sg`,
      {
        ctx,
        owner,
        vpcId: network.vpcId,
        // The region's runner only, over the Transit Gateway (its subnets' CIDRs: see SpokeAttachment for why not its security group).
        adminCidrs: runnerAdminCidrs(ctx.platform, ctx.region),
        appHttpsEgress: t.features.egress,
        endpoints,
      },
      { parent: this },
    );

    if (t.features.vpcPeering && net.customerVpc) {
      const peering = new CustomerPeering(
        `${name}-peering`,
        { ctx, tenant: t.id, vpcId: network.vpcId, customer: net.customerVpc, privateRouteTables: network.privateRouteTables, appSecurityGroupId: groups.appSecurityGroupId },
        { parent: this },
      );
      this.peeringConnectionId = peering.connectionId;
    }

    const bucketName = tenantBucketName(ctx.app, ctx.env, t.id, ctx.accountId);
    new EncryptedBucket(`${name}-bucket`, { ctx, owner, bucket: bucketName, kmsKeyArn: key.arn, bucketKeyEnabled: true, onDestroy: bucketOnDestroy(t) }, { parent: this });

    const sizing = dedicatedSizing(ctx.env, net.database);
    const db = new PostgresInstance(
      `${name}-db`,
      {
        ctx,
        owner,
        identifier: dedicatedDbIdentifier(ctx.app, ctx.env, t.id),
        dbName: DEDICATED_DATABASE,
        engineVersion: ctx.platform.cellDefaults.dbEngineVersion,
        instanceClass: sizing.instanceClass,
        allocatedStorageGb: sizing.allocatedStorageGb,
        maxAllocatedStorageGb: sizing.maxAllocatedStorageGb,
        multiAz: sizing.multiAz,
        backupRetentionDays: sizing.backupRetentionDays,
        prod,
        releaseDeletionProtection: released,
        kmsKeyArn: key.arn,
        performanceInsightsKmsKeyArn: key.arn,
        subnetIds: network.privateSubnetIds,
        securityGroupIds: [groups.dbSecurityGroupId],
        masterSecretName: masterSecretName(ctx.app, ctx.env, t.id),
      },
      { parent: this },
    );
    new DatabaseHardening(`${name}-db-hardening`, { database: DEDICATED_DATABASE }, { parent: this, providers: [db.provider] });
    const access = new TenantDatabaseAccess(
      `${name}-db-access`,
      { tenant: t.id, database: DEDICATED_DATABASE, login: databaseLoginAllowed(t, "dedicated"), limits: limitsFor(t.tier, t.limits), ...rotatedDocumentOf(ctx, t, migration !== undefined), dropCascade: true },
      { parent: this, providers: [db.provider] },
    );
    if (role) {
      new ConnectionSecret(
        `${name}-database`,
        {
          ctx,
          tenant: t.id,
          secretName: databaseSecretName(ctx.app, ctx.env, t.id),
          kmsKeyArn: key.arn,
          host: db.address,
          port: db.port,
          database: DEDICATED_DATABASE,
          user: access.roleName,
          password: access.password,
          schema: access.schemaName,
          retainOnDelete,
        },
        handedOver("-database"),
      );
      new TenantSecrets(`${name}-secrets`, { ctx, tenant: t, kmsKeyArn: key.arn, retainOnDelete }, handedOver("-secrets"));
      new TenantRolePolicy(
        `${name}-access`,
        {
          ctx,
          tenant: t.id,
          role: role.role,
          access: { secretsKeyArn: key.arn, bucket: bucketName, bucketKeyArn: key.arn, bucketKeyEnabled: true },
          retainOnDelete,
        },
        handedOver("-access"),
      );
      new RuntimeConfig(`${name}-config`, { ctx, tenant: t, retainOnDelete }, handedOver("-config"));
    }
    const dns = new DedicatedDns(
      `${name}-dns`,
      { ctx, tenant: t.id, vpcId: network.vpcId, dbAddress: db.address, forceDestroy: released, ...(args.ingress ? { ingress: args.ingress } : {}) },
      { parent: this },
    );

    this.vpcId = network.vpcId;
    this.dbEndpoint = db.endpoint;
    this.nameServers = dns.nameServers;
    this.zoneName = dns.zoneName;
    this.privateDbHostname = dns.privateDbHostname;
    this.registerOutputs({ vpcId: this.vpcId, dbEndpoint: this.dbEndpoint, nameServers: this.nameServers });
  }
}
