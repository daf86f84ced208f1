/**
 * Non-transactional migration steps (`-- tenancy:no-transaction`: CREATE/DROP/REINDEX INDEX
 * CONCURRENTLY) on a live PostgreSQL 17 as an RDS-like master user: how a file declares them and
 * what is refused, applied between transactional files, a crash mid-build (the migrator's session
 * terminated while CREATE INDEX CONCURRENTLY waits) resumed by the next attempt without
 * re-applying anything, another tenant's table out of reach (42501), and a down file that drops
 * the index concurrently.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MigrationFilesError, migrationSet, splitStatements, type MigrationSet } from "../../automation/schemaMigrations/files.ts";
import { migrateSchema, rollbackSchema, schemaStatus, SchemaMigrationError } from "../../automation/schemaMigrations/tenantSchema.ts";
import { startPostgres, type PgServer } from "../support/postgres.ts";
import { connect, provisionTenantsInDb, type DbRef } from "../lifecycle/tenantDb.ts";

const OPTS = { lockTimeoutMs: 20_000, statementTimeoutMs: 60_000 };
let server: PgServer;
let cell: DbRef;
let su: pg.Client;

function inline(files: Record<string, string>): MigrationSet {
  return migrationSet("/inline", new Map(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)])));
}

const SET = inline({
  "0001_items.up.sql": "-- Items.\nCREATE TABLE items (id bigint PRIMARY KEY, label text);\nINSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 5000) g;",
  "0002_items_label_idx.up.sql": "-- Looks items up by label without blocking writers.\n-- tenancy:no-transaction\nCREATE INDEX CONCURRENTLY items_label_idx ON items (label);\n",
  "0002_items_label_idx.down.sql": "-- tenancy:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS items_label_idx;\n",
  "0003_price.up.sql": "-- Prices.\nALTER TABLE items ADD COLUMN price_cents bigint NOT NULL DEFAULT 0;",
  "0003_price.down.sql": "ALTER TABLE items DROP COLUMN price_cents;",
});
const ident = (t: string) => `tenant_${t}`;
const who = (t: string) => ({ schema: ident(t), role: ident(t) });

async function indexes(tenant: string): Promise<{ name: string; valid: boolean }[]> {
  const { rows } = await su.query<{ name: string; valid: boolean }>(
    `SELECT x.relname AS name, i.indisvalid AS valid FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_namespace n ON n.oid = x.relnamespace
      WHERE n.nspname = $1 AND x.relname LIKE 'items_label%' ORDER BY 1`,
    [ident(tenant)],
  );
  return rows;
}

async function version(tenant: string): Promise<number> {
  const c = await connect(cell);
  try {
    return (await schemaStatus(c, who(tenant), OPTS)).version;
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  server = await startPostgres();
  const a = await server.createRdsLikeAdmin();
  cell = { server, admin: a, database: await server.createDatabase("cell", a) };
  await provisionTenantsInDb(cell, ["plain", "crash", "victim", "thief"].map(ident), "pw", true);
  su = await server.connect({ ...server.bootstrap, database: cell.database });
});

afterAll(async () => {
  await su?.end();
  await server?.stop();
});

describe("declaring non-transactional steps", () => {
  it("reads the declaration from the leading comment lines and keeps each statement as a step", () => {
    const m = SET.migrations.find((x) => x.version === 2)!;
    expect(m.up.steps).toEqual([{ kind: "create", index: "items_label_idx", sql: "CREATE INDEX CONCURRENTLY items_label_idx ON items (label)" }]);
    expect(m.down!.steps).toEqual([{ kind: "drop", index: "items_label_idx", sql: "DROP INDEX CONCURRENTLY IF EXISTS items_label_idx" }]);
    expect(SET.migrations.find((x) => x.version === 3)!.up.steps).toBeUndefined();
    // The declaration after the first statement is a comment like any other.
    expect(inline({ "0001_a.up.sql": "CREATE TABLE a (id int);\n-- tenancy:no-transaction\n" }).migrations[0]!.up.steps).toBeUndefined();
  });

  it("refuses anything but index statements with unqualified names, naming the file and the fix", () => {
    const problems = (files: Record<string, string>) => {
      try {
        inline(files);
        return [];
      } catch (err) {
        return (err as MigrationFilesError).problems;
      }
    };
    expect(problems({ "0001_a.up.sql": "-- tenancy:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\nALTER TABLE t ADD COLUMN b int;" })).toEqual([
      '/inline/0001_a.up.sql: declares no-transaction, so every statement must be CREATE [UNIQUE] INDEX CONCURRENTLY <name> ON <table> (...), DROP INDEX CONCURRENTLY <name> or REINDEX INDEX CONCURRENTLY <name> (unqualified names); "ALTER TABLE t ADD COLUMN b int" is not: put it in a migration of its own without the declaration',
    ]);
    expect(problems({ "0001_a.up.sql": "-- tenancy:no-transaction\nCREATE INDEX CONCURRENTLY i ON tenant_other.t (a);" })[0]).toContain('"CREATE INDEX CONCURRENTLY i ON tenant_other.t (a)" is not');
    expect(problems({ "0001_a.up.sql": "-- tenancy:no-transaction\nCREATE INDEX CONCURRENTLY ON t (a);" })[0]).toContain("is not");
    expect(problems({ "0001_a.up.sql": "-- tenancy:no-transaction\nRESET ROLE;" })[0]).toContain('"RESET ROLE" is not');
    expect(problems({ "0001_a.up.sql": "-- tenancy:no-transaction\nCREATE INDEX CONCURRENTLY i ON t ((f($$x$$)));" })).toEqual([
      "/inline/0001_a.up.sql: holds dollar quoting ($...$), which a non-transactional file never needs",
    ]);
    expect(splitStatements("CREATE INDEX CONCURRENTLY i ON t (a) WHERE b = ';' ; /* c; */ DROP INDEX CONCURRENTLY j")).toEqual([
      "CREATE INDEX CONCURRENTLY i ON t (a) WHERE b = ';'",
      "DROP INDEX CONCURRENTLY j",
    ]);
  });
});

