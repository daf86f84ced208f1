/**
 * Replays the `postgresql:*` resources of a rendered stack against a live PostgreSQL, executing the
 * SQL that terraform-provider-postgresql (the provider behind @pulumi/postgresql) executes for each.
 * It exists so tests can prove on a real server what the program declares; it is not a deployment
 * tool and covers only the inputs the program uses (anything else is refused, never ignored).
 *
 * Mirrored from cyrilgdn/terraform-provider-postgresql, postgresql/:
 *  - resource_postgresql_role.go: resourcePostgreSQLRoleCreate builds one
 *    `CREATE ROLE "r" WITH [ENCRYPTED PASSWORD '..'] VALID UNTIL 'infinity' CONNECTION LIMIT n
 *    [NO]SUPERUSER [NO]CREATEDB [NO]CREATEROLE [NO]INHERIT [NO]LOGIN [NO]BYPASSRLS [NO]REPLICATION`
 *    (login defaults to false: NOLOGIN), then in the same transaction GRANT of `roles`,
 *    `ALTER ROLE .. SET search_path TO ..` (always; DEFAULT when empty), and
 *    `ALTER ROLE .. SET statement_timeout TO n` / idle_in_transaction_session_timeout when set.
 *    Update runs one `ALTER ROLE .. WITH <flag>` / `CONNECTION LIMIT n` per changed attribute.
 *    With `superuser: false` the password is never read back (readRolePassword): it changes only
 *    when the declared value differs from state.
 *  - resource_postgresql_schema.go: create in one transaction inside withRolesGranted(db owner,
 *    schema owner): `CREATE SCHEMA IF NOT EXISTS "s" AUTHORIZATION "owner"`; update:
 *    `ALTER SCHEMA "s" OWNER TO "o"` when the owner changed.
 *  - resource_postgresql_grant.go: create and update are the same: in one transaction, inside
 *    withRolesGranted(schema owner [+ table owners]), `REVOKE ALL PRIVILEGES ON <object> FROM r`
 *    then, unless privileges are empty, `GRANT p1,p2 ON <object> TO r` (so two Grants on the same
 *    role/object overwrite each other). Role "public" is the PUBLIC pseudo-role (getRoleOID -> 0).
 *  - resource_postgresql_default_privileges.go: withRolesGranted(owner) then
 *    `ALTER DEFAULT PRIVILEGES FOR ROLE o [IN SCHEMA s] REVOKE ALL ON <TYPE>S FROM r` and GRANT.
 *  - resource_postgresql_database.go: `CREATE DATABASE "d" OWNER "o" TEMPLATE template0 ENCODING
 *    'UTF8' ALLOW_CONNECTIONS true CONNECTION LIMIT -1 IS_TEMPLATE false` outside a transaction,
 *    with the owner granted to the admin first.
 *  - helpers.go: withRolesGranted: a non-superuser admin (RDS) is temporarily made a member (with
 *    SET) of each owner role it needs, and revoked again in the same transaction; the reverse
 *    membership is revoked and restored around it; owner `pg_database_owner` resolves to the
 *    database owner (resolveOwners). pqQuoteLiteral doubles backslashes and quotes.
 *
 * Like `pulumi up` after a first deployment, a second replay with the same `state` reads the
 * catalog (the provider's Read) and executes only the updates a difference calls for; with no
 * difference it executes nothing. Advisory locks (pgLockRole/pgLockSchema) are left out: replays
 * run one resource at a time.
 */
import { unwrapSecrets, type RenderedResource } from "./types.ts";

export const PG_TYPES = {
  provider: "pulumi:providers:postgresql",
  role: "postgresql:index/role:Role",
  schema: "postgresql:index/schema:Schema",
  grant: "postgresql:index/grant:Grant",
  defaultPrivileges: "postgresql:index/defaultPrivileges:DefaultPrivileges",
  database: "postgresql:index/database:Database",
} as const;

type Row = Record<string, unknown>;

/** What the replayer needs from a connection (a `pg.Client` fits). */
export interface SqlSession {
  query(text: string, values?: unknown[]): Promise<{ rows: Row[] }>;
  end(): Promise<void>;
}

