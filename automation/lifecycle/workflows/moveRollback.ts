/**
 * Rollback of a cell move before its switch (docs/lifecycle.md, "Cell moves"): a workflow of its
 * own (`tenantctl move ID --rollback`, POST /api/tenants/:id/move/rollback), superseding the move
 * while it has not reached cutover.switch, or after the move failed for good (its failed windows
 * undone: phase copying again), and refusing unless the tenant file says the move is still before
 * its switch (phase provisioning or copying), no cutover marker of the move is in the cell moved
 * to and no write window is open. The tenant never stopped serving from the cell it was leaving; the rollback removes what
 * the move built in the other cell and gives the placement back:
 *
 *   rollback.check     the refusals above (read again on every attempt).
 *   rollback.capture   the move's slot and publication dropped from the cell left (its tables'
 *                      replica identities put back).
 *   rollback.handback  what a switch interrupted between its hand-over and its phase commit may
 *                      have left in the destination stack's state goes back (idempotent: usually
 *                      already there).
 *   rollback.files     placement.<env> = the cell left, the move block removed; one commit (the
 *                      rollback `validate --base` accepts). movedAt stays: the stacks keep taking
 *                      the password from the connection document, which is the role's.
 *   rollback.clear     the copy in the destination cell emptied (its schema's objects dropped; the
 *                      change-capture position there deleted).
 *   rollback.stacks    `up` of the destination cell (the tenant's role and empty schema dropped),
 *                      then of the cell left (the tenant a resident again: identity no longer kept
 *                      on delete); LOGIN checked on in the cell left, the role gone from the other.
 */
import { z } from "zod";
import { renameStackInUrn } from "../../../infra/model/handover.ts";
import { moveHandoverUrns } from "../../../infra/model/cellMove.ts";
import { cellStackName, pgTenantIdent } from "../../../infra/model/naming.ts";
import { editTenantText, tenantPath } from "../../../infra/model/fleetFiles/index.ts";
import { done, PermanentError, type StepContext, type WorkflowDef } from "../engine/engine.ts";
import { emptySchema, schemaExists, schemaOwner } from "../pg/catalog.ts";
import { deleteProgress } from "../pg/cdc/apply.ts";
import { slotName } from "../pg/cdc/slot.ts";
import { readMarkers } from "../pg/marker.ts";
import { ensureMember } from "../pg/sql.ts";
import { expectLogin, roleCanLogin, withSession } from "../pg/sessions.ts";
import { dropCaptures } from "./cutover.ts";
import { handOver } from "./handover.ts";
import { params } from "./migration.ts";
import { MoveParamsSchema, type MoveParams } from "./move.ts";
import { windowRecord } from "./switchWindow.ts";
import { upStacks } from "./stacks.ts";
import { commitFiles, requireTenant } from "./tenantFile.ts";

export const MoveRollbackParamsSchema = z.object({ moveId: z.uuid() }).strict();
export type MoveRollbackParams = z.infer<typeof MoveRollbackParamsSchema>;

/** The move this rollback undoes (its parameters), or a permanent error. */
async function moveOf(ctx: StepContext): Promise<MoveParams & { moveId: string }> {
  const { moveId } = params(MoveRollbackParamsSchema, ctx);
  const mv = await ctx.workflowById(moveId);
  if (!mv || mv.kind !== "move" || mv.tenantId !== ctx.workflow.tenantId) throw new PermanentError(`no move workflow ${moveId} for tenant ${ctx.workflow.tenantId}`);
  const parsed = MoveParamsSchema.safeParse(mv.params);
  if (!parsed.success) throw new PermanentError(`move workflow ${moveId} has invalid parameters`);
  return { ...parsed.data, moveId };
}

/** Whether the tenant file still names this move (false: rollback.files already committed). */
async function stillMoving(ctx: StepContext, moveId: string): Promise<boolean> {
  const t = (await requireTenant(ctx)).tenant;
  return t.deployment === "pooled" && t.move?.workflowId === moveId;
}

