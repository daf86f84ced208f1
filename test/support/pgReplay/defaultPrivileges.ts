/**
 * postgresql.DefaultPrivileges, mirrored from resource_postgresql_default_privileges.go:
 * withRolesGranted(owner) then
 * `ALTER DEFAULT PRIVILEGES FOR ROLE o [IN SCHEMA s] REVOKE ALL ON <TYPE>S FROM r` and GRANT.
 */
import { ReplayError } from "./api.ts";
import type { Inputs } from "./inputs.ts";
import { withRolesGranted } from "./membership.ts";
import { privilegesEqual, roleOid, validatePrivileges } from "./privileges.ts";
import { one, type Tx } from "./session.ts";
import { quoteIdent } from "./sql.ts";

const DEFAULT_PRIV_TYPES = ["table", "sequence", "function", "type", "schema"] as const;

export interface DefaultPrivilegesSpec {
  role: string;
  database: string;
  owner: string;
  schema?: string;
  objectType: (typeof DEFAULT_PRIV_TYPES)[number];
  privileges: string[];
  withGrantOption: boolean;
}

export function parseDefaultPrivileges(inp: Inputs): DefaultPrivilegesSpec {
  const what = inp.what;
  const objectType = inp.need("objectType") as DefaultPrivilegesSpec["objectType"];
  if (!DEFAULT_PRIV_TYPES.includes(objectType)) throw new ReplayError(`${what}: object type ${objectType} is not supported`);
  const spec: DefaultPrivilegesSpec = {
    role: inp.need("role"),
    database: inp.need("database"),
    owner: inp.need("owner"),
    schema: inp.str("schema"),
    objectType,
    privileges: inp.list("privileges"),
    withGrantOption: inp.bool("withGrantOption", false),
  };
  if (spec.schema && objectType === "schema") throw new ReplayError(`${what}: cannot specify \`schema\` when \`object_type\` is \`schema\``);
  if (spec.withGrantOption && spec.role.toLowerCase() === "public") throw new ReplayError(`${what}: with_grant_option cannot be true for role 'public'`);
  validatePrivileges(what, objectType, spec.privileges);
  inp.done();
  return spec;
}

export function defaultPrivilegesSql(d: DefaultPrivilegesSpec): string[] {
  const inSchema = d.schema ? ` IN SCHEMA ${quoteIdent(d.schema)}` : "";
  const head = `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(d.owner)}${inSchema}`;
  const type = `${d.objectType.toUpperCase()}S`;
  const out = [`${head} REVOKE ALL ON ${type} FROM ${quoteIdent(d.role)}`];
  if (d.privileges.length > 0) out.push(`${head} GRANT ${d.privileges.join(",")} ON ${type} TO ${quoteIdent(d.role)}${d.withGrantOption ? " WITH GRANT OPTION" : ""}`);
  return out;
}

async function readDefaultPrivileges(t: Tx, d: DefaultPrivilegesSpec): Promise<string[]> {
  const oid = await roleOid(t, d.role);
  const objtype: Record<string, string> = { table: "r", sequence: "S", function: "f", type: "T", schema: "n" };
  const r = d.schema
    ? await one(
        t,
        `SELECT array_agg(prtype) AS p FROM (SELECT defaclnamespace, (aclexplode(defaclacl)).* FROM pg_default_acl WHERE defaclobjtype = $3)
           AS t (namespace, grantor_oid, grantee_oid, prtype, grantable)
           JOIN pg_namespace ON pg_namespace.oid = namespace
          WHERE grantee_oid = $1 AND nspname = $2 AND pg_get_userbyid(grantor_oid) = $4`,
        [oid, d.schema, objtype[d.objectType], d.owner],
      )
    : await one(
        t,
        `SELECT array_agg(prtype) AS p FROM (SELECT defaclnamespace, (aclexplode(defaclacl)).* FROM pg_default_acl WHERE defaclobjtype = $2)
           AS t (namespace, grantor_oid, grantee_oid, prtype, grantable)
          WHERE grantee_oid = $1 AND namespace = 0 AND pg_get_userbyid(grantor_oid) = $3`,
        [oid, objtype[d.objectType], d.owner],
      );
  return (r?.p as string[] | null) ?? [];
}

export async function applyDefaultPrivileges(t: Tx, d: DefaultPrivilegesSpec, prior: Record<string, unknown> | undefined): Promise<void> {
  if (prior) {
    const have = await readDefaultPrivileges(t, d);
    if (privilegesEqual(d.objectType, have, d.privileges)) return;
  }
  await withRolesGranted(t, [d.owner], async () => {
    for (const s of defaultPrivilegesSql(d)) await t.exec(s);
  });
}
