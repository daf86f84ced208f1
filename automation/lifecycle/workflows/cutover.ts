/**
 * The upgrade's copy and cutover steps on change capture (docs/lifecycle.md, "Change capture and
 * the write window"):
 *
 *   copy.data        per env: drops orphan capture slots on the cell, then publication + slot
 *                    with an exported snapshot, the bulk copy in that snapshot (verified), and the
 *                    stream applied up to now. Runs on the tenant's region's runner, which reaches
 *                    both databases; the dedicated database never connects to the cell.
 *   cutover.window   applies the stream again (so the slot never holds much WAL), then waits for
 *                    `cutoverNotBefore`, waking every CATCH_UP_INTERVAL_MS to apply what came.
 *   cutover.switch   data plane only, no stack run: catch up; hand the identity's state over
 *                    (`pulumi state move`, no cloud change) and commit phase cutover; then the
 *                    window (switchWindow.ts: recorded on the cell with the LOGIN it takes, undone
 *                    when anything fails before the marker: LOGIN back, state back, phase
 *                    copying): the cell role loses LOGIN and its sessions end (SQL), the stream is
 *                    drained to a fence written after that, sequences set, foreign keys added NOT
 *                    VALID, a check bounded by the drained changes, the cutover marker, and the
 *                    connection document's new version (Secrets Manager) naming the dedicated
 *                    database: the application's next connection goes there. The slot is dropped.
 *   cutover.connect  the `up`s, after the window: the cell stacks (LOGIN off and the DNS name to
 *                    the dedicated zone, both already what the committed file declares) and the
 *                    dedicated stacks (they claim the moved identity; the document they render is
 *                    the one the switch wrote). Then the foreign keys are validated (no write lock).
 */
import type pg from "pg";
import { dedicatedStackName, cellStackName, databaseSecretName, pgTenantIdent } from "../../../infra/model/naming.ts";
import { identityHandoverUrns } from "../../../infra/model/handover.ts";
import type { Tenant } from "../../../infra/model/schema.ts";
import { done, json, OPEN_STATES, PermanentError, type JsonObject, type StepContext } from "../engine/engine.ts";
import { schemaOwner } from "../pg/catalog.ts";
import { catchUp, finishCapture, startCapture, stopCapture, validateForeignKeys, type CaptureTarget } from "../pg/cdc/capture.ts";
import { dropCapture, dropOrphanSlots, resetIdentity, slotName } from "../pg/cdc/slot.ts";
import { readMarkers, writeMarker } from "../pg/marker.ts";
import { ensureMember } from "../pg/sql.ts";
import { expectLogin, openSession, terminateSessions, withSession } from "../pg/sessions.ts";
import { closeWindow, marked, openWindow, openWindows, undoWindow, windowFailed, type SwitchPlan, type SwitchSide } from "./switchWindow.ts";
import { cellStacks, cellsOf, dedicatedStacks, envsOf, upStacks } from "./stacks.ts";
import { requireTenant } from "./tenantFile.ts";
import { untilCutover } from "./cutoverTime.ts";
import { handOver } from "./handover.ts";
import { migrating, params, phaseIndex, setPhase, UpgradeParamsSchema } from "./migration.ts";

/** How long one catch-up may stream before the step gives up (and is retried): a backlog of hours of writes. */
export const CATCH_UP_TIMEOUT_MS = 60 * 60_000;
export { CATCH_UP_INTERVAL_MS } from "./cutoverTime.ts";

/** Opens the capture's sessions for one env (master user, member of the schema's owner on both sides). */
async function withCapture<T>(ctx: StepContext, tenantId: string, env: string, cell: string, fn: (t: CaptureTarget) => Promise<T>): Promise<T> {
  return withCaptureBetween(ctx, tenantId, env, await ctx.ports.databases.cell(env, cell), await ctx.ports.databases.dedicated(tenantId, env), fn);
}

/**
 * The capture's sessions between any two databases of the tenant's region (an upgrade: its cell
 * and its dedicated database; a cell move: the cell it leaves and the cell it moves to).
 */
