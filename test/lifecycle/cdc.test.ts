/**
 * Change capture for real (automation/lifecycle/pg/cdc/): a cell server with wal_level=logical and
 * a dedicated server, the tenant's application schema (enum, sequences, identity and serial
 * columns, a generated column, foreign keys, a table without any key) plus a table of TOAST-sized
 * documents, and a writer inserting, updating and deleting at a fixed rate throughout the bulk
 * copy and the stream. The master-like admin has REPLICATION here (RDS: rds_replication).
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type pg from "pg";
import { ChangeApplier, readProgress, type ApplierOptions, type Progress } from "../../automation/lifecycle/pg/cdc/apply.ts";
import { catchUp, finishCapture, slotExists, startCapture, stopCapture, validateForeignKeys, type CaptureTarget } from "../../automation/lifecycle/pg/cdc/capture.ts";
import { currentLags } from "../../automation/lifecycle/pg/cdc/lag.ts";
import { captureSlots, CaptureTimeoutError, createCapture, dropOrphanSlots, lsnToBigInt, parseSlotName, slotName } from "../../automation/lifecycle/pg/cdc/slot.ts";
import { streamUntilFence } from "../../automation/lifecycle/pg/cdc/stream.ts";
import { emitFence } from "../../automation/lifecycle/pg/cdc/apply.ts";
import { tableChecksums, VerificationError, verifyCopy } from "../../automation/lifecycle/pg/copy.ts";
import { readSchema } from "../../automation/lifecycle/pg/catalog.ts";
import { ensureMember, prepareSession } from "../../automation/lifecycle/pg/sql.ts";
import { Metrics } from "../../automation/metrics.ts";
import { startPostgres, type PgServer } from "../support/postgres.ts";
import { clientConfig, connect, createApplicationSchema, provisionTenantInDb, qi, type DbRef } from "./tenantDb.ts";

const PASSWORD = "tenant-password-1";
let cellServer: PgServer;
let dedServer: PgServer;
let n = 0;

beforeAll(async () => {
  [cellServer, dedServer] = await Promise.all([startPostgres({ logicalReplication: true }), startPostgres()]);
});

afterAll(async () => {
  await Promise.all([cellServer?.stop(), dedServer?.stop()]);
});

interface Fixture {
  ident: string;
  cell: DbRef;
  ded: DbRef;
  src: pg.Client;
  dst: pg.Client;
  target: CaptureTarget;
  close(): Promise<void>;
}

/** A tenant schema in a fresh cell database (with documents of ~12 KiB, stored out of line) and its empty dedicated counterpart. */
async function fixture(workflowId: string): Promise<Fixture> {
  const i = ++n;
  const ident = `tenant_cdc_${i}`;
  const cellAdmin = await cellServer.createRdsLikeAdmin(`cell_admin_${i}`);
  const dedAdmin = await dedServer.createRdsLikeAdmin(`ded_admin_${i}`);
  const boot = await cellServer.connect(cellServer.bootstrap);
  await boot.query(`ALTER ROLE ${qi(cellAdmin.user)} REPLICATION`);
  await boot.end();
  const cell: DbRef = { server: cellServer, admin: cellAdmin, database: await cellServer.createDatabase(`cell_${i}`, cellAdmin) };
  const ded: DbRef = { server: dedServer, admin: dedAdmin, database: await dedServer.createDatabase(`app_${i}`, dedAdmin) };
  await provisionTenantInDb(cell, ident, PASSWORD, true);
  await provisionTenantInDb(ded, ident, PASSWORD, true);
  await createApplicationSchema(cell, ident, PASSWORD, 200);
  const app = await connect(cell, { user: ident, password: PASSWORD });
  await app.query(`CREATE TABLE ${qi(ident)}.documents (id serial PRIMARY KEY, title text NOT NULL, body text NOT NULL, revision int NOT NULL DEFAULT 1)`);
  await app.query(`INSERT INTO ${qi(ident)}.documents (title, body) SELECT 'doc ' || g, $1 || g FROM generate_series(1, 20) g`, [bigText()]);
  await app.end();
  const session = async (ref: DbRef) => {
    const c = await connect(ref);
    await prepareSession(c);
    await ensureMember(c, ident);
    return c;
  };
  const src = await session(cell);
  const dst = await session(ded);
  const target: CaptureTarget = {
    cell: src, dedicated: dst, replication: clientConfig(cell), schema: ident, owner: ident,
    slot: slotName(workflowId, "prod"), workflowId, env: "prod", tenant: `cdc-${i}`,
  };
  return {
    ident, cell, ded, src, dst, target,
    async close() {
      await stopCapture(target).catch(() => undefined);
      await src.end();
      await dst.end();
    },
  };
}

