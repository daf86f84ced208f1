/**
 * The replayer of test/support/pgReplay/: the SQL it generates for each resource (as
 * terraform-provider-postgresql generates it), and its behaviour on a live PostgreSQL as a
 * non-superuser admin: temporary owner membership, revoke-before-grant, idempotence.
 */
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireFleet, type Fleet } from "../../infra/model/fleet.ts";
import {
  createRoleSql, createSchemaSql, defaultPrivilegesSql, grantSql, pgResources, privilegesEqual, quoteIdent, quoteLiteral, replayPostgres,
  updateRoleSql, ReplayError, type ReplayState, type RoleSpec,
} from "../support/pgReplay/index.ts";
import { renderStack } from "../../plan/render/render.ts";
import type { RenderedStack } from "../../plan/types.ts";
import { catalogSnapshot } from "./pgChecks.ts";
import { startPostgres, type Credentials, type PgServer } from "../support/postgres.ts";

const fleet = requireFleet({ projectDir: resolve(import.meta.dirname, "../..") });
const STACK = "dedicated-acme-prod";

interface UnitArgs {
  connectionLimit?: number;
  extra?: (p: postgresql.Provider) => void;
  roleArgs?: Partial<postgresql.RoleArgs>;
}

/** A small program in the shape the stacks use: provider, hardening, a role owning its schema. */
function unitProgram(args: UnitArgs = {}) {
  return async (_f: Fleet, _s: string) => {
    const p = new postgresql.Provider("pg", { host: "db.example", port: 5432, database: "unit", username: "admin", password: pulumi.secret("x"), superuser: false, sslmode: "require" });
    new postgresql.Grant("public-connect", { database: "unit", role: "public", objectType: "database", privileges: [] }, { provider: p });
    new postgresql.Grant("public-schema", { database: "unit", role: "public", schema: "public", objectType: "schema", privileges: [] }, { provider: p });
    for (const t of ["unit_a", "unit_b"]) {
      const role = new postgresql.Role(t, {
        name: t, login: true, password: pulumi.secret(`pw-'${t}'`), connectionLimit: args.connectionLimit ?? 3, statementTimeout: 1000, searchPaths: [t],
        ...args.roleArgs,
      }, { provider: p });
      new postgresql.Schema(t, { name: t, owner: role.name, database: "unit" }, { provider: p });
      new postgresql.Grant(`${t}-connect`, { database: "unit", role: role.name, objectType: "database", privileges: ["CONNECT"] }, { provider: p });
    }
    args.extra?.(p);
    return {};
  };
}

const render = (args?: UnitArgs): Promise<RenderedStack> => renderStack(fleet, STACK, { program: unitProgram(args), fastPromises: true });

const tenantSpec: RoleSpec = {
  name: "tenant_a", login: true, password: "p'w\\d", encryptedPassword: true, validUntil: "infinity", connectionLimit: 5, superuser: false,
  createDatabase: false, createRole: false, inherit: true, bypassRowLevelSecurity: false, replication: false, roles: [], searchPaths: ["tenant_a"],
  statementTimeout: 5000, idleInTransactionSessionTimeout: 0, assumeRole: "",
};