export async function withCaptureBetween<T>(ctx: StepContext, tenantId: string, env: string, replication: pg.ClientConfig, target: pg.ClientConfig, fn: (t: CaptureTarget) => Promise<T>): Promise<T> {
  const schema = pgTenantIdent(tenantId);
  // A cancel of an interruptible step (copy.data, cutover.window) ends both sessions on the servers.
  const src = await openSession(replication, ctx.signal);
  try {
    const dst = await openSession(target, ctx.signal);
    try {
      const owner = await schemaOwner(dst, schema);
      if (!owner) throw new Error(`the dedicated database of ${tenantId} (${env}) has no schema ${schema}`);
      await ensureMember(src, schema);
      await ensureMember(dst, owner);
      return await fn({ cell: src, dedicated: dst, replication, schema, owner, slot: slotName(ctx.workflow.id, env), workflowId: ctx.workflow.id, env, tenant: tenantId });
    } finally {
      await dst.end().catch(() => undefined);
    }
  } finally {
    await src.end().catch(() => undefined);
  }
}

/** Whether the workflow is in or past its `copy.data` step (where its capture slot is made) or has completed it. */
export function reachedCopy(ctx: StepContext, steps: readonly { name: string }[]): boolean {
  if (ctx.outputs.has(copyData.name)) return true;
  const at = steps.findIndex((s) => s.name === ctx.workflow.currentStep);
  return at >= 0 && at >= steps.findIndex((s) => s.name === copyData.name);
}

export async function isOpen(ctx: StepContext, workflowId: string): Promise<boolean> {
  const w = await ctx.workflowById(workflowId);
  return w !== undefined && OPEN_STATES.includes(w.state);
}

export async function assertNotCutOver(ctx: StepContext, t: CaptureTarget, env: string): Promise<void> {
  const markers = await readMarkers(t.dedicated, t.tenant);
  const other = markers.find((m) => m.workflowId !== ctx.workflow.id);
  if (other) {
    throw new PermanentError(`the dedicated database of ${t.tenant} (${env}) was cut over by workflow ${other.workflowId} at ${other.completedAt.toISOString()}; it is live and is never copied over`);
  }
}

export const copyData = {
  name: "copy.data",
  // A large tenant's copy may run for hours: an operator's cancel stops it (docs/lifecycle.md, "Cancelling a workflow").
  interruptible: true,
  async run(ctx: StepContext) {
    const tf = await requireTenant(ctx);
    const { tenant, migration } = migrating(tf, "copy.data");
    if (migration.phase !== "copying") throw new PermanentError(`copy.data runs in phase copying, the file says ${migration.phase}`);
    const out: JsonObject = {};
    for (const env of envsOf(tenant)) {
      const cell = migration.from[env]!;
      out[env] = await withCapture(ctx, tenant.id, env, cell, async (t) => {
        await assertNotCutOver(ctx, t, env);
        const orphans = await dropOrphanSlots(t.cell, (id) => isOpen(ctx, id));
        if (orphans.length > 0) ctx.log({ env, cell, orphans }, "dropped change-capture slots of workflows no longer open");
        const started = await startCapture(t, ctx.config.cutoverTimeoutMs, ctx.signal);
        const c = await catchUp(t, CATCH_UP_TIMEOUT_MS, ctx.signal);
        ctx.log({ env, cell, rows: started.rowsCopied, applied: c.appliedLsn, lagBytes: c.lagBytes }, `copied ${t.schema} in the slot's snapshot, verified it, and applied the changes since`);
        return json({
          cell, slot: t.slot, resumed: started.resumed, consistentPoint: started.consistentPoint, rowsCopied: started.rowsCopied, tables: started.tables,
          identityFull: started.identityFull, appliedLsn: c.appliedLsn, transactions: c.transactions, lagBytes: c.lagBytes, orphansDropped: orphans,
        });
      });
    }
    return done(out);
  },
};

