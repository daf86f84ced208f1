/**
 * The write window of a switch (cutover.switch of the upgrade and of the cell move;
 * docs/lifecycle.md, "When the window fails"): its record in the database the tenant leaves, and
 * the undoing of a window that did not reach its cutover marker.
 *
 * The window opens with one transaction on the source database: a row in
 * `saas_tenancy.switch_window` saying whether the tenant's role had LOGIN, and `ALTER ROLE ...
 * NOLOGIN` when it had. Role changes are transactional in PostgreSQL, so both or neither are
 * committed: a process killed anywhere after it finds on retry exactly what the switch took away.
 *
 * A window ends one of two ways. The marker is committed on the target: from then on the switch
 * only goes forward (the target holds every write; the cell's copy is frozen). Or something fails
 * before the marker (the drain does not reach the cell's position in time, sessions do not end, the
 * bounded check finds a difference, the process dies): `undoWindow` gives LOGIN back (only when
 * the window took it), drops the foreign keys the window added NOT VALID on the target (the stream
 * must apply without them), moves the identity's state back, re-commits phase copying, and deletes
 * the row last. Every part is idempotent, so a kill during the undo is finished by the next
 * attempt, which then opens a new window. Nothing is lost meanwhile: the capture slot keeps every
 * change the cell commits, and the next window drains them.
 */
import type pg from "pg";
import { renameStackInUrn } from "../../../infra/model/handover.ts";
import { pgTenantIdent } from "../../../infra/model/naming.ts";
import { json, ProcessDeath, type JsonObject, type StepContext } from "../engine/engine.ts";
import { schemaOwner } from "../pg/catalog.ts";
import { MARKER_SCHEMA, readMarkers } from "../pg/marker.ts";
import { ensureMember, qi, qn } from "../pg/sql.ts";
import { withSession } from "../pg/sessions.ts";
import { handOver, type Move } from "./handover.ts";

export const WINDOW_TABLE = `${MARKER_SCHEMA}.switch_window`;

export interface WindowKey {
  workflowId: string;
  env: string;
  tenantId: string;
}

/** What a window's row says it did on the source database. */
export interface WindowRecord {
  /** The role had LOGIN when the window opened, and the window revoked it. */
  loginRevoked: boolean;
  openedAt: Date;
}

/**
 * Opens the window on the source database (see the file comment): the record and NOLOGIN in one
 * transaction. The caller then ends the role's sessions (revoking LOGIN stops new ones only).
 */
