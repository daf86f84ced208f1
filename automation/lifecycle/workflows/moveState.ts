/**
 * The cell move's view of itself (move.ts): its parameters, its phases in the tenant file and the
 * check that the file still describes this move, the phase commit, the capture between the two
 * cells and the switch plan switchWindow.ts works with. Shared by the move's steps and by what
 * releases a move that ends without finishing (moveRelease.ts).
 */
import { z } from "zod";
import { moveHandoverUrns } from "../../../infra/model/cellMove.ts";
import { cellStackName } from "../../../infra/model/naming.ts";
import type { Tenant } from "../../../infra/model/schema.ts";
import { editTenantText, tenantPath } from "../../../infra/model/fleetFiles/index.ts";
import { PermanentError, type StepContext } from "../engine/engine.ts";
import type { CaptureTarget } from "../pg/cdc/capture.ts";
import { withCaptureBetween } from "./cutover.ts";
import type { SwitchPlan } from "./switchWindow.ts";
import { commitFiles, requireTenant, type TenantFile } from "./tenantFile.ts";
import { params } from "./migration.ts";

export const MoveParamsSchema = z
  .object({
    env: z.string(),
    /** The cell the tenant leaves (its placement when the move was requested). */
    from: z.string(),
    /** The cell it moves to. */
    to: z.string(),
    /** The switch waits until then (a maintenance window; cutoverTime.ts). @default - as soon as the copy has caught up */
    cutoverNotBefore: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();
export type MoveParams = z.infer<typeof MoveParamsSchema>;

export const PHASES = ["provisioning", "copying", "cutover", "cleanup"] as const;
export type Phase = (typeof PHASES)[number];
export const phaseIndex = (p: string) => PHASES.indexOf(p as Phase);

export type Moving = Extract<Tenant, { deployment: "pooled" }> & { move: NonNullable<Extract<Tenant, { deployment: "pooled" }>["move"]> };

/** The tenant mid-move by this workflow, or a permanent error naming what the file says instead. */
export function moving(tf: TenantFile, ctx: StepContext, step: string): Moving {
  const t = tf.tenant;
  const p = params(MoveParamsSchema, ctx);
  if (t.deployment !== "pooled" || !t.move) throw new PermanentError(`${step}: tenant ${t.id} has no cell move in progress; its file changed outside this workflow`);
  if (t.move.workflowId !== ctx.workflow.id) throw new PermanentError(`${step}: tenant ${t.id} is being moved by workflow ${t.move.workflowId}, not ${ctx.workflow.id}`);
  if (t.move.from[p.env] !== p.from || t.placement[p.env] !== p.to) {
    throw new PermanentError(`${step}: tenant ${t.id}'s file moves ${p.env} from ${t.move.from[p.env] ?? "nowhere"} to ${t.placement[p.env]}, this workflow from ${p.from} to ${p.to}`);
  }
  return t as Moving;
}

export async function setMovePhase(ctx: StepContext, tf: TenantFile, phase: Phase, extra: [string[], unknown][] = []): Promise<string | undefined> {
  const p = params(MoveParamsSchema, ctx);
  const text = editTenantText(tf.text, [[["move", "phase"], phase], ...extra.map(([path, v]) => [path, v] as const)]);
  return commitFiles(ctx, `move ${ctx.workflow.tenantId} (${p.env}) from ${p.from} to ${p.to}: phase ${phase}`, { [tenantPath(ctx.workflow.tenantId)]: text });
}

/** The capture's sessions for the move: the cell left is the source, the cell moved to the target. */
export async function withMoveCapture<T>(ctx: StepContext, fn: (t: CaptureTarget) => Promise<T>): Promise<T> {
  const p = params(MoveParamsSchema, ctx);
  return withCaptureBetween(ctx, ctx.workflow.tenantId, p.env, await ctx.ports.databases.cell(p.env, p.from), await ctx.ports.databases.cell(p.env, p.to), fn);
}

/** The move's switch as switchWindow.ts sees it: the cell left -> the cell moved to, the identity and DNS hand-over, phase copying. */
export async function moveSwitchPlan(ctx: StepContext, t: Tenant): Promise<SwitchPlan> {
  const p = params(MoveParamsSchema, ctx);
  return {
    tenantId: t.id,
    sides: [{ env: p.env, source: await ctx.ports.databases.cell(p.env, p.from), target: await ctx.ports.databases.cell(p.env, p.to), sourceName: `cell ${p.from} (${p.env})` }],
    handovers: [{ source: cellStackName(p.env, p.from), dest: cellStackName(p.env, p.to), urns: moveHandoverUrns(t, p.env, p.from), all: true }],
    recommitCopying: async () => {
      const tf = await requireTenant(ctx);
      return moving(tf, ctx, "cutover.switch").move.phase === "cutover" ? setMovePhase(ctx, tf, "copying") : undefined;
    },
  };
}

