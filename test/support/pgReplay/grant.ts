/**
 * postgresql.Grant, mirrored from resource_postgresql_grant.go: create and update are the same: in
 * one transaction, inside withRolesGranted(schema owner [+ table owners]),
 * `REVOKE ALL PRIVILEGES ON <object> FROM r` then, unless privileges are empty,
 * `GRANT p1,p2 ON <object> TO r` (so two Grants on the same role/object overwrite each other).
 * Role "public" is the PUBLIC pseudo-role (getRoleOID -> 0).
 */
import { ReplayError } from "./api.ts";
import type { Inputs } from "./inputs.ts";
import { resolveOwner, withRolesGranted } from "./membership.ts";
import { privilegesEqual, roleOid, validatePrivileges } from "./privileges.ts";
import { schemaOwner } from "./schema.ts";
import { one, type Tx } from "./session.ts";
import { quoteIdent } from "./sql.ts";

const GRANT_OBJECT_TYPES = ["database", "schema", "table", "sequence", "function"] as const;
export type GrantObjectType = (typeof GRANT_OBJECT_TYPES)[number];

export interface GrantSpec {
  role: string;
  database: string;
  schema?: string;
  objectType: GrantObjectType;
  objects: string[];
  privileges: string[];
  withGrantOption: boolean;
}

export function parseGrant(inp: Inputs): GrantSpec {
  const what = inp.what;
  const objectType = inp.need("objectType") as GrantObjectType;
  if (!GRANT_OBJECT_TYPES.includes(objectType)) throw new ReplayError(`${what}: object type ${objectType} is not supported by the replay`);
  const spec: GrantSpec = {
    role: inp.need("role"),
    database: inp.need("database"),
    schema: inp.str("schema"),
    objectType,
    objects: inp.list("objects"),
    privileges: inp.list("privileges"),
    withGrantOption: inp.bool("withGrantOption", false),
  };
  if (inp.list("columns").length > 0) throw new ReplayError(`${what}: column grants are not supported by the replay`);
  if (!spec.schema && objectType !== "database") throw new ReplayError(`${what}: parameter 'schema' is mandatory for postgresql_grant resource`);
  if (spec.objects.length > 0 && (objectType === "database" || objectType === "schema")) {
    throw new ReplayError(`${what}: cannot specify \`objects\` when \`object_type\` is \`database\` or \`schema\``);
  }
  validatePrivileges(what, objectType, spec.privileges);
  inp.done();
  return spec;
}

function grantTarget(g: GrantSpec, database: string): string {
  switch (g.objectType) {
    case "database":
      return `DATABASE ${quoteIdent(database)}`;
    case "schema":
      return `SCHEMA ${quoteIdent(g.schema!)}`;
    default:
      return g.objects.length > 0
        ? `${g.objectType.toUpperCase()} ${g.objects.map((o) => `${quoteIdent(g.schema!)}.${quoteIdent(o)}`).join(",")}`
        : `ALL ${g.objectType.toUpperCase()}S IN SCHEMA ${quoteIdent(g.schema!)}`;
  }
}

/** createRevokeQuery + createGrantQuery (grant skipped when privileges are empty). */
export function grantSql(g: GrantSpec, database: string = g.database): string[] {
  const target = grantTarget(g, database);
  const role = quoteIdent(g.role);
  const revoke =
    g.objects.length > 0 && g.privileges.length > 0
      ? `REVOKE ${g.privileges.join(",")} ON ${target} FROM ${role}`
      : `REVOKE ALL PRIVILEGES ON ${target} FROM ${role}`;
  const out = [revoke];
  if (g.privileges.length > 0) out.push(`GRANT ${g.privileges.join(",")} ON ${target} TO ${role}${g.withGrantOption ? " WITH GRANT OPTION" : ""}`);
  return out;
}

async function rolesToGrantForGrant(t: Tx, g: GrantSpec): Promise<string[]> {
  if (g.objectType === "database") return [];
  const owners: string[] = [];
  if (g.objectType !== "schema") {
    for (const r of await t.read("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = $1", [g.schema])) owners.push(String(r.tableowner));
  }
  const so = await schemaOwner(t, g.schema!);
  if (so === undefined) throw new ReplayError(`could not find schema '${g.schema}' while looking for owner`);
  if (!owners.includes(so)) owners.push(so);
  return Promise.all(owners.map((o) => resolveOwner(t, o)));
}

async function readGrantPrivileges(t: Tx, g: GrantSpec, database: string): Promise<string[] | "unchanged" | undefined> {
  const oid = await roleOid(t, g.role);
  if (oid === undefined) return undefined;
  const agg = async (sql: string, values: unknown[]) => ((await one(t, sql, values))?.p as string[] | null) ?? [];
  switch (g.objectType) {
    case "database":
      return agg("SELECT array_agg(privilege_type) AS p FROM (SELECT (aclexplode(datacl)).* FROM pg_database WHERE datname = $1) a WHERE grantee = $2", [database, oid]);
    case "schema":
      return agg("SELECT array_agg(privilege_type) AS p FROM (SELECT (aclexplode(nspacl)).* FROM pg_namespace WHERE nspname = $1) a WHERE grantee = $2", [g.schema, oid]);
    default: {
      // Every object of the type in the schema must carry exactly the declared privileges.
      const relkind: Record<string, string> = { table: "r", sequence: "S" };
      if (g.objectType === "function") throw new ReplayError("reading function grants is not supported by the replay");
      const rows = await t.read(
        `SELECT c.relname, array_remove(array_agg(a.privilege_type), NULL) AS p
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN LATERAL (SELECT (aclexplode(c.relacl)).*) a ON a.grantee = $1
          WHERE n.nspname = $2 AND c.relkind = $3 GROUP BY c.relname`,
        [oid, g.schema, relkind[g.objectType]],
      );
      for (const r of rows) {
        if (g.objects.length > 0 && !g.objects.includes(String(r.relname))) continue;
        const p = (r.p as string[]) ?? [];
        if (!privilegesEqual(g.objectType, p, g.privileges)) return p;
      }
      return "unchanged";
    }
  }
}

/** `database` is the actual database name (the declared one, mapped). */
export async function applyGrant(t: Tx, g: GrantSpec, database: string, prior: Record<string, unknown> | undefined): Promise<void> {
  if (prior) {
    const have = await readGrantPrivileges(t, g, database);
    if (have === "unchanged" || (Array.isArray(have) && privilegesEqual(g.objectType, have, g.privileges))) return;
  }
  const owners = await rolesToGrantForGrant(t, g);
  await withRolesGranted(t, owners, async () => {
    for (const s of grantSql(g, database)) await t.exec(s);
  });
}
