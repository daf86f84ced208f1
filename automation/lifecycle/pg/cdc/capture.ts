/**
 * The change capture of one tenant schema from its cell database to its dedicated copy, as the
 * upgrade uses it (docs/lifecycle.md, "Change capture and the write window"):
 *
 * - `startCapture`: publication + slot with an exported snapshot, bulk copy in that snapshot (with
 *   foreign keys), the stream's start position committed with the copy. Resumes: a copy already
 *   committed for a slot that still exists is kept; otherwise whatever half-state a crash left
 *   (slot without copy, copy without slot) is dropped and the capture starts again.
 * - `catchUp`: writes a fence into the cell's WAL and applies the stream up to it.
 * - `finishCapture`: once writes to the cell have stopped: the last changes up to a fence, the
 *   sequences (logical decoding does not carry them), the foreign keys added NOT VALID (no scan:
 *   the stream kept them true), and a check bounded by what the last drain changed: definitions,
 *   sequences, and the rows it touched compared on both sides (one query per table and side).
 * - `validateForeignKeys`: after the window, VALIDATE CONSTRAINT (a scan that does not block writes).
 * - `stopCapture`: drops slot and publication and forgets the position.
 *
 * Sessions: `cell` and `dedicated` are prepared sessions (prepareSession) of the platform's master
 * user, a member of the schema's owner on each side (ensureMember); `replication` is the cell's
 * connection settings (a replication connection is opened from them).
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { copySchema } from "../bulkCopy.ts";
import { VerificationError, type TableChecksum } from "../copy.ts";
import { describeSchema, foreignKeyDdl, readSchema, sequenceValues, setvalSql, type SchemaDef, type TableDef } from "../catalog.ts";
import { qi, qn } from "../sql.ts";
import { ChangeApplier, deleteProgress, emitFence, readProgress, startProgress, type Progress } from "./apply.ts";
import { createCapture, dropCapture, lsnToBigInt, resetIdentity, walBehind } from "./slot.ts";
import { streamUntilFence, type StreamResult } from "./stream.ts";
import { recordLag, forgetLag } from "./lag.ts";

export interface CaptureTarget {
  cell: pg.ClientBase;
  dedicated: pg.ClientBase;
  replication: pg.ClientConfig;
  schema: string;
  /** Owner of the dedicated schema (what the copy hands its objects to). */
  owner: string;
  slot: string;
  workflowId: string;
  env: string;
  /** Tenant id, for the lag metric's labels. */
  tenant: string;
}

export interface StartResult {
  resumed: boolean;
  consistentPoint: string;
  rowsCopied: number;
  tables: TableChecksum[];
  identityFull: string[];
}

export async function slotExists(c: pg.ClientBase, slot: string): Promise<boolean> {
  return ((await c.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [slot])).rowCount ?? 0) > 0;
}

/** `signal`: an operator's cancel stops the bulk copy (bulkCopy.ts, CopyOptions.signal). */
export async function startCapture(t: CaptureTarget, timeoutMs: number, signal?: AbortSignal): Promise<StartResult> {
  const progress = await readProgress(t.dedicated, t.slot);
  if (progress && (await slotExists(t.cell, t.slot))) {
    return { resumed: true, consistentPoint: progress.appliedLsn, rowsCopied: 0, tables: [], identityFull: [] };
  }
  // A slot without a committed copy (its snapshot died with the crash), or a copy whose slot is
  // gone (dropped as an orphan while the workflow was failed): neither can be continued.
  await dropCapture(t.cell, t.slot);
  await deleteProgress(t.dedicated, t.slot);
  const capture = await createCapture(t.cell, t.replication, t.schema, t.slot, timeoutMs);
  try {
    const r = await copySchema(t.cell, t.dedicated, t.schema, t.owner, {
      snapshot: capture.snapshot,
      // No foreign keys while the stream applies: a cascading delete on the cell arrives as the
      // parent's delete and then each child's, and a target key would have deleted the children
      // already (the apply session cannot switch triggers off without superuser).
      foreignKeys: false,
      beforeCommit: (c) => startProgress(c, { slot: t.slot, workflowId: t.workflowId, env: t.env, appliedLsn: capture.consistentPoint }),
      ...(signal ? { signal } : {}),
    });
    return { resumed: false, consistentPoint: capture.consistentPoint, rowsCopied: r.rowsCopied, tables: r.tables, identityFull: capture.identityFull };
  } catch (err) {
    await capture.close();
    await dropCapture(t.cell, t.slot).catch(() => undefined);
    await resetIdentity(t.cell, t.schema, capture.identityFull).catch(() => undefined);
    throw err;
  } finally {
    await capture.close();
  }
}

