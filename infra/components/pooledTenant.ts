import * as aws from "@pulumi/aws";
import type * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import { tenantKeyPolicy } from "../model/accessPolicies.ts";
import { databaseLoginAllowed } from "../model/database.ts";
import { pooledDnsTarget, TENANT_RECORD_TTL } from "../model/dnsTargets.ts";
import { cellDeclaresIdentity, cellPartOf } from "../model/cellMove.ts";
import { cellOwnsIdentity, handbackKeyAlias } from "../model/handover.ts";
import { databaseSecretName, pooledHostname, tenantKmsAlias } from "../model/naming.ts";
import { envDomain } from "../model/platform.ts";
import type { Tenant } from "../model/schema.ts";
import { hasOwnKmsKey, limitsFor } from "../model/tiers.ts";
import { ConnectionSecret } from "./connectionSecret.ts";
import { RuntimeConfig } from "./runtimeConfig.ts";
import { componentType, policyJson, type StackContext } from "./context.ts";
import { EncryptionKey } from "./encryptionKey.ts";
import { rotatedDocumentOf, TenantDatabaseAccess } from "./tenantDatabaseAccess.ts";
import { TenantRole, TenantRolePolicy } from "./tenantRole.ts";
import { TenantSecrets } from "./tenantSecrets.ts";

/** What a pooled tenant uses of its cell. */
export interface CellFacts {
  /** The cell's id (use1-01): which side of a cell move this cell is (infra/model/cellMove.ts). */
  id: string;
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
 * A tenant placed in a cell (docs/stacks.md): its schema and role in the cell database, connection
 * secret, declared and team secrets, IAM role, and DNS name `<id>.<env domain>`. Enterprise
 * tenants get their own KMS key for their secrets.
 *
 * A resident migrating to a dedicated stack (deployment dedicated, `migration.from` naming this
 * cell) is served from here, with the tier it had (`migration.fromTier`), until cutover: the cell
 * keeps managing its identity resources (role, access policy, secrets, connection document, own
 * key, runtime config), marked `retainOnDelete` so no update can delete them while they change hands. From
 * cutover on they belong to the dedicated stack (infra/model/handover.ts: the workflow moves
 * their state first) and the cell keeps only the schema and role (no LOGIN) and the DNS name
 * (pointing to the dedicated zone). An own key moves to the dedicated stack before provisioning
 * (that stack encrypts everything with it from its first update): the cell then finds it by its
 * alias for the secrets it still manages.
 *
 * A tenant moving between cells (a `move` block, infra/model/cellMove.ts) is rendered by both
 * cells: the one it leaves declares everything until the switch, then only the role (no LOGIN)
 * and schema until cleanup; the one it moves to declares the role (no LOGIN) and empty schema
 * from the start and everything else from the switch on, after the workflow moved their state.
 * Both mark the identity `retainOnDelete` while the move lasts.
 *
 * Child names (name = `tenant-<id>`): `<name>-db-access`, `<name>-database`, `<name>-secrets`,
 * `<name>-role`, `<name>-key`, `<name>-access`, `<name>-config`, `<name>-dns`. Keyed by tenant id: never change.
 */
export class PooledTenant extends pulumi.ComponentResource {
  /** The connection document the cell manages for the tenant, if it still manages one. */
  readonly databaseSecretName?: string;
  readonly hostname: string;

  constructor(name: string, args: PooledTenantArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("PooledTenant"), name, {}, opts);
    const { ctx, tenant: t, cell } = args;
    const migration = t.deployment === "dedicated" ? t.migration : undefined;
    if (t.deployment === "dedicated" && !migration) throw new Error(`tenant ${t.id} is dedicated and not migrating: it has no place in cell stack ${ctx.stack}`);
    const tier = migration ? migration.fromTier : t.tier;
    // A cell move: the cell left declares the identity until the switch, the cell moved to from then on.
    const part = cellPartOf(t, ctx.env, cell.id);
    const moving = t.deployment === "pooled" && t.move !== undefined && part !== "resident";
    const managesIdentity = migration ? cellOwnsIdentity(migration.phase) : t.deployment === "pooled" && part ? cellDeclaresIdentity(t, part) : true;
    const retainOnDelete = migration !== undefined || moving;

