/**
 * Offboarding.
 *
 *   offboard.preflight  before any change: the ports the later steps need are usable (the
 *                     backup store for every env of a pooled tenant, RDS snapshots for a
 *                     dedicated one, Secrets Manager); otherwise a PermanentError naming what to
 *                     configure, and the tenant keeps its file, LOGIN and data as they were.
 *                     Reads only, so running it again after a crash is harmless.
 *   offboard.files    lifecycle offboarding, offboarding { requestedAt, graceDays }; one commit.
 *                     The tenant's facts (envs, cells, secrets) are recorded in the step's output,
 *                     so later steps still know them once the file has moved to the archive.
 *   offboard.stacks   `up` of the tenant's stacks (whatever they render for offboarding).
 *   offboard.grace    waits until requestedAt + graceDays (config, default 30).
 *   offboard.backup   the preflight's checks again (the configuration may have changed during the
 *                     grace period; a pooled dump revokes LOGIN first), then per env: dedicated ->
 *                     a manual RDS snapshot, requested and waited for until available, then every
 *                     current object version of the tenant's bucket copied into the bucket of the
 *                     first cell of that env and region (objectBackupCell); pooled -> the schema
 *                     dumped into the cell bucket and the objects under `tenants/<id>/` copied
 *                     beside it. Recorded in lifecycle_backups with the step's completion.
 *   offboard.delete   GUARDED: dedicated -> the buckets checked against their recorded copies
 *                     (nothing written since), offboarding.finalBackupAt and objectBackupAt
 *                     committed to the tenant file and `up` of its stacks (bucket and zones
 *                     forceDestroy: into the state, infra/model/destroy.ts), then each stack
 *                     destroyed, protection lifted for it only (authorizeProtectionRelease);
 *                     pooled -> the cell schema emptied, then every version and delete marker
 *                     under `tenants/<id>/` of the cell bucket deleted (refused while a current
 *                     version is not in the recorded copy).
 *   offboard.archive  GUARDED: tenants/<id>.yaml moves to tenants/archive/<id>.yaml with the
 *                     record of what was kept where; the dedicated stack files are removed.
 *   offboard.detach   GUARDED: pooled -> `up` of the cell stacks (role, schema, secrets, IAM
 *                     role and DNS name leave the cell). Dedicated stacks are already destroyed
 *                     (their zone and NS delegation with them).
 *   offboard.secrets  GUARDED: every secret of the tenant scheduled for deletion with the
 *                     recovery window (config), idempotently.
 *
 * GUARDED steps call `assertDeletable` first: it re-reads the grace period's end (from the
 * database) and the recorded backups (from the database) and refuses otherwise. Nothing is
 * deleted before the grace period ends or before a final backup of every env is recorded.
 */
import { stringify } from "yaml";
import { cellStackName, dedicatedStackName, pgTenantIdent } from "../../../infra/model/naming.ts";
import { dedicatedDbIdentifier } from "../../../infra/model/infraNames.ts";
import { done, PermanentError, waitUntil, type BackupInput, type JsonObject, type StepContext, type WorkflowDef } from "../engine/engine.ts";
import { schemaExists } from "../pg/catalog.ts";
import { EditRefusedError, finalBackupEdit, offboardRequestEdit } from "../../../infra/model/fleetFiles/index.ts";
import { copyTenantObjects, dumpToCellBucket, emptyCellSchema, objectCopies, purgeTenantObjects } from "./backup.ts";
import { archivePath, isoSeconds, stackPath, tenantPath } from "../../../infra/model/fleetFiles/index.ts";
import { json } from "../engine/engine.ts";
import { withSession } from "../pg/sessions.ts";
import { cellStacks, envsOf, upStacks } from "./stacks.ts";
import { commitFiles, requireTenant } from "./tenantFile.ts";
import { assertDeletable, authorizeProtectionRelease, facts, graceEnd, type TenantFacts, objectBackupCell, objectsOf, offboardSnapshotId, OffboardParamsSchema, preflight, preflightFacts, secretNamesOf, latestBackup } from "./offboardGuards.ts";

