/**
 * The example fleet's tenant schemas migrated through the rings of its Pulumi.yaml, as the
 * control plane does it (SchemaMigrationService + DbMigrationEngine + the locator port), on a live
 * PostgreSQL 17: one database per cell and dedicated stack of the example fleet, each tenant's
 * schema and role provisioned as the stacks would. New schemas are brought to the template
 * version; a new migration is added and rolled out to every schema; a dry run; status; one
 * tenant's rollback. Bake times are set to 0 in the copy (the rings are otherwise the project's).
 */
import { cpSync } from "node:fs";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool } from "../../automation/db/database.ts";
import { migrate } from "../../automation/db/migrate.ts";
import { FleetCache } from "../../automation/git/fleetCache.ts";
import type { DatabaseLocator } from "../../automation/lifecycle/ports.ts";
import { JsonFileDatabaseLocator } from "../../automation/lifecycle/adapters/databases.ts";
import { loadProjectMigrations } from "../../automation/schemaMigrations/files.ts";
import { DbMigrationEngine } from "../../automation/schemaMigrations/fleetEngine.ts";
import { locatorRunPort, SchemaMigrationService, staleUnits } from "../../automation/schemaMigrations/service.ts";
import { migrateSchema } from "../../automation/schemaMigrations/tenantSchema.ts";
import { requireFleet, tenantsOfStack } from "../../infra/model/fleet.ts";
import { upgradeProvisionEdit } from "../../infra/model/fleetFiles/edits.ts";
import { editTenantText } from "../../infra/model/fleetFiles/text.ts";
import { cellStackName, dedicatedStackName, pgTenantIdent } from "../../infra/model/naming.ts";
import { FleetCopy, REPO } from "../cli/fleetCopy.ts";
import { startPostgres, type PgServer } from "../support/postgres.ts";
import { connect, provisionTenantsInDb, type DbRef } from "../lifecycle/tenantDb.ts";

let server: PgServer;
let fleetCopy: FleetCopy;
let fleetCache: FleetCache;
let control: pg.Pool;
const dbs = new Map<string, DbRef>();
let service: SchemaMigrationService;
let engine: DbMigrationEngine;

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

beforeAll(async () => {
  fleetCopy = new FleetCopy();
  fleetCache = new FleetCache(fleetCopy.dir);
  cpSync(`${REPO}/tenant-migrations`, fleetCopy.path("tenant-migrations"), { recursive: true });
  fleetCopy.write("Pulumi.yaml", fleetCopy.read("Pulumi.yaml").replace(/bakeMinutes: \d+/g, "bakeMinutes: 0"));
  server = await startPostgres({ maxConnections: 100 });
  const admin = await server.createRdsLikeAdmin();
  const fleet = requireFleet({ projectDir: fleetCopy.dir });
  for (const [stack, file] of fleet.stacks) {
    if (file.ref.kind === "platform") continue;
    const ref = { server, admin, database: await server.createDatabase(stack.replace(/-/g, "_"), admin) };
    dbs.set(stack, ref);
    await provisionTenantsInDb(ref, tenantsOfStack(fleet, stack).map((t) => pgTenantIdent(t.id)), "pw", true);
  }
  const controlDb = await server.createDatabase("control", server.bootstrap);
  control = createPool({ host: server.host, port: server.port, user: server.bootstrap.user, password: server.bootstrap.password, database: controlDb }, 4);
  await migrate(control);
  engine = new DbMigrationEngine(control, locatorRunPort(fleetCache, locator));
  service = new SchemaMigrationService(engine, fleetCache, locator);
});

afterAll(async () => {
  await control?.end();
  await server?.stop();
  fleetCopy?.cleanup();
});

