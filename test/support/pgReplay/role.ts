/**
 * postgresql.Role, mirrored from resource_postgresql_role.go: resourcePostgreSQLRoleCreate builds one
 * `CREATE ROLE "r" WITH [ENCRYPTED PASSWORD '..'] VALID UNTIL 'infinity' CONNECTION LIMIT n
 * [NO]SUPERUSER [NO]CREATEDB [NO]CREATEROLE [NO]INHERIT [NO]LOGIN [NO]BYPASSRLS [NO]REPLICATION`
 * (login defaults to false: NOLOGIN), then in the same transaction GRANT of `roles`,
 * `ALTER ROLE .. SET search_path TO ..` (always; DEFAULT when empty), and
 * `ALTER ROLE .. SET statement_timeout TO n` / idle_in_transaction_session_timeout when set.
 * Update runs one `ALTER ROLE .. WITH <flag>` / `CONNECTION LIMIT n` per changed attribute.
 * With `superuser: false` the password is never read back (readRolePassword): it changes only
 * when the declared value differs from state.
 */
import { ReplayError } from "./api.ts";
import type { Inputs } from "./inputs.ts";
import { one, type Tx } from "./session.ts";
import { quoteIdent, quoteLiteral } from "./sql.ts";

export interface RoleSpec {
  name: string;
  login: boolean;
  password?: string;
  encryptedPassword: boolean;
  validUntil: string;
  connectionLimit: number;
  superuser: boolean;
  createDatabase: boolean;
  createRole: boolean;
  inherit: boolean;
  bypassRowLevelSecurity: boolean;
  replication: boolean;
  roles: string[];
  searchPaths: string[];
  statementTimeout: number;
  idleInTransactionSessionTimeout: number;
  assumeRole: string;
}

/** The role as the provider's Read sees it (resourcePostgreSQLRoleReadImpl), minus the password. */
export type RoleRead = Omit<RoleSpec, "password" | "encryptedPassword">;

export function parseRole(inp: Inputs): RoleSpec {
  inp.ignore("skipDropRole", "skipReassignOwned");
  const spec: RoleSpec = {
    name: inp.need("name"),
    login: inp.bool("login", false),
    password: inp.str("password"),
    encryptedPassword: inp.bool("encryptedPassword", true),
    validUntil: inp.str("validUntil") ?? "infinity",
    connectionLimit: inp.num("connectionLimit", -1),
    superuser: inp.bool("superuser", false),
    createDatabase: inp.bool("createDatabase", false),
    createRole: inp.bool("createRole", false),
    inherit: inp.bool("inherit", true),
    bypassRowLevelSecurity: inp.bool("bypassRowLevelSecurity", false),
    replication: inp.bool("replication", false),
    roles: inp.list("roles"),
    searchPaths: inp.list("searchPaths"),
    statementTimeout: inp.num("statementTimeout", 0),
    idleInTransactionSessionTimeout: inp.num("idleInTransactionSessionTimeout", 0),
    assumeRole: inp.str("assumeRole") ?? "",
  };
  inp.done();
  return spec;
}

export function createRoleSql(r: RoleSpec): string[] {
  const opts: string[] = [];
  if (r.password !== undefined) {
    if (r.password.toUpperCase() === "NULL") opts.push("PASSWORD NULL");
    else opts.push(r.encryptedPassword ? "ENCRYPTED" : "UNENCRYPTED", `PASSWORD ${quoteLiteral(r.password)}`);
  }
  opts.push(`VALID UNTIL ${r.validUntil.toLowerCase() === "infinity" ? "'infinity'" : quoteLiteral(r.validUntil)}`);
  opts.push(`CONNECTION LIMIT ${r.connectionLimit}`);
  const flag = (on: boolean, yes: string) => (on ? yes : `NO${yes}`);
  opts.push(
    flag(r.superuser, "SUPERUSER"),
    flag(r.createDatabase, "CREATEDB"),
    flag(r.createRole, "CREATEROLE"),
    flag(r.inherit, "INHERIT"),
    flag(r.login, "LOGIN"),
    flag(r.bypassRowLevelSecurity, "BYPASSRLS"),
    flag(r.replication, "REPLICATION"),
  );
  const out = [`CREATE ROLE ${quoteIdent(r.name)} WITH ${opts.join(" ")}`];
  for (const g of r.roles) out.push(`GRANT ${quoteIdent(g)} TO ${quoteIdent(r.name)}`);
  out.push(searchPathSql(r));
  // setStatementTimeout etc. run when the attribute "has a change": on create, when set.
  if (r.statementTimeout !== 0) out.push(`ALTER ROLE ${quoteIdent(r.name)} SET statement_timeout TO ${r.statementTimeout}`);
  if (r.idleInTransactionSessionTimeout !== 0) {
    out.push(`ALTER ROLE ${quoteIdent(r.name)} SET idle_in_transaction_session_timeout TO ${r.idleInTransactionSessionTimeout}`);
  }
  if (r.assumeRole) out.push(`ALTER ROLE ${quoteIdent(r.name)} SET ROLE TO ${quoteIdent(r.assumeRole)}`);
  return out;
}

function searchPathSql(r: RoleSpec): string {
  for (const p of r.searchPaths) if (p.includes(", ")) throw new ReplayError(`search_path cannot contain \`, \`: ${p}`);
  const path = r.searchPaths.length > 0 ? r.searchPaths.map(quoteIdent).join(", ") : "DEFAULT";
  return `ALTER ROLE ${quoteIdent(r.name)} SET search_path TO ${path}`;
}