const offboardPreflight = {
  name: "offboard.preflight",
  async run(ctx: StepContext) {
    const f = await preflightFacts(ctx);
    const checked = await preflight(ctx, f, "Nothing was changed: the tenant keeps its file, its access (LOGIN) and its data");
    ctx.log(checked, "offboarding preflight: every port the offboarding needs is usable");
    return done(checked);
  },
};

const offboardFiles = {
  name: "offboard.files",
  async run(ctx: StepContext) {
    const p = OffboardParamsSchema.parse(ctx.workflow.params);
    const tf = await requireTenant(ctx);
    const t = tf.tenant;
    let edit: ReturnType<typeof offboardRequestEdit>;
    try {
      edit = offboardRequestEdit(tf.text, t, ctx.ports.clock.now(), p.graceDays ?? ctx.config.graceDays);
    } catch (err) {
      if (err instanceof EditRefusedError) throw new PermanentError(err.message);
      throw err;
    }
    const { requestedAt, graceDays } = edit;
    const commit = edit.files ? await commitFiles(ctx, `offboard ${t.id}: data kept until ${graceEnd({ requestedAt, graceDays }).toISOString()}`, edit.files) : undefined;
    const envs = envsOf(t);
    const f: TenantFacts = {
      app: tf.platform.appName,
      deployment: t.deployment,
      region: t.region,
      envs,
      cells: t.deployment === "pooled" ? { ...(t.placement as Record<string, string>) } : {},
      secrets: Object.fromEntries(envs.map((e) => [e, secretNamesOf(tf.platform.appName, t, e)])),
      requestedAt,
      graceDays,
    };
    return done(json({ ...f, commit: commit ?? null }));
  },
};

const offboardStacks = {
  name: "offboard.stacks",
  async run(ctx: StepContext) {
    const f = facts(ctx);
    const stacks = f.deployment === "pooled" ? cellStacks(f.cells) : f.envs.map((e) => dedicatedStackName(ctx.workflow.tenantId, e));
    return done({ runs: await upStacks(ctx, stacks, "offboarding requested") });
  },
};

const offboardGrace = {
  name: "offboard.grace",
  async run(ctx: StepContext) {
    const f = facts(ctx);
    const end = graceEnd(f);
    if (ctx.ports.clock.now() < end) return waitUntil(end, `grace period: the tenant's data is kept until ${end.toISOString()}`);
    return done({ graceEndedAt: end.toISOString() });
  },
};

const offboardBackup = {
  name: "offboard.backup",
  async run(ctx: StepContext) {
    const f = facts(ctx);
    const id = ctx.workflow.tenantId;
    // Again here: the configuration may have changed during the grace period, and a pooled dump
    // revokes LOGIN before it writes anything.
    await preflight(ctx, f, "LOGIN was not revoked, no backup was taken and nothing was deleted");
    const backups: BackupInput[] = [];
    if (f.deployment === "pooled") {
      for (const env of f.envs) {
        backups.push(await dumpToCellBucket(ctx, env, f.cells[env]!, "offboarding: final dump before the schema is dropped", { stopWrites: true }));
        backups.push(await copyTenantObjects(ctx, objectsOf(f, id, env), { env, cell: f.cells[env]! }));
      }
      return done(json({ locations: backups.map((b) => b.location) }), backups);
    }
    const app = f.app;
    const pending: string[] = [];
    for (const env of f.envs) {
      const instance = dedicatedDbIdentifier(app, env, id);
      const snapshotId = offboardSnapshotId(app, env, id, ctx.workflow.id);
      await ctx.ports.snapshots.request(instance, snapshotId, f.region);
      const state = await ctx.ports.snapshots.state(snapshotId, f.region);
      if (state === "failed" || state === "missing") throw new PermanentError(`RDS snapshot ${snapshotId} of ${instance} is ${state}; nothing was deleted`);
      if (state === "creating") pending.push(snapshotId);
      else backups.push({ env, kind: "rds-snapshot", location: `rds:${f.region}:snapshot:${snapshotId}`, detail: { instance, snapshotId, region: f.region } });
    }
    if (pending.length > 0) {
      return waitUntil(new Date(ctx.ports.clock.now().getTime() + ctx.config.pollSeconds * 1000), `waiting for RDS snapshots ${pending.join(", ")} to become available`);
    }
    // Once, after the snapshots (not on every poll): the bucket's objects, beside them.
    for (const env of f.envs) backups.push(await copyTenantObjects(ctx, objectsOf(f, id, env), { env, cell: objectBackupCell(ctx.ports.repo.root, env, f.region) }));
    return done(json({ locations: backups.map((b) => b.location) }), backups);
  },
};

