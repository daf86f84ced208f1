/**
 * Change capture on a cell database (docs/lifecycle.md, "Change capture and the write window"):
 * the publication of one tenant schema's tables and the logical replication slot (pgoutput) an
 * upgrade streams from, named by the workflow so an orphan can be told from a live one.
 *
 * The slot is created over a replication connection with an exported snapshot
 * (CREATE_REPLICATION_SLOT ... (SNAPSHOT 'export')): the bulk copy imports that snapshot, so the
 * copy holds exactly the transactions committed before the slot's consistent point and the stream
 * exactly those after it; nothing is lost or applied twice. The snapshot lives as long as the
 * replication connection stays open and idle: `close()` it once the copy's transaction imported it.
 *
 * A slot keeps WAL on the cell's disk until it is consumed or dropped: a forgotten one fills the
 * disk. Every path of the upgrade drops it (`dropCapture`), and `captureSlots` lists the slots of
 * this convention with their lag so a sweep can drop the ones whose workflow is no longer open.
 *
 * Privileges: the master user needs REPLICATION (RDS: `GRANT rds_replication TO <master>`, which
 * rds_superuser may do) and the cell needs `rds.logical_replication = 1` (wal_level logical).
 */
import pg from "pg";
import { qi, ql, qn } from "../sql.ts";
import { readSchema } from "../catalog.ts";

/** Slot and publication names: `tenancy_cdc_<workflow id without dashes>_<env>` (a slot name is at most 63 characters of [a-z0-9_]). */
export const SLOT_PREFIX = "tenancy_cdc_";

export function slotName(workflowId: string, env: string): string {
  const hex = workflowId.replace(/-/g, "").toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(hex)) throw new Error(`workflow id ${workflowId} is not a UUID`);
  if (!/^[a-z][a-z0-9]{0,17}$/.test(env)) throw new Error(`environment ${env} cannot be part of a replication slot name (lower-case letters and digits, at most 18)`);
  return `${SLOT_PREFIX}${hex}_${env}`;
}

export function parseSlotName(name: string): { workflowId: string; env: string } | undefined {
  const m = /^tenancy_cdc_([0-9a-f]{32})_([a-z][a-z0-9]{0,17})$/.exec(name);
  if (!m) return undefined;
  const h = m[1]!;
  return { workflowId: `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`, env: m[2]! };
}

