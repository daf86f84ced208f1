/**
 * At most K schema migrations at once on one tenant database, whatever the number of control-plane
 * processes (docs/schema-migrations.md, "At most K at once on one database"), on a live PostgreSQL:
 * independent engines on their own pools, and a worker process killed with SIGKILL while its
 * migrations are in flight, taken over once its lease ran out.
 *
 * What is counted is what runs on the database: every migration of the gated file first takes a
 * shared advisory lock MARK (held until its transaction ends), then loops in pg_sleep until the
 * test opens GATE. The granted MARK locks are the migrations in flight; a sampler keeps the most
 * it ever saw. Negative controls: an engine without the per-stack claim limit and without slots
 * (a process that predates them) brings its own K, and a takeover without slots runs beside the
 * killed worker's backends; the sampler sees 2K in both.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createPool } from "../../automation/db/database.ts";
import { migrate } from "../../automation/db/migrate.ts";
import { migrationSet } from "../../automation/schemaMigrations/files.ts";
import { DbMigrationEngine, type SchemaWave } from "../../automation/schemaMigrations/fleetEngine.ts";
import { SLOT_CLASS } from "../../automation/schemaMigrations/instanceSlots.ts";
import { SchemaMigrator } from "../../automation/schemaMigrations/migrator.ts";
import { startPostgres, type PgServer } from "../support/postgres.ts";
import { provisionTenantsInDb, type DbRef } from "../lifecycle/tenantDb.ts";
import { childBundle } from "../support/childBundle.ts";

const K = 4;
const MARK = 7_220_041;
const GATE = 7_220_042;
/** A short lock_timeout (a takeover's wait on the killed worker's schema lock ends quickly); the gate is a sleep loop, not a lock wait. */
const OPTS = { lockTimeoutMs: 1000, statementTimeoutMs: 120_000 };
const STACKS = ["shared-dev-use1-01", "shared-prod-use1-01", "shared-prod-use1-02"] as const;
const tenantsOf = (i: number) => Array.from({ length: 20 }, (_, j) => `s${i}${String(j).padStart(2, "0")}`);

const FILES: Record<string, string> = {
  "0001_items.up.sql": "CREATE TABLE items (id bigint PRIMARY KEY);",
  "0002_gated.up.sql":
    `SELECT pg_advisory_xact_lock_shared(${MARK});\n` +
    `DO $$ BEGIN WHILE NOT pg_try_advisory_xact_lock_shared(${GATE}) LOOP PERFORM pg_sleep(0.02); END LOOP; END $$;\n` +
    "ALTER TABLE items ADD COLUMN sku text;\n",
};
const SET = migrationSet("/fleet", new Map(Object.entries(FILES).map(([k, v]) => [k, Buffer.from(v)])));

let server: PgServer;
let cell: DbRef;
let controlDb: string;
let control: pg.Pool;
let su: pg.Client;
let gate: pg.Client;
const pools: pg.Pool[] = [];

const cellConfig = () => ({ host: server.host, port: server.port, user: cell.admin.user, password: cell.admin.password, database: cell.database });
const controlConfig = () => ({ host: server.host, port: server.port, user: server.bootstrap.user, password: server.bootstrap.password, database: controlDb });

/** An engine of its own process as far as the database can tell: its own pool, its own migrator per round. */
function engine(opts: { limit: boolean; slots: boolean }): DbMigrationEngine {
  const pool = createPool(controlConfig(), 2);
  pools.push(pool);
  return new DbMigrationEngine(pool, {
    async run(units, action, to, runId) {
      const m = new SchemaMigrator(SET, { perDatabaseConcurrency: K, ...OPTS, crossProcessSlots: opts.slots });
      try {
        const targets = units.map((u) => ({ ...u, database: cellConfig() }));
        return action === "migrate" ? await m.migrate(targets, runId, to) : await m.rollback(targets, runId, to);
      } finally {
        await m.close();
      }
    },
    ...(opts.limit ? { perStackLimit: () => K } : {}),
  });
}

const wave = (i: number): SchemaWave[] => [
  { index: 0, ring: "canary", parallelism: 16, bakeMs: 0, failureBudgetPercent: 50, stacks: [STACKS[i]!], schemas: tenantsOf(i).map((t) => ({ stack: STACKS[i]!, tenant: t })) },
];