/** Terraform state analogue: the inputs last applied, by URN. Pass the same map to a re-apply. */
export type ReplayState = Map<string, Record<string, unknown>>;

export interface ExecutedStatement {
  urn: string;
  database: string;
  sql: string;
}

export interface ReplayOptions {
  /** A session as the provider's admin user on the given (actual) database. */
  connect(database: string): Promise<SqlSession>;
  /** Declared database name -> actual (tests on a shared server suffix their databases). Default identity. */
  databaseName?: (declared: string) => string;
  state?: ReplayState;
}

export interface ReplayResult {
  /** Every statement that writes (DDL/DCL), in order; reads are not listed. */
  executed: ExecutedStatement[];
  state: ReplayState;
}

export class ReplayError extends Error {}

// --- inputs ----------------------------------------------------------------------------------

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

export interface SchemaSpec {
  name: string;
  database?: string;
  owner?: string;
  ifNotExists: boolean;
}

export type GrantObjectType = "database" | "schema" | "table" | "sequence" | "function";

export interface GrantSpec {
  role: string;
  database: string;
  schema?: string;
  objectType: GrantObjectType;
  objects: string[];
  privileges: string[];
  withGrantOption: boolean;
}

export interface DefaultPrivilegesSpec {
  role: string;
  database: string;
  owner: string;
  schema?: string;
  objectType: "table" | "sequence" | "function" | "type" | "schema";
  privileges: string[];
  withGrantOption: boolean;
}

export interface DatabaseSpec {
  name: string;
  owner?: string;
  connectionLimit: number;
  allowConnections: boolean;
  isTemplate: boolean;
}

export type PgResource =
  | { kind: "role"; urn: string; provider: string; spec: RoleSpec }
  | { kind: "schema"; urn: string; provider: string; spec: SchemaSpec }
  | { kind: "grant"; urn: string; provider: string; spec: GrantSpec }
  | { kind: "defaultPrivileges"; urn: string; provider: string; spec: DefaultPrivilegesSpec }
  | { kind: "database"; urn: string; provider: string; spec: DatabaseSpec };

export interface PgProvider {
  urn: string;
  /** The provider's default database (`database` input; the provider defaults to "postgres"). */
  database: string;
  superuser: boolean;
}

class Inputs {
  private readonly used = new Set<string>();
  constructor(
    private readonly what: string,
    private readonly raw: Record<string, unknown>,
  ) {}
  private get(k: string): unknown {
    this.used.add(k);
    return this.raw[k];
  }
  str(k: string): string | undefined {
    const v = this.get(k);
    if (v === undefined || v === null || v === "") return undefined;
    if (typeof v !== "string") throw new ReplayError(`${this.what}: input ${k} is not a string`);
    return v;
  }
  need(k: string): string {
    const v = this.str(k);
    if (v === undefined) throw new ReplayError(`${this.what}: input ${k} is required (the replayer does not auto-name)`);
    return v;
  }
  /** Provider inputs arrive JSON-encoded ("false", "5432") from bridged SDKs; resource inputs do not. */
  bool(k: string, dflt: boolean): boolean {
    const v = this.get(k);
    if (v === undefined || v === null) return dflt;
    if (typeof v === "boolean") return v;
    if (v === "true" || v === "false") return v === "true";
    throw new ReplayError(`${this.what}: input ${k} is not a boolean`);
  }
  num(k: string, dflt: number): number {
    const v = this.get(k);
    if (v === undefined || v === null) return dflt;
    const n = typeof v === "string" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isInteger(n)) throw new ReplayError(`${this.what}: input ${k} is not an integer`);
    return n;
  }
  list(k: string): string[] {
    const v = this.get(k);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw new ReplayError(`${this.what}: input ${k} is not a list of strings`);
    return v as string[];
  }
  /** Inputs that only matter on delete, or that the replay does not need, are accepted as read. */
  ignore(...keys: string[]): void {
    for (const k of keys) this.used.add(k);
  }
  /** Refuses anything declared that the replay did not consume: nothing is silently skipped. */
  done(): void {
    const extra = Object.keys(this.raw).filter((k) => !this.used.has(k) && this.raw[k] !== undefined && !k.startsWith("__"));
    if (extra.length > 0) throw new ReplayError(`${this.what}: unsupported input(s) ${extra.join(", ")}; extend infra/render/pgReplay.ts`);
  }
}