describe("the example fleet", () => {
  it("plans one wave per ring with every tenant schema of its stacks", async () => {
    const { to, waves } = await service.plan({ action: "migrate" });
    expect(to).toBe(3);
    expect(waves.map((w) => [w.ring, w.stacks])).toEqual([
      ["non-prod", ["dedicated-megacorp-staging", "shared-staging-use1-01"]],
      ["canary", ["dedicated-acme-prod", "shared-prod-euw1-01", "shared-prod-use1-01"]],
      ["prod-10", expect.any(Array)],
      ["prod-rest", expect.any(Array)],
    ].slice(0, waves.length));
    const all = waves.flatMap((w) => w.schemas.map((s) => `${s.stack}/${s.tenant}`));
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe([...dbs.keys()].reduce((n, s) => n + tenantsOfStack(requireFleet({ projectDir: fleetCopy.dir }), s).length, 0));
  });

  it("plans one tenant's schemas in the rings' order, one at a time, without bake time, halting on the first failure", async () => {
    const shape = async (action: "migrate" | "rollback") =>
      (await service.plan({ action, tenant: "megacorp", to: 3 })).waves.map((w) => [w.index, w.ring, w.stacks, w.parallelism, w.bakeMs, w.failureBudgetPercent]);
    expect(await shape("migrate")).toEqual([
      [0, "non-prod (one tenant)", ["dedicated-megacorp-staging"], 1, 0, 0],
      [1, "prod-rest (one tenant)", ["dedicated-megacorp-prod"], 1, 0, 0],
    ]);
    expect(await shape("rollback")).toEqual([
      [0, "rollback: non-prod", ["dedicated-megacorp-staging"], 1, 0, 0],
      [1, "rollback: prod-rest", ["dedicated-megacorp-prod"], 1, 0, 0],
    ]);
    // Control: the fleet's plan keeps the rings' settings for the same stacks.
    const fleetWaves = (await service.plan({ action: "migrate" })).waves;
    expect(fleetWaves.filter((w) => w.ring === "non-prod" || w.ring === "prod-rest").map((w) => [w.ring, w.parallelism, w.failureBudgetPercent])).toEqual([["non-prod", 8, 0], ["prod-rest", 16, 5]]);
  });

  it("new schemas are brought to the template version through the rings; status shows them current", async () => {
    const before = await service.status();
    expect(before.schemas.every((s) => s.version === 0 && s.outdated)).toBe(true);
    const dry = await service.dryRun({ action: "migrate" });
    expect(dry.schemas.every((s) => s.current === 0 && s.versions.join() === "1,2,3")).toBe(true);
    const m = await service.start({ action: "migrate", requestedBy: "test" });
    await engine.tick();
    const view = (await service.view(m.id))!;
    expect(view.migration.state).toBe("succeeded");
    expect(view.waves.flatMap((w) => w.schemas).filter((s) => s.state !== "succeeded")).toEqual([]);
    const after = await service.status();
    expect(after.schemas.map((s) => [s.version, s.outdated, s.lastError])).toEqual(after.schemas.map(() => [3, false, null]));
  });

  it("a new migration (and template version) reaches every schema; one tenant goes back with its down file", async () => {
    fleetCopy.write("tenant-migrations/0004_add_account_locale.up.sql", "-- Adds a locale to accounts.\nALTER TABLE accounts ADD COLUMN locale text NOT NULL DEFAULT 'en';\n");
    fleetCopy.write("tenant-migrations/0004_add_account_locale.down.sql", "-- Undoes 0004.\nALTER TABLE accounts DROP COLUMN locale;\n");
    fleetCopy.edit("Pulumi.yaml", "templateVersion: 3", "templateVersion: 4");
    expect((await service.status()).schemas.every((s) => s.version === 3 && s.outdated)).toBe(true);
    const m = await service.start({ action: "migrate" });
    await engine.tick();
    expect((await service.view(m.id))!.migration.state).toBe("succeeded");
    expect((await service.status()).schemas.every((s) => s.version === 4)).toBe(true);

    expect((await service.dryRun({ action: "rollback", tenant: "acme", to: 3 })).schemas.map((s) => [s.tenant, s.current, s.versions])).toEqual([["acme", 4, [4]]]);
    const rb = await service.start({ action: "rollback", tenant: "acme", to: 3 });
    await engine.tick();
    expect((await service.view(rb.id))!.migration.state).toBe("succeeded");
    const acme = (await service.status("acme")).schemas;
    expect(acme.map((s) => [s.stack, s.version, s.outdated])).toEqual([["dedicated-acme-prod", 3, true]]);
    await expect(service.plan({ action: "rollback", tenant: "acme" })).rejects.toThrow("a rollback names the tenant and the version to go back to");
    await expect(service.plan({ action: "migrate", tenant: "nobody" })).rejects.toThrow('tenant "nobody" is not in the fleet (tenants/nobody.yaml does not exist)');
    await expect(service.plan({ action: "migrate", to: 9 })).rejects.toThrow(/to: 9 is not a migration in .*tenant-migrations \(versions: 1, 2, 3, 4\)/);
  });
});

