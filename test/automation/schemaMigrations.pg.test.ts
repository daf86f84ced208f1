/**
 * Tenant schema migrations on a live PostgreSQL 17 (embedded), as an RDS-like master user
 * (CREATEROLE, not superuser): a cell database with 200 tenant schemas plus a few single-purpose
 * ones; the example migrations of the project (tenant-migrations/) and purpose-built sets.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { loadProjectMigrations, migrationSet, type MigrationSet } from "../../automation/schemaMigrations/files.ts";
import { SchemaMigrator, type SchemaTarget } from "../../automation/schemaMigrations/migrator.ts";
import { migrateSchema, rollbackSchema, schemaStatus, SchemaMigrationError } from "../../automation/schemaMigrations/tenantSchema.ts";
import { startPostgres, type PgServer } from "../support/postgres.ts";
import { connect, provisionTenantsInDb, type DbRef } from "../lifecycle/tenantDb.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const PASSWORD = "tenant-password-1";
const OPTS = { lockTimeoutMs: 2000, statementTimeoutMs: 30_000 };
const FLEET = Array.from({ length: 200 }, (_, i) => `t${String(i).padStart(3, "0")}`);
const FAILING = ["t007", "t100", "t199"];

let server: PgServer;
let cell: DbRef;
let admin: pg.Client;
/** The server's superuser, for counting across schemas (the master user has no access to them). */
let su: pg.Client;

/** A set from inline files (name -> SQL). */
function inline(files: Record<string, string>): MigrationSet {
  return migrationSet("/inline", new Map(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)])));
}

const example = () => loadProjectMigrations(ROOT).set;
const dbConfig = (): pg.ClientConfig => ({ host: server.host, port: server.port, user: cell.admin.user, password: cell.admin.password, database: cell.database });
const target = (tenant: string): SchemaTarget => ({ tenant, stack: "shared-dev-use1-01", database: dbConfig() });
const ident = (tenant: string) => `tenant_${tenant}`;

async function version(tenant: string): Promise<number> {
  return (await schemaStatus(admin, { schema: ident(tenant), role: ident(tenant) }, OPTS)).version;
}

beforeAll(async () => {
  server = await startPostgres({ maxConnections: 100 });
  const a = await server.createRdsLikeAdmin();
  cell = { server, admin: a, database: await server.createDatabase("cell", a) };
  const singles = ["fresh", "other", "victim", "down", "changed", "locked"];
  await provisionTenantsInDb(cell, [...FLEET, ...singles].map(ident), PASSWORD, true);
  admin = await connect(cell);
  su = await server.connect({ ...server.bootstrap, database: cell.database });
});

afterAll(async () => {
  await admin?.end();
  await su?.end();
  await server?.stop();
});

