/**
 * The fleet schema migration engine on a live PostgreSQL 17: the control plane's tables
 * (migration 300) in one database, and the tenant schemas in a cell database (200 tenants, their
 * stacks spread over three waves) plus a dedicated tenant's own database, all migrated for real by
 * the SchemaMigrator as an RDS-like master user. Waves, failure budget and halt, resume after the
 * fix, a crash (claims whose lease ran out), and tenants that must wait (mid-upgrade).
 */
import type pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createPool } from "../../automation/db/database.ts";
import { migrate } from "../../automation/db/migrate.ts";
import { migrationSet, type MigrationSet } from "../../automation/schemaMigrations/files.ts";
import { DbMigrationEngine, type SchemaRunPort, type SchemaWave } from "../../automation/schemaMigrations/fleetEngine.ts";
import { SchemaMigrator } from "../../automation/schemaMigrations/migrator.ts";
import { migrateSchema, schemaStatus } from "../../automation/schemaMigrations/tenantSchema.ts";
import { startPostgres, type PgServer } from "../support/postgres.ts";
import { connect, provisionTenantsInDb, type DbRef } from "../lifecycle/tenantDb.ts";

const OPTS = { lockTimeoutMs: 2000, statementTimeoutMs: 30_000 };
const TENANTS = Array.from({ length: 200 }, (_, i) => `f${String(i).padStart(3, "0")}`);
const DEDICATED = "solo";
/** Three cell stacks (one database here) in three rings: 20, 60 and 120 schemas; the dedicated tenant rides the last. */
const STACK_OF = (i: number) => (i < 20 ? "shared-dev-use1-01" : i < 80 ? "shared-prod-use1-01" : "shared-prod-use1-02");

let server: PgServer;
let cell: DbRef;
let dedicated: DbRef;
let control: pg.Pool;
let su: pg.Client;

const set = (n: number): MigrationSet =>
  migrationSet(
    "/fleet",
    new Map(
      [
        ["0001_items.up.sql", "CREATE TABLE items (id bigint PRIMARY KEY, label text);"],
        ["0002_price.up.sql", "ALTER TABLE items ADD COLUMN price_cents bigint NOT NULL DEFAULT 0;\nCREATE INDEX items_price_idx ON items (price_cents);"],
        ["0002_price.down.sql", "DROP INDEX items_price_idx;\nALTER TABLE items DROP COLUMN price_cents;"],
        ["0003_notes.up.sql", "CREATE TABLE item_notes (item_id bigint REFERENCES items (id), note text);"],
      ].filter(([k]) => Number(k!.slice(0, 4)) <= n).map(([k, v]) => [k!, Buffer.from(v!)]),
    ),
  );

/** The engine's port on the test databases: every cell stack is the cell database, the dedicated stack its own. */
function port(migrations: MigrationSet, busy: ReadonlySet<string> = new Set()): SchemaRunPort & { peak(): number } {
  let peak = 0;
  return {
    async run(units, action, to, runId) {
      const m = new SchemaMigrator(migrations, { perDatabaseConcurrency: 4, ...OPTS });
      try {
        const targets = units.map((u) => {
          const ref = u.stack.startsWith("dedicated-") ? dedicated : cell;
          return { ...u, database: { host: server.host, port: server.port, user: ref.admin.user, password: ref.admin.password, database: ref.database } };
        });
        const out = action === "migrate" ? await m.migrate(targets, runId, to) : await m.rollback(targets, runId, to);
        peak = Math.max(peak, m.limiter.peak(`${server.host}:${server.port}`));
        return out;
      } finally {
        await m.close();
      }
    },
    async busy() {
      return busy;
    },
    peak: () => peak,
  };
}

function waves(budgets: [number, number, number] = [0, 0, 0]): SchemaWave[] {
  const stacks = ["shared-dev-use1-01", "shared-prod-use1-01", "shared-prod-use1-02"];
  return stacks.map((stack, index) => {
    const schemas = TENANTS.flatMap((t, i) => (STACK_OF(i) === stack ? [{ stack, tenant: t }] : []));
    if (index === 2) schemas.push({ stack: `dedicated-${DEDICATED}-prod`, tenant: DEDICATED });
    return { index, ring: ["non-prod", "canary", "prod-rest"][index]!, parallelism: 16, bakeMs: 0, failureBudgetPercent: budgets[index]!, stacks: [...new Set(schemas.map((s) => s.stack))], schemas };
  });
}

