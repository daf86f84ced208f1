/**
 * The migrator's fixed cost per schema (docs/schema-migrations.md, "What one schema costs"), on a
 * live PostgreSQL: the messages a migration sends on its session, counted by wrapping the client's
 * query (a simple-protocol message of several statements is one round trip), and the catalog rows
 * it writes. A transactional batch is four round trips whatever its number of files beyond the
 * first (one more each); default privileges are written on the schema's first migration only, and
 * again when someone gave PUBLIC its defaults back (then PUBLIC again gets nothing on new objects).
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrationSet, type MigrationSet } from "../../automation/schemaMigrations/files.ts";
import { migrateSchema, rollbackSchema } from "../../automation/schemaMigrations/tenantSchema.ts";
import { startPostgres, type PgServer } from "../support/postgres.ts";
import { connect, provisionTenantsInDb, type DbRef } from "../lifecycle/tenantDb.ts";

const OPTS = { lockTimeoutMs: 2000, statementTimeoutMs: 30_000 };
const SET: MigrationSet = migrationSet(
  "/inline",
  new Map(
    Object.entries({
      "0001_items.up.sql": "CREATE TABLE items (id bigint PRIMARY KEY, label text);",
      "0002_price.up.sql": "ALTER TABLE items ADD COLUMN price_cents bigint NOT NULL DEFAULT 0;",
      "0002_price.down.sql": "ALTER TABLE items DROP COLUMN price_cents;",
      "0003_f.up.sql": "CREATE FUNCTION label_of(i bigint) RETURNS text LANGUAGE sql AS 'SELECT label FROM items WHERE id = i';",
      "0003_f.down.sql": "DROP FUNCTION label_of(bigint);",
    }).map(([k, v]) => [k, Buffer.from(v)]),
  ),
);

let server: PgServer;
let cell: DbRef;
let admin: pg.Client;
let su: pg.Client;
/** The first line of every message the admin session sent since the last take(). */
let sent: string[] = [];
function take(): string[] {
  const out = sent;
  sent = [];
  return out.map((q) => q.trim().split(/\s+/).slice(0, 3).join(" "));
}
const who = (t: string) => ({ schema: `tenant_${t}`, role: `tenant_${t}` });

beforeAll(async () => {
  server = await startPostgres({});
  const a = await server.createRdsLikeAdmin();
  cell = { server, admin: a, database: await server.createDatabase("cell", a) };
  await provisionTenantsInDb(cell, ["tenant_rt", "tenant_acl"], "pw", true);
  admin = await connect(cell);
  su = await server.connect({ ...server.bootstrap, database: cell.database });
  const query = admin.query.bind(admin) as (...args: unknown[]) => unknown;
  (admin as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const q = args[0];
    sent.push(typeof q === "string" ? q : (q as { text: string }).text);
    return query(...args);
  };
});

afterAll(async () => {
  await admin?.end();
  await su?.end();
  await server?.stop();
});