/** An LSN (`16/B374D848`) as a number of bytes. */
export function lsnToBigInt(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  if (!m) throw new Error(`not an LSN: ${lsn}`);
  return (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`);
}

export function bigIntToLsn(n: bigint): string {
  return `${(n >> 32n).toString(16).toUpperCase()}/${(n & 0xffffffffn).toString(16).toUpperCase()}`;
}

export interface StartedCapture {
  slot: string;
  /** Where the stream starts: every transaction committed before it is in `snapshot`. */
  consistentPoint: string;
  /** The exported snapshot (SET TRANSACTION SNAPSHOT); valid until `close()`. */
  snapshot: string;
  /** Tables switched to REPLICA IDENTITY FULL (they have no primary key). */
  identityFull: string[];
  close(): Promise<void>;
}

export class CaptureTimeoutError extends Error {}

/** What a CaptureTimeoutError tells the operator to do (the transaction named before it is the one to end). */
const AFTER_TIMEOUT =
  "nothing was kept (no slot, no publication, replica identities as they were). Change capture cannot start while that transaction stays open: " +
  "have it committed or ended (SELECT pg_terminate_backend(pid) on the cell ends it), or raise TENANCY_CUTOVER_TIMEOUT_MS; " +
  "the step's next attempt starts the capture again (once the workflow has failed: tenantctl retry WORKFLOW_ID, or roll the upgrade or move back)";

/**
 * Creates the publication (the schema's tables, tables without a primary key first switched to
 * REPLICA IDENTITY FULL: without a replica identity PostgreSQL refuses their UPDATEs and DELETEs
 * once they are published) and the slot, with an exported snapshot. `admin` is a prepared session
 * on the cell database whose user is a member of the schema's owner; `replication` the same
 * server's connection settings. Creating a logical slot waits for every transaction open on the
 * server to end (it needs a consistent starting point): past `timeoutMs` the creation is
 * abandoned (the connection closed, so the half-made slot goes with it) and CaptureTimeoutError
 * names the oldest open transaction.
 */
export async function createCapture(admin: pg.ClientBase, replication: pg.ClientConfig, schema: string, slot: string, timeoutMs: number): Promise<StartedCapture> {
  const d = await readSchema(admin, schema);
  const identityFull: string[] = [];
  const { rows: idents } = await admin.query<{ name: string; ident: string }>(
    `SELECT c.relname AS name, c.relreplident::text AS ident FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind = 'r'`,
    [schema],
  );
  try {
    return await createSlot(admin, replication, schema, slot, timeoutMs, d.tables, idents, identityFull);
  } catch (err) {
    // Nothing kept: the publication goes, and the tables this attempt switched to REPLICA IDENTITY
    // FULL go back (the next attempt switches them again and records them, so a rollback resets them).
    await admin.query(`DROP PUBLICATION IF EXISTS ${qi(slot)}`).catch(() => undefined);
    if (identityFull.length > 0) {
      await admin.query(`SET lock_timeout = ${Math.max(1, Math.floor(timeoutMs))}`).catch(() => undefined);
      await resetIdentity(admin, schema, identityFull).catch(() => undefined);
      await admin.query("SET lock_timeout = 0").catch(() => undefined);
    }
    throw err;
  }
}

async function createSlot(
  admin: pg.ClientBase, replication: pg.ClientConfig, schema: string, slot: string, timeoutMs: number,
  tables: Awaited<ReturnType<typeof readSchema>>["tables"], idents: readonly { name: string; ident: string }[], identityFull: string[],
): Promise<StartedCapture> {
  for (const t of tables) {
    const hasPk = t.constraints.some((k) => k.type === "p");
    const ident = idents.find((r) => r.name === t.name)?.ident;
    if (!hasPk && ident !== "f" && ident !== "i") {
      // ACCESS EXCLUSIVE, briefly; a transaction of the application holding the table makes it wait, not forever.
      await admin.query(`SET lock_timeout = ${Math.max(1, Math.floor(timeoutMs))}`);
      try {
        await admin.query(`ALTER TABLE ${qn(schema, t.name)} REPLICA IDENTITY FULL`);
      } catch (err) {
        if ((err as { code?: string }).code === "55P03") {
          throw new CaptureTimeoutError(`setting REPLICA IDENTITY FULL on ${schema}.${t.name} waited ${timeoutMs} ms for the table's lock (${await oldestTransaction(admin)}); ${AFTER_TIMEOUT}`);
        }
        throw err;
      } finally {
        await admin.query("SET lock_timeout = 0");
      }
      identityFull.push(t.name);
    }
  }
  const exists = await admin.query("SELECT 1 FROM pg_publication WHERE pubname = $1", [slot]);
  if (exists.rowCount === 0) {
    const names = tables.map((t) => qn(schema, t.name));
    await admin.query(
      names.length > 0
        ? `CREATE PUBLICATION ${qi(slot)} FOR TABLE ${names.join(", ")} WITH (publish = 'insert, update, delete, truncate')`
        : `CREATE PUBLICATION ${qi(slot)} WITH (publish = 'insert, update, delete, truncate')`,
    );
  }
  const repl = new pg.Client({ ...replication, replication: "database" } as pg.ClientConfig);
  repl.on("error", () => undefined);
  await repl.connect();
  let timer: NodeJS.Timeout | undefined;
  try {
    const created = repl.query<{ slot_name: string; consistent_point: string; snapshot_name: string }>(
      `CREATE_REPLICATION_SLOT ${qi(slot)} LOGICAL pgoutput (SNAPSHOT 'export')`,
    );
    const timedOut = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => void oldestTransaction(admin).then(
        (who) => reject(new CaptureTimeoutError(`creating replication slot ${slot} waited ${timeoutMs} ms for open transactions to end (${who}); ${AFTER_TIMEOUT}`)),
        (err: unknown) => reject(err instanceof Error ? err : new Error(String(err))),
      ), timeoutMs);
    });
    const { rows } = await Promise.race([created, timedOut]);
    const r = rows[0]!;
    let closed: Promise<void> | undefined;
    return {
      slot, consistentPoint: r.consistent_point, snapshot: r.snapshot_name, identityFull,
      close: () => (closed ??= repl.end().catch(() => undefined)),
    };
  } catch (err) {
    // A creation still waiting does not read its socket: its backend is ended, which abandons the
    // creation and drops the half-made slot with it.
    const pid = (repl as unknown as { processID?: number }).processID;
    if (pid) await admin.query("SELECT pg_terminate_backend($1)", [pid]).catch(() => undefined);
    await repl.end().catch(() => undefined);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

async function oldestTransaction(c: pg.ClientBase): Promise<string> {
  const { rows } = await c.query<{ pid: number; usename: string | null; age: string }>(
    `SELECT pid, usename, (now() - xact_start)::text AS age FROM pg_stat_activity
      WHERE xact_start IS NOT NULL AND backend_xid IS NOT NULL AND pid <> pg_backend_pid() ORDER BY xact_start LIMIT 1`,
  );
  const r = rows[0];
  return r ? `oldest: pid ${r.pid} of ${r.usename ?? "?"}, open for ${r.age}` : "none left open";
}

/**
 * Drops the slot (ending the session streaming from it first) and the publication. Idempotent:
 * returns what was there. The tables switched to REPLICA IDENTITY FULL keep it (they are the
 * tenant's, and are emptied from the cell at cleanup; a rollback resets them, see resetIdentity).
 */
export async function dropCapture(admin: pg.ClientBase, slot: string, timeoutMs = 10_000): Promise<{ slot: boolean; publication: boolean }> {
  const deadline = Date.now() + timeoutMs;
  let slotDropped = false;
  for (;;) {
    const { rows } = await admin.query<{ pid: number | null }>("SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1", [slot]);
    if (rows.length === 0) break;
    if (rows[0]!.pid !== null) {
      await admin.query("SELECT pg_terminate_backend($1)", [rows[0]!.pid]);
    } else {
      try {
        await admin.query("SELECT pg_drop_replication_slot($1)", [slot]);
        slotDropped = true;
        break;
      } catch (err) {
        // 55006: the slot became active again between the two queries.
        if ((err as { code?: string }).code !== "55006" && (err as { code?: string }).code !== "42704") throw err;
      }
    }
    if (Date.now() > deadline) throw new Error(`replication slot ${slot} is still in use after ${timeoutMs} ms of ending its session`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const pub = await admin.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [slot]);
  if (pub.rowCount !== 0) await admin.query(`DROP PUBLICATION IF EXISTS ${qi(slot)}`);
  return { slot: slotDropped, publication: pub.rowCount !== 0 };
}

/** Puts tables the capture switched to REPLICA IDENTITY FULL back to DEFAULT (a rollback: the tenant stays in the cell). */
export async function resetIdentity(admin: pg.ClientBase, schema: string, tables: readonly string[]): Promise<void> {
  for (const t of tables) {
    const { rowCount } = await admin.query(
      `SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relreplident = 'f'`,
      [schema, t],
    );
    if (rowCount) await admin.query(`ALTER TABLE ${qn(schema, t)} REPLICA IDENTITY DEFAULT`);
  }
}

export interface CaptureSlot {
  slot: string;
  workflowId: string;
  env: string;
  active: boolean;
  /** WAL the slot keeps from being recycled: current WAL position minus its confirmed position, in bytes. */
  lagBytes: number;
}

/** The slots of this convention on the session's database (a logical slot belongs to one), with their lag. */
export async function captureSlots(c: pg.ClientBase): Promise<CaptureSlot[]> {
  const { rows } = await c.query<{ slot: string; active: boolean; lag: string | null }>(
    `SELECT slot_name AS slot, active, (pg_current_wal_lsn() - coalesce(confirmed_flush_lsn, restart_lsn))::text AS lag
       FROM pg_replication_slots WHERE slot_name LIKE ${ql(`${SLOT_PREFIX}%`)} AND database = current_database() ORDER BY slot_name`,
  );
  const out: CaptureSlot[] = [];
  for (const r of rows) {
    const p = parseSlotName(r.slot);
    if (p) out.push({ slot: r.slot, ...p, active: r.active, lagBytes: Number(r.lag ?? 0) });
  }
  return out;
}

/**
 * Drops the slots of this convention whose workflow is not open (`isOpen` says, from the
 * control-plane database): a workflow that failed, was cancelled or vanished left them behind.
 * Returns the slots dropped.
 */
export async function dropOrphanSlots(c: pg.ClientBase, isOpen: (workflowId: string) => Promise<boolean>): Promise<string[]> {
  const dropped: string[] = [];
  for (const s of await captureSlots(c)) {
    if (await isOpen(s.workflowId)) continue;
    await dropCapture(c, s.slot);
    dropped.push(s.slot);
  }
  return dropped;
}

/** Bytes between the server's current WAL position and `lsn`. */
export async function walBehind(c: pg.ClientBase, lsn: string): Promise<number> {
  const { rows } = await c.query<{ lag: string }>("SELECT (pg_current_wal_lsn() - $1::pg_lsn)::text AS lag", [lsn]);
  return Math.max(0, Number(rows[0]!.lag));
}
