/**
 * Isolation checks on a live PostgreSQL, as reusable functions that return findings instead of
 * asserting: the suites assert "no findings" on what the program declares, and the weakened
 * cases assert that the same functions report the breach a deliberately broken grant opens.
 */
import type pg from "pg";
import { pgResources } from "../support/pgReplay/index.ts";
import type { RenderedStack } from "../../plan/types.ts";
import { pgTenantIdent } from "../../infra/model/naming.ts";
import { sqlState, type Credentials, type PgServer } from "../support/postgres.ts";

export interface Finding {
  check: string;
  subject: string;
  detail: string;
}

/** One tenant's database login, as the rendered stack declares it. */
export interface TenantLogin extends Credentials {
  tenant: string;
  /** Actual database name on the test server. */
  database: string;
  schema: string;
  login: boolean;
  connectionLimit: number;
  statementTimeoutMs: number;
  searchPath: string[];
}

/**
 * Reads every tenant's role from the render: the Role named `tenant_<id>` (docs/stacks.md), its
 * generated password (the Role's password input, a secret, unwrapped), and the schema it owns.
 */
export function tenantLogins(stack: RenderedStack, actualDb: (declared: string) => string = (d) => d): TenantLogin[] {
  const { providers, resources } = pgResources(stack.resources);
  const out: TenantLogin[] = [];
  for (const tenant of stack.tenants) {
    const ident = pgTenantIdent(tenant);
    const role = resources.find((r) => r.kind === "role" && r.spec.name === ident);
    if (!role || role.kind !== "role") throw new Error(`${stack.name}: no postgresql Role named ${ident} for tenant ${tenant}`);
    const schema = resources.find((r) => r.kind === "schema" && r.spec.owner === ident);
    if (!schema || schema.kind !== "schema") throw new Error(`${stack.name}: no postgresql Schema owned by ${ident}`);
    if (role.spec.password === undefined) throw new Error(`${stack.name}: role ${ident} has no password input`);
    const database = schema.spec.database ?? providers.get(schema.provider)?.database;
    if (!database) throw new Error(`${stack.name}: cannot tell the database of schema ${schema.spec.name}`);
    out.push({
      tenant,
      user: ident,
      password: role.spec.password,
      database: actualDb(database),
      schema: schema.spec.name,
      login: role.spec.login,
      connectionLimit: role.spec.connectionLimit,
      statementTimeoutMs: role.spec.statementTimeout,
      searchPath: role.spec.searchPaths,
    });
  }
  return out;
}

function q(ident: string): string {
  return `"${ident.replace(/"/g, '""')}"`;
}

/** Runs `sql`; returns the SQLSTATE it failed with, or "ok" and the rows. */
async function attempt(c: pg.Client, sql: string): Promise<{ state: string; rows: Record<string, unknown>[] }> {
  try {
    const r = await c.query(sql);
    return { state: "ok", rows: r.rows as Record<string, unknown>[] };
  } catch (err) {
    return { state: sqlState(err) ?? `error: ${err instanceof Error ? err.message : String(err)}`, rows: [] };
  }
}

export const MARKER_TABLE = "isolation_probe";

/**
 * Each tenant that can log in creates a table in its own schema and stores a marker row (this is
 * also the positive control: a tenant can work in its own schema). Tenants that cannot log in get
 * the table created by `observer` and handed to their role.
 */
export async function seedTenantData(server: PgServer, logins: readonly TenantLogin[], observer: Credentials): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const t of logins) {
    const create = `CREATE TABLE ${q(t.schema)}.${MARKER_TABLE} (id int PRIMARY KEY, owner text NOT NULL)`;
    const insert = `INSERT INTO ${q(t.schema)}.${MARKER_TABLE} VALUES (1, '${t.tenant}')`;
    if (t.login) {
      const c = await server.connect(t);
      try {
        for (const sql of [create, insert]) {
          const r = await attempt(c, sql);
          if (r.state !== "ok") findings.push({ check: "own-schema", subject: t.tenant, detail: `${sql} failed with ${r.state}` });
        }
        const mine = await attempt(c, `SELECT owner FROM ${MARKER_TABLE}`);
        if (mine.state !== "ok" || mine.rows[0]?.owner !== t.tenant) {
          findings.push({ check: "own-schema", subject: t.tenant, detail: `unqualified read of its own table via search_path: ${mine.state}` });
        }
      } finally {
        await c.end();
      }
    } else {
      const c = await server.connect({ ...observer, database: t.database });
      try {
        await c.query(create);
        await c.query(insert);
        await c.query(`ALTER TABLE ${q(t.schema)}.${MARKER_TABLE} OWNER TO ${q(t.user)}`);
      } finally {
        await c.end();
      }
    }
  }
  return findings;
}

