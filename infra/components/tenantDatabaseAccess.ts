import * as aws from "@pulumi/aws";
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { DB_PASSWORD_LENGTH } from "../model/database.ts";
import { databaseSecretName, pgTenantIdent } from "../model/naming.ts";
import type { Tenant } from "../model/schema.ts";
import type { TenantLimits } from "../model/tiers.ts";
import { componentType } from "./context.ts";

export interface TenantDatabaseAccessArgs {
  tenant: string;
  /** The database the tenant's schema lives in. */
  database: string;
  /** databaseLoginAllowed(): false when suspended, or in a cell from migration cutover on. */
  login: boolean;
  limits: Pick<TenantLimits, "maxDbConnections" | "statementTimeoutMs">;
  /**
   * The tenant's connection document (secret name) once its password has been rotated
   * (environments.<env>.credentialsRotatedAt): the password is read from the document's
   * AWSCURRENT version instead of the random one. Default: the random password.
   */
  rotatedDocument?: string;
  /**
   * Drop the schema with CASCADE when the resource is deleted. Only where deleting it means the
   * whole database goes (a dedicated stack's destroy, after the offboarding's final snapshot):
   * with RESTRICT the provider's DROP SCHEMA fails on the tenant's tables and the destroy cannot
   * finish. In a cell, RESTRICT stays: a tenant removed from a cell by an edit keeps its data
   * (the offboarding workflow drops it itself, after its dump). Default false.
   */
  dropCascade?: boolean;
}

/**
 * `rotatedDocument` for a tenant in the stack's env: its connection document once its credentials
 * were rotated there, once it started moving between cells there, or, in its dedicated stack,
 * from the start of an upgrade (`upgrading`; the upgrade's last commit writes movedAt, so it stays
 * so). The role the new cell or dedicated database creates must have the password applications
 * already use: the switch only points the document at the new database, keeping its password.
 */
export function rotatedDocumentOf(ctx: { app: string; env: string }, t: Pick<Tenant, "id" | "environments">, upgrading = false): { rotatedDocument?: string } {
  const e = t.environments[ctx.env];
  return upgrading || e?.credentialsRotatedAt || e?.movedAt ? { rotatedDocument: databaseSecretName(ctx.app, ctx.env, t.id) } : {};
}

/** The `password` field of a connection document (ConnectionSecret's JSON). */
export function documentPassword(text: string, secretName: string): string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error(`secret ${secretName} is not a JSON connection document; its tenant's credentials are rotated (credentialsRotatedAt), so the password is read from it`);
  }
  const password = (doc as { password?: unknown } | null)?.password;
  if (typeof password !== "string" || password === "") throw new Error(`secret ${secretName} has no password field; its tenant's credentials are rotated (credentialsRotatedAt), so the password is read from it`);
  return password;
}

/**
 * A tenant inside a PostgreSQL database, identical in cells and dedicated instances: role
 * `tenant_<id>` (no elevated attribute, search_path pinned to its schema, connection limit and
 * statement timeout from its tier), schema `tenant_<id>` owned by it, CONNECT on the database.
 * Nothing else is granted: the tenant owns its schema and PUBLIC has nothing (DatabaseHardening).
 *
 * The inputs are replayed as SQL on a live PostgreSQL by the isolation tests: keep every
 * attribute explicit here rather than relying on provider defaults.
 * Pass the database's postgresql provider in `opts.providers`.
 * The role's password is set at creation only (`ignoreChanges`): tenantctl rotate changes it
 * afterwards, and with `rotatedDocument` the password given to the connection document (and to a
 * role created later, e.g. in a dedicated stack at an upgrade) is the rotated one.
 * Child names: `<name>` (password, role, schema), `<name>-connect` (grant). Never change them:
 * a replaced schema is a dropped schema.
 */
export class TenantDatabaseAccess extends pulumi.ComponentResource {
  readonly roleName: string;
  readonly schemaName: string;
  /** A Pulumi secret. */
  readonly password: pulumi.Output<string>;

  constructor(name: string, args: TenantDatabaseAccessArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("TenantDatabaseAccess"), name, {}, opts);
    const ident = pgTenantIdent(args.tenant);
    this.roleName = ident;
    this.schemaName = ident;
    // Kept after a rotation too: removing it would be a change of its own on every rotated tenant.
    const password = new random.RandomPassword(name, { length: DB_PASSWORD_LENGTH, special: false }, { parent: this });
    this.password = args.rotatedDocument
      ? pulumi.secret(
          aws.secretsmanager
            .getSecretVersionOutput({ secretId: args.rotatedDocument }, { parent: this })
            .secretString.apply((text) => documentPassword(text, args.rotatedDocument!)),
        )
      : pulumi.secret(password.result);
    const role = new postgresql.Role(
      name,
      {
        name: ident,
        login: args.login,
        password: this.password,
        connectionLimit: args.limits.maxDbConnections,
        statementTimeout: args.limits.statementTimeoutMs,
        searchPaths: [ident],
        superuser: false,
        createDatabase: false,
        createRole: false,
        bypassRowLevelSecurity: false,
        replication: false,
      },
      // The password is set when the role is created; afterwards the credential rotation owns
      // it (ALTER ROLE from the workflow): an update never sets it back (docs/lifecycle.md,
      // "Credential rotation").
      { parent: this, ignoreChanges: ["password"] },
    );
    new postgresql.Schema(name, { name: ident, owner: role.name, database: args.database, ...(args.dropCascade ? { dropCascade: true } : {}) }, { parent: this });
    new postgresql.Grant(
      `${name}-connect`,
      { database: args.database, role: role.name, objectType: "database", privileges: ["CONNECT"] },
      { parent: this },
    );
    this.registerOutputs({ roleName: ident, schemaName: ident });
  }
}