describe("applying them on a live server", () => {
  it("runs the step outside a transaction between transactional files; the index is valid and owned by the tenant's role", async () => {
    const c = await connect(cell);
    const out = await migrateSchema(c, who("plain"), SET, { runId: "r1", ...OPTS });
    expect(out).toEqual({ schema: "tenant_plain", from: 0, to: 3, versions: [1, 2, 3] });
    expect(await indexes("plain")).toEqual([{ name: "items_label_idx", valid: true }]);
    expect((await su.query("SELECT pg_get_userbyid(relowner) AS o FROM pg_class WHERE relname = 'items_label_idx' AND relnamespace = 'tenant_plain'::regnamespace")).rows[0]).toEqual({ o: "tenant_plain" });
    // The session went back clean: no role, no search_path, no lock left.
    expect((await c.query("SELECT current_user = session_user AS same, current_setting('search_path') AS path")).rows[0]).toEqual({ same: true, path: '"$user", public' });
    expect((await su.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'")).rows[0]).toEqual({ n: 0 });
    // Again: nothing to do.
    expect(await migrateSchema(c, who("plain"), SET, { runId: "r2", ...OPTS })).toEqual({ schema: "tenant_plain", from: 3, to: 3, versions: [] });
    await c.end();
  });

  it("a crash mid-build leaves an invalid index and no version row; the next attempt rebuilds it and applies the rest once", async () => {
    const first = await connect(cell);
    await migrateSchema(first, who("crash"), SET, { runId: "r1", to: 1, ...OPTS });
    await first.end();
    // A tenant transaction that has written to items: CREATE INDEX CONCURRENTLY waits for it after
    // registering the (not yet valid) index.
    const writer = await server.connect({ ...server.bootstrap, database: cell.database });
    await writer.query("BEGIN");
    await writer.query("INSERT INTO tenant_crash.items VALUES (900001, 'in flight')");
    const migrator = await connect(cell);
    migrator.on("error", () => undefined);
    const pid = (await migrator.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    const attempt = migrateSchema(migrator, who("crash"), SET, { runId: "crashed", ...OPTS }).then(
      () => undefined,
      (e: unknown) => e,
    );
    for (let i = 0; i < 200; i++) {
      const w = await su.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query LIKE 'CREATE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock'", [pid]);
      if (w.rowCount === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await indexes("crash")).toEqual([{ name: "items_label_idx", valid: false }]);
    await su.query("SELECT pg_terminate_backend($1)", [pid]);
    const err = await attempt;
    expect(err).toBeInstanceOf(SchemaMigrationError);
    expect((err as Error).message).toMatch(/^tenant_crash: 0002_items_label_idx\.up\.sql step 1 \(create index items_label_idx\) failed: .*; the next attempt resumes at this step$/);
    await writer.query("COMMIT");
    await writer.end();
    await migrator.end().catch(() => undefined);
    expect(await version("crash")).toBe(1);
    expect(await indexes("crash")).toEqual([{ name: "items_label_idx", valid: false }]);

    const again = await connect(cell);
    expect(await migrateSchema(again, who("crash"), SET, { runId: "resumed", ...OPTS })).toEqual({ schema: "tenant_crash", from: 1, to: 3, versions: [2, 3] });
    await again.end();
    expect(await indexes("crash")).toEqual([{ name: "items_label_idx", valid: true }]);
    expect((await su.query("SELECT version, run_id FROM tenant_crash.schema_migrations ORDER BY version")).rows).toEqual([
      { version: 1, run_id: "r1" },
      { version: 2, run_id: "resumed" },
      { version: 3, run_id: "resumed" },
    ]);
    // The row inserted during the build is in the index (it was rebuilt, not left half-made).
    expect((await su.query("SET enable_seqscan = off; SELECT id FROM tenant_crash.items WHERE label = 'in flight'").then((r) => (Array.isArray(r) ? r[1] : r))).rows).toEqual([{ id: "900001" }]);
  });

  it("a step on another tenant's table fails with 42501 and leaves the version where it was", async () => {
    const c = await connect(cell);
    await migrateSchema(c, who("victim"), SET, { runId: "r", to: 1, ...OPTS });
    await migrateSchema(c, who("thief"), SET, { runId: "r", to: 1, ...OPTS });
    // The regular expression keeps names unqualified; search_path is the thief's, so only a quoted
    // or qualified name could point elsewhere. Forced through here as a set the validator never saw.
    const evil = inline({ "0001_items.up.sql": SET.migrations[0]!.up.sql, "0002_steal.up.sql": "-- tenancy:no-transaction\nCREATE INDEX CONCURRENTLY stolen_idx ON items (label);" });
    evil.migrations[1]!.up.steps![0]!.sql = "CREATE INDEX CONCURRENTLY stolen_idx ON tenant_victim.items (label)";
    const err = await migrateSchema(c, who("thief"), evil, { runId: "evil", ...OPTS }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await c.end();
    expect((err as SchemaMigrationError).code).toBe("42501");
    expect((err as Error).message).toContain("permission denied for schema tenant_victim");
    expect(await version("thief")).toBe(1);
    expect((await su.query("SELECT count(*)::int AS n FROM pg_class WHERE relname = 'stolen_idx'")).rows[0]).toEqual({ n: 0 });
  });

  it("a non-transactional down file drops the index concurrently on rollback", async () => {
    const c = await connect(cell);
    expect(await rollbackSchema(c, who("plain"), SET, { runId: "back", to: 1, ...OPTS })).toEqual({ schema: "tenant_plain", from: 3, to: 1, versions: [3, 2] });
    await c.end();
    expect(await indexes("plain")).toEqual([]);
    expect(await version("plain")).toBe(1);
  });
});
