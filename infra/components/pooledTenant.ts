import * as aws from "@pulumi/aws";
import type * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import { tenantKeyPolicy } from "../model/accessPolicies.ts";
import { databaseLoginAllowed } from "../model/database.ts";
import { pooledDnsTarget, TENANT_RECORD_TTL } from "../model/dnsTargets.ts";
import {
  databaseSecretName, pooledHostname, tenantKmsAlias, migratingCellDatabaseSecretName,
} from "../model/naming.ts";
import { envDomain } from "../model/platform.ts";
import type { Tenant } from "../model/schema.ts";
import { hasOwnKmsKey, limitsFor } from "../model/tiers.ts";
import { ConnectionSecret } from "./connectionSecret.ts";
import { componentType, policyJson, type StackContext } from "./context.ts";
import { EncryptionKey } from "./encryptionKey.ts";
import { TenantDatabaseAccess } from "./tenantDatabaseAccess.ts";
import { TenantRole, TenantRolePolicy } from "./tenantRole.ts";
import { TenantSecrets } from "./tenantSecrets.ts";

/** What a pooled tenant uses of its cell. */
export interface CellFacts {
  ingressHostname: string;
  bucketName: string;
  keyArn: pulumi.Input<string>;
  dbAddress: pulumi.Input<string>;
  dbPort: pulumi.Input<number>;
  dbName: string;
  dbProvider: postgresql.Provider;
}

export interface PooledTenantArgs {
  ctx: StackContext;
  tenant: Tenant;
  cell: CellFacts;
}

/**
 * A tenant placed in a cell (DESIGN §2): its schema and role in the cell database, connection
 * secret, declared and team secrets, IAM role, and DNS name `<id>.<env domain>`. Enterprise
 * tenants get their own KMS key for their secrets.
 *
 * A resident that is migrating to a dedicated stack (deployment dedicated, `migration.from`
 * naming this cell) keeps only its schema and role (LOGIN until cutover), a connection document
 * `.../database/cell` encrypted with its dedicated key (by alias: that stack exists from the
 * provisioning phase on), and its pooled DNS name (to the dedicated zone from cutover).
 *
 * Child names (name = `tenant-<id>`): `<name>-db-access`, `<name>-database`, `<name>-secrets`,
 * `<name>-role`, `<name>-key`, `<name>-access`, `<name>-dns`. Keyed by tenant id: never change.
 */
export class PooledTenant extends pulumi.ComponentResource {
  readonly databaseSecretName: string;
  readonly hostname: string;

  constructor(name: string, args: PooledTenantArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("PooledTenant"), name, {}, opts);
    const { ctx, tenant: t, cell } = args;
    const migrating = t.deployment === "dedicated";

    const access = new TenantDatabaseAccess(
      `${name}-db-access`,
      { tenant: t.id, database: cell.dbName, login: databaseLoginAllowed(t, "cell"), limits: limitsFor(t.tier, t.limits) },
      { parent: this, providers: [cell.dbProvider] },
    );

    let secretsKeyArn: pulumi.Input<string> = cell.keyArn;
    if (!migrating) {
      const role = new TenantRole(`${name}-role`, { ctx, tenant: t.id }, { parent: this });
      if (hasOwnKmsKey(t.tier, t.deployment)) {
        const key = new EncryptionKey(
          `${name}-key`,
          {
            ctx,
            owner: t.id,
            description: `Tenant ${t.id} (${ctx.env}): its secrets`,
            alias: tenantKmsAlias(ctx.app, ctx.env, t.id),
            policy: policyJson(tenantKeyPolicy({ region: ctx.region, accountId: ctx.accountId, tenantRoleArn: role.arn })),
            protect: ctx.env === "prod",
          },
          { parent: this },
        );
        secretsKeyArn = key.arn;
      }
      new TenantSecrets(`${name}-secrets`, { ctx, tenant: t, kmsKeyArn: secretsKeyArn }, { parent: this });
      new TenantRolePolicy(
        `${name}-access`,
        {
          ctx,
          tenant: t.id,
          role: role.role,
          access: { secretsKeyArn, bucket: cell.bucketName, bucketKeyArn: cell.keyArn, bucketKeyEnabled: false },
        },
        { parent: this },
      );
    } else {
      secretsKeyArn = tenantKmsAlias(ctx.app, ctx.env, t.id);
    }

    this.databaseSecretName = migrating ? migratingCellDatabaseSecretName(ctx.app, ctx.env, t.id) : databaseSecretName(ctx.app, ctx.env, t.id);
    new ConnectionSecret(
      `${name}-database`,
      {
        ctx,
        tenant: t.id,
        secretName: this.databaseSecretName,
        kmsKeyArn: secretsKeyArn,
        host: cell.dbAddress,
        port: cell.dbPort,
        database: cell.dbName,
        user: access.roleName,
        password: access.password,
        schema: access.schemaName,
      },
      { parent: this },
    );

    this.hostname = pooledHostname(t.id, envDomain(ctx.platform, ctx.env));
    new aws.route53.Record(
      `${name}-dns`,
      {
        zoneId: ctx.platform.hostedZoneId,
        name: this.hostname,
        type: "CNAME",
        ttl: TENANT_RECORD_TTL,
        records: [pooledDnsTarget(ctx.platform, t, ctx.env, cell.ingressHostname)],
      },
      { parent: this },
    );
    this.registerOutputs({ databaseSecretName: this.databaseSecretName, hostname: this.hostname });
  }
}