async function versionOf(ref: DbRef, tenant: string): Promise<number> {
  const c = await connect(ref);
  try {
    return (await schemaStatus(c, { schema: `tenant_${tenant}`, role: `tenant_${tenant}` }, OPTS)).version;
  } finally {
    await c.end();
  }
}

async function versions(): Promise<Map<number, number>> {
  const { rows } = await su.query<{ v: number; n: number }>(
    `SELECT v, count(*)::int AS n FROM (${TENANTS.map((t) => `SELECT coalesce((SELECT max(version) FROM tenant_${t}.schema_migrations), 0) AS v`).join(" UNION ALL ")}) x GROUP BY v ORDER BY v`,
  );
  return new Map(rows.map((r) => [r.v, r.n]));
}

beforeAll(async () => {
  server = await startPostgres({ maxConnections: 100 });
  const cellAdmin = await server.createRdsLikeAdmin("cell_admin");
  const dedAdmin = await server.createRdsLikeAdmin("ded_admin");
  cell = { server, admin: cellAdmin, database: await server.createDatabase("cell", cellAdmin) };
  dedicated = { server, admin: dedAdmin, database: await server.createDatabase("app", dedAdmin) };
  await provisionTenantsInDb(cell, TENANTS.map((t) => `tenant_${t}`), "pw", true);
  await provisionTenantsInDb(dedicated, [`tenant_${DEDICATED}`], "pw", true);
  const controlDb = await server.createDatabase("control", server.bootstrap);
  control = createPool({ host: server.host, port: server.port, user: server.bootstrap.user, password: server.bootstrap.password, database: controlDb }, 4);
  await migrate(control);
  su = await server.connect({ ...server.bootstrap, database: cell.database });
});

afterAll(async () => {
  await su?.end();
  await control?.end();
  await server?.stop();
});

beforeEach(async () => {
  await control.query("DELETE FROM db_migrations");
});

