/**
 * What the upgrade's steps share (the workflow's parameters, the migrating tenant, its phases):
 * upgrade.ts, cutover.ts and rollback.ts read them from here.
 */
import { z } from "zod";
import { PermanentError, type StepContext } from "../engine/engine.ts";
import { editTenantText, tenantPath } from "../../../infra/model/fleetFiles/index.ts";
import { commitFiles, type TenantFile } from "./tenantFile.ts";

export const UpgradeParamsSchema = z
  .object({
    to: z.literal("dedicated"),
    /** What the tenant file said when the upgrade was requested: what a rollback restores. */
    previous: z
      .object({
        tier: z.string(),
        /** The file's explicit `deployment` key, when it had one. */
        deployment: z.string().optional(),
        placement: z.record(z.string(), z.string()),
      })
      .strict(),
    /** Cutover waits until then (ISO 8601). */
    cutoverNotBefore: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();
export type UpgradeParams = z.infer<typeof UpgradeParamsSchema>;

export function params<T>(schema: z.ZodType<T>, ctx: StepContext): T {
  const parsed = schema.safeParse(ctx.workflow.params);
  if (!parsed.success) throw new PermanentError(`workflow ${ctx.workflow.id} has invalid parameters: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return parsed.data;
}

/** The tenant mid-migration (dedicated with a migration block), or a permanent error. */
export function migrating(tf: TenantFile, step: string) {
  const t = tf.tenant;
  if (t.deployment !== "dedicated" || !t.migration) {
    throw new PermanentError(`${step}: tenant ${t.id} has no migration in progress (${t.deployment}); its file changed outside this workflow`);
  }
  return { tenant: t, migration: t.migration };
}

const PHASE_ORDER = ["provisioning", "copying", "cutover", "cleanup"] as const;
export function phaseIndex(p: string): number {
  return PHASE_ORDER.indexOf(p as (typeof PHASE_ORDER)[number]);
}

export async function setPhase(ctx: StepContext, tf: TenantFile, phase: (typeof PHASE_ORDER)[number], extra: [string[], unknown][] = []): Promise<string | undefined> {
  const text = editTenantText(tf.text, [[["migration", "phase"], phase], ...extra.map(([p, v]) => [p, v] as const)]);
  return commitFiles(ctx, `upgrade ${ctx.workflow.tenantId} to dedicated: migration phase ${phase}`, { [tenantPath(ctx.workflow.tenantId)]: text });
}