/**
 * For every ordered pair (a, b) in one database, a logged in as itself: SELECT, INSERT, UPDATE,
 * DELETE on b's table, CREATE in b's schema and in `public`, and an unqualified read after
 * `SET search_path` to b's schema. Each must fail with 42501 (insufficient privilege); the
 * unqualified read may instead fail with 42P01, because PostgreSQL skips search_path schemas the
 * user has no USAGE on; either way no row of b may come back.
 */
export async function checkCrossTenantAccess(server: PgServer, logins: readonly TenantLogin[]): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const a of logins.filter((t) => t.login)) {
    const c = await server.connect(a);
    try {
      for (const b of logins) {
        if (b.tenant === a.tenant || b.database !== a.database) continue;
        const subject = `${a.tenant} -> ${b.tenant}`;
        const table = `${q(b.schema)}.${MARKER_TABLE}`;
        const denied: Array<[string, string]> = [
          ["select", `SELECT * FROM ${table}`],
          ["insert", `INSERT INTO ${table} VALUES (2, '${a.tenant}')`],
          ["update", `UPDATE ${table} SET owner = '${a.tenant}'`],
          ["delete", `DELETE FROM ${table}`],
          ["create-in-other-schema", `CREATE TABLE ${q(b.schema)}.planted_by_${a.user} (id int)`],
        ];
        for (const [check, sql] of denied) {
          const r = await attempt(c, sql);
          if (r.state !== "42501") findings.push({ check, subject, detail: `${sql}: expected SQLSTATE 42501, got ${r.state}` });
        }
        const set = await attempt(c, `SET search_path TO ${q(b.schema)}`);
        if (set.state === "ok") {
          const r = await attempt(c, `SELECT owner FROM ${MARKER_TABLE}`);
          if (r.state !== "42501" && r.state !== "42P01") {
            findings.push({ check: "search-path", subject, detail: `unqualified SELECT after SET search_path TO ${b.schema}: got ${r.state} ${JSON.stringify(r.rows)}` });
          }
          await c.query("RESET search_path");
        }
      }
      const pub = await attempt(c, `CREATE TABLE public.planted_by_${a.user} (id int)`);
      if (pub.state !== "42501") findings.push({ check: "create-in-public", subject: a.tenant, detail: `CREATE TABLE in public: expected 42501, got ${pub.state}` });
    } finally {
      await c.end();
    }
  }
  return findings;
}

/** A tenant may not even connect to a database it was not given (PUBLIC lost CONNECT). */
export async function checkForeignDatabaseConnect(server: PgServer, logins: readonly TenantLogin[], foreignDatabase: string): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const t of logins.filter((x) => x.login && x.database !== foreignDatabase)) {
    try {
      const c = await server.connect({ ...t, database: foreignDatabase });
      await c.end();
      findings.push({ check: "connect-foreign-database", subject: t.tenant, detail: `connected to ${foreignDatabase}` });
    } catch (err) {
      if (sqlState(err) !== "42501") findings.push({ check: "connect-foreign-database", subject: t.tenant, detail: `expected 42501, got ${sqlState(err) ?? String(err)}` });
    }
  }
  return findings;
}

/** Opens `connectionLimit` sessions as the tenant; the next one must be refused with 53300. */
export async function checkConnectionLimits(server: PgServer, logins: readonly TenantLogin[]): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const t of logins.filter((x) => x.login)) {
    if (t.connectionLimit < 0) {
      findings.push({ check: "connection-limit", subject: t.tenant, detail: "role has no connection limit" });
      continue;
    }
    const open: pg.Client[] = [];
    try {
      for (let i = 0; i < t.connectionLimit; i++) open.push(await server.connect(t));
      try {
        open.push(await server.connect(t));
        findings.push({ check: "connection-limit", subject: t.tenant, detail: `connection ${t.connectionLimit + 1} was accepted` });
      } catch (err) {
        if (sqlState(err) !== "53300") findings.push({ check: "connection-limit", subject: t.tenant, detail: `connection ${t.connectionLimit + 1}: expected 53300, got ${sqlState(err) ?? String(err)}` });
      }
    } catch (err) {
      findings.push({ check: "connection-limit", subject: t.tenant, detail: `only ${open.length} of ${t.connectionLimit} connections opened: ${String(err)}` });
    } finally {
      await Promise.all(open.map((c) => c.end()));
    }
  }
  return findings;
}

