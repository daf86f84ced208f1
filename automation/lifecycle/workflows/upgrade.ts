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
 *   cleanup.files     removes the migration block: the tenant leaves its cells.
 *   cleanup.stacks    `up` of the cell stacks (role, schema, secrets, IAM role, DNS name removed).
 *
 * Rollback before cutover: rollback.ts.
 */
import { z } from "zod";
import { requireFleet } from "../../../infra/model/fleet.ts";
import { identityHandoverUrns, keyHandoverUrns } from "../../../infra/model/handover.ts";
import { cellStackName, dedicatedStackName, pgTenantIdent } from "../../../infra/model/naming.ts";
import { PlacementError } from "../../../infra/model/placement.ts";
import { CODEOWNERS_PATH, EditRefusedError, upgradeProvisionEdit } from "../../../infra/model/fleetFiles/index.ts";
import { addDays } from "../config.ts";
import { done, PermanentError, waitUntil, type JsonObject, type StepContext, type WorkflowDef } from "../engine/engine.ts";
import { readSchema, schemaExists, schemaOwner } from "../pg/catalog.ts";
import { copySchema, syncDelta } from "../pg/copy.ts";
import { readMarkers, writeMarker, type CutoverMarker } from "../pg/marker.ts";
import { ensureMember, qn } from "../pg/sql.ts";
import { dumpToCellBucket, emptyCellSchema, requireBackups } from "./backup.ts";
import { handOver } from "./handover.ts";
import { editTenantText, isoSeconds, tenantPath } from "../../../infra/model/fleetFiles/index.ts";
import { json } from "../engine/engine.ts";
import { expectLogin, openSession, terminateSessions, withSession } from "../pg/sessions.ts";
import { cellStacks, cellsOf, dedicatedStacks, envsOf, upStacks } from "./stacks.ts";
import { commitFiles, requireTenant, type TenantFile } from "./tenantFile.ts";
import type pg from "pg";

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

async function setPhase(ctx: StepContext, tf: TenantFile, phase: (typeof PHASE_ORDER)[number], extra: [string[], unknown][] = []): Promise<string | undefined> {
  const text = editTenantText(tf.text, [[["migration", "phase"], phase], ...extra.map(([p, v]) => [p, v] as const)]);
  return commitFiles(ctx, `upgrade ${ctx.workflow.tenantId} to dedicated: migration phase ${phase}`, { [tenantPath(ctx.workflow.tenantId)]: text });
}

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

/** Refuses when any env already holds a cutover marker: copying over a live dedicated database would lose data. */
async function assertNotCutOver(c: pg.ClientBase, tenantId: string, env: string): Promise<void> {
  const markers = await readMarkers(c, tenantId);
  if (markers.length > 0) {
    throw new PermanentError(`the dedicated database of ${tenantId} (${env}) was cut over by workflow ${markers[0]!.workflowId} at ${markers[0]!.completedAt.toISOString()}; it is live and is never copied over`);
  }
}

const copyData = {
  name: "copy.data",
  async run(ctx: StepContext) {
    const tf = await requireTenant(ctx);
    const { tenant, migration } = migrating(tf, "copy.data");
    if (migration.phase !== "copying") throw new PermanentError(`copy.data runs in phase copying, the file says ${migration.phase}`);
    const schema = pgTenantIdent(tenant.id);
    const out: JsonObject = {};
    for (const env of envsOf(tenant)) {
      const cell = migration.from[env]!;
      const src = await openSession(await ctx.ports.databases.cell(env, cell));
      const dst = await openSession(await ctx.ports.databases.dedicated(tenant.id, env));
      try {
        await assertNotCutOver(dst, tenant.id, env);
        const owner = await schemaOwner(dst, schema);
        if (!owner) throw new Error(`the dedicated database of ${tenant.id} (${env}) has no schema ${schema}`);
        await ensureMember(src, schema);
        await ensureMember(dst, owner);
        const started = Date.now();
        const r = await copySchema(src, dst, schema, owner);
        ctx.log({ env, cell, rows: r.rowsCopied, ms: Date.now() - started }, `copied ${schema} to the dedicated database and verified it`);
        out[env] = json({ cell, rowsCopied: r.rowsCopied, tables: r.tables });
      } finally {
        await src.end().catch(() => undefined);
        await dst.end().catch(() => undefined);
      }
    }
    return done(out);
  },
};

// --- cutover ------------------------------------------------------------------------------------

const cutoverWindow = {
  name: "cutover.window",
  async run(ctx: StepContext) {
    const p = params(UpgradeParamsSchema, ctx);
    if (p.cutoverNotBefore) {
      const at = new Date(p.cutoverNotBefore);
      if (ctx.ports.clock.now() < at) return waitUntil(at, `cutover not before ${p.cutoverNotBefore}`);
    }
    return done();
  },
};