export async function openWindow(source: pg.ClientBase, k: WindowKey): Promise<WindowRecord> {
  const role = pgTenantIdent(k.tenantId);
  await source.query("BEGIN");
  try {
    await source.query(`CREATE SCHEMA IF NOT EXISTS ${MARKER_SCHEMA}`);
    await source.query(
      `CREATE TABLE IF NOT EXISTS ${WINDOW_TABLE} (
         workflow_id uuid NOT NULL, env text NOT NULL, tenant_id text NOT NULL, login_revoked boolean NOT NULL,
         opened_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (workflow_id, env))`,
    );
    const { rows } = await source.query<{ login: boolean }>("SELECT rolcanlogin AS login FROM pg_roles WHERE rolname = $1", [role]);
    if (!rows[0]) throw new Error(`role ${role} does not exist on the database the tenant leaves; the window was not opened`);
    const loginRevoked = rows[0].login;
    const ins = await source.query<{ opened_at: Date }>(
      `INSERT INTO ${WINDOW_TABLE} (workflow_id, env, tenant_id, login_revoked) VALUES ($1, $2, $3, $4) RETURNING opened_at`,
      [k.workflowId, k.env, k.tenantId, loginRevoked],
    );
    if (loginRevoked) await source.query(`ALTER ROLE ${qi(role)} NOLOGIN`);
    await source.query("COMMIT");
    return { loginRevoked, openedAt: ins.rows[0]!.opened_at };
  } catch (err) {
    await source.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}

/** The window's row, when the window is open (opened and neither marked nor undone). */
export async function windowRecord(source: pg.ClientBase, workflowId: string, env: string): Promise<WindowRecord | undefined> {
  const { rows: t } = await source.query<{ t: string | null }>("SELECT to_regclass($1)::text AS t", [WINDOW_TABLE]);
  if (!t[0]?.t) return undefined;
  const { rows } = await source.query<{ login_revoked: boolean; opened_at: Date }>(
    `SELECT login_revoked, opened_at FROM ${WINDOW_TABLE} WHERE workflow_id = $1 AND env = $2`,
    [workflowId, env],
  );
  return rows[0] ? { loginRevoked: rows[0].login_revoked, openedAt: rows[0].opened_at } : undefined;
}

/** Forgets the window (after its marker, or once it is undone). Idempotent. */
export async function closeWindow(source: pg.ClientBase, workflowId: string, env: string): Promise<void> {
  const { rows: t } = await source.query<{ t: string | null }>("SELECT to_regclass($1)::text AS t", [WINDOW_TABLE]);
  if (t[0]?.t) await source.query(`DELETE FROM ${WINDOW_TABLE} WHERE workflow_id = $1 AND env = $2`, [workflowId, env]);
}

/** One env of a switch: the database the tenant leaves (its role, the window's row) and the one it goes to (the marker). */
export interface SwitchSide {
  env: string;
  source: pg.ClientConfig;
  target: pg.ClientConfig;
  /** The source for people: `cell use1-01 (prod)`. */
  sourceName: string;
}

export interface SwitchPlan {
  tenantId: string;
  /** Every env the workflow switches (a marker in any of them keeps the hand-over and the phase). */
  sides: readonly SwitchSide[];
  /** What the switch hands over before the window; undone in reverse. */
  handovers: readonly Move[];
  /** Commits phase copying when the file says cutover (idempotent); the commit, or undefined when there was nothing to change. */
  recommitCopying(): Promise<string | undefined>;
}

/** Whether this workflow's marker for `env` is committed on the target. */
export async function marked(ctx: StepContext, side: SwitchSide, tenantId: string): Promise<boolean> {
  const markers = await withSession(side.target, (c) => readMarkers(c, tenantId));
  return markers.some((m) => m.workflowId === ctx.workflow.id && m.env === side.env);
}

/** The envs whose window is open: a row on the source and no marker on the target (a process died inside it). */
export async function openWindows(ctx: StepContext, plan: SwitchPlan): Promise<SwitchSide[]> {
  const open: SwitchSide[] = [];
  for (const side of plan.sides) {
    const rec = await withSession(side.source, (c) => windowRecord(c, ctx.workflow.id, side.env));
    if (rec && !(await marked(ctx, side, plan.tenantId))) open.push(side);
  }
  return open;
}

/** Drops the foreign keys a window added NOT VALID on the target (the stream applies without them; the next window adds them again). */
async function dropWindowForeignKeys(target: pg.ClientBase, schema: string): Promise<string[]> {
  const { rows } = await target.query<{ t: string; k: string }>(
    `SELECT cl.relname AS t, co.conname AS k FROM pg_constraint co JOIN pg_class cl ON cl.oid = co.conrelid JOIN pg_namespace n ON n.oid = cl.relnamespace
      WHERE n.nspname = $1 AND co.contype = 'f' AND NOT co.convalidated ORDER BY 1, 2`,
    [schema],
  );
  if (rows.length === 0) return [];
  await ensureMember(target, (await schemaOwner(target, schema)) ?? schema);
  for (const r of rows) await target.query(`ALTER TABLE ${qn(schema, r.t)} DROP CONSTRAINT IF EXISTS ${qi(r.k)}`);
  return rows.map((r) => `${r.t}.${r.k}`);
}

/**
 * Undoes the window of each env in `failed` that has not reached its marker (see the file
 * comment), in an order a kill at any point repeats safely: LOGIN back first (the tenant writes to
 * its cell again at once), foreign keys added by the window dropped, then, when no env of the
 * workflow has its marker, the identity's state moved back and phase copying re-committed, and the
 * window's row deleted last. With an env already switched (an upgrade of several envs), the
 * hand-over and the phase stay: that env is live on its target.
 */
export async function undoWindow(ctx: StepContext, plan: SwitchPlan, failed: readonly SwitchSide[]): Promise<JsonObject> {
  const schema = pgTenantIdent(plan.tenantId);
  const undone: SwitchSide[] = [];
  const loginRestored: string[] = [];
  const foreignKeysDropped: Record<string, string[]> = {};
  for (const side of failed) {
    if (await marked(ctx, side, plan.tenantId)) continue;
    undone.push(side);
    const rec = await withSession(side.source, (c) => windowRecord(c, ctx.workflow.id, side.env));
    if (rec?.loginRevoked) {
      await withSession(side.source, (c) => c.query(`ALTER ROLE ${qi(schema)} LOGIN`));
      loginRestored.push(side.env);
    }
    await ctx.point?.("window.undo.login");
    foreignKeysDropped[side.env] = await withSession(side.target, (c) => dropWindowForeignKeys(c, schema));
  }
  let anyMarked = false;
  for (const side of plan.sides) if (await marked(ctx, side, plan.tenantId)) anyMarked = true;
  let handedBack: JsonObject | null = null;
  let commit: string | null = null;
  if (!anyMarked && undone.length > 0) {
    const back = plan.handovers.map((m) => ({ source: m.dest, dest: m.source, urns: m.urns.map((u) => renameStackInUrn(u, m.dest)), all: m.all }));
    handedBack = await handOver(ctx, back, `the switch's window failed: hand the identity of ${plan.tenantId} back`);
    await ctx.point?.("window.undo.handedBack");
    commit = (await plan.recommitCopying()) ?? null;
    await ctx.point?.("window.undo.recommitted");
  }
  for (const side of undone) await withSession(side.source, (c) => closeWindow(c, ctx.workflow.id, side.env));
  return json({ envs: undone.map((s) => s.env), loginRestored, foreignKeysDropped, handedBack, phaseCopyingCommit: commit, keptForSwitchedEnv: anyMarked });
}

/**
 * After `cause` failed the window of `side`: undoes it (unless its marker is committed: then the
 * retry goes forward) and returns the error the step fails with, which says what happened, what
 * was undone and what the retry does, and whether the window is undone (then the holds on the
 * stacks may go). A ProcessDeath (a test standing for kill -9) is returned as it is, with nothing
 * undone: the next attempt finds the window open and undoes it then.
 */
export async function windowFailed(ctx: StepContext, plan: SwitchPlan, side: SwitchSide, cause: unknown): Promise<{ error: unknown; undone: boolean }> {
  if (cause instanceof ProcessDeath) return { error: cause, undone: false };
  const why = cause instanceof Error ? cause.message : String(cause);
  if (await marked(ctx, side, plan.tenantId).catch(() => false)) return { error: cause, undone: false };
  let undo: JsonObject;
  try {
    undo = await undoWindow(ctx, plan, [side]);
  } catch (undoErr) {
    if (undoErr instanceof ProcessDeath) return { error: undoErr, undone: false };
    return { undone: false, error: new Error(
      `the switch's write window for ${side.env} failed (${why}) and undoing it failed too (${(undoErr as Error).message}); ` +
        `the tenant may be unable to log in to ${side.sourceName} until the retry, which undoes the window first and then opens a new one`,
    ) };
  }
  const kept = undo.keptForSwitchedEnv === true;
  const message =
    `the switch's write window for ${side.env} failed before its marker: ${why}. Undone: ` +
    `${(undo.loginRestored as string[]).length > 0 ? `LOGIN given back on ${side.sourceName}` : "LOGIN was not taken by this window (left as it was)"}, ` +
    (kept
      ? "the identity and phase cutover kept (another env is already switched); "
      : "the identity's state moved back and phase copying re-committed; ") +
    "the connection document still names the source, so the tenant writes there again and the change stream keeps every write. The retry catches up and opens a new window";
  ctx.log({ env: side.env, cause: why, undo }, message);
  return { error: new Error(message), undone: true };
}