export const cutoverWindow = {
  name: "cutover.window",
  interruptible: true,
  async run(ctx: StepContext) {
    const p = params(UpgradeParamsSchema, ctx);
    const { tenant, migration } = migrating(await requireTenant(ctx), "cutover.window");
    const out: JsonObject = {};
    for (const env of envsOf(tenant)) {
      out[env] = await withCapture(ctx, tenant.id, env, migration.from[env]!, async (t) => {
        await startCapture(t, ctx.config.cutoverTimeoutMs, ctx.signal);
        const c = await catchUp(t, CATCH_UP_TIMEOUT_MS, ctx.signal);
        return json({ appliedLsn: c.appliedLsn, transactions: c.transactions, lagBytes: c.lagBytes });
      });
    }
    return untilCutover(ctx, p.cutoverNotBefore) ?? done(out);
  },
};

/**
 * The connection document, rewritten to name the dedicated database (host, port, database); everything
 * else kept. Written as a version labelled AWSPENDING, then promoted to AWSCURRENT. The version id is
 * the workflow's and env's, so a retry after a crash rewrites the same text under the same id
 * (nothing new) and promoting a version already current changes nothing.
 */
async function pointDocument(ctx: StepContext, tenant: Tenant, env: string, appName: string): Promise<JsonObject> {
  return pointDocumentAt(ctx, tenant, env, appName, await ctx.ports.databases.dedicated(tenant.id, env));
}

/** pointDocument for any database (a cell move points it at the cell moved to). */
export async function pointDocumentAt(ctx: StepContext, tenant: Tenant, env: string, appName: string, ded: pg.ClientConfig): Promise<JsonObject> {
  const name = databaseSecretName(appName, env, tenant.id);
  const current = await ctx.ports.secrets.current(name, tenant.region);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(current.secretString) as Record<string, unknown>;
  } catch {
    throw new PermanentError(`the connection document ${name} (${tenant.region}) version ${current.versionId} is not JSON`);
  }
  const next = JSON.stringify({ ...doc, host: ded.host, port: Number(ded.port), database: ded.database });
  const versionId = `${ctx.workflow.id}-${env}`;
  await ctx.ports.secrets.putPending(name, tenant.region, versionId, next);
  const { previousVersionId } = await ctx.ports.secrets.promote(name, tenant.region, versionId);
  return json({ secret: name, versionId, previousVersionId, host: ded.host ?? null, database: ded.database ?? null });
}

/** The upgrade's switch as switchWindow.ts sees it: each env's cell -> dedicated database, the identity hand-over, phase copying. */
async function upgradeSwitchPlan(ctx: StepContext, tenant: Tenant, from: Partial<Record<string, string>>): Promise<SwitchPlan> {
  const sides: SwitchSide[] = [];
  for (const env of envsOf(tenant)) {
    sides.push({ env, source: await ctx.ports.databases.cell(env, from[env]!), target: await ctx.ports.databases.dedicated(tenant.id, env), sourceName: `cell ${from[env]!} (${env})` });
  }
  return {
    tenantId: tenant.id,
    sides,
    handovers: envsOf(tenant).map((env) => ({ source: cellStackName(env, from[env]!), dest: dedicatedStackName(tenant.id, env), urns: identityHandoverUrns(tenant, env, from[env]!), all: true })),
    recommitCopying: async () => {
      const tf = await requireTenant(ctx);
      return migrating(tf, "cutover.switch").migration.phase === "cutover" ? setPhase(ctx, tf, "copying") : undefined;
    },
  };
}