describe("generated SQL (terraform-provider-postgresql's statements)", () => {
  it("creates a role with every attribute explicit, then pins search_path and statement_timeout", () => {
    expect(createRoleSql(tenantSpec)).toEqual([
      `CREATE ROLE "tenant_a" WITH ENCRYPTED PASSWORD 'p''w\\\\d' VALID UNTIL 'infinity' CONNECTION LIMIT 5 NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT LOGIN NOBYPASSRLS NOREPLICATION`,
      `ALTER ROLE "tenant_a" SET search_path TO "tenant_a"`,
      `ALTER ROLE "tenant_a" SET statement_timeout TO 5000`,
    ]);
  });

  it("quotes like lib/pq and pqQuoteLiteral", () => {
    expect(quoteIdent('we"ird')).toBe('"we""ird"');
    expect(quoteLiteral("a'b\\c")).toBe("'a''b\\\\c'");
  });

  it("defaults a role without `login` to NOLOGIN and an empty search_path to DEFAULT", async () => {
    const r = await renderStack(fleet, STACK, {
      fastPromises: true,
      program: async () => {
        const p = new postgresql.Provider("pg", { database: "unit", superuser: false });
        new postgresql.Role("bare", { name: "bare" }, { provider: p });
        return {};
      },
    });
    const [role] = pgResources(r.resources).resources;
    expect(role?.kind).toBe("role");
    if (role?.kind !== "role") return;
    expect(createRoleSql(role.spec)).toEqual([
      `CREATE ROLE "bare" WITH VALID UNTIL 'infinity' CONNECTION LIMIT -1 NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT NOLOGIN NOBYPASSRLS NOREPLICATION`,
      `ALTER ROLE "bare" SET search_path TO DEFAULT`,
    ]);
  });

  it("revokes before it grants; empty privileges only revoke; role public is PUBLIC", () => {
    const g = { role: "tenant_a", database: "cell", schema: "tenant_a", objectType: "schema" as const, objects: [], privileges: ["USAGE", "CREATE"], withGrantOption: false };
    expect(grantSql(g)).toEqual([`REVOKE ALL PRIVILEGES ON SCHEMA "tenant_a" FROM "tenant_a"`, `GRANT USAGE,CREATE ON SCHEMA "tenant_a" TO "tenant_a"`]);
    expect(grantSql({ ...g, role: "public", schema: "public", privileges: [] })).toEqual([`REVOKE ALL PRIVILEGES ON SCHEMA "public" FROM "public"`]);
    expect(grantSql({ ...g, objectType: "database", schema: undefined, privileges: ["CONNECT"] }, "cell_1234")).toEqual([
      `REVOKE ALL PRIVILEGES ON DATABASE "cell_1234" FROM "tenant_a"`,
      `GRANT CONNECT ON DATABASE "cell_1234" TO "tenant_a"`,
    ]);
    expect(grantSql({ ...g, objectType: "table", privileges: ["SELECT"] })).toEqual([
      `REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA "tenant_a" FROM "tenant_a"`,
      `GRANT SELECT ON ALL TABLES IN SCHEMA "tenant_a" TO "tenant_a"`,
    ]);
  });

  it("creates schemas IF NOT EXISTS with AUTHORIZATION and sets default privileges revoke-then-grant", () => {
    expect(createSchemaSql({ name: "tenant_a", owner: "tenant_a", ifNotExists: true })).toBe(`CREATE SCHEMA IF NOT EXISTS "tenant_a" AUTHORIZATION "tenant_a"`);
    expect(defaultPrivilegesSql({ role: "app", database: "d", owner: "tenant_a", schema: "tenant_a", objectType: "table", privileges: ["SELECT"], withGrantOption: false })).toEqual([
      `ALTER DEFAULT PRIVILEGES FOR ROLE "tenant_a" IN SCHEMA "tenant_a" REVOKE ALL ON TABLES FROM "app"`,
      `ALTER DEFAULT PRIVILEGES FOR ROLE "tenant_a" IN SCHEMA "tenant_a" GRANT SELECT ON TABLES TO "app"`,
    ]);
  });

  it("updates only what differs, always re-setting search_path as the provider's Update does", () => {
    const have = { ...tenantSpec } as Omit<RoleSpec, "password" | "encryptedPassword"> & Partial<RoleSpec>;
    delete have.password;
    delete have.encryptedPassword;
    expect(updateRoleSql(tenantSpec, have, false)).toEqual([]);
    expect(updateRoleSql({ ...tenantSpec, login: false, connectionLimit: 7 }, have, false)).toEqual([
      `ALTER ROLE "tenant_a" CONNECTION LIMIT 7`,
      `ALTER ROLE "tenant_a" WITH NOLOGIN`,
      `ALTER ROLE "tenant_a" SET search_path TO "tenant_a"`,
    ]);
    expect(updateRoleSql(tenantSpec, have, true)[0]).toBe(`ALTER ROLE "tenant_a" PASSWORD 'p''w\\\\d'`);
  });

  it("compares privileges as sets, ALL meaning every privilege of the type", () => {
    expect(privilegesEqual("schema", ["CREATE", "USAGE"], ["ALL"])).toBe(true);
    expect(privilegesEqual("schema", ["USAGE"], ["ALL"])).toBe(false);
    expect(privilegesEqual("database", [], [])).toBe(true);
  });

  it("refuses what it cannot replay faithfully instead of skipping it", async () => {
    const r = await render({
      extra: (p) => new postgresql.Grant("cols", { database: "unit", role: "unit_a", schema: "unit_a", objectType: "column", objects: ["t"], columns: ["c"], privileges: ["SELECT"] }, { provider: p }),
    });
    expect(() => pgResources(r.resources)).toThrow(ReplayError);
    expect(() => pgResources(r.resources)).toThrow(/column/);
  });
});