/** Incompressible text above the TOAST threshold (2 KiB): stored out of line. */
function bigText(): string {
  return randomBytes(6 * 1024).toString("hex");
}

interface Writer {
  commits: number;
  stoppedBy?: string;
  stop(): Promise<void>;
  done: Promise<void>;
  waitFor(commits: number): Promise<void>;
}

/**
 * The application at a fixed rate (one transaction every 10 ms): inserts a customer with an order
 * and a tag, updates a document's title only (its TOASTed body is unchanged, so pgoutput does not
 * send it) or its body, updates and deletes rows of the keyless events table, deletes a customer
 * (cascading to orders and tags), appends a document; until stopped or cut off.
 */
function startAppWriter(ref: DbRef, ident: string): Writer {
  const q = qi(ident);
  let stopping = false;
  const w: Writer = {
    commits: 0, stop: async () => { stopping = true; await w.done; }, done: Promise.resolve(),
    waitFor: async (k) => { while (w.commits < k && w.stoppedBy === undefined) await new Promise((r) => setTimeout(r, 10)); },
  };
  w.done = (async () => {
    let c: pg.Client | undefined;
    try {
      c = await connect(ref, { user: ident, password: PASSWORD });
      for (let i = 1; !stopping; i++) {
        await c.query("BEGIN");
        const cu = await c.query<{ id: string }>(`INSERT INTO ${q}.customers (email, name, mood) VALUES ($1, 'writer', 'sad') RETURNING id`, [`cdc${i}@example.com`]);
        const o = await c.query<{ id: string }>(`INSERT INTO ${q}.orders (customer_id, amount, note) VALUES ($1, $2, 'w') RETURNING id`, [cu.rows[0]!.id, i / 7]);
        await c.query(`INSERT INTO ${q}.order_tags VALUES ($1, 'cdc')`, [o.rows[0]!.id]);
        await c.query(`UPDATE ${q}.documents SET title = title || '.', revision = revision + 1 WHERE id = $1`, [1 + (i % 20)]);
        if (i % 3 === 0) await c.query(`UPDATE ${q}.documents SET body = $2 WHERE id = $1`, [1 + ((i * 7) % 20), bigText()]);
        await c.query(`UPDATE ${q}.events SET payload = payload || '+' WHERE payload = $1`, [`event ${i}`]);
        await c.query(`DELETE FROM ${q}.events WHERE payload = $1`, [`event ${i + 100}`]);
        await c.query(`INSERT INTO ${q}.events VALUES ('writer', now(), $1)`, [randomBytes(4)]);
        await c.query(`DELETE FROM ${q}.customers WHERE id = $1`, [2 + ((i * 13) % 150)]);
        if (i % 5 === 0) await c.query(`INSERT INTO ${q}.documents (title, body) VALUES ($1, $2)`, [`new ${i}`, bigText()]);
        await c.query("COMMIT");
        w.commits++;
        await new Promise((r) => setTimeout(r, 10));
      }
    } catch (err) {
      w.stoppedBy = (err as Error).message;
    } finally {
      await c?.end().catch(() => undefined);
    }
  })();
  return w;
}

/** Writes stop as at the switch: LOGIN off and the role's sessions ended. */
async function cutOff(f: Fixture, w: Writer): Promise<void> {
  await f.src.query(`ALTER ROLE ${qi(f.ident)} NOLOGIN`);
  await f.src.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", [f.ident]);
  await w.done;
}

const WF = (k: number) => `0000000${k}-1111-4222-8333-444455556666`;

