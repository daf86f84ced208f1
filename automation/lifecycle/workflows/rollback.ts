/**
 * Rollback of a pooled -> dedicated upgrade (a workflow of its own, superseding the upgrade while
 * it has not reached cutover.switch): routing stays on the cell (it never left it), an own key
 * moved at provisioning goes back to the cell stack's state, the tenant file gets its pooled
 * placement and tier back, the dedicated stacks are destroyed only when asked
 * (`destroyDedicated`), otherwise their files move to stacks/retired/ and the copied data is
 * removed from the dedicated database.
 */
import { z } from "zod";
import { handbackKeyUrns } from "../../../infra/model/handover.ts";
import { cellStackName, dedicatedStackName, pgTenantIdent } from "../../../infra/model/naming.ts";
import { done, PermanentError, type JsonObject, type StepContext, type WorkflowDef } from "../engine/engine.ts";
import { emptySchema, schemaExists, schemaOwner } from "../pg/catalog.ts";
import { readMarkers, type CutoverMarker } from "../pg/marker.ts";
import { ensureMember } from "../pg/sql.ts";
import { editTenantText, stackPath, tenantPath } from "../../../infra/model/fleetFiles/index.ts";
import { expectLogin, withSession } from "../pg/sessions.ts";
import { cellStacks, dedicatedStacks, envsOf, upStacks } from "./stacks.ts";
import { commitFiles, requireTenant } from "./tenantFile.ts";
import { handOver } from "./handover.ts";
import { dropCaptures } from "./cutover.ts";
import { CUTOVER_STEP, migrating, params, phaseIndex, UpgradeParamsSchema, type UpgradeParams } from "./upgrade.ts";

export const RollbackParamsSchema = z
  .object({
    upgradeId: z.uuid(),
    /** Destroy the dedicated stacks (default false: they stay, their files move to stacks/retired/). */
    destroyDedicated: z.boolean(),
  })
  .strict();
export type RollbackParams = z.infer<typeof RollbackParamsSchema>;

/** Where a rollback that keeps the dedicated stacks puts their files (not read by the fleet loader). */
export const RETIRED_STACKS_DIR = "stacks/retired";

async function upgradeParams(ctx: StepContext): Promise<UpgradeParams> {
  const r = params(RollbackParamsSchema, ctx);
  const up = await ctx.workflowById(r.upgradeId);
  if (!up || up.kind !== "upgrade" || up.tenantId !== ctx.workflow.tenantId) throw new PermanentError(`no upgrade workflow ${r.upgradeId} for tenant ${ctx.workflow.tenantId}`);
  const parsed = UpgradeParamsSchema.safeParse(up.params);
  if (!parsed.success) throw new PermanentError(`upgrade workflow ${r.upgradeId} has invalid parameters`);
  return parsed.data;
}

const rollbackCheck = {
  name: "rollback.check",
  async run(ctx: StepContext) {
    const tf = await requireTenant(ctx);
    const t = tf.tenant;
    if (t.deployment === "pooled") return done({ alreadyPooled: true });
    const { migration } = migrating(tf, "rollback.check");
    if (phaseIndex(migration.phase) >= phaseIndex("cutover")) {
      throw new PermanentError(`tenant ${t.id} is in phase ${migration.phase}: the dedicated database is live, rollback is no longer possible (migrate back by hand)`);
    }
    // Belt and braces: the phase is committed before any cutover marker can exist.
    for (const env of envsOf(t)) {
      let markers: CutoverMarker[] = [];
      try {
        markers = await withSession(await ctx.ports.databases.dedicated(t.id, env), (c) => readMarkers(c, t.id));
      } catch (err) {
        ctx.log({ env, error: (err as Error).message }, "dedicated database not reachable; it cannot hold a cutover (the phase says so too)");
      }
      if (markers.length > 0) throw new PermanentError(`the dedicated database of ${t.id} (${env}) is cut over; rollback is no longer possible`);
    }
    return done({ phase: migration.phase });
  },
};

/** The upgrade's change capture: slots dropped from the cells, replica identities put back (the tenant stays there). */
const rollbackCapture = {
  name: "rollback.capture",
  async run(ctx: StepContext) {
    const r = params(RollbackParamsSchema, ctx);
    const up = await upgradeParams(ctx);
    return done(await dropCaptures(ctx, r.upgradeId, up.previous.placement));
  },
};

const rollbackHandback = {
  name: "rollback.handback",
  async run(ctx: StepContext) {
    const up = await upgradeParams(ctx);
    const id = ctx.workflow.tenantId;
    // Only an own key moved before cutover (a new key of the dedicated stack stays there).
    const moves = Object.entries(up.previous.placement).map(([env, cell]) => ({
      source: dedicatedStackName(id, env), dest: cellStackName(env, cell), urns: handbackKeyUrns(id, up.previous.tier, env), all: false,
    }));
    return done(await handOver(ctx, moves, `hand the own KMS key of ${id} back to its cell`));
  },
};

