import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { DB_PASSWORD_LENGTH } from "../model/database.ts";
import { pgTenantIdent } from "../model/naming.ts";
import type { TenantLimits } from "../model/tiers.ts";
import { componentType } from "./context.ts";

export interface TenantDatabaseAccessArgs {
  tenant: string;
  /** The database the tenant's schema lives in. */
  database: string;
  /** databaseLoginAllowed(): false when suspended, or in a cell from migration cutover on. */
  login: boolean;
  limits: Pick<TenantLimits, "maxDbConnections" | "statementTimeoutMs">;
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
    const password = new random.RandomPassword(name, { length: DB_PASSWORD_LENGTH, special: false }, { parent: this });
    this.password = pulumi.secret(password.result);
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
      { parent: this },
    );
    new postgresql.Schema(name, { name: ident, owner: role.name, database: args.database }, { parent: this });
    new postgresql.Grant(
      `${name}-connect`,
      { database: args.database, role: role.name, objectType: "database", privileges: ["CONNECT"] },
      { parent: this },
    );
    this.registerOutputs({ roleName: ident, schemaName: ident });
  }
}
