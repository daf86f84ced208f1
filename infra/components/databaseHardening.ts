import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import { MAINTENANCE_DATABASES } from "../model/database.ts";
import { componentType } from "./context.ts";

export interface DatabaseHardeningArgs {
  database: string;
}

/**
 * Once per database (docs/stacks.md): PUBLIC loses CONNECT on the database and every privilege on
 * schema `public` (so no tenant can create objects there, or connect to a database it was not
 * granted). A postgresql.Grant with `privileges: []` is exactly a REVOKE ALL ... FROM PUBLIC.
 * These are the only Grants to role "public"; a second one on the same object type would
 * overwrite them (the provider revokes before it grants). The instance's other databases
 * (MAINTENANCE_DATABASES: `postgres`, `template1`) lose PUBLIC's CONNECT and TEMP the same way; the
 * provider runs those grants connected to that database, as the master user (their owner on RDS).
 *
 * Pass the database's postgresql provider in `opts.providers`.
 * Child names: `<name>-public-connect`, `<name>-public-schema`, `<name>-public-connect-<database>`
 * per maintenance database.
 */
export class DatabaseHardening extends pulumi.ComponentResource {
  constructor(name: string, args: DatabaseHardeningArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("DatabaseHardening"), name, {}, opts);
    new postgresql.Grant(
      `${name}-public-connect`,
      { database: args.database, role: "public", objectType: "database", privileges: [] },
      { parent: this },
    );
    new postgresql.Grant(
      `${name}-public-schema`,
      { database: args.database, role: "public", objectType: "schema", schema: "public", privileges: [] },
      { parent: this },
    );
    for (const db of MAINTENANCE_DATABASES) {
      new postgresql.Grant(`${name}-public-connect-${db}`, { database: db, role: "public", objectType: "database", privileges: [] }, { parent: this });
    }
    this.registerOutputs({});
  }
}