const cutoverSwitch = {
  name: "cutover.switch",
  async run(ctx: StepContext) {
    const tf = await requireTenant(ctx);
    const { tenant, migration } = migrating(tf, "cutover.switch");
    if (phaseIndex(migration.phase) < phaseIndex("copying")) throw new PermanentError(`cutover.switch: the copy has not run (phase ${migration.phase})`);
    const id = tenant.id;
    const schema = pgTenantIdent(id);
    const timeout = ctx.config.cutoverTimeoutMs;
    const results: JsonObject = {};
    const targets = new Map<string, pg.Client>();
    try {
      // 1. The dedicated copies, locked: from here on nothing reads or writes them until they are complete.
      for (const env of envsOf(tenant)) {
        const dst = await openSession(await ctx.ports.databases.dedicated(id, env));
        const mine = (await readMarkers(dst, id)).find((m) => m.workflowId === ctx.workflow.id && m.env === env);
        if (mine) {
          results[env] = json({ resumed: true, completedAt: mine.completedAt, tables: mine.tables });
          await dst.end();
          continue;
        }
        targets.set(env, dst);
        await ensureMember(dst, (await schemaOwner(dst, schema)) ?? schema);
        await dst.query("BEGIN");
        await dst.query(`SET LOCAL lock_timeout = ${Number(timeout)}`);
        const tables = (await readSchema(dst, schema)).tables.map((t) => qn(schema, t.name));
        if (tables.length > 0) await dst.query(`LOCK TABLE ${tables.join(", ")} IN ACCESS EXCLUSIVE MODE`);
      }
      if (targets.size === 0) return done(results);

      // 2. The identity changes hands before the commit that makes the cell stop declaring it.
      const moves = envsOf(tenant).map((env) => ({
        source: cellStackName(env, migration.from[env]!), dest: dedicatedStackName(id, env), urns: identityHandoverUrns(tenant, env, migration.from[env]!), all: true,
      }));
      results.handover = await handOver(ctx, moves, `hand the identity of ${id} over to its dedicated stack at cutover`);

      // 3. Phase cutover, then the cell stacks: LOGIN off, DNS to the dedicated zone.
      if (migration.phase === "copying") await setPhase(ctx, tf, "cutover");
      const envs = [...targets.keys()];
      const stacks = cellStacks(Object.fromEntries(envs.map((e) => [e, migration.from[e]!])));
      await upStacks(ctx, stacks, "cutover: the cell role loses LOGIN, the cell DNS name points to the dedicated zone");

      // 4. Per env: writes stopped for sure, final delta, verification, marker, commit.
      for (const env of envs) {
        const dst = targets.get(env)!;
        const cell = migration.from[env]!;
        const src = await openSession(await ctx.ports.databases.cell(env, cell));
        try {
          await expectLogin(src, id, false, cellStackName(env, cell));
          await ensureMember(src, schema);
          const terminated = await terminateSessions(src, id, timeout);
          await src.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
          const delta = await syncDelta(src, dst, schema);
          const marker: CutoverMarker = { workflowId: ctx.workflow.id, tenantId: id, env, completedAt: ctx.ports.clock.now(), tables: delta.tables };
          await writeMarker(dst, marker);
          await dst.query("COMMIT");
          targets.delete(env);
          await dst.end();
          await src.query("COMMIT");
          ctx.log({ env, cell, terminated, changes: delta.changes }, "cutover done: final delta applied and verified; the dedicated database serves");
          results[env] = json({ terminatedSessions: terminated, changes: delta.changes, tables: delta.tables });
        } finally {
          await src.end().catch(() => undefined);
        }
      }
      return done(results);
    } finally {
      for (const dst of targets.values()) {
        await dst.query("ROLLBACK").catch(() => undefined);
        await dst.end().catch(() => undefined);
      }
    }
  },
};

const cutoverConnect = {
  name: "cutover.connect",
  async run(ctx: StepContext) {
    const { tenant, migration } = migrating(await requireTenant(ctx), "cutover.connect");
    if (phaseIndex(migration.phase) < phaseIndex("cutover")) throw new PermanentError(`cutover.connect runs after cutover, the file says ${migration.phase}`);
    const stacks = dedicatedStacks(tenant.id, envsOf(tenant));
    const runs = await upStacks(ctx, stacks, "cutover: the dedicated stack takes over the tenant's identity; its connection document names the dedicated database");
    for (const env of envsOf(tenant)) {
      await withSession(await ctx.ports.databases.dedicated(tenant.id, env), (c) => expectLogin(c, tenant.id, true, dedicatedStackName(tenant.id, env)));
    }
    return done({ runs });
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
      const text = editTenantText(tf.text, [[["migration"], undefined]]);
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

export const upgradeWorkflow: WorkflowDef = {
  kind: "upgrade",
  schema: "moves",
  steps: [provisionKey, provisionFiles, provisionStacks, copyFiles, copyData, cutoverWindow, cutoverSwitch, cutoverConnect, cleanupSchedule, cleanupWait, cleanupDump, cleanupEmpty, cleanupFiles, cleanupStacks],
};

/** The steps at and after which a rollback is refused. */
export const CUTOVER_STEP = cutoverSwitch.name;
