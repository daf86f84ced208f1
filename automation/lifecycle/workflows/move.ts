/**
 * Cell move: a pooled tenant's environment from one cell to another of the same env and region
 * (docs/lifecycle.md, "Cell moves"; infra/model/cellMove.ts says what each cell renders when).
 * The same change capture as the upgrade (workflows/cutover.ts), between two cell databases.
 *
 *   move.files        placement.<env> = destination, move { phase provisioning, from, workflowId,
 *                     startedAt }, environments.<env>.movedAt; one commit (the only placement
 *                     change `validate --base` accepts). The tenant keeps serving from its cell.
 *   move.stacks       `up` of the cell left (its identity becomes retainOnDelete), then of the
 *                     cell moved to (the tenant's role without LOGIN and its empty schema).
 *   copy.files        phase copying.
 *   copy.data         orphan slots dropped; publication + slot on the cell left, bulk copy in the
 *                     slot's snapshot (verified), the stream applied.
 *   cutover.window    the stream applied again, then a wait for `cutoverNotBefore` when the request
 *                     set one (cutoverTime.ts), waking every 15 minutes to apply what came.
 *   cutover.switch    data plane only: catch up; the identity and DNS record change stacks
 *                     (`pulumi state move`) and phase cutover is committed; then the window: LOGIN
 *                     off and sessions ended in the cell left, the stream drained to a fence,
 *                     sequences, foreign keys NOT VALID, a bounded check, the marker, LOGIN on in
 *                     the cell moved to, the connection document's new version; slot dropped.
 *                     The window is recorded on the cell left and undone when anything fails
 *                     before the marker (switchWindow.ts): LOGIN back, state back, phase copying.
 *   cutover.connect   `up` of both cells (they declare what the switch did), LOGIN checked on
 *                     both sides, foreign keys validated.
 *   cleanup.schedule  phase cleanup, retainUntil = now + retention; cleanup.wait waits for it.
 *   cleanup.dump      final dump of the schema in the cell left into that cell's bucket (recorded).
 *   cleanup.empty     refuses without that recorded dump; empties the schema if it still matches it.
 *   cleanup.files     the move block removed; cleanup.stacks: `up` of the cell left (role and
 *                     schema dropped), checked.
 *
 * Its parameters, phases and switch plan are in moveState.ts; what a move that ends without
 * finishing releases (failure, cancel) is in moveRelease.ts.
 */
import { requireFleet } from "../../../infra/model/fleet.ts";
import { cellStackName, pgTenantIdent } from "../../../infra/model/naming.ts";
import { EditRefusedError, editTenantText, isoSeconds, moveStartEdit, tenantPath } from "../../../infra/model/fleetFiles/index.ts";
import { addDays } from "../config.ts";
import { done, json, PermanentError, waitUntil, type StepContext, type WorkflowDef } from "../engine/engine.ts";
import { schemaExists, schemaOwner } from "../pg/catalog.ts";
import { catchUp, finishCapture, startCapture, stopCapture, validateForeignKeys } from "../pg/cdc/capture.ts";
import { dropOrphanSlots } from "../pg/cdc/slot.ts";
import { writeMarker } from "../pg/marker.ts";
import { ensureMember, qi } from "../pg/sql.ts";
import { expectLogin, terminateSessions, withSession } from "../pg/sessions.ts";
import { dumpToCellBucket, emptyCellSchema, requireBackups } from "./backup.ts";
import { CATCH_UP_TIMEOUT_MS, isOpen, pointDocumentAt } from "./cutover.ts";
import { untilCutover } from "./cutoverTime.ts";
import { handOver } from "./handover.ts";
import { cancelMove, releaseMove } from "./moveRelease.ts";
import { MoveParamsSchema, moveSwitchPlan, moving, phaseIndex, setMovePhase, withMoveCapture } from "./moveState.ts";
import { closeWindow, marked, openWindow, openWindows, undoWindow, windowFailed } from "./switchWindow.ts";
import { FILE_COMMIT, STACK_RUN } from "./policies.ts";
import { upStacks } from "./stacks.ts";
import { commitFiles, requireTenant } from "./tenantFile.ts";
import { params } from "./migration.ts";

