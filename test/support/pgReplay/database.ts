/**
 * postgresql.Database, mirrored from resource_postgresql_database.go: `CREATE DATABASE "d" OWNER "o"
 * TEMPLATE template0 ENCODING 'UTF8' ALLOW_CONNECTIONS true CONNECTION LIMIT -1 IS_TEMPLATE false`
 * outside a transaction, with the owner granted to the admin first.
 */
import { ReplayError } from "./api.ts";
import type { Inputs } from "./inputs.ts";
import { currentUser, grantMembership, revokeMembership } from "./membership.ts";
import { one, type Tx } from "./session.ts";
import { quoteIdent } from "./sql.ts";

export interface DatabaseSpec {
  name: string;
  owner?: string;
  connectionLimit: number;
  allowConnections: boolean;
  isTemplate: boolean;
}

export function parseDatabase(inp: Inputs): DatabaseSpec {
  const spec: DatabaseSpec = {
    name: inp.need("name"),
    owner: inp.str("owner"),
    connectionLimit: inp.num("connectionLimit", -1),
    allowConnections: inp.bool("allowConnections", true),
    isTemplate: inp.bool("isTemplate", false),
  };
  // Creation-time options the provider leaves to the template unless set: refused if set.
  for (const k of ["template", "encoding", "lcCollate", "lcCtype", "tablespaceName"]) {
    const v = inp.str(k);
    if (v !== undefined && !(k === "template" && v === "template0") && !(k === "encoding" && v.toUpperCase() === "UTF8")) {
      throw new ReplayError(`${inp.what}: input ${k}=${v} is not supported by the replay`);
    }
  }
  inp.ignore("alterObjectOwnership");
  inp.done();
  return spec;
}

export function createDatabaseSql(d: DatabaseSpec, name: string, owner: string): string {
  return (
    `CREATE DATABASE ${quoteIdent(name)} OWNER ${quoteIdent(owner)} TEMPLATE template0 ENCODING 'UTF8'` +
    ` ALLOW_CONNECTIONS ${d.allowConnections} CONNECTION LIMIT ${d.connectionLimit} IS_TEMPLATE ${d.isTemplate}`
  );
}

/** Runs `fn` with `me` made a member of `role` (if it is not already), then revokes what it granted. */
async function asMemberOf(t: Tx, role: string | undefined, me: string, fn: () => Promise<void>): Promise<void> {
  const granted = role ? await grantMembership(t, role, me) : false;
  await fn();
  if (granted) await revokeMembership(t, role!, me);
}

/** On the provider's database, outside a transaction; `name` is the actual database name. */
export async function applyDatabase(t: Tx, d: DatabaseSpec, name: string, prior: Record<string, unknown> | undefined): Promise<void> {
  const me = await currentUser(t);
  const row = await one(t, "SELECT pg_get_userbyid(datdba) AS o, datconnlimit FROM pg_database WHERE datname = $1", [name]);
  if (row && prior) {
    if (d.owner && row.o !== d.owner) {
      await asMemberOf(t, d.owner, me, () => t.exec(`ALTER DATABASE ${quoteIdent(name)} OWNER TO ${quoteIdent(d.owner!)}`));
    }
    if (Number(row.datconnlimit) !== d.connectionLimit) await t.exec(`ALTER DATABASE ${quoteIdent(name)} CONNECTION LIMIT = ${d.connectionLimit}`);
    return;
  }
  await asMemberOf(t, d.owner, me, () => t.exec(createDatabaseSql(d, name, d.owner ?? me)));
}