/** Backends inside the gated file now (granted MARK locks), by pid. */
async function inFlight(): Promise<number[]> {
  const { rows } = await su.query<{ pid: number }>(
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND mode = 'ShareLock' AND classid = 0 AND objid = $1 AND objsubid = 1 ORDER BY pid",
    [MARK],
  );
  return rows.map((r) => r.pid);
}

/** Backends holding a migration slot now, by pid. */
async function slotPids(): Promise<number[]> {
  const { rows } = await su.query<{ pid: number }>("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1::bigint::oid AND objsubid = 2 ORDER BY pid", [SLOT_CLASS]);
  return rows.map((r) => r.pid);
}

/** Samples inFlight every 20 ms until stopped; `max` is the most seen at once. */
function sampler(): { max: () => number; stop: () => Promise<void> } {
  let max = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      max = Math.max(max, (await inFlight()).length);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return { max: () => max, stop: async () => ((stopped = true), await loop) };
}

async function waitFor(what: string, ok: () => Promise<boolean>, ms = 90_000): Promise<void> {
  for (const until = Date.now() + ms; !(await ok()); ) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function versions(i: number): Promise<Record<string, number>> {
  const { rows } = await su.query<{ t: string; v: number; n: number }>(
    tenantsOf(i).map((t) => `SELECT '${t}' AS t, max(version) AS v, count(*)::int AS n FROM tenant_${t}.schema_migrations`).join(" UNION ALL "),
  );
  // One row per version applied: n equals v exactly when nothing was applied twice.
  for (const r of rows) expect(r.n).toBe(r.v);
  return Object.fromEntries(rows.map((r) => [r.t, r.v]));
}

beforeAll(async () => {
  server = await startPostgres({ maxConnections: 100 });
  const admin = await server.createRdsLikeAdmin("cell_admin");
  cell = { server, admin, database: await server.createDatabase("cell", admin) };
  const all = [0, 1, 2].flatMap((i) => tenantsOf(i));
  await provisionTenantsInDb(cell, all.map((t) => `tenant_${t}`), "pw", true);
  controlDb = await server.createDatabase("control", server.bootstrap);
  control = createPool(controlConfig(), 2);
  await migrate(control);
  su = await server.connect({ ...server.bootstrap, database: cell.database });
  gate = await server.connect({ ...server.bootstrap, database: cell.database });
  const m = new SchemaMigrator(SET, { perDatabaseConcurrency: 8, ...OPTS });
  try {
    const r = await m.migrate(all.map((t) => ({ tenant: t, stack: "x", database: cellConfig() })), "setup", 1);
    expect(r.filter((x) => !x.ok)).toEqual([]);
  } finally {
    await m.close();
  }
}, 240_000);

afterAll(async () => {
  await gate?.end();
  await su?.end();
  await Promise.all(pools.map((p) => p.end()));
  await control?.end();
  await server?.stop();
});

beforeEach(async () => {
  await control.query("UPDATE db_migrations SET state = 'aborted' WHERE state IN ('running', 'halted')");
});

describe("at most K migrations at once on one database, across processes", () => {
  it("two engines claim together no more than K of one stack; a third without the limit and the slots brings its own K (negative control)", async () => {
    const [a, b, old] = [engine({ limit: true, slots: true }), engine({ limit: true, slots: true }), engine({ limit: false, slots: false })];
    const m = await a.start({ action: "migrate", to: 2, waves: wave(0) });
    await gate.query("SELECT pg_advisory_lock($1)", [GATE]);
    const seen = sampler();
    const ticks: Promise<void>[] = [];
    try {
      ticks.push(a.tick());
      await waitFor("K migrations of the first engine in flight", async () => (await inFlight()).length === K);
      // The second engine claims nothing: K of the stack are running (claimed by the other one).
      await b.tick();
      expect((await a.schemas(m.id)).filter((s) => s.state === "running")).toHaveLength(K);
      await sleep(1000);
      expect(seen.max()).toBe(K);
      expect(await slotPids()).toEqual(await inFlight());

      // Negative control: the count does catch more than K when nothing bounds the processes together.
      ticks.push(old.tick());
      await waitFor("the third engine's migrations in flight", async () => (await inFlight()).length >= 2 * K);
      await sleep(500);
      expect(seen.max()).toBe(2 * K);
    } finally {
      await gate.query("SELECT pg_advisory_unlock($1)", [GATE]);
      await Promise.all(ticks);
      await seen.stop();
    }
    await a.tick();
    expect((await a.get(m.id))!.state).toBe("succeeded");
    expect(Object.values(await versions(0))).toEqual(Array(20).fill(2));
    expect(await slotPids()).toEqual([]);
  }, 180_000);

  for (const slots of [true, false]) {
    it(
      slots
        ? "a worker killed while its K migrations run: its lease runs out, the takeover waits for the slots its backends still hold, runs once they end; nothing leaks, never K+1"
        : "negative control: the same takeover without slots runs beside the killed worker's backends (2K in flight)",
      async () => {
        const i = slots ? 1 : 2;
        const m = await engine({ limit: true, slots: true }).start({ action: "migrate", to: 2, waves: wave(i) });
        await gate.query("SELECT pg_advisory_lock($1)", [GATE]);
        const seen = sampler();
        let child: ChildProcess | undefined;
        let tick: Promise<void> | undefined;
        const b = engine({ limit: true, slots });
        try {
          child = spawn(process.execPath, [await childBundle(resolve(import.meta.dirname, "support/schemaEngineChild.ts"))], {
            env: { ...process.env, CHILD_INPUT: JSON.stringify({ control: controlConfig(), cell: cellConfig(), files: FILES, k: K, leaseMs: 1500, ...OPTS }) },
            stdio: ["ignore", "ignore", "inherit"],
          });
          const exited = new Promise((r) => child!.once("exit", r));
          await waitFor("the worker's K migrations in flight", async () => (await inFlight()).length === K);
          const zombies = await inFlight();
          expect(await slotPids()).toEqual(zombies);
          child.kill("SIGKILL");
          await exited;
          // PostgreSQL has not noticed: the killed worker's backends are still inside the migration.
          await sleep(500);
          expect(await inFlight()).toEqual(zombies);
          await waitFor("the killed worker's leases to run out", async () =>
            (await control.query<{ n: number }>("SELECT count(*)::int AS n FROM db_migration_schemas WHERE migration_id = $1 AND state = 'running' AND lease_until > now()", [m.id])).rows[0]!.n === 0,
          );
          tick = b.tick();
          if (slots) {
            // The takeover claimed the four again (second attempt); their sessions wait for a slot.
            await waitFor("the takeover's claims", async () => (await b.schemas(m.id)).filter((s) => s.state === "running" && s.attempts === 2).length === K);
            await sleep(2000);
            expect(await inFlight()).toEqual(zombies);
            expect(await slotPids()).toEqual(zombies);
            expect(seen.max()).toBe(K);
          } else {
            // The four taken over time out on their schema's lock (the zombies hold it) and fail within the budget; the next four run.
            await waitFor("the takeover's migrations beside the killed worker's", async () => (await inFlight()).length >= 2 * K);
            await sleep(500);
            expect(seen.max()).toBe(2 * K);
          }
        } finally {
          if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
          await gate.query("SELECT pg_advisory_unlock($1)", [GATE]);
          await tick;
          await seen.stop();
        }
        await b.tick();
        const rows = await b.schemas(m.id);
        const first = tenantsOf(i).slice(0, K);
        if (slots) {
          expect((await b.get(m.id))!.state).toBe("succeeded");
          expect(Object.values(await versions(i))).toEqual(Array(20).fill(2));
          expect(rows.filter((s) => first.includes(s.tenant)).map((s) => [s.tenant, s.state, s.attempts])).toEqual(first.map((t) => [t, "succeeded", 2]));
          expect(seen.max()).toBe(K);
        } else {
          expect(rows.filter((s) => s.state === "failed").map((s) => [s.tenant, s.code])).toEqual(first.map((t) => [t, "55P03"]));
          expect(seen.max()).toBe(2 * K);
        }
        // Nothing leaked: the killed worker's backends ended once their statement did, and with them their slots.
        await waitFor("the killed worker's backends to end", async () => (await slotPids()).length === 0);
      },
      240_000,
    );
  }
});