const GRANT_OBJECT_TYPES: readonly GrantObjectType[] = ["database", "schema", "table", "sequence", "function"];
const DEFAULT_PRIV_TYPES = ["table", "sequence", "function", "type", "schema"] as const;

/** helpers.go allowedPrivileges (the subset of object types the replay supports). */
const ALLOWED_PRIVILEGES: Readonly<Record<string, readonly string[]>> = {
  database: ["ALL", "CREATE", "CONNECT", "TEMPORARY"],
  table: ["ALL", "SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"],
  sequence: ["ALL", "USAGE", "SELECT", "UPDATE"],
  schema: ["ALL", "CREATE", "USAGE"],
  function: ["ALL", "EXECUTE"],
  type: ["ALL", "USAGE"],
};

function validatePrivileges(what: string, objectType: string, privileges: string[]): void {
  const allowed = ALLOWED_PRIVILEGES[objectType] ?? [];
  for (const p of privileges) {
    if (!allowed.includes(p)) throw new ReplayError(`${what}: ${p} is not an allowed privilege for object type ${objectType}`);
  }
}

/** The `postgresql:*` resources of a render, in registration order (a valid dependency order). */
export function pgResources(resources: readonly RenderedResource[]): { providers: Map<string, PgProvider>; resources: PgResource[] } {
  const providers = new Map<string, PgProvider>();
  const out: PgResource[] = [];
  for (const r of resources) {
    const raw = unwrapSecrets(r.inputs) as Record<string, unknown>;
    const what = `${r.type} ${r.name}`;
    const inp = new Inputs(what, raw);
    if (r.type === PG_TYPES.provider) {
      // Connection settings point at the real instance; the replay connects where the test says.
      inp.ignore("host", "port", "username", "password", "sslmode", "sslMode", "connectTimeout", "maxConnections", "expectedVersion", "scheme", "version");
      providers.set(r.urn, { urn: r.urn, database: inp.str("database") ?? "postgres", superuser: inp.bool("superuser", true) });
      inp.done();
      continue;
    }
    if (!r.type.startsWith("postgresql:")) continue;
    // options.provider is "<provider urn>::<id>"; no explicit provider means the default one.
    const provider = r.options.provider ? r.options.provider.split("::").slice(0, -1).join("::") : "";
    switch (r.type) {
      case PG_TYPES.role: {
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
        out.push({ kind: "role", urn: r.urn, provider, spec });
        break;
      }
      case PG_TYPES.schema: {
        inp.ignore("dropCascade");
        const spec: SchemaSpec = { name: inp.need("name"), database: inp.str("database"), owner: inp.str("owner"), ifNotExists: inp.bool("ifNotExists", true) };
        if (raw.policies !== undefined && !(Array.isArray(raw.policies) && raw.policies.length === 0)) {
          throw new ReplayError(`${what}: schema policies are deprecated in the provider; declare postgresql.Grant resources instead`);
        }
        inp.ignore("policies");
        inp.done();
        out.push({ kind: "schema", urn: r.urn, provider, spec });
        break;
      }
      case PG_TYPES.grant: {
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
        out.push({ kind: "grant", urn: r.urn, provider, spec });
        break;
      }
      case PG_TYPES.defaultPrivileges: {
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
        out.push({ kind: "defaultPrivileges", urn: r.urn, provider, spec });
        break;
      }
      case PG_TYPES.database: {
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
            throw new ReplayError(`${what}: input ${k}=${v} is not supported by the replay`);
          }
        }
        inp.ignore("alterObjectOwnership");
        inp.done();
        out.push({ kind: "database", urn: r.urn, provider, spec });
        break;
      }
      default:
        throw new ReplayError(`${what}: resource type not supported by the replay`);
    }
  }
  return { providers, resources: out };
}

// --- SQL text (pure) --------------------------------------------------------------------------