export const cutoverSwitch = {
  name: "cutover.switch",
  async run(ctx: StepContext) {
    const first = migrating(await requireTenant(ctx), "cutover.switch");
    if (phaseIndex(first.migration.phase) < phaseIndex("copying")) throw new PermanentError(`cutover.switch: the copy has not run (phase ${first.migration.phase})`);
    const plan = await upgradeSwitchPlan(ctx, first.tenant, first.migration.from);
    const results: JsonObject = {};
    // No update, destroy or drift check of the tenant's stacks from here until the window ends or is
    // undone (automation/runs/holds.ts): a run arriving meanwhile waits and starts after.
    const held = [...cellStacks(cellsOf(first.tenant)), ...dedicatedStacks(first.tenant.id, envsOf(first.tenant))];
    const holding = ctx.runContext("the switch's write window: no stack run until it ends or is undone");
    await ctx.ports.runner.hold(held, holding);
    // A window an interrupted attempt left open (a row, no marker) is undone first: a clean window follows.
    const leftOpen = await openWindows(ctx, plan);
    if (leftOpen.length > 0) {
      results.undone = await undoWindow(ctx, plan, leftOpen);
      ctx.log({ undone: results.undone }, "a write window left open by an interrupted attempt was undone (LOGIN back, state and phase as before it); a new window opens now");
    }
    const tf = await requireTenant(ctx);
    const { tenant, migration } = migrating(tf, "cutover.switch");
    const id = tenant.id;
    const timeout = ctx.config.cutoverTimeoutMs;
    const appName = tf.platform.appName;
    const pending: string[] = [];
    for (const env of envsOf(tenant)) {
      if (await marked(ctx, plan.sides.find((x) => x.env === env)!, id)) {
        // Switched before a crash: finish what may not have happened after the marker.
        const document = await pointDocument(ctx, tenant, env, appName);
        await withCapture(ctx, id, env, migration.from[env]!, async (t) => {
          await closeWindow(t.cell, ctx.workflow.id, env);
          await stopCapture(t);
        });
        results[env] = json({ resumed: true, document });
      } else pending.push(env);
    }
    if (pending.length === 0) {
      await ctx.ports.runner.release(holding);
      return done(results);
    }

    // 1. Before the window: the stream caught up, so the drain inside it is seconds of changes.
    for (const env of pending) {
      await withCapture(ctx, id, env, migration.from[env]!, async (t) => {
        await startCapture(t, timeout);
        await catchUp(t, CATCH_UP_TIMEOUT_MS, ctx.signal);
      });
    }
    // 2. The identity's state changes hands before the commit that makes the cell stop declaring it (no cloud change).
    results.handover = await handOver(ctx, plan.handovers, `hand the identity of ${id} over to its dedicated stack at cutover`);
    if (migration.phase === "copying") await setPhase(ctx, tf, "cutover");

    // 3. The window, per env: nothing in it runs a stack. Anything failing before the marker undoes it (switchWindow.ts).
    for (const env of pending) {
      const side = plan.sides.find((x) => x.env === env)!;
      results[env] = await withCapture(ctx, id, env, migration.from[env]!, async (t) => {
        const started = Date.now();
        let terminated: number;
        let fin: Awaited<ReturnType<typeof finishCapture>>;
        try {
          await openWindow(t.cell, { workflowId: ctx.workflow.id, env, tenantId: id });
          await ctx.point?.("window.opened");
          terminated = await terminateSessions(t.cell, id, timeout);
          await ctx.point?.("window.sessionsEnded");
          // An apply blocked on a lock would hold the window open past its timeout: every statement of the drain is bounded too.
          await t.dedicated.query(`SET statement_timeout = ${Math.max(1, Math.floor(timeout))}`);
          fin = await finishCapture(t, timeout, ctx.signal);
          await ctx.point?.("window.drained");
          await t.dedicated.query("BEGIN");
          await writeMarker(t.dedicated, { workflowId: ctx.workflow.id, tenantId: id, env, completedAt: ctx.ports.clock.now(), tables: [] });
          await t.dedicated.query("COMMIT");
        } catch (err) {
          await t.dedicated.query("ROLLBACK").catch(() => undefined);
          const failed = await windowFailed(ctx, plan, side, err);
          // Undone: the stacks may run again (the retry holds them anew). Otherwise the hold stays for the retry.
          if (failed.undone) await ctx.ports.runner.release(holding);
          throw failed.error;
        }
        await ctx.point?.("window.marked");
        await closeWindow(t.cell, ctx.workflow.id, env);
        const document = await pointDocument(ctx, tenant, env, appName);
        const ms = Date.now() - started;
        await ctx.point?.("window.pointed");
        await stopCapture(t);
        ctx.log({ env, terminated, ms, drained: fin.transactions, rowsChecked: fin.rowsChecked }, "switched: the connection document names the dedicated database");
        return json({
          terminatedSessions: terminated, windowMs: ms, drainedTransactions: fin.transactions, rowsChecked: fin.rowsChecked,
          sequences: fin.sequences, foreignKeysNotValid: fin.foreignKeys, appliedLsn: fin.appliedLsn, fenceLsn: fin.fenceLsn, document,
        });
      });
    }
    await ctx.ports.runner.release(holding);
    results.held = held;
    return done(results);
  },
};

