/**
 * Upgrade pooled -> dedicated, and its rollback.
 *
 *   provision.key     a tenant with its own KMS key in the cell: the key's state moves to the
 *                     dedicated stack (infra/model/handover.ts), before the commit that makes the
 *                     cell stop declaring it; the edit of the next step is checked first.
 *   provision.files   tenant file: tier dedicated, `dedicated` networks (allocateDedicatedCidrs),
 *                     migration { phase: provisioning, from: <old placement>, fromTier, startedAt },
 *                     the dedicated stack files and the CODEOWNERS line; one commit. The tenant
 *                     keeps serving from its cell.
 *   provision.stacks  `up` of the cell stacks (the tenant's identity becomes retainOnDelete), then
 *                     of each dedicated stack; the tenant's schema must then exist there.
 *   copy.files        phase copying.
 *   copy.data         per env: bulk copy of schema tenant_<id> from the cell database to the
 *                     dedicated one, verified table by table (row counts, checksums). It runs on
 *                     the tenant's region's runner: both databases are spokes of that region's
 *                     Transit Gateway and admit the runner subnets (docs/network.md); no peering.
 *   cutover.window    waits for `cutoverNotBefore` when the request set one (a maintenance window).
 *   cutover.switch    per env, holding ACCESS EXCLUSIVE locks on the dedicated copy (so nothing can
 *                     read or write it before it is complete): the tenant's identity (role, access
 *                     policy, secrets, connection document) moves from the cell stack's state to
 *                     the dedicated stack's, then phase cutover is committed, `up` of the cell
 *                     stacks (the cell role loses LOGIN; the tenant's cell DNS name points to its
 *                     dedicated zone), LOGIN checked off, the role's sessions terminated, the final
 *                     delta copied, foreign keys added, everything verified, and the cutover
 *                     marker committed in the dedicated database with the delta.
 *   cutover.connect   `up` of the dedicated stacks: they claim the moved identity (by alias) and
 *                     the connection document names the dedicated database from then on.
 *   cleanup.schedule  phase cleanup, retainUntil = now + retention (config).
 *   cleanup.wait      waits until retainUntil.
 *   cleanup.dump      per env: final dump of the cell schema into the cell bucket (recorded).
 *   cleanup.empty     refuses without a recorded dump of every env; empties the cell schema.
 *   cleanup.files     removes the migration block (the tenant leaves its cells) and writes
 *                     environments.<env>.movedAt: the dedicated stacks keep the document's password.
 *   cleanup.stacks    `up` of the cell stacks (role, schema, secrets, IAM role, DNS name removed).
 *
 * Rollback before cutover: rollback.ts.
 */
import { requireFleet } from "../../../infra/model/fleet.ts";
import { keyHandoverUrns } from "../../../infra/model/handover.ts";
import { cellStackName, dedicatedStackName, pgTenantIdent } from "../../../infra/model/naming.ts";
import { PlacementError } from "../../../infra/model/placement.ts";
import { CODEOWNERS_PATH, EditRefusedError, upgradeProvisionEdit } from "../../../infra/model/fleetFiles/index.ts";
import { addDays } from "../config.ts";
import { done, json, PermanentError, waitUntil, type JsonObject, type StepContext, type WorkflowDef } from "../engine/engine.ts";
import { schemaExists } from "../pg/catalog.ts";
import { withSession } from "../pg/sessions.ts";
import { editTenantText, isoSeconds, tenantPath } from "../../../infra/model/fleetFiles/index.ts";
import { dumpToCellBucket, emptyCellSchema, requireBackups } from "./backup.ts";
import { handOver } from "./handover.ts";
import { cellStacks, cellsOf, dedicatedStacks, envsOf, upStacks } from "./stacks.ts";
import { commitFiles, requireTenant } from "./tenantFile.ts";
import { migrating, params, phaseIndex, setPhase, UpgradeParamsSchema } from "./migration.ts";
import { copyData, cutoverConnect, cutoverSwitch, cutoverWindow, dropCaptures, reachedCopy, undoLeftWindows } from "./cutover.ts";
export { migrating, params, phaseIndex, setPhase, UpgradeParamsSchema, type UpgradeParams } from "./migration.ts";

// --- provisioning -----------------------------------------------------------------------------

const provisionKey = {
  name: "provision.key",
  async run(ctx: StepContext) {
    const tf = await requireTenant(ctx);
    const t = tf.tenant;
    // Dedicated already: the provisioning commit landed, after this step had moved the key.
    if (t.deployment === "dedicated") return done({ moved: null });
    // The commit that follows must be possible before anything changes hands.
    try {
      upgradeProvisionEdit(requireFleet({ projectDir: ctx.ports.repo.root }), tf.text, t, ctx.ports.clock.now());
    } catch (err) {
      if (err instanceof PlacementError || err instanceof EditRefusedError) throw new PermanentError(err.message);
      throw err;
    }
    const moves = Object.entries(cellsOf(t)).map(([env, cell]) => ({
      source: cellStackName(env, cell), dest: dedicatedStackName(t.id, env), urns: keyHandoverUrns(t, env, cell), all: true,
    }));
    return done(await handOver(ctx, moves, `move the own KMS key of ${t.id} to its dedicated stack before provisioning`));
  },
};

