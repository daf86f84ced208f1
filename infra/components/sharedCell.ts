import * as pulumi from "@pulumi/pulumi";
import { cellKeyPolicy } from "../model/accessPolicies.ts";
import {
  CELL_BACKUP_RETENTION_DAYS_NONPROD, CELL_BACKUP_RETENTION_DAYS_PROD, CELL_MAX_ALLOCATED_STORAGE_GB, isProd,
} from "../model/database.ts";
import type { Cell } from "../model/fleet.ts";
import { cellDbIdentifier, cellFlowLogGroupName, cellFlowLogRoleName, FLOW_LOG_RETENTION_DAYS } from "../model/infraNames.ts";
import { CELL_DATABASE, SHARED_TENANT, cellBucketName, cellDatabaseSecretName, cellKmsAlias } from "../model/naming.ts";
import { planSubnets } from "../model/subnets.ts";
import { runnerAdminCidrs } from "../model/hub.ts";
import { hubOf } from "../model/platform.ts";
import { SpokeAttachment } from "./spokeAttachment.ts";
import { componentType, policyJson, type StackContext } from "./context.ts";
import { DatabaseHardening } from "./databaseHardening.ts";
import { DatabaseSecurityGroups } from "./databaseSecurityGroups.ts";
import { EncryptedBucket } from "./encryptedBucket.ts";
import { EncryptionKey } from "./encryptionKey.ts";
import { VpcFlowLogs } from "./flowLogs.ts";
import { Network } from "./network.ts";
import { PostgresInstance } from "./postgresInstance.ts";
import { spokeEndpointsArgs, VpcEndpoints } from "./vpcEndpoints.ts";

export interface SharedCellArgs {
  ctx: StackContext;
  cell: Cell;
}

/**
 * A cell's shared infrastructure (tagged tenant=shared): VPC with a private subnet per configured
 * AZ, its VPC endpoints (no NAT: the workloads reach AWS APIs through them), its flow logs
 * (rejected traffic, to a log group under the cell key), app and DB security groups, the cell KMS key, the cell bucket, the PostgreSQL instance and
 * its once-per-database hardening. Tenants are not children of the cell (PooledTenant): adding
 * one never touches anything here.
 *
 * Child names (name = `cell-<cell id>`): `<name>-network`, `<name>-endpoints`, `<name>-spoke`, `<name>-sg`, `<name>-key`, `<name>-flow-logs`,
 * `<name>-bucket`, `<name>-db`, `<name>-db-hardening`. Never change them.
 */
export class SharedCell extends pulumi.ComponentResource {
  readonly vpcId: pulumi.Output<string>;
  readonly keyArn: pulumi.Output<string>;
  readonly bucketName: string;
  readonly database: PostgresInstance;

  constructor(name: string, args: SharedCellArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("SharedCell"), name, {}, opts);
    const { ctx, cell } = args;
    const defaults = ctx.platform.cellDefaults;
    const prod = isProd(ctx.env);
    const plan = planSubnets({ vpcCidr: cell.config.cidr, azs: cell.config.azs });

    const flowLogGroup = cellFlowLogGroupName(ctx.app, ctx.env, cell.id);
    const network = new Network(`${name}-network`, { ctx, owner: SHARED_TENANT, vpcCidr: cell.config.cidr, privateSubnets: plan.private }, { parent: this });
    const endpoints = new VpcEndpoints(`${name}-endpoints`, spokeEndpointsArgs(ctx, SHARED_TENANT, "cell", network, plan.private), { parent: this });
    const groups = new DatabaseSecurityGroups(
      `${name}-sg`,
      {
        ctx,
        owner: SHARED_TENANT,
        vpcId: network.vpcId,
        // The region's runner only (its subnets' CIDRs: see SpokeAttachment for why not its security group).
        adminCidrs: runnerAdminCidrs(ctx.platform, ctx.region),
        appHttpsEgress: false,
        endpoints,
      },
      { parent: this },
    );
    new SpokeAttachment(
      `${name}-spoke`,
      { ctx, owner: SHARED_TENANT, vpcId: network.vpcId, subnetIds: network.privateSubnetIds, privateRouteTables: network.privateRouteTables, hubCidr: hubOf(ctx.platform, ctx.region).cidr },
      { parent: this },
    );
    const key = new EncryptionKey(
      `${name}-key`,
      {
        ctx,
        owner: SHARED_TENANT,
        description: `Cell ${cell.id} (${ctx.env}): database, bucket and pooled tenants' secrets`,
        alias: cellKmsAlias(ctx.app, ctx.env, cell.id),
        policy: policyJson(cellKeyPolicy(ctx.accountId, { region: ctx.region, logGroupNames: [flowLogGroup] })),
        protect: prod,
      },
      { parent: this },
    );
    new VpcFlowLogs(
      `${name}-flow-logs`,
      {
        ctx,
        owner: SHARED_TENANT,
        vpcId: network.vpcId,
        logGroupName: flowLogGroup,
        roleName: cellFlowLogRoleName(ctx.app, ctx.env, cell.id),
        kmsKeyArn: key.arn,
        retentionInDays: FLOW_LOG_RETENTION_DAYS,
        trafficType: "REJECT",
      },
      { parent: this },
    );
    this.bucketName = cellBucketName(ctx.app, ctx.env, cell.id, ctx.accountId);
    new EncryptedBucket(
      `${name}-bucket`,
      { ctx, owner: SHARED_TENANT, bucket: this.bucketName, kmsKeyArn: key.arn, bucketKeyEnabled: false },
      { parent: this },
    );
    this.database = new PostgresInstance(
      `${name}-db`,
      {
        ctx,
        owner: SHARED_TENANT,
        identifier: cellDbIdentifier(ctx.app, ctx.env, cell.id),
        dbName: CELL_DATABASE,
        // Upgrades and cell moves capture the leaving tenant's changes from here.
        logicalReplication: true,
        engineVersion: cell.config.dbEngineVersion ?? defaults.dbEngineVersion,
        instanceClass: cell.config.dbInstanceClass ?? defaults.dbInstanceClass,
        allocatedStorageGb: cell.config.dbAllocatedStorageGb ?? defaults.dbAllocatedStorageGb,
        maxAllocatedStorageGb: prod ? CELL_MAX_ALLOCATED_STORAGE_GB.prod : CELL_MAX_ALLOCATED_STORAGE_GB.nonprod,
        multiAz: prod,
        backupRetentionDays: prod ? CELL_BACKUP_RETENTION_DAYS_PROD : CELL_BACKUP_RETENTION_DAYS_NONPROD,
        prod,
        kmsKeyArn: key.arn,
        subnetIds: network.privateSubnetIds,
        securityGroupIds: [groups.dbSecurityGroupId],
        masterSecretName: cellDatabaseSecretName(ctx.app, ctx.env, cell.id),
      },
      { parent: this },
    );
    new DatabaseHardening(`${name}-db-hardening`, { database: CELL_DATABASE }, { parent: this, providers: [this.database.provider] });

    this.vpcId = network.vpcId;
    this.keyArn = key.arn;
    this.registerOutputs({ vpcId: this.vpcId, dbEndpoint: this.database.endpoint, bucket: this.bucketName });
  }
}