// The move's parameters, phases and switch plan (moveState.ts); callers keep importing the schema from here.
export { MoveParamsSchema, type MoveParams } from "./moveState.ts";

const moveFiles = {
  name: "move.files",
  policy: FILE_COMMIT,
  async run(ctx: StepContext) {
    const p = params(MoveParamsSchema, ctx);
    const tf = await requireTenant(ctx);
    const t = tf.tenant;
    // Done before a crash (the commit landed, its step row did not): the file is the record.
    if (t.deployment === "pooled" && t.move?.workflowId === ctx.workflow.id) return done({ commit: null });
    if (t.deployment === "pooled" && t.placement[p.env] !== p.from) {
      throw new PermanentError(`tenant ${t.id} is in cell ${t.placement[p.env] ?? "none"} (${p.env}), but this move was requested from ${p.from}`);
    }
    let files;
    try {
      files = moveStartEdit(requireFleet({ projectDir: ctx.ports.repo.root }), tf.text, t, p.env, p.to, ctx.workflow.id, ctx.ports.clock.now());
    } catch (err) {
      if (err instanceof EditRefusedError) throw new PermanentError(`move of ${t.id} to ${p.to} refused: ${err.message}`);
      throw err;
    }
    const commit = await commitFiles(ctx, `move ${t.id} (${p.env}) from ${p.from} to ${p.to}: start (workflow ${ctx.workflow.id})`, files);
    return done({ commit: commit ?? null });
  },
};

const moveStacks = {
  name: "move.stacks",
  policy: STACK_RUN,
  async run(ctx: StepContext) {
    const p = params(MoveParamsSchema, ctx);
    moving(await requireTenant(ctx), ctx, "move.stacks");
    const runs = await upStacks(ctx, [cellStackName(p.env, p.from)], "the moving tenant's identity is kept on delete; it keeps serving from this cell");
    runs.push(...(await upStacks(ctx, [cellStackName(p.env, p.to)], "the moving tenant's role (no LOGIN) and empty schema in the cell it moves to")));
    const schema = pgTenantIdent(ctx.workflow.tenantId);
    await withSession(await ctx.ports.databases.cell(p.env, p.to), async (c) => {
      if (!(await schemaExists(c, schema))) throw new Error(`${cellStackName(p.env, p.to)} was updated but its database has no schema ${schema}; check the stack's last run`);
      await expectLogin(c, ctx.workflow.tenantId, false, cellStackName(p.env, p.to));
    });
    return done({ runs });
  },
};

const copyFiles = {
  name: "copy.files",
  policy: FILE_COMMIT,
  async run(ctx: StepContext) {
    const tf = await requireTenant(ctx);
    const t = moving(tf, ctx, "copy.files");
    if (phaseIndex(t.move.phase) > phaseIndex("copying")) throw new PermanentError(`copy.files: the move is already in phase ${t.move.phase}`);
    const commit = t.move.phase === "copying" ? undefined : await setMovePhase(ctx, tf, "copying");
    return done({ commit: commit ?? null });
  },
};

const copyData = {
  name: "copy.data",
  interruptible: true,
  async run(ctx: StepContext) {
    const p = params(MoveParamsSchema, ctx);
    const t = moving(await requireTenant(ctx), ctx, "copy.data");
    if (t.move.phase !== "copying") throw new PermanentError(`copy.data runs in phase copying, the file says ${t.move.phase}`);
    const out = await withMoveCapture(ctx, async (c) => {
      // No marker check as in the upgrade: markers of earlier moves into this cell may exist; what
      // matters is that nothing used the schema here, and move.stacks checked its role has no LOGIN.
      const orphans = await dropOrphanSlots(c.cell, (id) => isOpen(ctx, id));
      if (orphans.length > 0) ctx.log({ env: p.env, cell: p.from, orphans }, "dropped change-capture slots of workflows no longer open");
      const started = await startCapture(c, ctx.config.cutoverTimeoutMs, ctx.signal);
      const caught = await catchUp(c, CATCH_UP_TIMEOUT_MS, ctx.signal);
      ctx.log({ env: p.env, from: p.from, to: p.to, rows: started.rowsCopied, lagBytes: caught.lagBytes }, `copied ${c.schema} to ${p.to} in the slot's snapshot, verified it, and applied the changes since`);
      return json({
        slot: c.slot, resumed: started.resumed, consistentPoint: started.consistentPoint, rowsCopied: started.rowsCopied, tables: started.tables,
        identityFull: started.identityFull, appliedLsn: caught.appliedLsn, transactions: caught.transactions, lagBytes: caught.lagBytes, orphansDropped: orphans,
      });
    });
    // Keyed by env like the upgrade's, so dropCaptures finds the tables it switched to REPLICA IDENTITY FULL.
    return done({ [p.env]: out });
  },
};

