/**
 * A failing wave rolled back, on a live PostgreSQL 17: 12 tenant schemas in one wave migrated from
 * 1 to 2, where 2 fails for 3 of them (their data breaks its unique index); the migration halts;
 * rolling the wave back aborts it and takes the 9 schemas it moved back to 1 with their down files
 * (the 3 failed ones were left at 1 by their own transaction and are not touched). Refusals: a
 * running migration, a wave that moved nothing, a rollback of a rollback.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool } from "../../automation/db/database.ts";
import { migrate } from "../../automation/db/migrate.ts";
import { migrationSet } from "../../automation/schemaMigrations/files.ts";
import { DbMigrationEngine, type SchemaRunPort, type SchemaWave } from "../../automation/schemaMigrations/fleetEngine.ts";
import { SchemaMigrator } from "../../automation/schemaMigrations/migrator.ts";
import { schemaStatus } from "../../automation/schemaMigrations/tenantSchema.ts";
import { startPostgres, type PgServer } from "../support/postgres.ts";
import { clientConfig, connect, provisionTenantsInDb, type DbRef } from "../lifecycle/tenantDb.ts";

const OPTS = { lockTimeoutMs: 2000, statementTimeoutMs: 30_000 };
const TENANTS = Array.from({ length: 12 }, (_, i) => `w${String(i).padStart(2, "0")}`);
const BAD = new Set(["w02", "w05", "w11"]);
const STACK = "shared-prod-use1-01";
const SET = migrationSet(
  "/w",
  new Map(
    [
      ["0001_items.up.sql", "CREATE TABLE items (id bigint PRIMARY KEY, sku text);"],
      ["0002_sku_unique.up.sql", "ALTER TABLE items ADD COLUMN price_cents bigint NOT NULL DEFAULT 0;\nCREATE UNIQUE INDEX items_sku_idx ON items (sku);"],
      ["0002_sku_unique.down.sql", "DROP INDEX items_sku_idx;\nALTER TABLE items DROP COLUMN price_cents;"],
    ].map(([k, v]) => [k!, Buffer.from(v!)]),
  ),
);

let server: PgServer;
let cell: DbRef;
let control: pg.Pool;
let engine: DbMigrationEngine;

const port: SchemaRunPort = {
  async run(units, action, to, runId) {
    const m = new SchemaMigrator(SET, { perDatabaseConcurrency: 4, ...OPTS });
    try {
      const targets = units.map((u) => ({ ...u, database: clientConfig(cell) }));
      return action === "migrate" ? await m.migrate(targets, runId, to) : await m.rollback(targets, runId, to);
    } finally {
      await m.close();
    }
  },
};
const wave = (): SchemaWave[] => [{ index: 0, ring: "canary", parallelism: 4, bakeMs: 0, failureBudgetPercent: 20, stacks: [STACK], schemas: TENANTS.map((tenant) => ({ stack: STACK, tenant })) }];

async function versions(): Promise<Record<string, number>> {
  const c = await connect(cell);
  try {
    const out: Record<string, number> = {};
    for (const t of TENANTS) out[t] = (await schemaStatus(c, { schema: `tenant_${t}`, role: `tenant_${t}` }, OPTS)).version;
    return out;
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  server = await startPostgres({ maxConnections: 60 });
  const admin = await server.createRdsLikeAdmin();
  cell = { server, admin, database: await server.createDatabase("cell", admin) };
  await provisionTenantsInDb(cell, TENANTS.map((t) => `tenant_${t}`), "pw", true);
  control = createPool({ ...clientConfig(cell), database: await server.createDatabase("control", admin) }, 4);
  await migrate(control);
  engine = new DbMigrationEngine(control, port);
  const first = await engine.start({ action: "migrate", to: 1, waves: wave() });
  await engine.tick();
  expect((await engine.get(first.id))!.state).toBe("succeeded");
  const su = await server.connect({ ...server.bootstrap, database: cell.database });
  for (const t of TENANTS) await su.query(`INSERT INTO tenant_${t}.items VALUES (1, 'a'), (2, ${BAD.has(t) ? "'a'" : "'b'"})`);
  await su.end();
});

afterAll(async () => {
  await control?.end();
  await server?.stop();
});

describe("rolling back a failing wave", () => {
  it("takes the schemas the halted wave moved back to their previous version and leaves the failed ones as they were", async () => {
    const m = await engine.start({ action: "migrate", to: 2, waves: wave() });
    await expect(engine.rollbackWave(m.id)).rejects.toThrow(`schema migration ${m.id} is running; abort it first (tenantctl db abort ${m.id}), then roll its wave back`);
    await engine.tick();
    const halted = (await engine.get(m.id))!;
    expect(halted.state).toBe("halted");
    const moved = TENANTS.filter((t) => !BAD.has(t));
    expect(await versions()).toEqual(Object.fromEntries(TENANTS.map((t) => [t, BAD.has(t) ? 1 : 2])));
    expect((await engine.schemas(m.id)).filter((s) => s.state === "failed").map((s) => [s.tenant, s.code])).toEqual([...BAD].map((t) => [t, "23505"]));

    const rb = await engine.rollbackWave(m.id, undefined, "test");
    expect([(await engine.get(m.id))!.state, rb.action, rb.targetVersion, rb.state, rb.requestedBy]).toEqual(["aborted", "rollback", 1, "running", "test"]);
    expect(rb.waves.map((w) => [w.ring, w.parallelism, w.failureBudgetPercent, w.schemas.length])).toEqual([[`rollback of wave 0 (canary) of ${m.id}`, 4, 0, 9]]);
    await engine.tick();
    expect((await engine.get(rb.id))!.state).toBe("succeeded");
    expect((await engine.schemas(rb.id)).map((s) => [s.tenant, s.state, s.fromVersion, s.toVersion])).toEqual(moved.map((t) => [t, "succeeded", 2, 1]));
    expect(await versions()).toEqual(Object.fromEntries(TENANTS.map((t) => [t, 1])));
    // The down file ran: the column is gone from every schema.
    const su = await server.connect({ ...server.bootstrap, database: cell.database });
    expect((await su.query("SELECT count(*)::int AS n FROM information_schema.columns WHERE column_name = 'price_cents'")).rows[0]).toEqual({ n: 0 });
    await su.end();

    await expect(engine.rollbackWave(rb.id)).rejects.toThrow(`schema migration ${rb.id} is a rollback; only a migration's wave is rolled back`);
    await expect(engine.rollbackWave(m.id, 3)).rejects.toThrow(`schema migration ${m.id} has waves 0 to 0; wave 3 is not one of them`);
  });

  it("refuses a wave that moved no schema", async () => {
    const m = await engine.start({ action: "migrate", to: 1, waves: wave() });
    await engine.tick();
    await expect(engine.rollbackWave(m.id)).rejects.toThrow(`wave 0 of schema migration ${m.id} moved no schema; nothing to roll back`);
  });
});