describe("fleet schema migrations through the rings", () => {
  it("200 cell schemas and a dedicated one in 3 waves, at most 4 at once per instance, end at the target with one row per version", async () => {
    const p = port(set(1));
    const engine = new DbMigrationEngine(control, p);
    const m = await engine.start({ action: "migrate", to: 1, waves: waves() });
    expect(m.state).toBe("running");
    expect(m.waves.map((w) => w.schemas.length)).toEqual([20, 60, 121]);
    await engine.tick();
    expect((await engine.get(m.id))!.state).toBe("succeeded");
    expect(await versions()).toEqual(new Map([[1, 200]]));
    expect(await versionOf(dedicated, DEDICATED)).toBe(1);
    expect(p.peak()).toBe(4);
    const schemas = await engine.schemas(m.id);
    expect(schemas.filter((s) => s.state !== "succeeded")).toEqual([]);
    expect(schemas.every((s) => s.fromVersion === 0 && s.toVersion === 1 && s.attempts === 1)).toBe(true);
  });

  it("3 failing tenants within the budget are recorded and the rest finish; beyond it the migration halts and later waves wait; resume after the fix", async () => {
    const broken = ["f030", "f031", "f032"];
    for (const t of broken) await su.query(`SET ROLE tenant_${t}; CREATE INDEX items_price_idx ON tenant_${t}.items (label); RESET ROLE`);
    const engine = new DbMigrationEngine(control, port(set(2)));
    // canary (60 schemas) tolerates 5% = 3 failures.
    const within = await engine.start({ action: "migrate", to: 2, waves: waves([0, 5, 0]) });
    await engine.tick();
    const done = (await engine.get(within.id))!;
    expect(done.state).toBe("succeeded");
    const failed = (await engine.schemas(within.id)).filter((s) => s.state === "failed");
    expect(failed.map((s) => [s.tenant, s.code, s.error])).toEqual(
      broken.map((t) => [t, "42P07", `tenant_${t}: 0002_price.up.sql failed: relation "items_price_idx" already exists (SQLSTATE 42P07)`]),
    );
    expect(await versions()).toEqual(new Map([[1, 3], [2, 197]]));

    // Roll the 197 back to 1 (down files), then the same failures with a budget of 0 halt in wave 2.
    const back = await engine.start({ action: "rollback", to: 1, waves: waves() });
    await engine.tick();
    expect((await engine.get(back.id))!.state).toBe("succeeded");
    expect(await versions()).toEqual(new Map([[1, 200]]));
    const halting = await engine.start({ action: "migrate", to: 2, waves: waves([0, 0, 0]) });
    await engine.tick();
    const halted = (await engine.get(halting.id))!;
    expect(halted.state).toBe("halted");
    expect(halted.haltReason).toBe(
      'wave 2 of 3 (ring canary): 3 of 60 schemas failed, budget 0 (0%); first: shared-prod-use1-01/f030: tenant_f030: 0002_price.up.sql failed: relation "items_price_idx" already exists (SQLSTATE 42P07)',
    );
    const byWave = (await engine.schemas(halting.id)).reduce((acc, s) => acc.set(`${s.wave}:${s.state}`, (acc.get(`${s.wave}:${s.state}`) ?? 0) + 1), new Map<string, number>());
    // The first 16 of the wave ran (parallelism 16) and three failed: nothing more of it, nor of wave 3, started.
    expect(Object.fromEntries(byWave)).toEqual({ "0:succeeded": 20, "1:succeeded": 13, "1:failed": 3, "1:pending": 44, "2:pending": 121 });
    await engine.tick();
    expect((await engine.schemas(halting.id)).filter((s) => s.wave === 2 && s.state !== "pending")).toEqual([]);
    await expect(engine.start({ action: "migrate", to: 2, waves: waves() })).rejects.toThrow(`schema migration ${halting.id} is halted; resume or abort it before starting another`);

    for (const t of broken) await su.query(`SET ROLE tenant_${t}; DROP INDEX tenant_${t}.items_price_idx; RESET ROLE`);
    await engine.resume(halting.id);
    await engine.tick();
    expect((await engine.get(halting.id))!.state).toBe("succeeded");
    expect(await versions()).toEqual(new Map([[2, 200]]));
    const resumed = (await engine.schemas(halting.id)).filter((s) => s.attempts === 2).map((s) => s.tenant);
    expect(resumed).toEqual(broken);
  });

  it("after a crash, claims whose lease ran out run again and nothing is applied twice; a tenant mid-upgrade waits", async () => {
    const engine = new DbMigrationEngine(control, port(set(3), new Set(["f150"])));
    const m = await engine.start({ action: "migrate", to: 3, waves: waves() });
    // A process claimed five schemas of wave 1 and died before recording them; one of them it had migrated.
    const c = await connect(cell);
    try {
      await migrateSchema(c, { schema: "tenant_f000", role: "tenant_f000" }, set(3), { runId: m.id, ...OPTS });
    } finally {
      await c.end();
    }
    await control.query(
      "UPDATE db_migration_schemas SET state = 'running', attempts = 1, lease_until = now() - interval '1 second' WHERE migration_id = $1 AND tenant = ANY($2)",
      [m.id, ["f000", "f001", "f002", "f003", "f004"]],
    );
    await engine.tick();
    const rec = (await engine.get(m.id))!;
    expect(rec.state).toBe("running");
    expect(rec.wave).toBe(2);
    const waiting = (await engine.schemas(m.id)).filter((s) => s.state !== "succeeded");
    expect(waiting.map((s) => [s.tenant, s.state])).toEqual([["f150", "pending"]]);
    const f000 = (await engine.schemas(m.id)).find((s) => s.tenant === "f000")!;
    expect([f000.attempts, f000.fromVersion, f000.toVersion]).toEqual([2, 3, 3]);
    const v3 = await su.query<{ run_id: string }>("SELECT run_id FROM tenant_f000.schema_migrations WHERE version = 3");
    expect(v3.rows).toEqual([{ run_id: m.id }]);
    expect(await versionOf(cell, "f150")).toBe(2);

    // The upgrade ends: the schema is migrated and the migration completes.
    const free = new DbMigrationEngine(control, port(set(3)));
    await free.tick();
    expect((await free.get(m.id))!.state).toBe("succeeded");
    expect(await versions()).toEqual(new Map([[3, 200]]));
  });
});