const rollbackCheck = {
  name: "rollback.check",
  async run(ctx: StepContext) {
    const m = await moveOf(ctx);
    const t = (await requireTenant(ctx)).tenant;
    const id = t.id;
    if (t.deployment !== "pooled") throw new PermanentError(`tenant ${id} is not pooled; there is no cell move to roll back`);
    if (!t.move || t.move.workflowId !== m.moveId) {
      if (t.placement[m.env] === m.from && !t.move) return done({ alreadyRolledBack: true });
      throw new PermanentError(`tenant ${id}'s file names ${t.move ? `move workflow ${t.move.workflowId}` : "no move"}, not ${m.moveId}; it changed outside this rollback`);
    }
    if (t.move.phase === "cutover" || t.move.phase === "cleanup") {
      throw new PermanentError(
        `tenant ${id}'s move is in phase ${t.move.phase}: cell ${m.to} serves it (or a write window is open); a rollback is possible only before the switch. ` +
          "If the move's switch was interrupted, retry the move (tenantctl retry): it undoes an open window first, then a rollback is possible",
      );
    }
    const markers = await withSession(await ctx.ports.databases.cell(m.env, m.to), (c) => readMarkers(c, id));
    if (markers.some((x) => x.workflowId === m.moveId)) throw new PermanentError(`cell ${m.to} holds the cutover marker of move ${m.moveId}: it is live; a rollback is no longer possible`);
    const open = await withSession(await ctx.ports.databases.cell(m.env, m.from), (c) => windowRecord(c, m.moveId, m.env));
    if (open) throw new PermanentError(`a write window of move ${m.moveId} is open on cell ${m.from} (since ${open.openedAt.toISOString()}); retry the move (tenantctl retry) so it is undone, then roll back`);
    return done({ phase: t.move.phase });
  },
};

const rollbackCapture = {
  name: "rollback.capture",
  async run(ctx: StepContext) {
    const m = await moveOf(ctx);
    return done(await dropCaptures(ctx, m.moveId, { [m.env]: m.from }));
  },
};

const rollbackHandback = {
  name: "rollback.handback",
  async run(ctx: StepContext) {
    const m = await moveOf(ctx);
    const tf = await requireTenant(ctx);
    const [from, to] = [cellStackName(m.env, m.from), cellStackName(m.env, m.to)];
    // As the move hands it over (URNs of the cell left), renamed to the cell moved to.
    const urns = moveHandoverUrns(tf.tenant, m.env, m.from).map((u) => renameStackInUrn(u, to));
    return done(await handOver(ctx, [{ source: to, dest: from, urns, all: true }], `roll back the move of ${tf.tenant.id}: its identity stays with ${from}`));
  },
};

const rollbackFiles = {
  name: "rollback.files",
  async run(ctx: StepContext) {
    const m = await moveOf(ctx);
    if (!(await stillMoving(ctx, m.moveId))) return done({ commit: null });
    const tf = await requireTenant(ctx);
    const text = editTenantText(tf.text, [[["placement", m.env], m.from], [["move"], undefined]]);
    const commit = await commitFiles(ctx, `roll back the move of ${tf.tenant.id} (${m.env}) to ${m.to}: it stays in ${m.from}`, { [tenantPath(tf.tenant.id)]: text });
    return done({ commit: commit ?? null });
  },
};

const rollbackClear = {
  name: "rollback.clear",
  async run(ctx: StepContext) {
    const m = await moveOf(ctx);
    const id = ctx.workflow.tenantId;
    const schema = pgTenantIdent(id);
    // The copy is the tenant's data in a cell that never served it: removed before the cell's `up` drops the schema.
    const dropped = await withSession(await ctx.ports.databases.cell(m.env, m.to), async (c) => {
      if ((await readMarkers(c, id)).some((x) => x.workflowId === m.moveId)) throw new PermanentError(`cell ${m.to} holds the cutover marker of move ${m.moveId}; its data is not removed`);
      await deleteProgress(c, slotName(m.moveId, m.env));
      if (!(await schemaExists(c, schema))) return 0;
      await ensureMember(c, (await schemaOwner(c, schema)) ?? schema);
      await c.query("BEGIN");
      const n = await emptySchema(c, schema);
      await c.query("COMMIT");
      return n;
    });
    return done({ droppedObjects: dropped });
  },
};

const rollbackStacks = {
  name: "rollback.stacks",
  async run(ctx: StepContext) {
    const m = await moveOf(ctx);
    const id = ctx.workflow.tenantId;
    const [from, to] = [cellStackName(m.env, m.from), cellStackName(m.env, m.to)];
    const runs = await upStacks(ctx, [to], `rollback of the move: the tenant leaves ${to} (its role and empty schema are dropped)`);
    const left = await withSession(await ctx.ports.databases.cell(m.env, m.to), (c) => roleCanLogin(c, id));
    if (left !== undefined) throw new Error(`${to} was updated but role ${pgTenantIdent(id)} is still there; check the stack's last run`);
    runs.push(...(await upStacks(ctx, [from], "rollback of the move: the tenant is a resident again")));
    await withSession(await ctx.ports.databases.cell(m.env, m.from), (c) => expectLogin(c, id, true, from));
    return done({ runs });
  },
};

export const moveRollbackWorkflow: WorkflowDef<"move-rollback"> = {
  kind: "move-rollback",
  schema: "restores",
  steps: [rollbackCheck, rollbackCapture, rollbackHandback, rollbackFiles, rollbackClear, rollbackStacks],
  // An open move only before its switch starts; a failed one (not open) whatever its last step: rollback.check reads the file.
  supersedes: [{ kind: "move", before: "cutover.switch" }],
};