export interface CatchUpResult extends StreamResult {
  /** The fence's LSN: everything the cell committed before it is applied. */
  fenceLsn: string;
  /** WAL bytes written on the cell after the applied position when the stream stopped (other tenants' too). */
  lagBytes: number;
}

/** Applies everything the cell has committed so far (up to a fence written now). */
export async function catchUp(t: CaptureTarget, timeoutMs: number, signal?: AbortSignal, applierOf?: (p: Progress) => ChangeApplier): Promise<CatchUpResult> {
  const progress = await readProgress(t.dedicated, t.slot);
  if (!progress) throw new Error(`change capture ${t.slot} has no recorded position on the dedicated database; its copy step must run again`);
  if (!(await slotExists(t.cell, t.slot))) throw new Error(`replication slot ${t.slot} is gone from the cell database; the copy step must run again`);
  const applier = applierOf ? applierOf(progress) : new ChangeApplier(t.dedicated, t.schema, progress);
  const token = randomUUID();
  const fenceLsn = await emitFence(t.cell, token);
  const labels = { tenant: t.tenant, env: t.env, slot: t.slot };
  const r = await streamUntilFence({
    replication: t.replication, slot: t.slot, applier, token, timeoutMs, ...(signal ? { signal } : {}),
  });
  if (lsnToBigInt(r.appliedLsn) <= lsnToBigInt(fenceLsn)) throw new Error(`change capture ${t.slot} stopped at ${r.appliedLsn}, before its fence ${fenceLsn}`);
  const lagBytes = await walBehind(t.cell, r.appliedLsn);
  recordLag(labels, lagBytes);
  return { ...r, fenceLsn, lagBytes };
}

/** Drops the slot and publication on the cell and the recorded position on the dedicated side. */
export async function stopCapture(t: Pick<CaptureTarget, "cell" | "slot" | "tenant" | "env"> & { dedicated?: pg.ClientBase }): Promise<{ slot: boolean; publication: boolean }> {
  const r = await dropCapture(t.cell, t.slot);
  if (t.dedicated) await deleteProgress(t.dedicated, t.slot);
  forgetLag({ slot: t.slot });
  return r;
}

export interface FinishResult extends CatchUpResult {
  /** Rows the last drain changed, compared on both sides. */
  rowsChecked: number;
  sequences: number;
  foreignKeys: number;
}

/**
 * The switch's data part, for a cell nobody writes to any more (LOGIN revoked, sessions ended):
 * applies the last changes, sets the sequences, adds the foreign keys NOT VALID, and checks what
 * can be checked in time bounded by the changes (docs/lifecycle.md says why the full verification
 * is not repeated here). Throws VerificationError naming every difference.
 */
export async function finishCapture(t: CaptureTarget, timeoutMs: number, signal?: AbortSignal): Promise<FinishResult> {
  let touched: Map<string, Map<string, (string | null)[]>> | undefined;
  const r = await catchUp(t, timeoutMs, signal, (p) => {
    const a = new ChangeApplier(t.dedicated, t.schema, p, { trackKeys: true });
    touched = a.touched;
    return a;
  });
  const d = await readSchema(t.cell, t.schema);
  const seqs = await sequenceValues(t.cell, d);
  for (const [name, v] of seqs) await t.dedicated.query(setvalSql(t.schema, name, v));
  const fks = await addForeignKeysNotValid(t.dedicated, d);
  const differences: string[] = [];
  const td = await readSchema(t.dedicated, t.schema);
  if (describeSchema(withoutForeignKeys(d)) !== describeSchema(withoutForeignKeys(td))) differences.push("table, column, constraint, index or sequence definitions differ");
  const tseqs = await sequenceValues(t.dedicated, d);
  for (const [name, v] of seqs) {
    const w = tseqs.get(name);
    if (!w || w.last !== v.last || w.called !== v.called) differences.push(`sequence ${name}: source ${v.last}/${v.called}, target ${w ? `${w.last}/${w.called}` : "missing"}`);
  }
  let rowsChecked = 0;
  for (const [table, keys] of touched ?? []) {
    const def = d.tables.find((x) => x.name === table);
    if (!def || def.key.length === 0 || keys.size === 0) continue;
    rowsChecked += keys.size;
    differences.push(...(await compareRows(t, def, keys)));
  }
  if (differences.length > 0) throw new VerificationError(t.schema, differences);
  return { ...r, rowsChecked, sequences: seqs.size, foreignKeys: fks };
}

