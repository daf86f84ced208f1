/**
 * New tenants start current: after a stack's up, NewSchemaInitializer brings the stack's tenant
 * schemas that were never brought to the template version there, on a live PostgreSQL 17, once
 * (tenant_schema_inits), adopting a schema that already has versions, recording failures and
 * retrying them on the next run, leaving alone a tenant an upgrade is moving.
 */
import { cpSync } from "node:fs";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createPool } from "../../automation/db/database.ts";
import { migrate } from "../../automation/db/migrate.ts";
import type { DatabaseLocator } from "../../automation/lifecycle/ports.ts";
import { loadProjectMigrations } from "../../automation/schemaMigrations/files.ts";
import { NewSchemaError, NewSchemaInitializer } from "../../automation/schemaMigrations/newTenants.ts";
import { migrateSchema, rollbackSchema, schemaStatus } from "../../automation/schemaMigrations/tenantSchema.ts";
import { requireFleet, tenantsOfStack } from "../../infra/model/fleet.ts";
import { cellStackName, dedicatedStackName, pgTenantIdent } from "../../infra/model/naming.ts";
import { FleetCopy, REPO } from "../cli/fleetCopy.ts";
import { startPostgres, type PgServer } from "../support/postgres.ts";
import { connect, provisionTenantInDb, provisionTenantsInDb, type DbRef } from "../lifecycle/tenantDb.ts";

/** Every fleet load from disk in this process (the model's requireFleet, counted). */
const loads = vi.hoisted(() => ({ n: 0 }));
vi.mock("../../infra/model/fleet.ts", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../infra/model/fleet.ts")>();
  return {
    ...real,
    requireFleet: (...a: Parameters<typeof real.requireFleet>) => {
      loads.n++;
      return real.requireFleet(...a);
    },
  };
});

const OPTS = { lockTimeoutMs: 2000, statementTimeoutMs: 30_000 };
const CELL = "shared-prod-use1-01";
let server: PgServer;
let fleetCopy: FleetCopy;
let control: pg.Pool;
const dbs = new Map<string, DbRef>();
let init: NewSchemaInitializer;
let residents: string[];

const locator: DatabaseLocator = {
  async cell(env, cell) {
    return config(cellStackName(env, cell));
  },
  async dedicated(tenant, env) {
    return config(dedicatedStackName(tenant, env));
  },
};
function config(stack: string): pg.ClientConfig {
  const ref = dbs.get(stack);
  if (!ref) throw new Error(`no database for ${stack}`);
  return { host: server.host, port: server.port, user: ref.admin.user, password: ref.admin.password, database: ref.database };
}

async function versionOf(stack: string, tenant: string): Promise<number> {
  const c = await connect(dbs.get(stack)!);
  try {
    const ident = pgTenantIdent(tenant);
    return (await schemaStatus(c, { schema: ident, role: ident }, OPTS)).version;
  } finally {
    await c.end();
  }
}

async function rows(stack: string) {
  return (
    await control.query<{ tenant: string; state: string; outcome: string | null; run_id: string; from_version: number | null; to_version: number | null; error: string | null; attempts: number }>(
      "SELECT tenant, state, outcome, run_id, from_version, to_version, error, attempts FROM tenant_schema_inits WHERE stack = $1 ORDER BY tenant",
      [stack],
    )
  ).rows;
}

const RUN1 = "00000000-0000-4000-8000-000000000001";
const RUN2 = "00000000-0000-4000-8000-000000000002";
const RUN3 = "00000000-0000-4000-8000-000000000003";

beforeAll(async () => {
  fleetCopy = new FleetCopy();
  cpSync(`${REPO}/tenant-migrations`, fleetCopy.path("tenant-migrations"), { recursive: true });
  // Four new free tenants join the cell (as tenantctl new writes them).
  for (const id of ["new-one", "new-two", "new-three", "new-four"]) {
    fleetCopy.write(`tenants/${id}.yaml`, fleetCopy.read("tenants/freebie-one.yaml").replace(/freebie-one/g, id).replace("Freebie One", id));
  }
  server = await startPostgres({ maxConnections: 60 });
  const admin = await server.createRdsLikeAdmin();
  const fleet = requireFleet({ projectDir: fleetCopy.dir });
  residents = tenantsOfStack(fleet, CELL).map((t) => t.id).sort();
  for (const stack of [CELL, "dedicated-acme-prod"]) {
    const ref = { server, admin, database: await server.createDatabase(stack.replace(/-/g, "_"), admin) };
    dbs.set(stack, ref);
  }
  // The cell's first resident is not provisioned yet: its schema appears later (its stack's next up).
  await provisionTenantsInDb(dbs.get(CELL)!, residents.slice(1).map(pgTenantIdent), "pw", true);
  await provisionTenantsInDb(dbs.get("dedicated-acme-prod")!, [pgTenantIdent("acme")], "pw", true);
  const controlDb = await server.createDatabase("control", server.bootstrap);
  control = createPool({ host: server.host, port: server.port, user: server.bootstrap.user, password: server.bootstrap.password, database: controlDb }, 4);
  await migrate(control);
  init = new NewSchemaInitializer({ pool: control, databases: locator });
});