export const cutoverConnect = {
  name: "cutover.connect",
  async run(ctx: StepContext) {
    const { tenant, migration } = migrating(await requireTenant(ctx), "cutover.connect");
    if (phaseIndex(migration.phase) < phaseIndex("cutover")) throw new PermanentError(`cutover.connect runs after cutover, the file says ${migration.phase}`);
    const schema = pgTenantIdent(tenant.id);
    const runs = await upStacks(ctx, cellStacks(cellsOf(tenant)), "after the switch: the cell role stays without LOGIN, the cell DNS name points to the dedicated zone");
    for (const env of envsOf(tenant)) {
      await withSession(await ctx.ports.databases.cell(env, migration.from[env]!), (c) => expectLogin(c, tenant.id, false, cellStackName(env, migration.from[env]!)));
    }
    runs.push(...(await upStacks(ctx, dedicatedStacks(tenant.id, envsOf(tenant)), "after the switch: the dedicated stack claims the tenant's identity; its connection document is the one the switch wrote")));
    const validated: JsonObject = {};
    for (const env of envsOf(tenant)) {
      validated[env] = await withSession(await ctx.ports.databases.dedicated(tenant.id, env), async (c) => {
        await expectLogin(c, tenant.id, true, dedicatedStackName(tenant.id, env));
        await ensureMember(c, (await schemaOwner(c, schema)) ?? schema);
        return validateForeignKeys(c, schema);
      });
    }
    return done({ runs, validatedForeignKeys: validated });
  },
};

/**
 * When the upgrade fails for good: a write window still open (its undo failed as well) is undone,
 * so the tenant is not left without LOGIN. Best effort: the engine logs what fails.
 */
export async function undoLeftWindows(ctx: StepContext): Promise<JsonObject | undefined> {
  const tf = await requireTenant(ctx);
  if (tf.tenant.deployment !== "dedicated" || !tf.tenant.migration || phaseIndex(tf.tenant.migration.phase) < phaseIndex("copying")) return undefined;
  const plan = await upgradeSwitchPlan(ctx, tf.tenant, tf.tenant.migration.from);
  const open = await openWindows(ctx, plan);
  return open.length > 0 ? undoWindow(ctx, plan, open) : undefined;
}

/**
 * Drops the change-capture slots of an upgrade (a rollback, or the upgrade failing for good) on
 * its cells, and puts the tables the capture switched to REPLICA IDENTITY FULL back. Idempotent.
 */
export async function dropCaptures(ctx: StepContext, upgradeId: string, placement: Record<string, string>): Promise<JsonObject> {
  const copied = (await ctx.stepsOf(upgradeId)).find((s) => s.step === "copy.data")?.output ?? {};
  const schema = pgTenantIdent(ctx.workflow.tenantId);
  const out: JsonObject = {};
  for (const [env, cell] of Object.entries(placement)) {
    const full = (copied[env] as { identityFull?: string[] } | undefined)?.identityFull ?? [];
    out[env] = await withSession(await ctx.ports.databases.cell(env, cell), async (c) => {
      const r = await dropCapture(c, slotName(upgradeId, env));
      if (full.length > 0) {
        await ensureMember(c, schema);
        await resetIdentity(c, schema, full);
      }
      return json({ ...r, identityReset: full });
    });
  }
  return out;
}
