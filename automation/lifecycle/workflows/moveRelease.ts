/**
 * What a cell move (move.ts) that ends without finishing releases: on failure and on an
 * operator's cancel, the write window left open, the cells' holds and the change capture.
 */
import { json, type JsonObject, type StepContext, type WorkflowDef } from "../engine/engine.ts";
import { dropCaptures, reachedCopy } from "./cutover.ts";
import { MoveParamsSchema, moveSwitchPlan } from "./moveState.ts";
import { openWindows, undoWindow } from "./switchWindow.ts";
import { requireTenant } from "./tenantFile.ts";
import { params } from "./migration.ts";

/**
 * What a move that ends without finishing (failed for good, or cancelled by an operator) must not
 * leave behind: a write window still open (LOGIN back on the cell it was leaving, the identity's
 * state and phase copying back, the window's row gone), the cells' holds, and the capture slot with
 * what it switched to REPLICA IDENTITY FULL. Idempotent; `why` goes into the log lines.
 */
export async function releaseMove(ctx: StepContext, why: string): Promise<void> {
  const p = params(MoveParamsSchema, ctx);
  const tf = await requireTenant(ctx).catch(() => undefined);
  if (tf && tf.tenant.deployment === "pooled" && tf.tenant.move?.workflowId === ctx.workflow.id) {
    const plan = await moveSwitchPlan(ctx, tf.tenant);
    const open = await openWindows(ctx, plan).catch(() => []);
    if (open.length > 0) ctx.log({ undone: await undoWindow(ctx, plan, open).catch((err: unknown) => json({ undoFailed: (err as Error).message })) }, `a write window left open was undone: ${why}; the tenant serves from the cell it was leaving`);
  }
  // The cells' runs wait no longer (held by the switch: automation/runs/holds.ts).
  await ctx.ports.runner.release(ctx.runContext(why)).catch((err: unknown) => ctx.log({ error: (err as Error).message }, "releasing the cells' hold failed; release it by hand (DELETE FROM stack_holds WHERE holder = the workflow id)"));
  const dropped: JsonObject = await dropCaptures(ctx, ctx.workflow.id, { [p.env]: p.from });
  ctx.log({ dropped }, `change capture dropped: ${why}`);
}

/**
 * A cancel undoes an open window strictly: when the undo fails the cancel is refused (the engine
 * leaves the workflow as it was), so a cancelled move never leaves the tenant without LOGIN.
 */
export async function cancelMove(ctx: StepContext, steps: WorkflowDef<"move">["steps"]): Promise<void> {
  // Before its copy a move has no slot, no window and no hold: nothing of the databases to release.
  if (!reachedCopy(ctx, steps)) return;
  const tf = await requireTenant(ctx).catch(() => undefined);
  if (tf && tf.tenant.deployment === "pooled" && tf.tenant.move?.workflowId === ctx.workflow.id) {
    const plan = await moveSwitchPlan(ctx, tf.tenant);
    const open = await openWindows(ctx, plan);
    if (open.length > 0) ctx.log({ undone: await undoWindow(ctx, plan, open) }, "a write window left open by a killed process was undone before the cancel");
  }
  await releaseMove(ctx, "the move was cancelled");
}