describe("the example migrations (tenant-migrations/)", () => {
  it("are read in order with their checksums and the template version of Pulumi.yaml", () => {
    const { config, set } = loadProjectMigrations(ROOT);
    expect(config.templateVersion).toBe(3);
    expect(set.head).toBe(3);
    expect(set.migrations.map((m) => [m.version, m.name, m.down !== undefined])).toEqual([
      [1, "create_accounts", true],
      [2, "create_documents", true],
      [3, "add_document_tags", true],
    ]);
    expect(readdirSync(config.dir).sort()).toHaveLength(6);
    expect(set.migrations[0]!.up.checksum).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("one tenant schema", () => {
  it("a new tenant's schema is brought to head as its own role: objects owned by it, nothing granted to PUBLIC", async () => {
    const out = await migrateSchema(admin, { schema: "tenant_fresh", role: "tenant_fresh" }, example(), { runId: "new-tenant", ...OPTS });
    expect(out).toEqual({ schema: "tenant_fresh", from: 0, to: 3, versions: [1, 2, 3] });
    const status = await schemaStatus(admin, { schema: "tenant_fresh", role: "tenant_fresh" }, OPTS);
    expect(status.applied.map((r) => [r.version, r.name, r.runId])).toEqual([
      [1, "create_accounts", "new-tenant"],
      [2, "create_documents", "new-tenant"],
      [3, "add_document_tags", "new-tenant"],
    ]);
    expect(status.applied.map((r) => r.checksum)).toEqual(example().migrations.map((m) => m.up.checksum));
    const owners = await admin.query<{ kind: string; name: string; owner: string }>(
      `SELECT c.relkind AS kind, c.relname AS name, pg_get_userbyid(c.relowner) AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'tenant_fresh' ORDER BY 2`,
    );
    expect(owners.rows.filter((r) => r.kind === "r").map((r) => r.name)).toEqual(["accounts", "documents", "schema_migrations"]);
    expect(new Set(owners.rows.map((r) => r.owner))).toEqual(new Set(["tenant_fresh"]));
    const type = await admin.query<{ owner: string; acl: string | null }>(
      "SELECT pg_get_userbyid(typowner) AS owner, typacl::text AS acl FROM pg_type WHERE typname = 'document_status' AND typnamespace = 'tenant_fresh'::regnamespace",
    );
    expect(type.rows).toEqual([{ owner: "tenant_fresh", acl: "{tenant_fresh=U/tenant_fresh}" }]);
    // The transient apply function is gone; a second run applies nothing.
    const fns = await admin.query("SELECT proname FROM pg_proc WHERE pronamespace = 'tenant_fresh'::regnamespace");
    expect(fns.rows).toEqual([]);
    expect(await migrateSchema(admin, { schema: "tenant_fresh", role: "tenant_fresh" }, example(), { runId: "again", ...OPTS })).toEqual({ schema: "tenant_fresh", from: 3, to: 3, versions: [] });
  });

  it("a file naming another tenant's schema fails with 42501, and so does leaving the tenant's role", async () => {
    const victim = { schema: "tenant_victim", role: "tenant_victim" };
    await migrateSchema(admin, victim, example(), { runId: "setup", ...OPTS });
    const t = { schema: "tenant_other", role: "tenant_other" };
    for (const evil of [
      "CREATE TABLE tenant_victim.stolen (id int)",
      "INSERT INTO tenant_victim.accounts (email, name) VALUES ('x@example.com', 'x')",
      "RESET ROLE; CREATE TABLE tenant_victim.stolen (id int)",
      "SET ROLE tenant_victim; CREATE TABLE tenant_victim.stolen (id int)",
      "DO $$ BEGIN EXECUTE 'RESET ROLE'; EXECUTE 'DROP TABLE tenant_victim.accounts CASCADE'; END $$",
      "SELECT set_config('role', 'tenant_victim', true)",
    ]) {
      const err = await migrateSchema(admin, t, inline({ "0001_evil.up.sql": evil }), { runId: "evil", ...OPTS }).catch((e: unknown) => e);
      expect(err, evil).toBeInstanceOf(SchemaMigrationError);
      expect((err as SchemaMigrationError).code, evil).toBe("42501");
      expect((err as SchemaMigrationError).message, evil).toContain("0001_evil.up.sql failed:");
    }
    expect(await version("other")).toBe(0);
    const left = await admin.query("SELECT relname FROM pg_class WHERE relnamespace = 'tenant_victim'::regnamespace AND relname IN ('stolen', 'accounts')");
    expect(left.rows).toEqual([{ relname: "accounts" }]);
    // Negative control: the same kind of file on its own schema succeeds.
    expect((await migrateSchema(admin, t, inline({ "0001_evil.up.sql": "CREATE TABLE tenant_other.mine (id int)" }), { runId: "ok", ...OPTS })).to).toBe(1);
  });

  it("a changed applied file is refused, naming it; nothing runs", async () => {
    const t = { schema: "tenant_changed", role: "tenant_changed" };
    await migrateSchema(admin, t, example(), { runId: "setup", ...OPTS, to: 2 });
    const files = Object.fromEntries(example().migrations.flatMap((m) => [[m.up.file, m.up.sql]]));
    files["0002_create_documents.up.sql"] += "\nCREATE INDEX documents_title_idx ON documents (title);\n";
    const err = await migrateSchema(admin, t, inline(files), { runId: "changed", ...OPTS }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaMigrationError);
    expect((err as Error).message).toMatch(/^tenant_changed: \/inline\/0002_create_documents\.up\.sql changed after it was applied \(sha256 applied [0-9a-f]{12}, file now [0-9a-f]{12}\)/);
    expect(await version("changed")).toBe(2);
  });

  it("down files restore the previous version, and the schema can go forward again", async () => {
    const t = { schema: "tenant_down", role: "tenant_down" };
    await migrateSchema(admin, t, example(), { runId: "setup", ...OPTS });
    const columns = async () =>
      (await su.query<{ column_name: string }>("SELECT column_name FROM information_schema.columns WHERE table_schema = 'tenant_down' AND table_name = 'documents' ORDER BY ordinal_position")).rows.map((r) => r.column_name);
    expect(await columns()).toContain("tags");
    expect(await rollbackSchema(admin, t, example(), { runId: "rb", ...OPTS, to: 2 })).toEqual({ schema: "tenant_down", from: 3, to: 2, versions: [3] });
    expect(await columns()).toEqual(["id", "account_id", "title", "status", "updated_at"]);
    expect(await version("down")).toBe(2);
    expect(await rollbackSchema(admin, t, example(), { runId: "rb", ...OPTS, to: 0 })).toEqual({ schema: "tenant_down", from: 2, to: 0, versions: [2, 1] });
    expect((await admin.query("SELECT relname FROM pg_class WHERE relnamespace = 'tenant_down'::regnamespace AND relkind = 'r'")).rows).toEqual([{ relname: "schema_migrations" }]);
    expect((await migrateSchema(admin, t, example(), { runId: "again", ...OPTS })).versions).toEqual([1, 2, 3]);
    // Without a down file the rollback is refused before anything runs.
    const noDown = inline(Object.fromEntries(example().migrations.map((m) => [m.up.file, m.up.sql])));
    await expect(rollbackSchema(admin, t, noDown, { runId: "rb", ...OPTS, to: 1 })).rejects.toThrow(
      "tenant_down: cannot go back to 1: /inline has no 0003_add_document_tags.down.sql, 0002_create_documents.down.sql; write the down file(s) first",
    );
    expect(await version("down")).toBe(3);
  });

  it("a migration waiting for a tenant's lock gives up at lock_timeout (55P03) and leaves the schema as it was", async () => {
    const t = { schema: "tenant_locked", role: "tenant_locked" };
    await migrateSchema(admin, t, example(), { runId: "setup", ...OPTS, to: 2 });
    const tenantSession = await server.connect({ user: "tenant_locked", password: PASSWORD, database: cell.database });
    try {
      await tenantSession.query("BEGIN");
      await tenantSession.query("SELECT count(*) FROM tenant_locked.documents");
      const started = Date.now();
      const err = await migrateSchema(admin, t, example(), { runId: "locked", ...OPTS, lockTimeoutMs: 300 }).catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(5000);
      expect((err as SchemaMigrationError).code).toBe("55P03");
      expect(await version("locked")).toBe(2);
    } finally {
      await tenantSession.query("ROLLBACK");
      await tenantSession.end();
    }
    expect((await migrateSchema(admin, t, example(), { runId: "later", ...OPTS })).versions).toEqual([3]);
  });
});

/**
 * How many of the master user's sessions are inside a transaction on the cell database, all open
 * at one instant. Only transactions begun before this query's own start (now()) count:
 * pg_stat_activity is copied backend by backend, not atomically, so on a loaded machine one
 * transaction could commit and the next begin while the copy runs, and both be counted (5 seen
 * once at a bound of 4). Each counted transaction began before now() and was still open when its
 * entry was read, so all of them were open together at now().
 */
async function openTransactions(c: pg.ClientBase): Promise<number> {
  const { rows } = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND usename = $2 AND xact_start < now()", [cell.database, cell.admin.user]);
  return rows[0]!.n;
}

/**
 * Sessions of the migrator in a transaction that has written (holds a transaction id): the
 * migration transactions the bound applies to. A read outside them (the versions of the next
 * schema, an autocommit query) also shows an open transaction for an instant, and was sampled as
 * a fifth once in CI.
 */
async function writingTransactions(c: pg.ClientBase): Promise<number> {
  const { rows } = await c.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND usename = $2 AND xact_start < now() AND backend_xid IS NOT NULL",
    [cell.database, cell.admin.user],
  );
  return rows[0]!.n;
}

/** Samples writingTransactions until stopped: the most seen at once over a whole run (an upper bound's check). */
function sampleConcurrency(): { stop(): Promise<number> } {
  let peak = 0;
  let running = true;
  const done = (async () => {
    const c = await server.connect(server.bootstrap);
    try {
      while (running) {
        peak = Math.max(peak, await writingTransactions(c));
        await new Promise((r) => setTimeout(r, 3));
      }
    } finally {
      await c.end();
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return peak;
    },
  };
}

/**
 * The gate every migration file of these sets opens with (`SELECT pg_advisory_xact_lock_shared`):
 * while the test holds the key, each migrated schema stops there with its transaction open, so
 * exactly as many schemas as the bound lets through are in flight, however slow the machine; the
 * count no longer depends on when a sample happens to be taken (the earlier sampled-only version
 * of these tests saw too few or too many under load). Released, the files go through at once.
 */
const GATE = 7_220_022;

async function waitingAtGate(): Promise<number> {
  const { rows } = await su.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = 0 AND objid = $1 AND objsubid = 1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    [GATE],
  );
  return rows[0]!.n;
}

/**
 * Runs `run` with the gate closed until `expected` schemas wait at it (deadline 90 s), counts the
 * transactions open then, and again after a pause (a bound that leaks would have let more in),
 * then opens the gate and lets the run finish.
 */
async function throughGate<T>(expected: number, run: () => Promise<T>): Promise<{ result: T; open: number; openAfterPause: number; waitingAfterPause: number }> {
  await su.query("SELECT pg_advisory_lock($1)", [GATE]);
  let running: Promise<T> | undefined;
  try {
    running = run();
    const deadline = Date.now() + 90_000;
    for (let n = await waitingAtGate(); n < expected; n = await waitingAtGate()) {
      if (Date.now() > deadline) throw new Error(`only ${n} of ${expected} migrations reached the gate in 90 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const open = await openTransactions(su);
    await new Promise((r) => setTimeout(r, 300));
    const openAfterPause = await openTransactions(su);
    const waitingAfterPause = await waitingAtGate();
    await su.query("SELECT pg_advisory_unlock($1)", [GATE]);
    return { result: await running, open, openAfterPause, waitingAfterPause };
  } finally {
    // On a failure before the gate opened: open it, so the run ends and its sessions close.
    await su.query("SELECT pg_advisory_unlock_all()");
    await running?.catch(() => undefined);
  }
}

describe("200 tenant schemas of one cell database", () => {
  const slow = (sql: string) => `SELECT pg_advisory_xact_lock_shared(${GATE});\n${sql}\nSELECT pg_sleep(0.02);\n`;
  const v1 = { "0001_base.up.sql": slow("CREATE TABLE items (id bigint PRIMARY KEY, label text NOT NULL);") };
  const v2 = { ...v1, "0002_item_price.up.sql": slow("ALTER TABLE items ADD COLUMN price_cents bigint NOT NULL DEFAULT 0;\nCREATE INDEX items_price_idx ON items (price_cents);") };
  const v3 = { ...v2, "0003_item_notes.up.sql": slow("CREATE TABLE item_notes (item_id bigint REFERENCES items (id), note text);") };

  it("migrate with at most 4 at once on the instance (counted on the server), every schema ends at head", async () => {
    // Waiting at the gate is a lock wait: lock_timeout must outlast it.
    const migrator = new SchemaMigrator(inline(v1), { perDatabaseConcurrency: 4, ...OPTS, lockTimeoutMs: 120_000 });
    const sampler = sampleConcurrency();
    let gate;
    try {
      gate = await throughGate(4, () => migrator.migrate(FLEET.map(target), "fleet-v1"));
      expect(gate.result.filter((r) => !r.ok)).toEqual([]);
      expect(gate.result.every((r) => r.ok && r.value.to === 1)).toBe(true);
    } finally {
      await migrator.close();
    }
    const peak = await sampler.stop();
    expect(migrator.limiter.peak("127.0.0.1:" + server.port)).toBe(4);
    // Held at the gate: exactly 4 open at once, still 4 after the pause; over the whole run never more.
    expect([gate.open, gate.openAfterPause, gate.waitingAfterPause]).toEqual([4, 4, 4]);
    expect(peak).toBeLessThanOrEqual(4);
    expect(peak).toBeGreaterThan(0); // the sampler saw the migrations' writes at all
    const { rows } = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE c.relname = 'items' AND s.nspname LIKE 'tenant_t%'`,
    );
    expect(rows[0]!.n).toBe(200);
  });

  it("negative control: with a bound of 16 the same count sees 16 at once", async () => {
    const migrator = new SchemaMigrator(inline(v2), { perDatabaseConcurrency: 16, ...OPTS, lockTimeoutMs: 120_000 });
    try {
      const gate = await throughGate(16, () => migrator.migrate(FLEET.slice(0, 100).map(target), "fleet-v2-wide"));
      expect(gate.result.filter((r) => !r.ok)).toEqual([]);
      expect([gate.open, gate.openAfterPause]).toEqual([16, 16]);
    } finally {
      await migrator.close();
    }
  });

  it("3 failing tenants are recorded with their error, the others finish; after the fix a re-run applies only what is missing", async () => {
    // Three tenants' applications created a table of the same name first: the migration fails for them.
    for (const t of FAILING) await admin.query(`SET ROLE ${ident(t)}; CREATE TABLE ${ident(t)}.item_notes (x int); RESET ROLE`);
    const migrator = new SchemaMigrator(inline(v3), { perDatabaseConcurrency: 4, ...OPTS });
    try {
      const results = await migrator.migrate(FLEET.map(target), "fleet-v3");
      const failed = results.filter((r) => !r.ok);
      expect(failed.map((r) => r.tenant)).toEqual(FAILING);
      for (const f of failed) {
        expect(f).toMatchObject({ ok: false, code: "42P07" });
        expect(!f.ok && f.error).toBe(`tenant_${f.tenant}: 0003_item_notes.up.sql failed: relation "item_notes" already exists (SQLSTATE 42P07)`);
      }
      // The first 100 had 0002 already (the negative control): they apply only 0003.
      const ok = results.filter((r) => r.ok);
      expect(ok).toHaveLength(197);
      const byTenant = new Map(ok.map((r) => [r.tenant, r.ok ? r.value : undefined]));
      expect(byTenant.get("t000")).toEqual({ schema: "tenant_t000", from: 2, to: 3, versions: [3] });
      expect(byTenant.get("t150")).toEqual({ schema: "tenant_t150", from: 1, to: 3, versions: [2, 3] });
      // A failing tenant stays at the version it had: the transaction applied nothing of 0003.
      expect(await version("t007")).toBe(2);
      expect(await version("t199")).toBe(1);

      for (const t of FAILING) await admin.query(`SET ROLE ${ident(t)}; DROP TABLE ${ident(t)}.item_notes; RESET ROLE`);
      const again = await migrator.migrate(FLEET.map(target), "fleet-v3-resume");
      expect(again.filter((r) => !r.ok)).toEqual([]);
      expect(again.filter((r) => r.ok && r.value.versions.length > 0).map((r) => r.tenant)).toEqual(FAILING);
    } finally {
      await migrator.close();
    }
    const runs = await su.query<{ run_id: string; n: number }>(
      `SELECT run_id, count(*)::int AS n FROM (${FLEET.map((t) => `SELECT run_id FROM ${ident(t)}.schema_migrations WHERE version = 3`).join(" UNION ALL ")}) x GROUP BY run_id ORDER BY run_id`,
    );
    expect(runs.rows).toEqual([{ run_id: "fleet-v3", n: 197 }, { run_id: "fleet-v3-resume", n: 3 }]);
  });

  it("a crash mid-way (every session of the migrator killed) loses nothing: the re-run applies each schema's missing versions exactly once", async () => {
    const v4 = { ...v3, "0004_item_sku.up.sql": "ALTER TABLE items ADD COLUMN sku text;\nSELECT pg_sleep(0.05);\n" };
    const migrator = new SchemaMigrator(inline(v4), { perDatabaseConcurrency: 4, ...OPTS });
    const killer = (async () => {
      for (;;) {
        const { rows } = await su.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM (${FLEET.map((t) => `SELECT 1 FROM ${ident(t)}.schema_migrations WHERE version = 4`).join(" UNION ALL ")}) x`,
        );
        if (rows[0]!.n >= 40) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      const c = await server.connect(server.bootstrap);
      try {
        await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND datname = $2 AND pid <> $3", [cell.admin.user, cell.database, (admin as unknown as { processID: number }).processID]);
      } finally {
        await c.end();
      }
      await migrator.close();
    })();
    killer.catch(() => undefined);
    const first = await migrator.migrate(FLEET.map(target), "crashed");
    await killer;
    const applied = first.filter((r) => r.ok).map((r) => r.tenant);
    expect(applied.length).toBeGreaterThanOrEqual(40);
    expect(applied.length).toBeLessThan(200);

    const resumed = new SchemaMigrator(inline(v4), { perDatabaseConcurrency: 4, ...OPTS });
    try {
      const second = await resumed.migrate(FLEET.map(target), "resumed");
      expect(second.filter((r) => !r.ok)).toEqual([]);
      const reapplied = second.filter((r) => r.ok && r.value.versions.length > 0).map((r) => r.tenant);
      expect(reapplied.filter((t) => applied.includes(t))).toEqual([]);
      expect(reapplied.length + applied.length).toBe(200);
    } finally {
      await resumed.close();
    }
    const rows = await su.query<{ run_id: string; n: number }>(
      `SELECT run_id, count(*)::int AS n FROM (${FLEET.map((t) => `SELECT run_id FROM ${ident(t)}.schema_migrations WHERE version = 4`).join(" UNION ALL ")}) x GROUP BY run_id ORDER BY run_id`,
    );
    expect(rows.rows).toEqual([{ run_id: "crashed", n: applied.length }, { run_id: "resumed", n: 200 - applied.length }]);
  });
});

describe("files", () => {
  it("the example's SQL files start with a comment saying what they are for", () => {
    const dir = loadProjectMigrations(ROOT).config.dir;
    for (const f of readdirSync(dir)) expect(readFileSync(join(dir, f), "utf8"), f).toMatch(/^-- /);
  });
});