describe("round trips of one schema's migration", () => {
  it("a transactional batch: open, prepare, one call per file, drop and commit; nothing pending: open, prepare, rollback", async () => {
    // First migration of the schema: the master user is not yet a member of the role (the GRANT).
    expect(await migrateSchema(admin, who("rt"), SET, { runId: "r1", ...OPTS, to: 1 })).toEqual({ schema: "tenant_rt", from: 0, to: 1, versions: [1] });
    expect(take()).toEqual(["BEGIN; SET LOCAL", "GRANT \"tenant_rt\" TO", "SET LOCAL ROLE", "SELECT \"tenant_rt\".\"schema_migrations_apply\"($1, $2,", "DROP FUNCTION \"tenant_rt\".\"schema_migrations_apply\"(text,"]);
    expect(await migrateSchema(admin, who("rt"), SET, { runId: "r2", ...OPTS })).toEqual({ schema: "tenant_rt", from: 1, to: 3, versions: [2, 3] });
    expect(take()).toEqual(["BEGIN; SET LOCAL", "SET LOCAL ROLE", "SELECT \"tenant_rt\".\"schema_migrations_apply\"($1, $2,", "SELECT \"tenant_rt\".\"schema_migrations_apply\"($1, $2,", "DROP FUNCTION \"tenant_rt\".\"schema_migrations_apply\"(text,"]);
    expect(await migrateSchema(admin, who("rt"), SET, { runId: "r3", ...OPTS })).toEqual({ schema: "tenant_rt", from: 3, to: 3, versions: [] });
    expect(take()).toEqual(["BEGIN; SET LOCAL", "SET LOCAL ROLE", "ROLLBACK"]);
    expect(await rollbackSchema(admin, who("rt"), SET, { runId: "r4", ...OPTS, to: 1 })).toEqual({ schema: "tenant_rt", from: 3, to: 1, versions: [3, 2] });
    expect(take()).toHaveLength(5);

    // The records are those of before: one row per applied version, by its run; no function left.
    const rows = await su.query("SELECT version, name, run_id FROM tenant_rt.schema_migrations ORDER BY version");
    expect(rows.rows).toEqual([{ version: 1, name: "items", run_id: "r1" }]);
    expect((await su.query("SELECT proname FROM pg_proc WHERE pronamespace = 'tenant_rt'::regnamespace")).rows).toEqual([]);
  });

  it("a failing file in a batch leaves the schema, its versions and its functions as they were (one transaction)", async () => {
    await su.query("CREATE TABLE tenant_rt.blocker (id int)");
    await su.query("ALTER TABLE tenant_rt.blocker OWNER TO tenant_rt");
    const broken = migrationSet("/inline", new Map([...SET.migrations.flatMap((m) => [[m.up.file, Buffer.from(m.up.sql)] as const]), ["0004_bad.up.sql", Buffer.from("CREATE TABLE blocker (id int);")]]));
    await expect(migrateSchema(admin, who("rt"), broken, { runId: "bad", ...OPTS })).rejects.toThrow('tenant_rt: 0004_bad.up.sql failed: relation "blocker" already exists (SQLSTATE 42P07)');
    take();
    const rows = await su.query<{ version: number }>("SELECT version FROM tenant_rt.schema_migrations ORDER BY version");
    expect(rows.rows.map((r) => r.version)).toEqual([1]);
    const cols = await su.query("SELECT column_name FROM information_schema.columns WHERE table_schema = 'tenant_rt' AND table_name = 'items' ORDER BY ordinal_position");
    expect(cols.rows.map((r: { column_name: string }) => r.column_name)).toEqual(["id", "label"]);
    expect((await su.query("SELECT proname FROM pg_proc WHERE pronamespace = 'tenant_rt'::regnamespace")).rows).toEqual([]);
  });
});

describe("default privileges", () => {
  /** The role's default privileges for functions and types, and the row versions (xmin) that hold them. */
  const defaults = async () =>
    (await su.query<{ kind: string; acl: string; xmin: string }>("SELECT defaclobjtype AS kind, defaclacl::text AS acl, xmin::text AS xmin FROM pg_default_acl WHERE defaclrole = 'tenant_acl'::regrole ORDER BY 1")).rows;

  it("are written on the schema's first migration, left alone after, and written again when PUBLIC got its defaults back", async () => {
    expect(await defaults()).toEqual([]);
    await migrateSchema(admin, who("acl"), SET, { runId: "a1", ...OPTS, to: 1 });
    const first = await defaults();
    expect(first.map((d) => [d.kind, d.acl])).toEqual([
      ["T", "{tenant_acl=U/tenant_acl}"],
      ["f", "{tenant_acl=X/tenant_acl}"],
    ]);
    take();
    await migrateSchema(admin, who("acl"), SET, { runId: "a2", ...OPTS, to: 2 });
    expect(take().some((q) => q.includes("ALTER DEFAULT"))).toBe(false);
    expect(await defaults()).toEqual(first);

    // Someone gives PUBLIC EXECUTE back by default: the next migration takes it away before its files run.
    await su.query("ALTER DEFAULT PRIVILEGES FOR ROLE tenant_acl GRANT EXECUTE ON FUNCTIONS TO PUBLIC");
    expect((await defaults()).map((d) => [d.kind, d.acl])).toEqual([["T", "{tenant_acl=U/tenant_acl}"]]);
    await migrateSchema(admin, who("acl"), SET, { runId: "a3", ...OPTS, to: 3 });
    expect((await defaults()).map((d) => [d.kind, d.acl])).toEqual(first.map((d) => [d.kind, d.acl]));
    const fn = await su.query("SELECT proacl::text AS acl FROM pg_proc WHERE proname = 'label_of' AND pronamespace = 'tenant_acl'::regnamespace");
    expect(fn.rows).toEqual([{ acl: "{tenant_acl=X/tenant_acl}" }]);
  });
});