const provisionFiles = {
  name: "provision.files",
  async run(ctx: StepContext) {
    const p = params(UpgradeParamsSchema, ctx);
    const tf = await requireTenant(ctx);
    const t = tf.tenant;
    const id = t.id;
    if (t.deployment === "dedicated") {
      // Done before a crash (the commit landed, its step row did not): the file is the record.
      const { migration } = migrating(tf, "provision.files");
      if (JSON.stringify(migration.from) !== JSON.stringify(p.previous.placement)) {
        throw new PermanentError(`tenant ${id} migrates from ${JSON.stringify(migration.from)}, but this upgrade was requested from ${JSON.stringify(p.previous.placement)}`);
      }
      return done({ networks: json(t.dedicated), stacks: dedicatedStacks(id, envsOf(t)), commit: null });
    }
    let edit: ReturnType<typeof upgradeProvisionEdit>;
    try {
      const codeowners = await ctx.ports.repo.read(CODEOWNERS_PATH);
      edit = upgradeProvisionEdit(requireFleet({ projectDir: ctx.ports.repo.root }), tf.text, t, ctx.ports.clock.now(), codeowners);
    } catch (err) {
      if (err instanceof PlacementError || err instanceof EditRefusedError) throw new PermanentError(err.message);
      throw err;
    }
    const { networks, stacks } = edit;
    const commit = await commitFiles(ctx, `upgrade ${id} to dedicated: provision ${stacks.join(", ")}`, edit.files);
    return done({ networks, stacks, commit: commit ?? null });
  },
};

const provisionStacks = {
  name: "provision.stacks",
  async run(ctx: StepContext) {
    const { tenant } = migrating(await requireTenant(ctx), "provision.stacks");
    // Cells first: they record the tenant's identity as retainOnDelete before anything moves.
    const runs = await upStacks(ctx, cellStacks(cellsOf(tenant)), "the migrating tenant's identity is kept on delete; it keeps serving from the cell");
    const stacks = dedicatedStacks(tenant.id, envsOf(tenant));
    runs.push(...(await upStacks(ctx, stacks, "create the dedicated stack; the tenant keeps serving from its cell")));
    const schema = pgTenantIdent(tenant.id);
    for (const env of envsOf(tenant)) {
      const ok = await withSession(await ctx.ports.databases.dedicated(tenant.id, env), (c) => schemaExists(c, schema));
      if (!ok) throw new Error(`${dedicatedStackName(tenant.id, env)} was updated but its database has no schema ${schema}; check the stack's last run`);
    }
    return done({ runs });
  },
};

// --- copy ---------------------------------------------------------------------------------------

const copyFiles = {
  name: "copy.files",
  async run(ctx: StepContext) {
    const tf = await requireTenant(ctx);
    const { migration } = migrating(tf, "copy.files");
    if (phaseIndex(migration.phase) > phaseIndex("copying")) throw new PermanentError(`copy.files: the migration is already in phase ${migration.phase}`);
    const commit = migration.phase === "copying" ? undefined : await setPhase(ctx, tf, "copying");
    return done({ commit: commit ?? null });
  },
};

// --- cleanup ------------------------------------------------------------------------------------

const cleanupSchedule = {
  name: "cleanup.schedule",
  async run(ctx: StepContext) {
    const tf = await requireTenant(ctx);
    const { migration } = migrating(tf, "cleanup.schedule");
    if (migration.phase === "cleanup" && migration.retainUntil) return done({ retainUntil: migration.retainUntil });
    if (migration.phase !== "cutover") throw new PermanentError(`cleanup.schedule runs after cutover, the file says ${migration.phase}`);
    const retainUntil = isoSeconds(addDays(ctx.ports.clock.now(), ctx.config.retentionDays));
    await setPhase(ctx, tf, "cleanup", [[["migration", "retainUntil"], retainUntil]]);
    return done({ retainUntil });
  },
};

const cleanupWait = {
  name: "cleanup.wait",
  async run(ctx: StepContext) {
    const { migration } = migrating(await requireTenant(ctx), "cleanup.wait");
    if (!migration.retainUntil) throw new PermanentError("cleanup.wait: the migration has no retainUntil");
    const until = new Date(migration.retainUntil);
    if (ctx.ports.clock.now() < until) return waitUntil(until, `the cell keeps the tenant's schema until ${migration.retainUntil}`);
    return done({ retainUntil: migration.retainUntil });
  },
};