afterAll(async () => {
  await control?.end();
  await server?.stop();
  fleetCopy?.cleanup();
});

describe("new tenant schemas after a stack's up", () => {
  it("has a cell with several residents to work on", () => {
    expect(residents).toEqual(["freebie-one", "new-four", "new-one", "new-three", "new-two", "startup-alpha"]);
  });

  it("brings every empty schema to the template version as the tenant's role and records it; adopts one with versions or objects; fails naming a schema it cannot migrate; skips a missing one", async () => {
    const [missing, adopted, broken, ownTables, ...fresh] = residents as [string, string, string, string, ...string[]];
    const c = await connect(dbs.get(CELL)!);
    // One resident already has versions (it existed before; a fleet migration brought it to 2).
    await migrateSchema(c, { schema: pgTenantIdent(adopted), role: pgTenantIdent(adopted) }, loadProjectMigrations(fleetCopy.dir).set, { runId: "fleet", to: 2, ...OPTS });
    await c.end();
    const su = await server.connect({ ...server.bootstrap, database: dbs.get(CELL)!.database });
    // One's schema is owned by the master user, not by the tenant's role: migrations refuse it.
    await su.query(`ALTER SCHEMA ${pgTenantIdent(broken)} OWNER TO ${dbs.get(CELL)!.admin.user}`);
    // One holds tables its application made without migrations: never replayed onto.
    await su.query(`SET ROLE ${pgTenantIdent(ownTables)}`);
    await su.query(`CREATE TABLE ${pgTenantIdent(ownTables)}.notes (id int)`);
    await su.end();

    const err = await init.afterUp({ runId: RUN1, stack: CELL, workDir: fleetCopy.dir }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NewSchemaError);
    const report = (err as NewSchemaError).report;
    expect((err as Error).message).toMatch(
      new RegExp(`^the stack is up, but 1 new tenant schema\\(s\\) could not be brought to version 3: ${pgTenantIdent(broken)}: schema ${pgTenantIdent(broken)} is owned by \\w+, not by the tenant's role ${pgTenantIdent(broken)}`),
    );
    expect((err as Error).message).toContain("tried again by the stack's next successful run");
    expect(report.schemas.map((s) => [s.tenant, s.state, s.outcome, s.from, s.to])).toEqual([
      [missing, "succeeded", "missing", undefined, undefined],
      [adopted, "succeeded", "adopted", 2, 2],
      [broken, "failed", undefined, undefined, undefined],
      [ownTables, "succeeded", "adopted", 0, 0],
      ...fresh.map((t) => [t, "succeeded", "migrated", 0, 3]),
    ]);
    for (const t of fresh) expect(await versionOf(CELL, t)).toBe(3);
    expect(await versionOf(CELL, adopted)).toBe(2);
    expect(await versionOf(CELL, ownTables)).toBe(0);
    expect((await rows(CELL)).map((r) => [r.tenant, r.state, r.outcome, r.run_id, r.from_version, r.to_version, r.attempts])).toEqual(
      [
        [adopted, "succeeded", "adopted", RUN1, 2, 2, 1],
        [broken, "failed", null, RUN1, null, null, 1],
        [ownTables, "succeeded", "adopted", RUN1, 0, 0, 1],
        ...fresh.map((t) => [t, "succeeded", "migrated", RUN1, 0, 3, 1]),
      ].sort((x, y) => (String(x[0]) < String(y[0]) ? -1 : 1)),
    );
    // The version rows say which run applied them.
    const s = await connect(dbs.get(CELL)!);
    const ident = pgTenantIdent(fresh[0]!);
    expect((await schemaStatus(s, { schema: ident, role: ident }, OPTS)).applied.map((r) => r.runId)).toEqual([`run:${RUN1}`, `run:${RUN1}`, `run:${RUN1}`]);
    await s.end();
  });

  it("the next run does the failed and the missing ones once they can be; what succeeded is never touched again", async () => {
    const [missing, , broken, , first] = residents as [string, string, string, string, string];
    await provisionTenantInDb(dbs.get(CELL)!, pgTenantIdent(missing), "pw", true);
    const su = await server.connect({ ...server.bootstrap, database: dbs.get(CELL)!.database });
    await su.query(`ALTER SCHEMA ${pgTenantIdent(broken)} OWNER TO ${pgTenantIdent(broken)}`);
    await su.end();
    const c = await connect(dbs.get(CELL)!);
    // A schema done once and rolled back to 0 by hand stays there: a later up does not redo it.
    await rollbackSchema(c, { schema: pgTenantIdent(first), role: pgTenantIdent(first) }, loadProjectMigrations(fleetCopy.dir).set, { runId: "t", to: 0, ...OPTS });
    await c.end();

    const report = (await init.afterUp({ runId: RUN2, stack: CELL, workDir: fleetCopy.dir }))!;
    expect(report.alreadyDone).toBe(residents.length - 2);
    expect(report.schemas.map((s) => [s.tenant, s.state, s.outcome, s.from, s.to, s.versions])).toEqual([
      [missing, "succeeded", "migrated", 0, 3, [1, 2, 3]],
      [broken, "succeeded", "migrated", 0, 3, [1, 2, 3]],
    ].sort((x, y) => (String(x[0]) < String(y[0]) ? -1 : 1)));
    expect(await versionOf(CELL, missing)).toBe(3);
    expect(await versionOf(CELL, broken)).toBe(3);
    expect(await versionOf(CELL, first)).toBe(0);
    const byTenant = new Map((await rows(CELL)).map((r) => [r.tenant, r]));
    expect([byTenant.get(broken)!.state, byTenant.get(broken)!.run_id, byTenant.get(broken)!.attempts, byTenant.get(broken)!.error]).toEqual(["succeeded", RUN2, 2, null]);
    expect([byTenant.get(missing)!.state, byTenant.get(missing)!.run_id, byTenant.get(missing)!.attempts]).toEqual(["succeeded", RUN2, 1]);

    // A retried run (taken over after a crash) finds everything done.
    const again = (await init.afterUp({ runId: RUN2, stack: CELL, workDir: fleetCopy.dir }))!;
    expect([again.alreadyDone, again.schemas]).toEqual([residents.length, []]);
    expect((await rows(CELL)).map((r) => r.attempts)).toEqual((await rows(CELL)).map((r) => (r.tenant === broken ? 2 : 1)));
  });

  it("a dedicated stack brings its tenant's schema; a tenant an upgrade is moving is left to the upgrade's copy", async () => {
    const text = fleetCopy.read("tenants/acme.yaml");
    fleetCopy.write("tenants/acme.yaml", `${text.trimEnd()}\nmigration:\n  phase: provisioning\n  from:\n    prod: use1-01\n  fromTier: enterprise\n  startedAt: "2026-01-01T00:00:00Z"\n`);
    const moving = (await init.afterUp({ runId: RUN3, stack: "dedicated-acme-prod", workDir: fleetCopy.dir }))!;
    expect([moving.inMotion, moving.schemas]).toEqual([["acme"], []]);
    expect(await versionOf("dedicated-acme-prod", "acme")).toBe(0);
    fleetCopy.write("tenants/acme.yaml", text);
    const report = (await init.afterUp({ runId: RUN3, stack: "dedicated-acme-prod", workDir: fleetCopy.dir }))!;
    expect(report.schemas.map((s) => [s.tenant, s.state, s.outcome, s.to])).toEqual([["acme", "succeeded", "migrated", 3]]);
    expect(await versionOf("dedicated-acme-prod", "acme")).toBe(3);
    expect(await init.afterUp({ runId: RUN3, stack: "platform-us-east-1", workDir: fleetCopy.dir })).toBeUndefined();
  });

  it("loads the fleet of a commit once for every run at that commit (a rollout wave's); without a commit, on every run", async () => {
    const at = async (commit?: string) => (await init.afterUp({ runId: RUN3, stack: "dedicated-acme-prod", workDir: fleetCopy.dir, ...(commit ? { commit } : {}) }))!.inMotion;
    const text = fleetCopy.read("tenants/acme.yaml");
    const before = loads.n;
    expect([await at("c1"), await at("c1")]).toEqual([[], []]);
    expect(loads.n - before).toBe(1);
    // A checkout of another commit where acme is being upgraded: loaded, and seen; c1's stays as c1 had it.
    fleetCopy.write("tenants/acme.yaml", `${text.trimEnd()}\nmigration:\n  phase: provisioning\n  from:\n    prod: use1-01\n  fromTier: enterprise\n  startedAt: "2026-01-01T00:00:00Z"\n`);
    expect([await at("c2"), await at("c1"), await at("c2")]).toEqual([["acme"], [], ["acme"]]);
    expect(loads.n - before).toBe(2);
    // Control: without the commit every run loads the files.
    fleetCopy.write("tenants/acme.yaml", text);
    expect([await at(), await at()]).toEqual([[], []]);
    expect(loads.n - before).toBe(4);
  });
});