/**
 * As each tenant, concurrently: `SHOW statement_timeout` equals the declared value, and
 * `pg_sleep` past it is cancelled with 57014. A query still running `graceMs` after its timeout
 * is a finding (and is terminated by `observer`).
 */
export async function checkStatementTimeouts(
  server: PgServer,
  logins: readonly TenantLogin[],
  observer: Credentials,
  graceMs = 5_000,
): Promise<Finding[]> {
  const results = await Promise.all(
    logins.filter((x) => x.login).map(async (t): Promise<Finding[]> => {
      const found: Finding[] = [];
      if (t.statementTimeoutMs <= 0) return [{ check: "statement-timeout", subject: t.tenant, detail: "no statement timeout declared" }];
      const c = await server.connect(t);
      try {
        const shown = (await c.query("SELECT current_setting('statement_timeout') AS v, pg_backend_pid() AS pid")).rows[0] as { v: string; pid: number };
        const ms = (await c.query("SELECT setting::int AS ms FROM pg_settings WHERE name = 'statement_timeout'")).rows[0] as { ms: number };
        if (ms.ms !== t.statementTimeoutMs) found.push({ check: "statement-timeout", subject: t.tenant, detail: `session statement_timeout ${shown.v}, declared ${t.statementTimeoutMs} ms` });
        const started = Date.now();
        let guard: NodeJS.Timeout | undefined;
        const overdue = new Promise<"overdue">((res) => {
          guard = setTimeout(() => res("overdue"), t.statementTimeoutMs + graceMs);
        });
        const outcome = await Promise.race([attempt(c, "SELECT pg_sleep(3600)"), overdue]);
        clearTimeout(guard);
        if (outcome === "overdue") {
          found.push({ check: "statement-timeout", subject: t.tenant, detail: `pg_sleep still running ${t.statementTimeoutMs + graceMs} ms later` });
          const o = await server.connect({ ...observer, database: t.database });
          await o.query("SELECT pg_terminate_backend($1)", [shown.pid]).finally(() => o.end());
        } else if (outcome.state !== "57014") {
          found.push({ check: "statement-timeout", subject: t.tenant, detail: `pg_sleep: expected 57014, got ${outcome.state}` });
        } else if (Date.now() - started < t.statementTimeoutMs - 50) {
          found.push({ check: "statement-timeout", subject: t.tenant, detail: `cancelled after ${Date.now() - started} ms, before the declared ${t.statementTimeoutMs} ms` });
        }
      } finally {
        await c.end().catch(() => undefined);
      }
      return found;
    }),
  );
  return results.flat();
}

/** A tenant whose role must not log in (suspended) is refused with 28000. */
export async function checkLoginRefused(server: PgServer, logins: readonly TenantLogin[]): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const t of logins.filter((x) => !x.login)) {
    try {
      const c = await server.connect(t);
      await c.end();
      findings.push({ check: "login-refused", subject: t.tenant, detail: "logged in although its role must not log in" });
    } catch (err) {
      if (sqlState(err) !== "28000") findings.push({ check: "login-refused", subject: t.tenant, detail: `expected 28000, got ${sqlState(err) ?? String(err)}` });
    }
  }
  return findings;
}

/**
 * Catalog audit, as `observer`: no tenant role has SUPERUSER, BYPASSRLS, CREATEROLE, CREATEDB or
 * REPLICATION or belongs to another role; its search_path is pinned to its own schema; PUBLIC has
 * neither CONNECT on the databases nor CREATE on schema `public` (default ACLs included: a NULL
 * ACL means the built-in defaults, which give PUBLIC CONNECT).
 */