/**
 * What `pulumi up` does for an existing role: nothing when the refreshed role matches the
 * declaration; otherwise resourcePostgreSQLRoleUpdate, which runs one statement per changed
 * attribute in the provider's order but always revokes and re-grants `roles` and always re-sets
 * search_path.
 */
export function updateRoleSql(want: RoleSpec, have: RoleRead, passwordChanged: boolean): string[] {
  const n = quoteIdent(want.name);
  const flags: Array<[keyof RoleRead & keyof RoleSpec, string]> = [
    ["bypassRowLevelSecurity", "BYPASSRLS"],
    ["createDatabase", "CREATEDB"],
    ["createRole", "CREATEROLE"],
    ["inherit", "INHERIT"],
    ["login", "LOGIN"],
    ["replication", "REPLICATION"],
    ["superuser", "SUPERUSER"],
  ];
  // `roles` is compared as a set (rolesChanged), search_path in order.
  const changed = (k: keyof RoleRead & keyof RoleSpec) => (k === "searchPaths" ? want[k].join(",") !== have[k].join(",") : want[k] !== have[k]);
  const rolesChanged = [...want.roles].sort().join(",") !== [...have.roles].sort().join(",");
  const validUntilChanged = want.validUntil.toLowerCase() !== have.validUntil.toLowerCase();
  const any =
    (passwordChanged && want.password !== undefined) ||
    flags.some(([k]) => changed(k)) ||
    rolesChanged ||
    validUntilChanged ||
    (["connectionLimit", "searchPaths", "statementTimeout", "idleInTransactionSessionTimeout", "assumeRole"] as const).some(changed);
  if (!any) return [];
  const out: string[] = [];
  if (passwordChanged && want.password !== undefined) out.push(`ALTER ROLE ${n} PASSWORD ${quoteLiteral(want.password)}`);
  const flag = ([k, tok]: [keyof RoleRead & keyof RoleSpec, string]) => {
    if (changed(k)) out.push(`ALTER ROLE ${n} WITH ${want[k] ? tok : `NO${tok}`}`);
  };
  flag(flags[0]!); // setRoleBypassRLS
  if (changed("connectionLimit")) out.push(`ALTER ROLE ${n} CONNECTION LIMIT ${want.connectionLimit}`);
  for (const f of flags.slice(1)) flag(f); // createdb, createrole, inherit, login, replication, superuser
  if (validUntilChanged) {
    out.push(`ALTER ROLE ${n} VALID UNTIL ${quoteLiteral(want.validUntil.toLowerCase() === "infinity" ? "infinity" : want.validUntil)}`);
  }
  for (const g of have.roles) out.push(`REVOKE ${quoteIdent(g)} FROM ${n}`); // revokeRoles
  for (const g of want.roles) out.push(`GRANT ${quoteIdent(g)} TO ${n}`); // grantRoles
  out.push(searchPathSql(want)); // alterSearchPath: unconditional
  if (changed("statementTimeout")) {
    out.push(want.statementTimeout !== 0 ? `ALTER ROLE ${n} SET statement_timeout TO ${want.statementTimeout}` : `ALTER ROLE ${n} RESET statement_timeout`);
  }
  if (changed("idleInTransactionSessionTimeout")) {
    out.push(
      want.idleInTransactionSessionTimeout !== 0
        ? `ALTER ROLE ${n} SET idle_in_transaction_session_timeout TO ${want.idleInTransactionSessionTimeout}`
        : `ALTER ROLE ${n} RESET idle_in_transaction_session_timeout`,
    );
  }
  if (changed("assumeRole")) out.push(want.assumeRole ? `ALTER ROLE ${n} SET ROLE TO ${quoteIdent(want.assumeRole)}` : `ALTER ROLE ${n} RESET ROLE`);
  return out;
}

async function readRole(t: Tx, name: string): Promise<RoleRead | undefined> {
  const r = await one(
    t,
    `SELECT ARRAY(SELECT pg_get_userbyid(roleid) FROM pg_auth_members m WHERE m.member = pg_roles.oid)::text[] AS roles,
            rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolconnlimit,
            COALESCE(rolvaliduntil::TEXT, 'infinity') AS validuntil, rolconfig, rolreplication, rolbypassrls
       FROM pg_roles WHERE rolname = $1`,
    [name],
  );
  if (!r) return undefined;
  const config = (r.rolconfig as string[] | null) ?? [];
  const setting = (key: string) => config.find((c) => c.startsWith(`${key}=`))?.slice(key.length + 1);
  return {
    name,
    roles: (r.roles as string[]) ?? [],
    superuser: r.rolsuper === true,
    inherit: r.rolinherit === true,
    createRole: r.rolcreaterole === true,
    createDatabase: r.rolcreatedb === true,
    login: r.rolcanlogin === true,
    connectionLimit: Number(r.rolconnlimit),
    validUntil: String(r.validuntil),
    replication: r.rolreplication === true,
    bypassRowLevelSecurity: r.rolbypassrls === true,
    // readSearchPath: split on ", " and strip double quotes.
    searchPaths: setting("search_path")?.split(", ").map((p) => p.replace(/^"|"$/g, "")) ?? [],
    statementTimeout: Number(setting("statement_timeout") ?? 0),
    idleInTransactionSessionTimeout: Number(setting("idle_in_transaction_session_timeout") ?? 0),
    assumeRole: setting("role") ?? "",
  };
}

/** Create, or (with prior state) read and update; the password changes only when it differs from state. */
export async function applyRole(t: Tx, want: RoleSpec, prior: Record<string, unknown> | undefined): Promise<void> {
  const have = prior ? await readRole(t, want.name) : undefined;
  const statements = have ? updateRoleSql(want, have, prior?.password !== want.password) : createRoleSql(want);
  for (const s of statements) await t.exec(s);
}