/**
 * The rows of `keys` (label -> key values as text) compared on both sides: one query per side for
 * the whole table, both at once (the write window waits for this; two queries per row did not
 * scale with the last drain). A key absent on one side compares as "absent".
 */
async function compareRows(t: CaptureTarget, def: TableDef, keys: Map<string, (string | null)[]>): Promise<string[]> {
  const labels = [...keys.keys()];
  const params = def.key.map((_, j) => labels.map((l) => keys.get(l)![j] ?? null));
  const type = (k: string) => def.columns.find((c) => c.name === k)!.type;
  const sql =
    `SELECT k.ord::int AS i, md5(r::text) AS h FROM unnest(${def.key.map((_, j) => `$${j + 1}::text[]`).join(", ")}) ` +
    `WITH ORDINALITY AS k(${def.key.map((_, j) => `k${j}`).join(", ")}, ord) ` +
    `JOIN ${qn(t.schema, def.name)} r ON ${def.key.map((k, j) => `r.${qi(k)} = k.k${j}::${type(k)}`).join(" AND ")}`;
  const side = async (c: pg.ClientBase) => new Map((await c.query<{ i: number; h: string }>(sql, params)).rows.map((r) => [r.i - 1, r.h]));
  const [a, b] = await Promise.all([side(t.cell), side(t.dedicated)]);
  const out: string[] = [];
  labels.forEach((label, i) => {
    const x = a.get(i) ?? "absent";
    const y = b.get(i) ?? "absent";
    if (x !== y) out.push(`table ${def.name}, row ${label}: source ${x}, target ${y}`);
  });
  return out;
}

function withoutForeignKeys(d: SchemaDef): SchemaDef {
  return { ...d, tables: d.tables.map((x) => ({ ...x, constraints: x.constraints.filter((k) => k.type !== "f") })) };
}

/** Adds the source's foreign keys the copy lacks, NOT VALID (enforced from now on, existing rows not scanned). */
export async function addForeignKeysNotValid(c: pg.ClientBase, d: SchemaDef): Promise<number> {
  const present = new Set((await readSchema(c, d.schema)).tables.flatMap((x) => x.constraints.filter((k) => k.type === "f").map((k) => `${x.name}.${k.name}`)));
  let added = 0;
  for (const fk of foreignKeyDdl(d)) {
    if (present.has(`${fk.table}.${fk.name}`)) continue;
    await c.query(fk.sql.endsWith(" NOT VALID") ? fk.sql : `${fk.sql} NOT VALID`);
    added += 1;
  }
  return added;
}

/** Validates the foreign keys added NOT VALID (SHARE UPDATE EXCLUSIVE: reads and writes go on). Idempotent. */
export async function validateForeignKeys(c: pg.ClientBase, schema: string): Promise<string[]> {
  const { rows } = await c.query<{ t: string; k: string }>(
    `SELECT cl.relname AS t, co.conname AS k FROM pg_constraint co JOIN pg_class cl ON cl.oid = co.conrelid JOIN pg_namespace n ON n.oid = cl.relnamespace
      WHERE n.nspname = $1 AND co.contype = 'f' AND NOT co.convalidated ORDER BY 1, 2`,
    [schema],
  );
  for (const r of rows) await c.query(`ALTER TABLE ${qn(schema, r.t)} VALIDATE CONSTRAINT ${qi(r.k)}`);
  return rows.map((r) => `${r.t}.${r.k}`);
}