describe("change capture", () => {
  it("bulk copy in the slot's snapshot plus the stream lose and duplicate nothing under a live writer", async () => {
    const f = await fixture(WF(1));
    try {
      const w = startAppWriter(f.cell, f.ident);
      await w.waitFor(5);
      const started = await startCapture(f.target, 10_000);
      expect(started.resumed).toBe(false);
      // The keyless table was given a replica identity, or the writer's UPDATE/DELETE on it would now fail.
      expect(started.identityFull).toEqual(["events"]);
      const atCopy = w.commits;
      await w.waitFor(atCopy + 15);
      const first = await catchUp(f.target, 20_000);
      expect(first.transactions).toBeGreaterThan(0);
      expect(lsnToBigInt(first.appliedLsn)).toBeGreaterThan(lsnToBigInt(first.fenceLsn));
      await w.waitFor(w.commits + 15);
      await cutOff(f, w);
      expect(w.stoppedBy).toMatch(/terminat|connection error/);
      expect(w.commits).toBeGreaterThan(atCopy + 25);
      // The bounded check reads the touched rows in one query per table on each side (it used to
      // send two per row, inside the write window).
      const rowChecks = (spy: { mock: { calls: unknown[][] } }) => spy.mock.calls.filter((c) => typeof c[0] === "string" && c[0].includes("md5(r::text)")).length;
      const cellQueries = vi.spyOn(f.src, "query");
      const dedQueries = vi.spyOn(f.dst, "query");
      const last = await finishCapture(f.target, 20_000);
      const checks = [rowChecks(cellQueries), rowChecks(dedQueries)];
      cellQueries.mockRestore();
      dedQueries.mockRestore();
      // Each writer transaction changes customers, orders, order_tags and documents (events has no key).
      expect(last.rowsChecked).toBeGreaterThan(15 * 4);
      expect(checks).toEqual([4, 4]);
      expect(last.foreignKeys).toBe(2);
      expect(await validateForeignKeys(f.dst, f.ident)).toEqual(["order_tags.order_tags_order_id_fkey", "orders.orders_customer_id_fkey"]);
      // Identical: definitions with foreign keys, sequences, and every table's row count and checksum.
      const report = await verifyCopy(f.src, f.dst, f.ident, { sequences: true, foreignKeys: true });
      expect(report.tables.map((t) => t.table)).toEqual(["customers", "documents", "events", "order_tags", "orders"]);
      const d = await readSchema(f.src, f.ident);
      expect(await tableChecksums(f.dst, d)).toEqual(await tableChecksums(f.src, d));
      // Every committed writer transaction is there exactly once (customers inserted = commits).
      const count = async (c: pg.Client) => (await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${qi(f.ident)}.customers WHERE email LIKE 'cdc%'`)).rows[0]!.n;
      expect(await count(f.dst)).toBe(await count(f.src));
      const progress = await readProgress(f.dst, f.target.slot);
      expect(progress!.transactions).toBe(first.transactions + last.transactions);
      expect(currentLags().find((l) => l.labels.slot === f.target.slot)?.labels).toEqual({ tenant: f.target.tenant, env: "prod", slot: f.target.slot });
      const metrics = await new Metrics().registry.getSingleMetricAsString("tenancy_cdc_slot_lag_bytes");
      expect(metrics).toContain(`slot="${f.target.slot}"`);

      expect(await stopCapture(f.target)).toEqual({ slot: true, publication: true });
      expect(await slotExists(f.src, f.target.slot)).toBe(false);
      expect(await readProgress(f.dst, f.target.slot)).toBeUndefined();
      expect(currentLags().some((l) => l.labels.slot === f.target.slot)).toBe(false);
      expect(await stopCapture(f.target)).toEqual({ slot: false, publication: false });
    } finally {
      await f.close();
    }
  });

  it("a crash mid-stream resumes from the applied position persisted with each transaction", async () => {
    const f = await fixture(WF(2));
    try {
      const w = startAppWriter(f.cell, f.ident);
      await w.waitFor(3);
      await startCapture(f.target, 10_000);
      await w.waitFor(w.commits + 30);
      await cutOff(f, w);
      // The process dies after 10 applied transactions, in the middle of the 11th.
      const progress = (await readProgress(f.dst, f.target.slot))!;
      const crashing = new CrashingApplier(f.dst, f.ident, progress, 11, { batchTransactions: 1 });
      const token = "crash-fence";
      await emitFence(f.src, token);
      await expect(streamUntilFence({ replication: f.target.replication, slot: f.target.slot, applier: crashing, token, timeoutMs: 20_000 })).rejects.toThrow(/simulated crash/);
      const after = (await readProgress(f.dst, f.target.slot))!;
      expect(after.transactions).toBe(10);
      expect(lsnToBigInt(after.appliedLsn)).toBeGreaterThan(lsnToBigInt(progress.appliedLsn));
      // Resumed by a new process: the slot sends again from its confirmed position; what was applied is skipped.
      const resumed = await catchUp(f.target, 20_000);
      expect(resumed.transactions).toBeGreaterThanOrEqual(30 - 10);
      await verifyCopy(f.src, f.dst, f.ident, { sequences: false, foreignKeys: false });
      const final = (await readProgress(f.dst, f.target.slot))!;
      expect(final.transactions).toBe(10 + resumed.transactions);
    } finally {
      await f.close();
    }
  });

  it("batches several source transactions into one target transaction; a crash inside a batch loses and duplicates nothing", async () => {
    const f = await fixture(WF(9));
    try {
      const w = startAppWriter(f.cell, f.ident);
      await w.waitFor(3);
      await startCapture(f.target, 10_000);
      await w.waitFor(w.commits + 30);
      await cutOff(f, w);
      const q = qi(f.ident);
      const writerRows = async (c: pg.Client) => Number((await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${q}.customers WHERE email LIKE 'cdc%'`)).rows[0]!.n);
      const copied = await writerRows(f.dst);
      // Batches of 4: the process dies in the 11th source transaction, with the 9th and 10th applied in the open third batch.
      const progress = (await readProgress(f.dst, f.target.slot))!;
      const crashing = new CrashingApplier(f.dst, f.ident, progress, 11, { batchTransactions: 4 });
      await emitFence(f.src, "batch-crash-fence");
      await expect(streamUntilFence({ replication: f.target.replication, slot: f.target.slot, applier: crashing, token: "batch-crash-fence", timeoutMs: 20_000 })).rejects.toThrow(/simulated crash/);
      expect(crashing.begins).toHaveLength(11);
      expect(crashing.commits()).toBe(2);
      const after = (await readProgress(f.dst, f.target.slot))!;
      // Only the two committed batches: each writer transaction inserts one customer.
      expect(after.transactions).toBe(8);
      expect(await writerRows(f.dst)).toBe(copied + 8);
      // The position committed, and confirmed to the slot, is the end of the 8th transaction: before the 9th's commit.
      expect(lsnToBigInt(after.appliedLsn)).toBeLessThanOrEqual(lsnToBigInt(crashing.begins[8]!));
      expect(lsnToBigInt(after.appliedLsn)).toBeGreaterThan(lsnToBigInt(crashing.begins[7]!));
      const { rows } = await f.src.query<{ lsn: string }>("SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1", [f.target.slot]);
      expect(lsnToBigInt(rows[0]!.lsn)).toBeLessThan(lsnToBigInt(crashing.begins[8]!));

      // A new process resumes from the committed position, in batches of 4, and ends identical, every transaction once.
      let resumer: ChangeApplier | undefined;
      const resumed = await catchUp(f.target, 20_000, undefined, (p) => (resumer = new ChangeApplier(f.dst, f.ident, p, { batchTransactions: 4 })));
      expect(resumed.transactions).toBeGreaterThanOrEqual(30 - 8);
      // Batches close at 4 transactions and at a fence's: the writer's transactions and the crashed
      // stream's fence in batches of 4 (the last one closed by that fence), then catchUp's own fence alone.
      expect(resumer!.commits()).toBe(Math.ceil((resumed.transactions - 1) / 4) + 1);
      expect(resumer!.commits()).toBeLessThan(resumed.transactions / 2);
      await verifyCopy(f.src, f.dst, f.ident, { sequences: false, foreignKeys: false });
      expect(await writerRows(f.dst)).toBe(await writerRows(f.src));
      expect((await readProgress(f.dst, f.target.slot))!.transactions).toBe(8 + resumed.transactions);
    } finally {
      await f.close();
    }
  });

  it("the switch's bounded check compares the rows the last drain touched, and finds a divergence there", async () => {
    const f = await fixture(WF(7));
    try {
      const w = startAppWriter(f.cell, f.ident);
      await w.waitFor(3);
      await startCapture(f.target, 10_000);
      await w.waitFor(w.commits + 10);
      await cutOff(f, w);
      // The copy diverges where the stream does not overwrite it: the TOASTed body, unchanged in most updates.
      await f.dst.query(`UPDATE ${qi(f.ident)}.documents SET body = 'tampered' WHERE id <= 20`);
      const err = await finishCapture(f.target, 20_000).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VerificationError);
      expect((err as VerificationError).differences.length).toBeGreaterThan(0);
      expect((err as VerificationError).differences.every((d) => /^table documents, row \["\d+"\]: source [0-9a-f]{32}, target [0-9a-f]{32}$/.test(d))).toBe(true);
    } finally {
      await f.close();
    }
  });

  it("a transaction whose commit record directly follows a fence's is applied by the next stream: the slot confirms exactly the applied position", async () => {
    const f = await fixture(WF(8));
    const app = await connect(f.cell, { user: f.ident, password: PASSWORD });
    try {
      await startCapture(f.target, 10_000);
      const q = qi(f.ident);
      let adjacent = false;
      // On a quiet server the application's COMMIT is the very next WAL record after the fence's
      // commit (what the upgrade's writer hit at random); retried if background WAL came between.
      for (let attempt = 1; attempt <= 5 && !adjacent; attempt++) {
        await app.query("BEGIN");
        await app.query(`INSERT INTO ${q}.customers (email, name, mood) VALUES ($1, 'boundary', 'ok')`, [`boundary${attempt}@example.com`]);
        const token = `boundary-${attempt}`;
        await emitFence(f.src, token);
        await app.query("COMMIT");
        const first = new RecordingApplier(f.dst, f.ident, (await readProgress(f.dst, f.target.slot))!);
        const r1 = await streamUntilFence({ replication: f.target.replication, slot: f.target.slot, applier: first, token, timeoutMs: 20_000 });
        // Where the slot will decode from next time (checked below): exactly the end of the last applied commit.
        const confirmed = await confirmedAtLeast(f.src, f.target.slot, r1.appliedLsn);
        const next = `after-${attempt}`;
        await emitFence(f.src, next);
        const second = new RecordingApplier(f.dst, f.ident, (await readProgress(f.dst, f.target.slot))!);
        await streamUntilFence({ replication: f.target.replication, slot: f.target.slot, applier: second, token: next, timeoutMs: 20_000 });
        // The committed row is on the copy, whatever its commit's position.
        expect((await f.dst.query(`SELECT 1 FROM ${q}.customers WHERE email = $1`, [`boundary${attempt}@example.com`])).rowCount).toBe(1);
        expect(confirmed).toBe(r1.appliedLsn);
        adjacent = second.begins.length > 0 && lsnToBigInt(second.begins[0]!) === lsnToBigInt(r1.appliedLsn);
      }
      // The case under test did occur: a commit record starting exactly where the stream stopped.
      expect(adjacent).toBe(true);
    } finally {
      await app.end();
      await f.close();
    }
  });

  it("a re-run after the copy committed keeps it; a slot whose copy never committed is replaced", async () => {
    const f = await fixture(WF(3));
    try {
      const first = await startCapture(f.target, 10_000);
      const again = await startCapture(f.target, 10_000);
      expect(again).toEqual({ resumed: true, consistentPoint: first.consistentPoint, rowsCopied: 0, tables: [], identityFull: [] });
      // A crash between the slot's creation and the copy's commit: a slot, no position.
      await f.dst.query("DELETE FROM saas_tenancy.cdc_progress WHERE slot = $1", [f.target.slot]);
      const redone = await startCapture(f.target, 10_000);
      expect(redone.resumed).toBe(false);
      expect(lsnToBigInt(redone.consistentPoint)).toBeGreaterThan(lsnToBigInt(first.consistentPoint));
      expect((await captureSlots(f.src)).map((s) => s.slot)).toEqual([f.target.slot]);
    } finally {
      await f.close();
    }
  });

  it("slot creation waits for an open transaction up to the timeout, then gives up leaving no slot", async () => {
    const f = await fixture(WF(4));
    const app = await connect(f.cell, { user: f.ident, password: PASSWORD });
    try {
      // A transaction holding the keyless table: its replica identity cannot change.
      await app.query("BEGIN");
      await app.query(`INSERT INTO ${qi(f.ident)}.events VALUES ('long', now(), NULL)`);
      const locked = await createCapture(f.src, f.target.replication, f.ident, f.target.slot, 500).catch((e: unknown) => e);
      expect(locked).toBeInstanceOf(CaptureTimeoutError);
      expect((locked as Error).message).toMatch(new RegExp(`^setting REPLICA IDENTITY FULL on ${f.ident}.events waited 500 ms for the table's lock \\(oldest: pid \\d+ of ${f.ident}, open for`));
      await app.query("COMMIT");
      // A transaction elsewhere: the slot's consistent point waits for it.
      await app.query("BEGIN");
      await app.query(`INSERT INTO ${qi(f.ident)}.documents (title, body) VALUES ('long', 'x')`);
      const waited = await createCapture(f.src, f.target.replication, f.ident, f.target.slot, 500).catch((e: unknown) => e);
      expect(waited).toBeInstanceOf(CaptureTimeoutError);
      expect((waited as Error).message).toMatch(new RegExp(`^creating replication slot ${f.target.slot} waited 500 ms for open transactions to end \\(oldest: pid \\d+ of ${f.ident}, open for`));
      // The abandoned creation went with its connection.
      for (let i = 0; i < 100 && (await slotExists(f.src, f.target.slot)); i++) await new Promise((r) => setTimeout(r, 20));
      expect(await slotExists(f.src, f.target.slot)).toBe(false);
      await app.query("COMMIT");
      // Negative control: without the open transaction it succeeds.
      const ok = await createCapture(f.src, f.target.replication, f.ident, f.target.slot, 5_000);
      await ok.close();
      expect(await slotExists(f.src, f.target.slot)).toBe(true);
    } finally {
      await app.end();
      await f.close();
    }
  });

  it("the orphan sweep drops the slots of workflows that are no longer open, and only those", async () => {
    const f = await fixture(WF(5));
    try {
      await startCapture(f.target, 10_000);
      const other = slotName(WF(6), "staging");
      const c2 = await createCapture(f.src, f.target.replication, f.ident, other, 5_000);
      await c2.close();
      expect((await captureSlots(f.src)).map((s) => parseSlotName(s.slot))).toEqual([
        { workflowId: WF(5), env: "prod" }, { workflowId: WF(6), env: "staging" },
      ]);
      const asked: string[] = [];
      const dropped = await dropOrphanSlots(f.src, async (id) => (asked.push(id), id === WF(5)));
      expect(asked).toEqual([WF(5), WF(6)]);
      expect(dropped).toEqual([other]);
      expect((await captureSlots(f.src)).map((s) => s.slot)).toEqual([f.target.slot]);
      expect((await f.src.query("SELECT pubname FROM pg_publication ORDER BY 1")).rows.map((r: { pubname: string }) => r.pubname)).toEqual([f.target.slot]);
    } finally {
      await f.close();
    }
  });
});

