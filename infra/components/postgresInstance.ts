import * as aws from "@pulumi/aws";
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { DB_PASSWORD_LENGTH, MASTER_USERNAME, PG_SSLMODE, POSTGRES_PORT, RDS_LOG_EXPORTS, postgresFamily, storageCeiling } from "../model/database.ts";
import { dbParameterGroupName, dbSubnetGroupName, finalSnapshotIdentifier } from "../model/infraNames.ts";
import { MIN_BACKUP_RETENTION_DAYS } from "../model/tiers.ts";
import { componentType, tagsFor, type StackContext } from "./context.ts";

/** Seconds the postgresql provider waits for a connection before failing the update. */
export const PG_CONNECT_TIMEOUT_S = 15;

export interface PostgresInstanceArgs {
  ctx: StackContext;
  /** Tenant tag: SHARED_TENANT for a cell, the tenant id for a dedicated instance. */
  owner: string;
  /** cellDbIdentifier() / dedicatedDbIdentifier(): renaming replaces the database. */
  identifier: string;
  /** The database created in the instance (CELL_DATABASE / DEDICATED_DATABASE). */
  dbName: string;
  engineVersion: string;
  instanceClass: string;
  allocatedStorageGb: number;
  /** Storage autoscaling ceiling (MAX_ALLOCATED_STORAGE_GB or the tenant's override); at least allocatedStorageGb. */
  maxAllocatedStorageGb: number;
  multiAz: boolean;
  backupRetentionDays: number;
  /**
   * Prod protections, together: deletion protection, a final snapshot on delete and Pulumi
   * `protect`. Outside prod an instance may be destroyed without a snapshot.
   */
  prod: boolean;
  /**
   * Turn RDS deletion protection off although `prod` (the final snapshot and Pulumi `protect`
   * stay): a dedicated stack whose tenant's final backup is recorded (infra/model/destroy.ts), so
   * that an `up` after the offboarding's own ModifyDBInstance does not turn it back on.
   * @default false
   */
  releaseDeletionProtection?: boolean;
  /** Storage encryption key (the cell key or the tenant key). */
  kmsKeyArn: pulumi.Input<string>;
  /** Performance Insights, encrypted with this key; off when absent. */
  performanceInsightsKmsKeyArn?: pulumi.Input<string>;
  subnetIds: pulumi.Input<string>[];
  securityGroupIds: pulumi.Input<string>[];
  /** Namespaced secret holding the master credentials (cellDatabaseSecretName / masterSecretName). */
  masterSecretName: string;
  /**
   * Declare the postgresql provider that manages roles and schemas inside the database (default
   * true). The control plane's database has none: the platform stack must deploy from anywhere
   * with AWS credentials, before any network path to a database exists (docs/deploying.md).
   */
  manageObjects?: boolean;
  /**
   * `rds.logical_replication = 1` (wal_level logical): the upgrade's change capture streams a
   * tenant's changes from a cell (docs/lifecycle.md, "Change capture and the write window").
   * Static: it takes effect at the instance's next reboot (applyMethod pending-reboot).
   * @default false
   */
  logicalReplication?: boolean;
}

/**
 * An RDS PostgreSQL instance as cells and dedicated tenants both run it: encrypted with a
 * customer key, private, SSL forced by its parameter group, master password generated here and
 * kept in a namespaced secret (not RDS-managed: that secret would be named by RDS, outside our
 * namespaces), plus the postgresql provider that manages roles and schemas inside it.
 *
 * Child names: `<name>` (subnet group, parameter group, instance, provider),
 * `<name>-master` (password, secret, secret version). Never change them.
 */
export class PostgresInstance extends pulumi.ComponentResource {
  readonly instance: aws.rds.Instance;
  readonly address: pulumi.Output<string>;
  readonly port: pulumi.Output<number>;
  readonly endpoint: pulumi.Output<string>;
  readonly dbName: string;
  /** The generated master password (secret). */
  readonly masterPassword: pulumi.Output<string>;
  private readonly pgProvider?: postgresql.Provider;

  /** Manages objects inside `dbName` as the master user, `superuser: false` (RDS has no SUPERUSER). */
  get provider(): postgresql.Provider {
    if (!this.pgProvider) throw new Error(`${this.dbName}: this instance was declared with manageObjects: false and has no postgresql provider`);
    return this.pgProvider;
  }

  constructor(name: string, args: PostgresInstanceArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("PostgresInstance"), name, {}, opts);
    if (args.backupRetentionDays < MIN_BACKUP_RETENTION_DAYS) {
      throw new Error(`${name}: backup retention ${args.backupRetentionDays} days is below the ${MIN_BACKUP_RETENTION_DAYS}-day floor`);
    }
    const { ctx } = args;
    const t = tagsFor(ctx, args.owner);
    const family = postgresFamily(args.engineVersion);
    this.dbName = args.dbName;