const offboardDelete = {
  name: "offboard.delete",
  async run(ctx: StepContext) {
    const { facts: f, backups } = await assertDeletable(ctx, "delete data");
    const id = ctx.workflow.tenantId;
    if (f.deployment === "dedicated") {
      // The destroy can only finish on stacks whose state keeps the bucket and lets the zones be
      // emptied: the file records the final backup, then an up writes that into the state (the
      // provider and the engine read it from there). Both are idempotent on a retry.
      const stacks = f.envs.map((e) => dedicatedStackName(id, e));
      // The bucket is emptied by the destroy only when every env's copy of its objects is recorded
      // and nothing was written there since (checked here, reading only). A workflow that recorded
      // its backups before object copies existed keeps the bucket (retainOnDelete).
      const copies = await objectCopies(ctx);
      const copied = f.envs.every((e) => copies.has(e));
      if (copied) for (const env of f.envs) await purgeTenantObjects(ctx, objectsOf(f, id, env), copies.get(env)!, { verifyOnly: true });
      const tf = await requireTenant(ctx);
      let edit: ReturnType<typeof finalBackupEdit>;
      try {
        edit = finalBackupEdit(tf.text, tf.tenant, latestBackup(backups), copied ? latestBackup(copies) : undefined);
      } catch (err) {
        if (err instanceof EditRefusedError) throw new PermanentError(`${err.message}; nothing was deleted`);
        throw err;
      }
      const commit = edit ? await commitFiles(ctx, `offboard ${id}: final backups recorded; the dedicated stacks may be emptied`, edit) : undefined;
      const releaseRuns = await upStacks(
        ctx,
        stacks,
        copied
          ? "final backup and object copy recorded: bucket and zones forceDestroy, RDS deletion protection off"
          : "final backup recorded, no object copy: bucket kept, forceDestroy on the zones, RDS deletion protection off",
      );
      const destroyed: string[] = [];
      for (const env of f.envs) {
        const release = await authorizeProtectionRelease(ctx, env);
        // Pulumi `protect` is lifted by the runner for this destroy run; RDS deletion protection is
        // an AWS-side flag that a destroy cannot bypass, so it is turned off first.
        await ctx.ports.snapshots.disableDeletionProtection(dedicatedDbIdentifier(f.app, env, id), f.region, release);
        await ctx.ports.runner.destroy(release.stack, ctx.runContext("offboarding after the grace period and a recorded final snapshot"), release);
        destroyed.push(release.stack);
      }
      return done({ destroyed, finalBackupCommit: commit ?? null, releaseRuns, bucket: copied ? "emptied by the destroy (objects copied)" : "kept (no object copy recorded)" });
    }
    const schema = pgTenantIdent(id);
    // The objects are checked against their copies before anything is deleted: a refusal (written
    // after the copy) leaves schema and objects as they are.
    const copies = await objectCopies(ctx);
    for (const env of f.envs) {
      const copy = copies.get(env);
      if (copy) await purgeTenantObjects(ctx, objectsOf(f, id, env), copy, { verifyOnly: true });
    }
    const dropped: JsonObject = {};
    for (const env of f.envs) dropped[env] = await emptyCellSchema(ctx, env, f.cells[env]!, backups.get(env)!);
    // Then the objects under tenants/<id>/, every version, once the copy is recorded (a workflow that
    // recorded its backups before object copies existed leaves them, and says so).
    const objects: JsonObject = {};
    for (const env of f.envs) {
      const copy = copies.get(env);
      objects[env] = copy ? json(await purgeTenantObjects(ctx, objectsOf(f, id, env), copy)) : "kept: no object copy recorded";
    }
    return done({ droppedObjects: dropped, schema, objects });
  },
};