/** lib/pq QuoteIdentifier. */
export function quoteIdent(name: string): string {
  const end = name.indexOf("\u0000");
  const s = end >= 0 ? name.slice(0, end) : name;
  return `"${s.replace(/"/g, '""')}"`;
}

/** helpers.go pqQuoteLiteral, wrapped in quotes as its callers do. */
export function quoteLiteral(value: string): string {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
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

/** The role as the provider's Read sees it (resourcePostgreSQLRoleReadImpl), minus the password. */
export type RoleRead = Omit<RoleSpec, "password" | "encryptedPassword">;

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
  const changed = (k: keyof RoleRead & keyof RoleSpec) =>
    k === "roles" || k === "searchPaths" ? [...want[k]].join(",") !== [...have[k]].join(",") : want[k] !== have[k];
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

export function createSchemaSql(s: SchemaSpec): string {
  return `CREATE SCHEMA ${s.ifNotExists ? "IF NOT EXISTS " : ""}${quoteIdent(s.name)}${s.owner ? ` AUTHORIZATION ${quoteIdent(s.owner)}` : ""}`;
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

export function defaultPrivilegesSql(d: DefaultPrivilegesSpec): string[] {
  const inSchema = d.schema ? ` IN SCHEMA ${quoteIdent(d.schema)}` : "";
  const head = `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(d.owner)}${inSchema}`;
  const type = `${d.objectType.toUpperCase()}S`;
  const out = [`${head} REVOKE ALL ON ${type} FROM ${quoteIdent(d.role)}`];
  if (d.privileges.length > 0) out.push(`${head} GRANT ${d.privileges.join(",")} ON ${type} TO ${quoteIdent(d.role)}${d.withGrantOption ? " WITH GRANT OPTION" : ""}`);
  return out;
}

export function createDatabaseSql(d: DatabaseSpec, name: string, owner: string): string {
  return (
    `CREATE DATABASE ${quoteIdent(name)} OWNER ${quoteIdent(owner)} TEMPLATE template0 ENCODING 'UTF8'` +
    ` ALLOW_CONNECTIONS ${d.allowConnections} CONNECTION LIMIT ${d.connectionLimit} IS_TEMPLATE ${d.isTemplate}`
  );
}

/** resourcePrivilegesEqual: sets equal, or ALL wanted and every privilege of the type granted. */
export function privilegesEqual(objectType: string, granted: readonly string[], wanted: readonly string[]): boolean {
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().join() === [...b].sort().join();
  const g = [...new Set(granted)];
  if (same(g, [...new Set(wanted)])) return true;
  if (!wanted.includes("ALL")) return false;
  return same(g, (ALLOWED_PRIVILEGES[objectType] ?? []).filter((p) => p !== "ALL"));
}

// --- execution ---------------------------------------------------------------------------------

class Runner {
  readonly executed: ExecutedStatement[] = [];
  private readonly sessions = new Map<string, Promise<SqlSession>>();
  constructor(private readonly opts: ReplayOptions) {}

  db(declared: string): string {
    return this.opts.databaseName ? this.opts.databaseName(declared) : declared;
  }

  session(database: string): Promise<SqlSession> {
    let s = this.sessions.get(database);
    if (!s) {
      s = this.opts.connect(database);
      this.sessions.set(database, s);
    }
    return s;
  }

  async close(): Promise<void> {
    const all = await Promise.allSettled([...this.sessions.values()]);
    for (const s of all) if (s.status === "fulfilled") await s.value.end();
  }

  /** One transaction on `database`; `exec` writes (recorded), `read` does not. */
  async tx(urn: string, database: string, fn: (t: Tx) => Promise<void>): Promise<void> {
    const s = await this.session(database);
    await s.query("BEGIN");
    try {
      await fn(this.handle(urn, database, s));
      await s.query("COMMIT");
    } catch (err) {
      await s.query("ROLLBACK").catch(() => undefined);
      throw err;
    }
  }

  /** Outside a transaction (CREATE DATABASE cannot run in one). */
  async direct(urn: string, database: string, fn: (t: Tx) => Promise<void>): Promise<void> {
    await fn(this.handle(urn, database, await this.session(database)));
  }

  private handle(urn: string, database: string, s: SqlSession): Tx {
    return {
      exec: async (sql: string) => {
        try {
          await s.query(sql);
        } catch (err) {
          throw new ReplayError(`${urn}: ${sql}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        }
        this.executed.push({ urn, database, sql });
      },
      read: async (sql: string, values?: unknown[]) => (await s.query(sql, values)).rows,
    };
  }
}

interface Tx {
  exec(sql: string): Promise<void>;
  read(sql: string, values?: unknown[]): Promise<Row[]>;
}

async function one(t: Tx, sql: string, values?: unknown[]): Promise<Row | undefined> {
  return (await t.read(sql, values))[0];
}

async function currentUser(t: Tx): Promise<string> {
  return String((await one(t, "SELECT CURRENT_USER AS u"))!.u);
}

async function isSuperuser(t: Tx, role: string): Promise<boolean> {
  return (await one(t, "SELECT rolsuper FROM pg_roles WHERE rolname = $1", [role]))?.rolsuper === true;
}

async function roleExists(t: Tx, role: string): Promise<boolean> {
  return (await one(t, "SELECT 1 FROM pg_roles WHERE rolname = $1", [role])) !== undefined;
}

/** helpers.go isMemberOfRole: a membership counts only with SET (PG16+ set_option). */
async function isMemberOfRole(t: Tx, role: string, member: string): Promise<boolean> {
  const hasSet = (await one(t, "SELECT 1 FROM information_schema.columns WHERE table_name = 'pg_auth_members' AND column_name = 'set_option'")) !== undefined;
  const q = `SELECT 1 FROM pg_auth_members WHERE pg_get_userbyid(roleid) = $1 AND pg_get_userbyid(member) = $2${hasSet ? " AND set_option" : ""}`;
  return (await one(t, q, [role, member])) !== undefined;
}

async function grantMembership(t: Tx, role: string, member: string): Promise<boolean> {
  if (member === role || (await isMemberOfRole(t, role, member))) return false;
  await t.exec(`GRANT ${quoteIdent(role)} TO ${quoteIdent(member)}`);
  return true;
}

async function revokeMembership(t: Tx, role: string, member: string): Promise<boolean> {
  if (member === role || !(await isMemberOfRole(t, role, member))) return false;
  await t.exec(`REVOKE ${quoteIdent(role)} FROM ${quoteIdent(member)}`);
  return true;
}

/** helpers.go withRolesGranted. */
async function withRolesGranted(t: Tx, roles: string[], fn: () => Promise<void>): Promise<void> {
  if (roles.length === 0) return fn();
  const me = await currentUser(t);
  if (await isSuperuser(t, me)) return fn();
  const granted: string[] = [];
  const revoked: string[] = [];
  for (const role of roles) {
    if (await isSuperuser(t, role)) continue;
    if (await revokeMembership(t, me, role)) revoked.push(role);
    if (await grantMembership(t, role, me)) granted.push(role);
  }
  await fn();
  for (const role of granted) await revokeMembership(t, role, me);
  for (const role of revoked) if (await roleExists(t, role)) await grantMembership(t, me, role);
}

async function databaseOwner(t: Tx): Promise<string> {
  return String((await one(t, "SELECT pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = current_database()"))!.o);
}

/** helpers.go resolveOwners: pg_database_owner (owner of `public` since PG15) is the database owner. */
async function resolveOwner(t: Tx, owner: string): Promise<string> {
  return owner === "pg_database_owner" ? databaseOwner(t) : owner;
}

async function schemaOwner(t: Tx, schema: string): Promise<string | undefined> {
  const r = await one(t, "SELECT pg_get_userbyid(nspowner) AS o FROM pg_namespace WHERE nspname = $1", [schema]);
  return r ? String(r.o) : undefined;
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

async function roleOid(t: Tx, role: string): Promise<number | undefined> {
  if (role.toLowerCase() === "public") return 0;
  const r = await one(t, "SELECT oid FROM pg_roles WHERE rolname = $1", [role]);
  return r ? Number(r.oid) : undefined;
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

/**
 * Applies the `postgresql:*` resources of a render in registration order. Returns the write
 * statements executed and the state to pass to a re-apply.
 */
export async function replayPostgres(resources: readonly RenderedResource[], opts: ReplayOptions): Promise<ReplayResult> {
  const { providers, resources: pg } = pgResources(resources);
  const state: ReplayState = opts.state ?? new Map();
  const run = new Runner(opts);
  const providerDb = (urn: string) => {
    const p = providers.get(urn);
    if (!p) throw new ReplayError(`${urn}: resources must name an explicit postgresql provider (options.provider)`);
    return p.database;
  };
  try {
    for (const res of pg) {
      const prior = state.get(res.urn);
      const connDb = run.db(providerDb(res.provider));
      switch (res.kind) {
        case "role": {
          const want = res.spec;
          await run.tx(res.urn, connDb, async (t) => {
            const have = prior ? await readRole(t, want.name) : undefined;
            const statements = have ? updateRoleSql(want, have, prior?.password !== want.password) : createRoleSql(want);
            for (const s of statements) await t.exec(s);
          });
          break;
        }
        case "schema": {
          const s = res.spec;
          const db = run.db(s.database ?? providerDb(res.provider));
          await run.tx(res.urn, db, async (t) => {
            const owner = await schemaOwner(t, s.name);
            if (prior && owner !== undefined) {
              if (s.owner && s.owner !== owner) await t.exec(`ALTER SCHEMA ${quoteIdent(s.name)} OWNER TO ${quoteIdent(s.owner)}`);
              return;
            }
            const dbOwner = await databaseOwner(t);
            const roles = [dbOwner, ...(s.owner && s.owner !== dbOwner ? [s.owner] : [])];
            await withRolesGranted(t, roles, async () => {
              if (owner === undefined) await t.exec(createSchemaSql(s));
              else if (s.owner) await t.exec(`ALTER SCHEMA ${quoteIdent(s.name)} OWNER TO ${quoteIdent(s.owner)}`);
            });
          });
          break;
        }
        case "grant": {
          const g = res.spec;
          const db = run.db(g.database);
          await run.tx(res.urn, db, async (t) => {
            if (prior) {
              const have = await readGrantPrivileges(t, g, db);
              if (have === "unchanged" || (Array.isArray(have) && privilegesEqual(g.objectType, have, g.privileges))) return;
            }
            const owners = await rolesToGrantForGrant(t, g);
            await withRolesGranted(t, owners, async () => {
              for (const s of grantSql(g, db)) await t.exec(s);
            });
          });
          break;
        }
        case "defaultPrivileges": {
          const d = res.spec;
          await run.tx(res.urn, run.db(d.database), async (t) => {
            if (prior) {
              const have = await readDefaultPrivileges(t, d);
              if (privilegesEqual(d.objectType, have, d.privileges)) return;
            }
            await withRolesGranted(t, [d.owner], async () => {
              for (const s of defaultPrivilegesSql(d)) await t.exec(s);
            });
          });
          break;
        }
        case "database": {
          const d = res.spec;
          const name = run.db(d.name);
          await run.direct(res.urn, connDb, async (t) => {
            const me = await currentUser(t);
            const row = await one(t, "SELECT pg_get_userbyid(datdba) AS o, datconnlimit FROM pg_database WHERE datname = $1", [name]);
            const owner = d.owner ?? me;
            if (row && prior) {
              if (d.owner && row.o !== d.owner) {
                const granted = await grantMembership(t, d.owner, me);
                await t.exec(`ALTER DATABASE ${quoteIdent(name)} OWNER TO ${quoteIdent(d.owner)}`);
                if (granted) await revokeMembership(t, d.owner, me);
              }
              if (Number(row.datconnlimit) !== d.connectionLimit) await t.exec(`ALTER DATABASE ${quoteIdent(name)} CONNECTION LIMIT = ${d.connectionLimit}`);
              return;
            }
            const granted = d.owner ? await grantMembership(t, d.owner, me) : false;
            await t.exec(createDatabaseSql(d, name, owner));
            if (granted) await revokeMembership(t, d.owner!, me);
          });
          break;
        }
      }
      state.set(res.urn, res.kind === "role" ? { password: res.spec.password } : {});
    }
  } finally {
    await run.close();
  }
  return { executed: run.executed, state };
}
