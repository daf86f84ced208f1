/**
 * postgresql.Schema, mirrored from resource_postgresql_schema.go: create in one transaction inside
 * withRolesGranted(db owner, schema owner): `CREATE SCHEMA IF NOT EXISTS "s" AUTHORIZATION "owner"`;
 * update: `ALTER SCHEMA "s" OWNER TO "o"` when the owner changed.
 */
import { ReplayError } from "./api.ts";
import type { Inputs } from "./inputs.ts";
import { databaseOwner, withRolesGranted } from "./membership.ts";
import { one, type Tx } from "./session.ts";
import { quoteIdent } from "./sql.ts";

export interface SchemaSpec {
  name: string;
  database?: string;
  owner?: string;
  ifNotExists: boolean;
}

export function parseSchema(inp: Inputs): SchemaSpec {
  inp.ignore("dropCascade");
  const spec: SchemaSpec = { name: inp.need("name"), database: inp.str("database"), owner: inp.str("owner"), ifNotExists: inp.bool("ifNotExists", true) };
  const policies = inp.raw.policies;
  if (policies !== undefined && !(Array.isArray(policies) && policies.length === 0)) {
    throw new ReplayError(`${inp.what}: schema policies are deprecated in the provider; declare postgresql.Grant resources instead`);
  }
  inp.ignore("policies");
  inp.done();
  return spec;
}

export function createSchemaSql(s: SchemaSpec): string {
  return `CREATE SCHEMA ${s.ifNotExists ? "IF NOT EXISTS " : ""}${quoteIdent(s.name)}${s.owner ? ` AUTHORIZATION ${quoteIdent(s.owner)}` : ""}`;
}

function alterSchemaOwnerSql(name: string, owner: string): string {
  return `ALTER SCHEMA ${quoteIdent(name)} OWNER TO ${quoteIdent(owner)}`;
}

export async function schemaOwner(t: Tx, schema: string): Promise<string | undefined> {
  const r = await one(t, "SELECT pg_get_userbyid(nspowner) AS o FROM pg_namespace WHERE nspname = $1", [schema]);
  return r ? String(r.o) : undefined;
}

export async function applySchema(t: Tx, s: SchemaSpec, prior: Record<string, unknown> | undefined): Promise<void> {
  const owner = await schemaOwner(t, s.name);
  if (prior && owner !== undefined) {
    if (s.owner && s.owner !== owner) await t.exec(alterSchemaOwnerSql(s.name, s.owner));
    return;
  }
  const dbOwner = await databaseOwner(t);
  const roles = [dbOwner, ...(s.owner && s.owner !== dbOwner ? [s.owner] : [])];
  await withRolesGranted(t, roles, async () => {
    if (owner === undefined) await t.exec(createSchemaSql(s));
    else if (s.owner) await t.exec(alterSchemaOwnerSql(s.name, s.owner));
  });
}