const rollbackDestroy = {
  name: "rollback.destroy",
  async run(ctx: StepContext) {
    const r = params(RollbackParamsSchema, ctx);
    if (!r.destroyDedicated) return done({ destroyed: [] });
    const up = await upgradeParams(ctx);
    const stacks = dedicatedStacks(ctx.workflow.tenantId, Object.keys(up.previous.placement));
    // Never lifts `protect`: a protected (prod) dedicated stack fails here and is left to a person.
    for (const stack of stacks) await ctx.ports.runner.destroy(stack, ctx.runContext("rollback requested with destroyDedicated"));
    return done({ destroyed: stacks });
  },
};

const rollbackFiles = {
  name: "rollback.files",
  async run(ctx: StepContext) {
    const r = params(RollbackParamsSchema, ctx);
    const up = await upgradeParams(ctx);
    const tf = await requireTenant(ctx);
    const t = tf.tenant;
    if (t.deployment === "pooled") return done({ commit: null });
    const text = editTenantText(tf.text, [
      [["tier"], up.previous.tier],
      [["deployment"], up.previous.deployment],
      [["dedicated"], undefined],
      // A customer peering added while dedicated goes with the dedicated networks: a pooled tenant
      // cannot have it. Only removed when set (the upgrade itself no longer sets it).
      ...(t.features.vpcPeering ? [[["features", "vpcPeering"], undefined] as const] : []),
      [["migration"], undefined],
      [["placement"], { ...up.previous.placement }],
    ]);
    const files: Record<string, string | null> = { [tenantPath(t.id)]: text };
    for (const env of Object.keys(t.dedicated)) {
      const path = stackPath(dedicatedStackName(t.id, env));
      const current = await ctx.ports.repo.read(path);
      files[path] = null;
      if (!r.destroyDedicated && current !== undefined) {
        files[`${RETIRED_STACKS_DIR}/Pulumi.${dedicatedStackName(t.id, env)}.yaml`] =
          `# Retired by rollback workflow ${ctx.workflow.id}: the stack still exists (not destroyed on request).\n` +
          `# Destroy it with \`pulumi destroy -s ${dedicatedStackName(t.id, env)}\` (config restored from this file) when no longer needed.\n${current}`;
      }
    }
    const commit = await commitFiles(ctx, `roll back the upgrade of ${t.id}: pooled again in ${cellStacks(up.previous.placement).join(", ")}`, files);
    return done({ commit: commit ?? null });
  },
};

const rollbackClear = {
  name: "rollback.clear",
  async run(ctx: StepContext) {
    const r = params(RollbackParamsSchema, ctx);
    if (r.destroyDedicated) return done();
    const up = await upgradeParams(ctx);
    const id = ctx.workflow.tenantId;
    const schema = pgTenantIdent(id);
    const out: JsonObject = {};
    // The copy is customer data in a database nobody serves from: remove it.
    for (const env of Object.keys(up.previous.placement)) {
      out[env] = await withSession(await ctx.ports.databases.dedicated(id, env), async (c) => {
        if (!(await schemaExists(c, schema))) return 0;
        if ((await readMarkers(c, id)).length > 0) throw new PermanentError(`the dedicated database of ${id} (${env}) is cut over; its data is not removed`);
        await ensureMember(c, (await schemaOwner(c, schema)) ?? schema);
        await c.query("BEGIN");
        const n = await emptySchema(c, schema);
        await c.query("COMMIT");
        return n;
      });
    }
    return done({ droppedObjects: out });
  },
};

const rollbackStacks = {
  name: "rollback.stacks",
  async run(ctx: StepContext) {
    const up = await upgradeParams(ctx);
    const id = ctx.workflow.tenantId;
    const runs = await upStacks(ctx, cellStacks(up.previous.placement), "rollback: the tenant stays pooled in its cell");
    for (const [env, cell] of Object.entries(up.previous.placement)) {
      await withSession(await ctx.ports.databases.cell(env, cell), (c) => expectLogin(c, id, true, cellStackName(env, cell)));
    }
    return done({ runs });
  },
};

export const rollbackWorkflow: WorkflowDef<"rollback"> = {
  kind: "rollback",
  schema: "restores",
  steps: [rollbackCheck, rollbackCapture, rollbackHandback, rollbackDestroy, rollbackFiles, rollbackClear, rollbackStacks],
  supersedes: [{ kind: "upgrade", before: CUTOVER_STEP }],
};