describe("a port that throws (its contract is a result per schema)", () => {
  const three = (budget: number): SchemaWave[] => {
    const schemas = ["f000", "f001", "f002"].map((tenant) => ({ stack: "shared-prod-use1-01", tenant }));
    return [{ index: 0, ring: "canary", parallelism: 3, bakeMs: 0, failureBudgetPercent: budget, stacks: ["shared-prod-use1-01"], schemas }];
  };
  const states = async (id: string) => (await control.query<{ tenant: string; state: string; error: string | null; lease: boolean }>(
    "SELECT tenant, state, error, lease_until IS NOT NULL AS lease FROM db_migration_schemas WHERE migration_id = $1 ORDER BY tenant", [id],
  )).rows;

  it("run: every schema it was given is recorded failed at once with the error, and the wave's budget halts the migration", async () => {
    const throwing: SchemaRunPort = { async run() { throw new Error("tenant-migrations/0009_x.up.sql: cannot be read (EACCES)"); } };
    const engine = new DbMigrationEngine(control, throwing, { leaseMs: 3_600_000 });
    const m = await engine.start({ action: "migrate", to: 3, waves: three(0) });
    await engine.tick();
    const error = `the migration could not run: tenant-migrations/0009_x.up.sql: cannot be read (EACCES); once fixed, resume this migration (tenantctl db resume ${m.id})`;
    expect(await states(m.id)).toEqual(["f000", "f001", "f002"].map((tenant) => ({ tenant, state: "failed", error, lease: false })));
    const rec = (await engine.get(m.id))!;
    expect([rec.state, rec.haltReason]).toEqual(["halted", `wave 1 of 1 (ring canary): 3 of 3 schemas failed, budget 0 (0%); first: shared-prod-use1-01/f000: ${error}`]);
    // Control: the same wave on a port that answers migrates all three (the leases above were an hour: nothing waited for them).
    await engine.abort(m.id);
    const ok = new DbMigrationEngine(control, port(set(3)));
    const again = await ok.start({ action: "migrate", to: 3, waves: three(0) });
    await ok.tick();
    expect((await states(again.id)).map((r) => r.state)).toEqual(["succeeded", "succeeded", "succeeded"]);
  });

  it("run: a schema the port gave no outcome for is recorded failed, the others as reported (paired by schema, not position)", async () => {
    const partial: SchemaRunPort = {
      async run(units) {
        return units.filter((u) => u.tenant !== "f001").reverse().map((u) => ({ stack: u.stack, tenant: u.tenant, ok: true, value: { schema: `tenant_${u.tenant}`, from: 2, to: 3, versions: [3] } }));
      },
    };
    const engine = new DbMigrationEngine(control, partial, { leaseMs: 3_600_000 });
    const m = await engine.start({ action: "migrate", to: 3, waves: three(50) });
    await engine.tick();
    const missing = `no outcome was reported for this schema; its own schema_migrations rows say what it has; resume this migration (tenantctl db resume ${m.id})`;
    expect(await states(m.id)).toEqual([
      { tenant: "f000", state: "succeeded", error: null, lease: false },
      { tenant: "f001", state: "failed", error: missing, lease: false },
      { tenant: "f002", state: "succeeded", error: null, lease: false },
    ]);
    expect((await engine.schemas(m.id)).map((r) => [r.tenant, r.fromVersion, r.toVersion])).toEqual([["f000", 2, 3], ["f001", null, null], ["f002", 2, 3]]);
    expect((await engine.get(m.id))!.state).toBe("succeeded");
  });

  it("stale: the claimed schemas are recorded failed (not run), not left running", async () => {
    let ran = 0;
    const p: SchemaRunPort = {
      async run() { ran++; return []; },
      async stale() { throw new Error("tenants/f001.yaml:3: tier: expected one of free, standard, enterprise, dedicated"); },
    };
    const engine = new DbMigrationEngine(control, p, { leaseMs: 3_600_000 });
    const m = await engine.start({ action: "migrate", to: 3, waves: three(50) });
    await engine.tick();
    const error = "whether the schema is still in this stack could not be checked, so it was not touched: tenants/f001.yaml:3: tier: expected one of free, standard, enterprise, dedicated";
    expect(await states(m.id)).toEqual(["f000", "f001", "f002"].map((tenant) => ({ tenant, state: "failed", error, lease: false })));
    expect(ran).toBe(0);
    expect((await engine.get(m.id))!.state).toBe("halted");
  });
});