const cutoverWindow = {
  name: "cutover.window",
  interruptible: true,
  async run(ctx: StepContext) {
    const p = params(MoveParamsSchema, ctx);
    moving(await requireTenant(ctx), ctx, "cutover.window");
    const caught = await withMoveCapture(ctx, async (c) => {
      await startCapture(c, ctx.config.cutoverTimeoutMs, ctx.signal);
      return catchUp(c, CATCH_UP_TIMEOUT_MS, ctx.signal);
    });
    return untilCutover(ctx, p.cutoverNotBefore) ?? done({ [p.env]: json({ appliedLsn: caught.appliedLsn, transactions: caught.transactions, lagBytes: caught.lagBytes }) });
  },
};

const cutoverSwitch = {
  name: "cutover.switch",
  async run(ctx: StepContext) {
    const p = params(MoveParamsSchema, ctx);
    const first = moving(await requireTenant(ctx), ctx, "cutover.switch");
    if (phaseIndex(first.move.phase) < phaseIndex("copying")) throw new PermanentError(`cutover.switch: the copy has not run (phase ${first.move.phase})`);
    const plan = await moveSwitchPlan(ctx, first);
    const side = plan.sides[0]!;
    // No update, destroy or drift check of either cell from here until the window ends or is undone
    // (automation/runs/holds.ts): a run arriving meanwhile waits and starts after.
    const held = [cellStackName(p.env, p.from), cellStackName(p.env, p.to)];
    const holding = ctx.runContext("the switch's write window: no stack run until it ends or is undone");
    await ctx.ports.runner.hold(held, holding);
    // A window an interrupted attempt left open (a row, no marker) is undone first: a clean window follows.
    const leftOpen = await openWindows(ctx, plan);
    const undone = leftOpen.length > 0 ? await undoWindow(ctx, plan, leftOpen) : null;
    if (undone) ctx.log({ undone }, "a write window left open by an interrupted attempt was undone (LOGIN back, state and phase as before it); a new window opens now");
    const tf = await requireTenant(ctx);
    const t = moving(tf, ctx, "cutover.switch");
    const id = t.id;
    const timeout = ctx.config.cutoverTimeoutMs;
    const appName = tf.platform.appName;
    const target = side.target;
    if (await marked(ctx, side, id)) {
      // Switched before a crash: finish what may not have happened after the marker.
      await withSession(target, (c) => c.query(`ALTER ROLE ${qi(pgTenantIdent(id))} LOGIN`));
      const document = await pointDocumentAt(ctx, t, p.env, appName, target);
      await withMoveCapture(ctx, async (c) => {
        await closeWindow(c.cell, ctx.workflow.id, p.env);
        await stopCapture(c);
      });
      await ctx.ports.runner.release(holding);
      return done({ resumed: true, document, undone });
    }
    // 1. Before the window: the stream caught up, so the drain inside it is seconds of changes.
    await withMoveCapture(ctx, async (c) => {
      await startCapture(c, timeout);
      await catchUp(c, CATCH_UP_TIMEOUT_MS, ctx.signal);
    });
    // 2. Identity and DNS record change stacks before the commit that makes the cell left stop declaring them.
    const handover = await handOver(ctx, plan.handovers, `hand the identity of ${id} over to ${cellStackName(p.env, p.to)} at the switch`);
    if (t.move.phase === "copying") await setMovePhase(ctx, tf, "cutover");
    // 3. The window: nothing in it runs a stack. Anything failing before the marker undoes it (switchWindow.ts).
    const window = await withMoveCapture(ctx, async (c) => {
      const started = Date.now();
      let terminated: number;
      let fin: Awaited<ReturnType<typeof finishCapture>>;
      try {
        await openWindow(c.cell, { workflowId: ctx.workflow.id, env: p.env, tenantId: id });
        await ctx.point?.("window.opened");
        terminated = await terminateSessions(c.cell, id, timeout);
        await ctx.point?.("window.sessionsEnded");
        // An apply blocked on a lock would hold the window open past its timeout: every statement of the drain is bounded too.
        await c.dedicated.query(`SET statement_timeout = ${Math.max(1, Math.floor(timeout))}`);
        fin = await finishCapture(c, timeout, ctx.signal);
        await ctx.point?.("window.drained");
        await c.dedicated.query("BEGIN");
        await writeMarker(c.dedicated, { workflowId: ctx.workflow.id, tenantId: id, env: p.env, completedAt: ctx.ports.clock.now(), tables: [] });
        await c.dedicated.query("COMMIT");
      } catch (err) {
        await c.dedicated.query("ROLLBACK").catch(() => undefined);
        const failed = await windowFailed(ctx, plan, side, err);
        // Undone: the cells may run again (the retry holds them anew). Otherwise the hold stays for the retry.
        if (failed.undone) await ctx.ports.runner.release(holding);
        throw failed.error;
      }
      await ctx.point?.("window.marked");
      await closeWindow(c.cell, ctx.workflow.id, p.env);
      // The committed file (phase cutover) declares LOGIN here: the next `up` of the cell does the same.
      await c.dedicated.query(`ALTER ROLE ${qi(c.schema)} LOGIN`);
      const document = await pointDocumentAt(ctx, t, p.env, appName, target);
      const ms = Date.now() - started;
      await ctx.point?.("window.pointed");
      await stopCapture(c);
      ctx.log({ env: p.env, terminated, ms, drained: fin.transactions }, `switched: the connection document names cell ${p.to}`);
      return json({
        terminatedSessions: terminated, windowMs: ms, drainedTransactions: fin.transactions, rowsChecked: fin.rowsChecked,
        sequences: fin.sequences, foreignKeysNotValid: fin.foreignKeys, appliedLsn: fin.appliedLsn, fenceLsn: fin.fenceLsn, document,
      });
    });
    await ctx.ports.runner.release(holding);
    return done({ handover, [p.env]: window, undone, held });
  },
};