    const access = new TenantDatabaseAccess(
      `${name}-db-access`,
      { tenant: t.id, database: cell.dbName, login: databaseLoginAllowed(t, "cell", { env: ctx.env, id: cell.id }), limits: limitsFor(tier, t.limits), ...rotatedDocumentOf(ctx, t) },
      { parent: this, providers: [cell.dbProvider] },
    );

    if (managesIdentity) {
      const role = new TenantRole(`${name}-role`, { ctx, tenant: t.id, retainOnDelete }, { parent: this });
      let secretsKeyArn: pulumi.Input<string> = cell.keyArn;
      let secretsKeyAlias: string | undefined;
      if (hasOwnKmsKey(tier, "pooled") && migration) {
        secretsKeyAlias = tenantKmsAlias(ctx.app, ctx.env, t.id);
        secretsKeyArn = aws.kms.getAliasOutput({ name: secretsKeyAlias }, { parent: this }).targetKeyArn;
      } else if (hasOwnKmsKey(tier, "pooled")) {
        const key = new EncryptionKey(
          `${name}-key`,
          {
            ctx,
            owner: t.id,
            description: `Tenant ${t.id} (${ctx.env}): its secrets`,
            alias: tenantKmsAlias(ctx.app, ctx.env, t.id),
            policy: policyJson(tenantKeyPolicy({ region: ctx.region, accountId: ctx.accountId, tenantRoleArn: role.arn })),
            // Not protected: a protected key would make the engine refuse the cell update that
            // offboards or downgrades the tenant (it refuses before retainOnDelete counts). The key
            // itself is always retainOnDelete (EncryptionKey): it survives both, never deleted by Pulumi.
            protect: false,
          },
          // A key a rollback handed back after the dedicated program had claimed it.
          { parent: this, aliases: [handbackKeyAlias(t.id, ctx.stack)] },
        );
        secretsKeyArn = key.arn;
      }
      this.databaseSecretName = databaseSecretName(ctx.app, ctx.env, t.id);
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
          retainOnDelete,
        },
        { parent: this },
      );
      new TenantSecrets(`${name}-secrets`, { ctx, tenant: t, kmsKeyArn: secretsKeyArn, retainOnDelete }, { parent: this });
      new TenantRolePolicy(
        `${name}-access`,
        {
          ctx,
          tenant: t.id,
          role: role.role,
          access: { secretsKeyArn, ...(secretsKeyAlias ? { secretsKeyAlias } : {}), bucket: cell.bucketName, bucketKeyArn: cell.keyArn, bucketKeyEnabled: false },
          retainOnDelete,
        },
        { parent: this },
      );
      new RuntimeConfig(`${name}-config`, { ctx, tenant: t, retainOnDelete }, { parent: this });
    }

    this.hostname = pooledHostname(t.id, envDomain(ctx.platform, ctx.env));
    // A moving tenant's name is one record: declared by the cell that declares its identity, and
    // handed over with it (Route 53 refuses a second record of the same name and type).
    if (migration || managesIdentity) new aws.route53.Record(
      `${name}-dns`,
      {
        zoneId: ctx.platform.hostedZoneId,
        name: this.hostname,
        type: "CNAME",
        ttl: TENANT_RECORD_TTL,
        records: [pooledDnsTarget(ctx.platform, t, ctx.env, cell.ingressHostname)],
      },
      // Changing hands in a move: no update of either cell may delete it meanwhile.
      { parent: this, ...(moving ? { retainOnDelete: true } : {}) },
    );
    this.registerOutputs({ ...(this.databaseSecretName ? { databaseSecretName: this.databaseSecretName } : {}), hostname: this.hostname });
  }
}