const offboardArchive = {
  name: "offboard.archive",
  async run(ctx: StepContext) {
    const { facts: f } = await assertDeletable(ctx, "archive the tenant file");
    const id = ctx.workflow.tenantId;
    const text = await ctx.ports.repo.read(tenantPath(id));
    if (text === undefined) {
      if ((await ctx.ports.repo.read(archivePath(id))) === undefined) throw new PermanentError(`tenant ${id} has neither a file nor an archived file`);
      return done({ commit: null });
    }
    const record = {
      archivedAt: isoSeconds(ctx.ports.clock.now()),
      workflow: ctx.workflow.id,
      offboarding: { requestedAt: f.requestedAt, graceDays: f.graceDays, graceEndedAt: graceEnd(f).toISOString() },
      deployment: f.deployment,
      // Every recorded backup: the databases' and the objects' copies.
      kept: (await ctx.backups()).map((b) => ({
        env: b.env, kind: b.kind, location: b.location,
        ...(b.bytes !== null ? { bytes: b.bytes } : {}), ...(b.sha256 ? { sha256: b.sha256 } : {}),
        recordedAt: b.recordedAt.toISOString(), ...b.detail,
      })),
      deleted: f.deployment === "dedicated"
        ? { stacksDestroyed: f.envs.map((e) => dedicatedStackName(id, e)) }
        : { schemaDroppedFrom: f.envs.map((e) => cellStackName(e, f.cells[e]!)), objectsDeletedFrom: f.envs.map((e) => `${cellStackName(e, f.cells[e]!)}: tenants/${id}/`) },
      secrets: { recoveryWindowDays: ctx.config.secretRecoveryDays, names: Object.values(f.secrets).flat() },
      tenantFile: text,
    };
    const files: Record<string, string | null> = {
      [tenantPath(id)]: null,
      [archivePath(id)]: `# Offboarded tenant ${id}: what was kept where. tenants/archive/ is not read by tenantctl or the stacks.\n${stringify(record)}`,
    };
    if (f.deployment === "dedicated") for (const env of f.envs) files[stackPath(dedicatedStackName(id, env))] = null;
    const commit = await commitFiles(ctx, `offboard ${id}: archived after the grace period; final backups recorded`, files);
    return done({ commit: commit ?? null, archive: archivePath(id) });
  },
};

const offboardDetach = {
  name: "offboard.detach",
  async run(ctx: StepContext) {
    const { facts: f } = await assertDeletable(ctx, "remove the tenant from its stacks");
    if (f.deployment === "dedicated") return done({ runs: [] });
    const runs = await upStacks(ctx, cellStacks(f.cells), "offboarded tenant leaves the cell (role, schema, secrets, IAM role, DNS name)");
    const schema = pgTenantIdent(ctx.workflow.tenantId);
    for (const env of f.envs) {
      const left = await withSession(await ctx.ports.databases.cell(env, f.cells[env]!), (c) => schemaExists(c, schema));
      if (left) throw new Error(`${cellStackName(env, f.cells[env]!)} was updated but schema ${schema} is still there; check the stack's last run`);
    }
    return done({ runs });
  },
};

const offboardSecrets = {
  name: "offboard.secrets",
  async run(ctx: StepContext) {
    const { facts: f } = await assertDeletable(ctx, "schedule the secrets' deletion");
    const out: JsonObject[] = [];
    for (const env of f.envs) {
      for (const name of f.secrets[env] ?? []) {
        const r = await ctx.ports.secrets.scheduleDeletion(name, f.region, ctx.config.secretRecoveryDays);
        out.push(json(r));
      }
    }
    return done({ recoveryWindowDays: ctx.config.secretRecoveryDays, secrets: out });
  },
};

export const offboardWorkflow: WorkflowDef<"offboard"> = {
  kind: "offboard",
  steps: [offboardPreflight, offboardFiles, offboardStacks, offboardGrace, offboardBackup, offboardDelete, offboardArchive, offboardDetach, offboardSecrets],
};