const cutoverConnect = {
  name: "cutover.connect",
  policy: STACK_RUN,
  async run(ctx: StepContext) {
    const p = params(MoveParamsSchema, ctx);
    const t = moving(await requireTenant(ctx), ctx, "cutover.connect");
    if (phaseIndex(t.move.phase) < phaseIndex("cutover")) throw new PermanentError(`cutover.connect runs after the switch, the file says ${t.move.phase}`);
    const [from, to] = [cellStackName(p.env, p.from), cellStackName(p.env, p.to)];
    const runs = await upStacks(ctx, [from], "after the switch: the tenant's role stays without LOGIN here; its identity has left");
    await withSession(await ctx.ports.databases.cell(p.env, p.from), (c) => expectLogin(c, t.id, false, from));
    runs.push(...(await upStacks(ctx, [to], "after the switch: this cell claims the tenant's identity and DNS name; LOGIN stays on")));
    const schema = pgTenantIdent(t.id);
    const validated = await withSession(await ctx.ports.databases.cell(p.env, p.to), async (c) => {
      await expectLogin(c, t.id, true, to);
      await ensureMember(c, (await schemaOwner(c, schema)) ?? schema);
      return validateForeignKeys(c, schema);
    });
    return done({ runs, validatedForeignKeys: validated });
  },
};

const cleanupSchedule = {
  name: "cleanup.schedule",
  policy: FILE_COMMIT,
  async run(ctx: StepContext) {
    const tf = await requireTenant(ctx);
    const t = moving(tf, ctx, "cleanup.schedule");
    if (t.move.phase === "cleanup" && t.move.retainUntil) return done({ retainUntil: t.move.retainUntil });
    if (t.move.phase !== "cutover") throw new PermanentError(`cleanup.schedule runs after the switch, the file says ${t.move.phase}`);
    const retainUntil = isoSeconds(addDays(ctx.ports.clock.now(), ctx.config.retentionDays));
    await setMovePhase(ctx, tf, "cleanup", [[["move", "retainUntil"], retainUntil]]);
    return done({ retainUntil });
  },
};