/** The slot's confirmed position once it reached `lsn` (the server reads the last confirmation asynchronously), or after 5 s. */
async function confirmedAtLeast(c: pg.ClientBase, slot: string, lsn: string): Promise<string> {
  for (let i = 0; ; i++) {
    const { rows } = await c.query<{ lsn: string }>("SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1", [slot]);
    const at = rows[0]!.lsn;
    if (lsnToBigInt(at) >= lsnToBigInt(lsn) || i >= 100) return at;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Records the commit position of every transaction the stream begins (pgoutput BEGIN's final LSN). */
class RecordingApplier extends ChangeApplier {
  readonly begins: string[] = [];
  override async handle(...args: Parameters<ChangeApplier["handle"]>): Promise<string | undefined> {
    const msg = args[0];
    if (msg.tag === "begin") this.begins.push(msg.commitLsn!);
    return super.handle(...args);
  }
}

/** Dies (throws) at the first row change of the `at`-th source transaction the stream begins. */
class CrashingApplier extends ChangeApplier {
  readonly begins: string[] = [];
  constructor(target: pg.ClientBase, schema: string, progress: Progress, private readonly at: number, opts: ApplierOptions) {
    super(target, schema, progress, opts);
  }
  override async handle(...args: Parameters<ChangeApplier["handle"]>): Promise<string | undefined> {
    const msg = args[0];
    if (msg.tag === "begin") this.begins.push(msg.commitLsn!);
    if (msg.tag === "insert" && this.begins.length === this.at) throw new Error("simulated crash");
    return super.handle(...args);
  }
}