describe("a tenant that moved while a fleet migration waited for it", () => {
  it("its units for the old cell schema are skipped with the reason (not run there, not failed); its new schema is migrated", async () => {
    const T = "startup-alpha";
    const ident = pgTenantIdent(T);
    fleetCopy.write("tenant-migrations/0005_add_document_archived.up.sql", "-- Adds an archive flag.\nALTER TABLE documents ADD COLUMN archived boolean NOT NULL DEFAULT false;\n");
    fleetCopy.edit("Pulumi.yaml", "templateVersion: 4", "templateVersion: 5");
    // The upgrade starts (its first step's file edit): dedicated stacks appear, the cell ones keep the tenant until cleanup.
    const before = requireFleet({ projectDir: fleetCopy.dir });
    expect(before.tenants.get(T)!.tenant.deployment).toBe("pooled");
    const { files, stacks } = upgradeProvisionEdit(before, fleetCopy.read(`tenants/${T}.yaml`), before.tenants.get(T)!.tenant, new Date("2026-12-06T08:00:00Z"));
    for (const [rel, text] of Object.entries(files)) fleetCopy.write(rel, text!);
    expect(stacks).toEqual([dedicatedStackName(T, "prod"), dedicatedStackName(T, "staging")]);
    const cells = [cellStackName("prod", "use1-01"), cellStackName("staging", "use1-01")];
    // The upgrade's copy: each dedicated database gets the tenant's schema at the version the cell had (4).
    const { set } = loadProjectMigrations(fleetCopy.dir);
    const admin = dbs.get(cells[0]!)!.admin;
    for (const stack of stacks) {
      const ref = { server, admin, database: await server.createDatabase(stack.replace(/-/g, "_"), admin) };
      dbs.set(stack, ref);
      await provisionTenantsInDb(ref, [ident], "pw", true);
      const c = await connect(ref);
      try {
        await migrateSchema(c, { schema: ident, role: ident }, set, { runId: "upgrade-copy", to: 4, lockTimeoutMs: 2000, statementTimeoutMs: 30_000 });
      } finally {
        await c.end();
      }
    }

    // A fleet migration starts mid-upgrade: it plans units for both locations; the tenant's wait.
    const waiting = new DbMigrationEngine(control, locatorRunPort(fleetCache, locator, async () => new Set([T])));
    const m = await waiting.start({ action: "migrate", to: 5, waves: (await service.plan({ action: "migrate" })).waves });
    await waiting.tick();
    const mine = async () => (await engine.schemas(m.id)).filter((s) => s.tenant === T).map((s) => [s.stack, s.state, s.error]).sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
    expect(await mine()).toEqual([...cells, ...stacks].sort().map((s) => [s, "pending", null]));
    expect((await engine.get(m.id))!.state).toBe("running");

    // The upgrade finishes: the migration block goes, cleanup drops the cell schemas.
    fleetCopy.write(`tenants/${T}.yaml`, editTenantText(fleetCopy.read(`tenants/${T}.yaml`), [[["migration"], undefined]]));
    for (const cell of cells) {
      const su = await server.connect({ ...server.bootstrap, database: dbs.get(cell)!.database });
      try {
        await su.query(`DROP SCHEMA ${ident} CASCADE`);
      } finally {
        await su.end();
      }
    }
    // Negative control: run against the old location, the unit would fail.
    const direct = await locatorRunPort(fleetCache, locator).run([{ stack: cells[0]!, tenant: T }], "migrate", 5, m.id);
    expect(direct.map((r) => [r.ok, !r.ok && r.error])).toEqual([[false, `${ident}: schema ${ident} does not exist in database ${dbs.get(cells[0]!)!.database}; its stack creates it (run the stack first)`]]);

    const skips: string[] = [];
    const free = new DbMigrationEngine(control, locatorRunPort(fleetCache, locator), { onSkip: (_a, u) => skips.push(`${u.stack}/${u.tenant}`) });
    await free.tick();
    const reason = (cell: string) =>
      `tenant ${T} moved since this migration was planned: its schema is no longer in ${cell} but in ${dedicatedStackName(T, cell.includes("prod") ? "prod" : "staging")}; ` +
      `not run against the old location (tenantctl db status --tenant ${T} shows its version, tenantctl db migrate --tenant ${T} brings it to the target)`;
    expect(await mine()).toEqual(
      [...cells.map((c) => [c, "skipped", reason(c)]), ...stacks.map((s) => [s, "succeeded", null])].sort((a, b) => (a[0]! < b[0]! ? -1 : 1)),
    );
    expect(skips.sort()).toEqual(cells.map((c) => `${c}/${T}`).sort());
    const view = (await service.view(m.id))!;
    expect(view.migration.state).toBe("succeeded");
    expect(view.migration.haltReason).toBeNull();
    expect(view.waves.reduce((n, w) => n + w.counts.skipped, 0)).toBe(2);
    expect(view.waves.reduce((n, w) => n + w.counts.failed, 0)).toBe(0);
    expect((await service.status(T)).schemas.map((s) => [s.stack, s.version, s.lastError])).toEqual(stacks.map((s) => [s, 5, null]));
    // A unit whose tenant left the fleet is stale too; one still in place is not.
    const now = requireFleet({ projectDir: fleetCopy.dir });
    expect(staleUnits(now, [{ stack: cells[0]!, tenant: "gone" }, { stack: stacks[0]!, tenant: T }])).toEqual(
      new Map([[`${cells[0]}/gone`, `tenant gone left the fleet since this migration was planned (tenants/gone.yaml is gone); its schema in ${cells[0]} was not touched`]]),
    );
  });
});