const cleanupWait = {
  name: "cleanup.wait",
  async run(ctx: StepContext) {
    const t = moving(await requireTenant(ctx), ctx, "cleanup.wait");
    if (!t.move.retainUntil) throw new PermanentError("cleanup.wait: the move has no retainUntil");
    if (ctx.ports.clock.now() < new Date(t.move.retainUntil)) return waitUntil(new Date(t.move.retainUntil), `the cell left keeps the tenant's schema until ${t.move.retainUntil}`);
    return done({ retainUntil: t.move.retainUntil });
  },
};

const cleanupDump = {
  name: "cleanup.dump",
  async run(ctx: StepContext) {
    const p = params(MoveParamsSchema, ctx);
    moving(await requireTenant(ctx), ctx, "cleanup.dump");
    const backup = await dumpToCellBucket(ctx, p.env, p.from, `cell move to ${p.to}: final dump before leaving ${p.from}`, { stopWrites: false });
    return done(json({ location: backup.location }), [backup]);
  },
};

const cleanupEmpty = {
  name: "cleanup.empty",
  async run(ctx: StepContext) {
    const p = params(MoveParamsSchema, ctx);
    const t = moving(await requireTenant(ctx), ctx, "cleanup.empty");
    if (phaseIndex(t.move.phase) < phaseIndex("cleanup") || !t.move.retainUntil || ctx.ports.clock.now() < new Date(t.move.retainUntil)) {
      throw new PermanentError(`refusing to remove ${t.id}'s schema from cell ${p.from} before the switch is recorded and the retention ends (${t.move.retainUntil ?? "not set"})`);
    }
    const backups = await requireBackups(ctx, [p.env], `remove the schema from cell ${p.from}`);
    return done({ droppedObjects: await emptyCellSchema(ctx, p.env, p.from, backups.get(p.env)!) });
  },
};

const cleanupFiles = {
  name: "cleanup.files",
  policy: FILE_COMMIT,
  async run(ctx: StepContext) {
    const p = params(MoveParamsSchema, ctx);
    const tf = await requireTenant(ctx);
    const t = tf.tenant;
    if (t.deployment === "pooled" && t.move?.workflowId === ctx.workflow.id) {
      await commitFiles(ctx, `move ${t.id} (${p.env}) from ${p.from} to ${p.to} done: it leaves ${cellStackName(p.env, p.from)}`, { [tenantPath(t.id)]: editTenantText(tf.text, [[["move"], undefined]]) });
    }
    return done();
  },
};

const cleanupStacks = {
  name: "cleanup.stacks",
  policy: STACK_RUN,
  async run(ctx: StepContext) {
    const p = params(MoveParamsSchema, ctx);
    const runs = await upStacks(ctx, [cellStackName(p.env, p.from)], "the moved tenant leaves the cell");
    const left = await withSession(await ctx.ports.databases.cell(p.env, p.from), (c) => schemaExists(c, pgTenantIdent(ctx.workflow.tenantId)));
    if (left) throw new Error(`${cellStackName(p.env, p.from)} was updated but schema ${pgTenantIdent(ctx.workflow.tenantId)} is still there; check the stack's last run`);
    return done({ runs });
  },
};
export const moveWorkflow: WorkflowDef<"move"> = {
  kind: "move",
  schema: "moves",
  // A failed move leaves no slot holding the cell's WAL; a retry re-creates it (and copies again).
  onFailed: (ctx) => releaseMove(ctx, "the move failed"),
  // After the switch the tenant serves from its new place: only the clean-up steps finish it.
  cancelUntil: cutoverSwitch.name,
  onCancelled: (ctx) => cancelMove(ctx, moveWorkflow.steps),
  steps: [moveFiles, moveStacks, copyFiles, copyData, cutoverWindow, cutoverSwitch, cutoverConnect, cleanupSchedule, cleanupWait, cleanupDump, cleanupEmpty, cleanupFiles, cleanupStacks],
};