describe("replay on a live PostgreSQL as a non-superuser admin", () => {
  let server: PgServer;
  let admin: Credentials;
  let db: string;
  const state: ReplayState = new Map();
  const connect = (database: string) => server.connect({ ...admin, database });

  beforeAll(async () => {
    server = await startPostgres();
    admin = await server.createRdsLikeAdmin("unit_admin");
    server.trackRoles(["unit_a", "unit_b"]);
    db = await server.createDatabase("unit", admin);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("applies the render, granting each schema owner to the admin only for the statement that needs it", async () => {
    const r = await render();
    const { executed } = await replayPostgres(r.resources, { connect, databaseName: () => db, state });
    const sql = executed.map((e) => e.sql);
    const create = sql.indexOf(`CREATE SCHEMA IF NOT EXISTS "unit_a" AUTHORIZATION "unit_a"`);
    expect(create).toBeGreaterThan(0);
    expect(sql[create - 1]).toBe(`GRANT "unit_a" TO ${quoteIdent(admin.user)}`);
    expect(sql[create + 1]).toBe(`REVOKE "unit_a" FROM ${quoteIdent(admin.user)}`);
    expect(sql).toContain(`REVOKE ALL PRIVILEGES ON DATABASE ${quoteIdent(db)} FROM "public"`);
    expect(state.size).toBe(pgResources(r.resources).resources.length);
    const c = await connect(db);
    try {
      const owner = (await c.query("SELECT pg_get_userbyid(nspowner) AS o FROM pg_namespace WHERE nspname = 'unit_a'")).rows[0];
      expect(owner).toEqual({ o: "unit_a" });
      // The temporary membership is gone: only PG16+'s automatic CREATEROLE grant (ADMIN, no SET) remains.
      const m = (await c.query("SELECT set_option, admin_option FROM pg_auth_members WHERE roleid = 'unit_a'::regrole AND member = current_user::regrole")).rows;
      expect(m).toEqual([{ set_option: false, admin_option: true }]);
      const role = (await c.query("SELECT rolcanlogin, rolconnlimit, rolconfig FROM pg_roles WHERE rolname = 'unit_a'")).rows[0];
      expect(role).toEqual({ rolcanlogin: true, rolconnlimit: 3, rolconfig: ["search_path=unit_a", "statement_timeout=1000"] });
    } finally {
      await c.end();
    }
    // The password input (with a quote in it) is the one the role logs in with.
    const asA = await server.connect({ user: "unit_a", password: "pw-'unit_a'", database: db });
    expect((await asA.query("SELECT current_user AS u")).rows).toEqual([{ u: "unit_a" }]);
    await asA.end();
    // Re-applying with the same state executes nothing and changes nothing.
    const roles = ["unit_a", "unit_b", admin.user];
    const before = await catalogSnapshot(server, server.bootstrap, [db], roles);
    const again = await replayPostgres(r.resources, { connect, databaseName: () => db, state });
    expect(again.executed).toEqual([]);
    expect(await catalogSnapshot(server, server.bootstrap, [db], roles)).toEqual(before);
    // A changed declaration executes only the provider's update statements for it.
    const changed = await replayPostgres((await render({ connectionLimit: 4 })).resources, { connect, databaseName: () => db, state });
    expect(changed.executed.map((e) => e.sql)).toEqual([
      `ALTER ROLE "unit_a" CONNECTION LIMIT 4`,
      `ALTER ROLE "unit_a" SET search_path TO "unit_a"`,
      `ALTER ROLE "unit_b" CONNECTION LIMIT 4`,
      `ALTER ROLE "unit_b" SET search_path TO "unit_b"`,
    ]);
  });

  it("lets two Grants on one role and object overwrite each other: the one applied last wins", async () => {
    const r = await render({
      connectionLimit: 4,
      extra: (p) => {
        new postgresql.Grant("b-on-a-1", { database: "unit", role: "unit_b", schema: "unit_a", objectType: "schema", privileges: ["USAGE", "CREATE"] }, { provider: p });
        new postgresql.Grant("b-on-a-2", { database: "unit", role: "unit_b", schema: "unit_a", objectType: "schema", privileges: ["USAGE"] }, { provider: p });
      },
    });
    const { executed } = await replayPostgres(r.resources, { connect, databaseName: () => db, state });
    const grants = executed.filter((e) => /b-on-a-[12]$/.test(e.urn));
    // Each: owner granted to the admin, REVOKE ALL, GRANT, owner revoked, in one transaction.
    expect(grants.map((e) => e.sql.replace(/USAGE,CREATE|USAGE/, "<privileges>"))).toEqual(
      Array(2).fill([
        `GRANT "unit_a" TO ${quoteIdent(admin.user)}`,
        `REVOKE ALL PRIVILEGES ON SCHEMA "unit_a" FROM "unit_b"`,
        `GRANT <privileges> ON SCHEMA "unit_a" TO "unit_b"`,
        `REVOKE "unit_a" FROM ${quoteIdent(admin.user)}`,
      ]).flat(),
    );
    // The two are independent, so the engine may apply them in either order (here: registration order).
    const last = grants[6]!.sql;
    const c = await connect(db);
    const privs = (await c.query("SELECT has_schema_privilege('unit_b', 'unit_a', 'USAGE') AS usage, has_schema_privilege('unit_b', 'unit_a', 'CREATE') AS create")).rows[0];
    await c.end();
    expect(privs).toEqual({ usage: true, create: last.includes("USAGE,CREATE") });
  });

  it("creates a database owned by a tenant role and sets default privileges, then re-applies as a no-op", async () => {
    const extraDb = `${db}_extra`;
    server.trackDatabases([extraDb]);
    const r = await render({
      connectionLimit: 4,
      extra: (p) => {
        new postgresql.Database("extra", { name: "unit_extra", owner: "unit_a" }, { provider: p });
        new postgresql.DefaultPrivileges("b-reads-a", { database: "unit", owner: "unit_a", schema: "unit_a", role: "unit_b", objectType: "table", privileges: ["SELECT"] }, { provider: p });
      },
    });
    const names = (d: string) => (d === "unit_extra" ? extraDb : db);
    const { executed } = await replayPostgres(r.resources, { connect, databaseName: names, state });
    expect(executed.filter((e) => /::(extra|b-reads-a)$/.test(e.urn)).map((e) => e.sql)).toEqual([
      `GRANT "unit_a" TO ${quoteIdent(admin.user)}`,
      `CREATE DATABASE ${quoteIdent(extraDb)} OWNER "unit_a" TEMPLATE template0 ENCODING 'UTF8' ALLOW_CONNECTIONS true CONNECTION LIMIT -1 IS_TEMPLATE false`,
      `REVOKE "unit_a" FROM ${quoteIdent(admin.user)}`,
      `GRANT "unit_a" TO ${quoteIdent(admin.user)}`,
      `ALTER DEFAULT PRIVILEGES FOR ROLE "unit_a" IN SCHEMA "unit_a" REVOKE ALL ON TABLES FROM "unit_b"`,
      `ALTER DEFAULT PRIVILEGES FOR ROLE "unit_a" IN SCHEMA "unit_a" GRANT SELECT ON TABLES TO "unit_b"`,
      `REVOKE "unit_a" FROM ${quoteIdent(admin.user)}`,
    ]);
    const c = await connect(db);
    const owner = (await c.query("SELECT pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = $1", [extraDb])).rows;
    const acl = (await c.query("SELECT defaclacl::text[] AS acl FROM pg_default_acl WHERE defaclnamespace = 'unit_a'::regnamespace")).rows;
    await c.end();
    expect(owner).toEqual([{ o: "unit_a" }]);
    expect(acl).toEqual([{ acl: ["unit_b=r/unit_a"] }]);
    expect((await replayPostgres(r.resources, { connect, databaseName: names, state })).executed).toEqual([]);
  });

  it("fails like the provider when a declared role already exists and there is no state", async () => {
    await expect(replayPostgres((await render({ connectionLimit: 4 })).resources, { connect, databaseName: () => db })).rejects.toThrow(/already exists/);
  });
});