const cleanupDump = {
  name: "cleanup.dump",
  async run(ctx: StepContext) {
    const { tenant, migration } = migrating(await requireTenant(ctx), "cleanup.dump");
    const backups = [];
    for (const env of envsOf(tenant)) backups.push(await dumpToCellBucket(ctx, env, migration.from[env]!, "upgrade to dedicated: final dump before leaving the cell", { stopWrites: false }));
    return done(json({ locations: backups.map((b) => b.location) }), backups);
  },
};

const cleanupEmpty = {
  name: "cleanup.empty",
  async run(ctx: StepContext) {
    const { tenant, migration } = migrating(await requireTenant(ctx), "cleanup.empty");
    const envs = envsOf(tenant);
    if (!migration.retainUntil || ctx.ports.clock.now() < new Date(migration.retainUntil)) {
      throw new PermanentError(`refusing to remove ${tenant.id}'s schema from its cells before the retention ends (${migration.retainUntil ?? "not set"})`);
    }
    const backups = await requireBackups(ctx, envs, "remove the schema from its cells");
    const out: JsonObject = {};
    for (const env of envs) out[env] = await emptyCellSchema(ctx, env, migration.from[env]!, backups.get(env)!);
    return done({ droppedObjects: out });
  },
};

const cleanupFiles = {
  name: "cleanup.files",
  async run(ctx: StepContext) {
    const p = params(UpgradeParamsSchema, ctx);
    const tf = await requireTenant(ctx);
    if (tf.tenant.deployment === "dedicated" && tf.tenant.migration) {
      // movedAt keeps the dedicated stack on the connection document's password (the one its
      // role was created with during the migration) once the migration block is gone.
      const at = tf.tenant.migration.startedAt;
      const moved = Object.keys(tf.tenant.environments).sort().map((e): [string[], string] => [["environments", e, "movedAt"], at]);
      const text = editTenantText(tf.text, [[["migration"], undefined], ...moved]);
      await commitFiles(ctx, `upgrade ${tf.tenant.id} to dedicated done: it leaves ${cellStacks(p.previous.placement).join(", ")}`, { [tenantPath(tf.tenant.id)]: text });
    }
    return done();
  },
};

const cleanupStacks = {
  name: "cleanup.stacks",
  async run(ctx: StepContext) {
    const p = params(UpgradeParamsSchema, ctx);
    const id = ctx.workflow.tenantId;
    const runs = await upStacks(ctx, cellStacks(p.previous.placement), "the migrated tenant leaves the cell");
    for (const [env, cell] of Object.entries(p.previous.placement)) {
      const left = await withSession(await ctx.ports.databases.cell(env, cell), (c) => schemaExists(c, pgTenantIdent(id)));
      if (left) throw new Error(`${cellStackName(env, cell)} was updated but schema ${pgTenantIdent(id)} is still there; check the stack's last run`);
    }
    return done({ runs });
  },
};

/** What an upgrade that ends without finishing must not leave behind (see releaseMove in move.ts); `why` goes into the log lines. */
async function releaseUpgrade(ctx: StepContext, why: string, strict: boolean): Promise<void> {
  // Cancelled before its copy an upgrade has no slot, no window and no hold: nothing of the databases to release.
  if (strict && !reachedCopy(ctx, upgradeWorkflow.steps)) return;
  const p = params(UpgradeParamsSchema, ctx);
  // A cancel undoes an open window strictly (its failure refuses the cancel); a failure does its best.
  const undone = strict ? await undoLeftWindows(ctx) : await undoLeftWindows(ctx).catch((err: unknown) => json({ undoFailed: (err as Error).message }));
  if (undone) ctx.log({ undone }, `a write window left open was undone: ${why}; the tenant serves from its cell`);
  // The stacks' runs wait no longer (held by the switch: automation/runs/holds.ts).
  await ctx.ports.runner.release(ctx.runContext(why)).catch((err: unknown) => ctx.log({ error: (err as Error).message }, "releasing the stacks' hold failed; release it by hand (DELETE FROM stack_holds WHERE holder = the workflow id)"));
  ctx.log({ dropped: await dropCaptures(ctx, ctx.workflow.id, p.previous.placement) }, `change capture dropped: ${why}`);
}

export const upgradeWorkflow: WorkflowDef<"upgrade"> = {
  kind: "upgrade",
  schema: "moves",
  // A failed upgrade leaves no slot holding the cell's WAL; a retry re-creates it (and copies again).
  onFailed: (ctx) => releaseUpgrade(ctx, "the upgrade failed", false),
  // After the switch the tenant serves from its new place: only the clean-up steps finish it.
  cancelUntil: cutoverSwitch.name,
  onCancelled: (ctx) => releaseUpgrade(ctx, "the upgrade was cancelled", true),
  steps: [provisionKey, provisionFiles, provisionStacks, copyFiles, copyData, cutoverWindow, cutoverSwitch, cutoverConnect, cleanupSchedule, cleanupWait, cleanupDump, cleanupEmpty, cleanupFiles, cleanupStacks],
};

/** The steps at and after which a rollback is refused. */
export const CUTOVER_STEP = cutoverSwitch.name;
