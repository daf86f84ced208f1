import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import { componentType } from "./context.ts";

export interface DatabaseHardeningArgs {
  database: string;
}

/**
 * Once per database (docs/stacks.md): PUBLIC loses CONNECT on the database and every privilege on
 * schema `public` (so no tenant can create objects there, or connect to a database it was not
 * granted). A postgresql.Grant with `privileges: []` is exactly a REVOKE ALL ... FROM PUBLIC.
 * These are the only Grants to role "public"; a second one on the same object type would
 * overwrite them (the provider revokes before it grants).
 *
 * Pass the database's postgresql provider in `opts.providers`.
 * Child names: `<name>-public-connect`, `<name>-public-schema`.
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
    this.registerOutputs({});
  }
}