describe("a schema whose database cannot be located (the stack's connection is missing)", () => {
  const PROD = dedicatedStackName("megacorp", "prod");
  const STAGING = dedicatedStackName("megacorp", "staging");
  /** The operators' databases file (TENANCY_LIFECYCLE_DATABASES) with every stack's database but PROD's. */
  function withoutProd(): JsonFileDatabaseLocator {
    const urls = [...dbs].filter(([stack]) => stack !== PROD).map(([stack, ref]) => [
      stack, `postgres://${encodeURIComponent(ref.admin.user)}:${encodeURIComponent(ref.admin.password)}@${server.host}:${server.port}/${ref.database}`,
    ]);
    fleetCopy.write("databases.json", JSON.stringify(Object.fromEntries(urls)));
    return new JsonFileDatabaseLocator(fleetCopy.path("databases.json"));
  }
  const notFound = (id: string) =>
    `tenant_megacorp: the dedicated database of stack ${PROD} could not be located, so the schema was not touched: ` +
    `${fleetCopy.path("databases.json")} has no connection string for stack ${PROD}; add "${PROD}": "postgres://...". ` +
    `If the stack has not run yet, run it first (it creates the database); then resume this migration: tenantctl db resume ${id}`;
  const versionsOf = async () => (await service.status("megacorp")).schemas.map((s) => [s.stack, s.version]);

  it("a one-tenant rollback records it failed at once and halts (no budget) after its staging schema went back; resume after the fix finishes it", async () => {
    fleetCopy.write("tenant-migrations/0005_add_document_archived.down.sql", "-- Undoes 0005.\nALTER TABLE documents DROP COLUMN archived;\n");
    expect(await versionsOf()).toEqual([[PROD, 5], [STAGING, 5]]);
    const located = withoutProd();
    const halts: (string | null)[] = [];
    const e = new DbMigrationEngine(control, locatorRunPort(fleetCache, located), { onHalt: (m) => halts.push(m.haltReason) });
    const rb = await new SchemaMigrationService(e, fleetCache, located).start({ action: "rollback", tenant: "megacorp", to: 4 });
    await e.tick();
    // Staging (ring non-prod) went first and is back at 4; prod (ring prod-rest) failed, untouched.
    const rows = (await e.schemas(rb.id)).map((r) => [r.wave, r.stack, r.state, r.error, r.attempts]);
    expect(rows).toEqual([[0, STAGING, "succeeded", null, 1], [1, PROD, "failed", notFound(rb.id), 1]]);
    const reason = `wave 2 of 2 (ring rollback: prod-rest): 1 of 1 schemas failed, budget 0 (0%); first: ${PROD}/megacorp: ${notFound(rb.id)}`;
    expect([(await e.get(rb.id))!.state, halts]).toEqual(["halted", [reason]]);
    expect(await versionsOf()).toEqual([[PROD, 5], [STAGING, 4]]);
    expect((await service.status("megacorp")).schemas.map((s) => s.lastError)).toEqual([notFound(rb.id), null]);

    // The fix: the control plane locates the database again (here: the test's locator has every one).
    await engine.resume(rb.id);
    await engine.tick();
    expect((await engine.get(rb.id))!.state).toBe("succeeded");
    expect((await engine.schemas(rb.id)).map((r) => [r.stack, r.state, r.fromVersion, r.toVersion, r.attempts])).toEqual([[STAGING, "succeeded", 5, 4, 1], [PROD, "succeeded", 5, 4, 2]]);
    expect(await versionsOf()).toEqual([[PROD, 4], [STAGING, 4]]);
  });

  it("in a wave whose budget allows it, the others finish and the migration succeeds with that schema failed", async () => {
    const located = withoutProd();
    const e = new DbMigrationEngine(control, locatorRunPort(fleetCache, located));
    const schemas = [{ stack: PROD, tenant: "megacorp" }, { stack: STAGING, tenant: "megacorp" }];
    const m = await e.start({ action: "migrate", to: 5, waves: [{ index: 0, ring: "half", parallelism: 2, bakeMs: 0, failureBudgetPercent: 50, stacks: [PROD, STAGING], schemas }] });
    await e.tick();
    expect((await e.schemas(m.id)).map((r) => [r.stack, r.state, r.error])).toEqual([[PROD, "failed", notFound(m.id)], [STAGING, "succeeded", null]]);
    expect([(await e.get(m.id))!.state, (await e.get(m.id))!.haltReason]).toEqual(["succeeded", null]);
    expect(await versionsOf()).toEqual([[PROD, 4], [STAGING, 5]]);
  });
});