    // Drawn once per instance (keepers: a new identifier is a new instance): the final snapshot's
    // name is then unique per deletion.
    const finalSuffix = args.prod
      ? new random.RandomId(`${name}-final-snapshot`, { byteLength: 4, keepers: { identifier: args.identifier } }, { parent: this }).hex
      : undefined;
    const password = new random.RandomPassword(`${name}-master`, { length: DB_PASSWORD_LENGTH, special: false }, { parent: this });
    const masterPassword = pulumi.secret(password.result);
    this.masterPassword = masterPassword;

    const subnetGroup = new aws.rds.SubnetGroup(
      name,
      { name: dbSubnetGroupName(args.identifier), description: `Private subnets of ${args.identifier}`, subnetIds: args.subnetIds, tags: t },
      { parent: this },
    );
    const parameterGroup = new aws.rds.ParameterGroup(
      name,
      {
        name: dbParameterGroupName(args.identifier, family),
        family,
        description: `${args.identifier}: SSL required`,
        parameters: [
          // Dynamic parameter: applies without a reboot.
          { name: "rds.force_ssl", value: "1", applyMethod: "immediate" },
          // Static parameter: RDS refuses applyMethod immediate for it; an existing instance needs a reboot
          // (in its maintenance window) before a change capture can start (docs/lifecycle.md).
          ...(args.logicalReplication ? [{ name: "rds.logical_replication", value: "1", applyMethod: "pending-reboot" }] : []),
        ],
        tags: t,
      },
      { parent: this },
    );

    this.instance = new aws.rds.Instance(
      name,
      {
        identifier: args.identifier,
        engine: "postgres",
        engineVersion: args.engineVersion,
        instanceClass: args.instanceClass,
        allocatedStorage: args.allocatedStorageGb,
        maxAllocatedStorage: storageCeiling(args.allocatedStorageGb, args.maxAllocatedStorageGb),
        storageType: "gp3",
        storageEncrypted: true,
        kmsKeyId: args.kmsKeyArn,
        dbName: args.dbName,
        username: MASTER_USERNAME,
        password: masterPassword,
        port: POSTGRES_PORT,
        dbSubnetGroupName: subnetGroup.name,
        vpcSecurityGroupIds: args.securityGroupIds,
        parameterGroupName: parameterGroup.name,
        publiclyAccessible: false,
        multiAz: args.multiAz,
        backupRetentionPeriod: args.backupRetentionDays,
        copyTagsToSnapshot: true,
        // The platform's setting (default on); validate refuses a pinned minor with it on.
        autoMinorVersionUpgrade: ctx.platform.cellDefaults.autoMinorVersionUpgrade,
        allowMajorVersionUpgrade: false,
        deletionProtection: args.prod && args.releaseDeletionProtection !== true,
        skipFinalSnapshot: !args.prod,
        finalSnapshotIdentifier: finalSuffix ? finalSuffix.apply((hex) => finalSnapshotIdentifier(args.identifier, hex)) : undefined,
        enabledCloudwatchLogsExports: [...RDS_LOG_EXPORTS],
        // The rule: changes wait for the maintenance window (a class or storage change restarts
        // or slows the instance); an urgent one is applied by a person with
        // `aws rds modify-db-instance --apply-immediately` after the up (docs/operations.md).
        applyImmediately: false,
        performanceInsightsEnabled: args.performanceInsightsKmsKeyArn !== undefined,
        performanceInsightsKmsKeyId: args.performanceInsightsKmsKeyArn,
        tags: t,
      },
      { parent: this, protect: args.prod },
    );
    this.address = this.instance.address;
    this.port = this.instance.port;
    this.endpoint = this.instance.endpoint;

    const secret = new aws.secretsmanager.Secret(
      `${name}-master`,
      { name: args.masterSecretName, description: `Master credentials of ${args.identifier}`, kmsKeyId: args.kmsKeyArn, tags: t },
      { parent: this },
    );
    new aws.secretsmanager.SecretVersion(
      `${name}-master`,
      {
        secretId: secret.id,
        // The shape RDS rotation functions read.
        secretString: pulumi.secret(
          pulumi.jsonStringify({
            engine: "postgres",
            host: this.instance.address,
            port: this.instance.port,
            dbname: args.dbName,
            username: MASTER_USERNAME,
            password: masterPassword,
          }),
        ),
      },
      { parent: this },
    );

    if (args.manageObjects === false) {
      this.registerOutputs({ address: this.address, port: this.port, endpoint: this.endpoint });
      return;
    }
    this.pgProvider = new postgresql.Provider(
      name,
      {
        host: this.instance.address,
        port: this.instance.port,
        database: args.dbName,
        username: MASTER_USERNAME,
        password: masterPassword,
        sslmode: PG_SSLMODE,
        sslrootcert: ctx.platform.rdsCaBundlePath,
        superuser: false,
        connectTimeout: PG_CONNECT_TIMEOUT_S,
      },
      { parent: this },
    );
    this.registerOutputs({ address: this.address, port: this.port, endpoint: this.endpoint });
  }
}
