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
import type { DatabaseLocator } from "../../automation/lifecycle/ports.ts";
import { DbMigrationEngine } from "../../automation/schemaMigrations/fleetEngine.ts";
import { locatorRunPort, SchemaMigrationService } from "../../automation/schemaMigrations/service.ts";
import { requireFleet, tenantsOfStack } from "../../infra/model/fleet.ts";
import { cellStackName, dedicatedStackName, pgTenantIdent } from "../../infra/model/naming.ts";
import { FleetCopy, REPO } from "../cli/fleetCopy.ts";
import { startPostgres, type PgServer } from "../support/postgres.ts";
import { provisionTenantsInDb, type DbRef } from "../lifecycle/tenantDb.ts";

let server: PgServer;
let fleetCopy: FleetCopy;
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
  engine = new DbMigrationEngine(control, locatorRunPort(fleetCopy.dir, locator));
  service = new SchemaMigrationService(engine, fleetCopy.dir, locator);
});

afterAll(async () => {
  await control?.end();
  await server?.stop();
  fleetCopy?.cleanup();
});

describe("the example fleet", () => {
  it("plans one wave per ring with every tenant schema of its stacks", () => {
    const { to, waves } = service.plan({ action: "migrate" });
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
    expect(() => service.plan({ action: "rollback", tenant: "acme" })).toThrow("a rollback names the tenant and the version to go back to");
    expect(() => service.plan({ action: "migrate", tenant: "nobody" })).toThrow('tenant "nobody" is not in the fleet (tenants/nobody.yaml does not exist)');
    expect(() => service.plan({ action: "migrate", to: 9 })).toThrow(/to: 9 is not a migration in .*tenant-migrations \(versions: 1, 2, 3, 4\)/);
  });
});