export async function auditCatalog(server: PgServer, observer: Credentials, logins: readonly TenantLogin[], databases: readonly string[]): Promise<Finding[]> {
  const findings: Finding[] = [];
  const c = await server.connect({ ...observer, database: databases[0]! });
  try {
    const roles = (
      await c.query(
        `SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication, rolconfig,
                ARRAY(SELECT pg_get_userbyid(m.roleid) FROM pg_auth_members m WHERE m.member = r.oid)::text[] AS member_of
           FROM pg_roles r WHERE rolname = ANY($1)`,
        [logins.map((t) => t.user)],
      )
    ).rows as Array<Record<string, unknown>>;
    for (const t of logins) {
      const r = roles.find((x) => x.rolname === t.user);
      if (!r) {
        findings.push({ check: "role-exists", subject: t.tenant, detail: `role ${t.user} not found` });
        continue;
      }
      for (const attr of ["rolsuper", "rolbypassrls", "rolcreaterole", "rolcreatedb", "rolreplication"]) {
        if (r[attr] === true) findings.push({ check: "role-attributes", subject: t.tenant, detail: `${t.user} has ${attr}` });
      }
      const memberOf = (r.member_of as string[]) ?? [];
      if (memberOf.length > 0) findings.push({ check: "role-membership", subject: t.tenant, detail: `${t.user} is a member of ${memberOf.join(", ")}` });
      const path = ((r.rolconfig as string[] | null) ?? []).find((s) => s.startsWith("search_path="));
      if (path !== `search_path=${t.schema}` && path !== `search_path="${t.schema}"`) {
        findings.push({ check: "search-path-pinned", subject: t.tenant, detail: `${t.user} ${path ?? "has no pinned search_path"}` });
      }
    }
  } finally {
    await c.end();
  }
  for (const db of databases) {
    const d = await server.connect({ ...observer, database: db });
    try {
      const connect = await d.query(
        `SELECT 1 FROM (SELECT (aclexplode(COALESCE(datacl, acldefault('d', datdba)))).* FROM pg_database WHERE datname = $1) a
          WHERE grantee = 0 AND privilege_type = 'CONNECT'`,
        [db],
      );
      if (connect.rowCount) findings.push({ check: "public-connect", subject: db, detail: "PUBLIC has CONNECT on the database" });
      const create = await d.query(
        `SELECT privilege_type FROM (SELECT (aclexplode(COALESCE(nspacl, acldefault('n', nspowner)))).* FROM pg_namespace WHERE nspname = 'public') a
          WHERE grantee = 0`,
      );
      if (create.rows.some((r) => r.privilege_type === "CREATE")) findings.push({ check: "public-create", subject: db, detail: "PUBLIC has CREATE on schema public" });
    } finally {
      await d.end();
    }
  }
  return findings;
}

/**
 * Everything a replay can change, as `observer`: the given roles (attributes, settings, password
 * hash when the observer may read pg_authid) and every membership involving them, the databases
 * and their ACLs, and per database the schemas, relation ACLs and default ACLs. Two equal
 * snapshots mean nothing changed. Scoped to `roles` because a shared (DATABASE_URL) server has
 * other roles coming and going.
 */
export async function catalogSnapshot(
  server: PgServer,
  observer: Credentials,
  databases: readonly string[],
  roles: readonly string[],
): Promise<Record<string, unknown>> {
  const snap: Record<string, unknown> = {};
  const c = await server.connect({ ...observer, database: databases[0]! });
  try {
    snap.roles = (
      await c.query(
        `SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls,
                rolconnlimit, rolvaliduntil::text, rolconfig FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname`,
        [roles],
      )
    ).rows;
    const authid = await c
      .query("SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY($1) ORDER BY rolname", [roles])
      .then((r) => ({ state: "ok", rows: r.rows as Record<string, unknown>[] }))
      .catch(() => ({ state: "denied", rows: [] }));
    snap.passwords = authid.state === "ok" ? authid.rows : "pg_authid not readable by the observer";
    snap.memberships = (
      await c.query(
        `SELECT pg_get_userbyid(roleid) AS role, pg_get_userbyid(member) AS member, pg_get_userbyid(grantor) AS grantor,
                admin_option, inherit_option, set_option FROM pg_auth_members
          WHERE pg_get_userbyid(roleid) = ANY($1) OR pg_get_userbyid(member) = ANY($1) ORDER BY 1, 2, 3`,
        [roles],
      )
    ).rows;
    snap.databases = (
      await c.query("SELECT datname, pg_get_userbyid(datdba) AS owner, datacl::text[], datconnlimit FROM pg_database WHERE datname = ANY($1) ORDER BY 1", [databases])
    ).rows;
  } finally {
    await c.end();
  }
  for (const db of databases) {
    const d = await server.connect({ ...observer, database: db });
    try {
      snap[`${db}.schemas`] = (
        await d.query("SELECT nspname, pg_get_userbyid(nspowner) AS owner, nspacl::text[] FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' ORDER BY 1")
      ).rows;
      snap[`${db}.relations`] = (
        await d.query(
          `SELECT n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner) AS owner, c.relacl::text[] FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' ORDER BY 1, 2`,
        )
      ).rows;
      snap[`${db}.defaultAcls`] = (
        await d.query("SELECT pg_get_userbyid(defaclrole) AS role, defaclnamespace::regnamespace::text AS ns, defaclobjtype, defaclacl::text[] FROM pg_default_acl ORDER BY 1, 2, 3")
      ).rows;
    } finally {
      await d.end();
    }
  }
  return snap;
}
