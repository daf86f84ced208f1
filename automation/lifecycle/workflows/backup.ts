/**
 * Final backups and the guard every destructive step calls. A backup counts only once it is a
 * row in lifecycle_backups (written with its step's completion); the guard reads those rows from
 * the database, never a value held in memory.
 */
import { pipeline } from "node:stream/promises";
import { PassThrough } from "node:stream";
import { createGzip } from "node:zlib";
import { pgTenantIdent } from "../../../infra/model/naming.ts";
import { PermanentError, type BackupInput, type BackupRecord, type StepContext } from "../engine/engine.ts";
import { ChangedSinceCopyError, type CellBucketRef, type ObjectPurge, type RecordedObjectCopy, type TenantObjects } from "../ports.ts";
import { schemaExists } from "../pg/catalog.ts";
import { ChangedSinceBackupError, dumpSchema, emptySchemaIfUnchanged, type TableChecksum } from "../pg/copy.ts";
import { ensureMember, qi } from "../pg/sql.ts";
import { json } from "../engine/engine.ts";
import { terminateSessions, withSession } from "../pg/sessions.ts";

/**
 * Object key of a tenant's final dump in its cell bucket. Outside `tenants/<id>/`, the prefix the
 * tenant's own IAM role may write to, so the tenant cannot delete its own final backup.
 */
export function dumpKey(tenantId: string, workflowId: string, env: string): string {
  return `backups/tenants/${tenantId}/${workflowId}/${env}-${pgTenantIdent(tenantId)}.sql.gz`;
}

/**
 * Dumps the tenant's schema in a cell database into the cell bucket (gzip, psql format; see
 * dumpSchema). Run again after a crash it writes the same key again. Writes to the schema must
 * have stopped (LOGIN revoked) for the dump to be final.
 */
export async function dumpToCellBucket(ctx: StepContext, env: string, cell: string, reason: string, opts: { stopWrites: boolean }): Promise<BackupInput> {
  const tenantId = ctx.workflow.tenantId;
  const schema = pgTenantIdent(tenantId);
  const key = dumpKey(tenantId, ctx.workflow.id, env);
  const stored = await withSession(await ctx.ports.databases.cell(env, cell), async (c) => {
    if (!(await schemaExists(c, schema))) throw new PermanentError(`schema ${schema} does not exist in cell ${cell} (${env}); nothing to dump`);
    await ensureMember(c, schema);
    if (opts.stopWrites) {
      // The final dump must hold the last write: no session may write after it. The stacks keep an
      // offboarding tenant's LOGIN, so it is revoked here (the detach removes the role anyway);
      // should a stack update restore it before the deletion, the checksum comparison there refuses.
      await c.query(`ALTER ROLE ${qi(schema)} NOLOGIN`);
      await terminateSessions(c, tenantId, ctx.config.cutoverTimeoutMs);
    }
    const gz = new PassThrough();
    const put = ctx.ports.backups.put({ env, cell }, key, gz);
    let tables: TableChecksum[] = [];
    await Promise.all([pipeline(dumpSchema(c, schema, `tenant ${tenantId}, ${env}, cell ${cell}`, (t) => (tables = t)), createGzip(), gz), put]);
    return { stored: await put, tables };
  });
  ctx.log({ env, cell, location: stored.stored.location, bytes: stored.stored.bytes }, `schema ${schema} dumped to the cell bucket`);
  return {
    env, kind: "schema-dump", location: stored.stored.location, bytes: stored.stored.bytes, sha256: stored.stored.sha256,
    detail: json({ cell, schema, reason, format: "psql plain SQL, gzip", tables: stored.tables }),
  };
}

/** The table checksums a recorded dump holds (see dumpToCellBucket). */
export function dumpedTables(b: BackupRecord): TableChecksum[] {
  const tables = (b.detail as { tables?: unknown }).tables;
  if (!Array.isArray(tables)) throw new PermanentError(`backup ${b.id} (${b.location}) records no table checksums; take it again`);
  return tables as TableChecksum[];
}

/**
 * Empties the tenant's schema in a cell if it still holds exactly what the recorded dump holds.
 * A difference is permanent for the workflow: a person decides (re-run the backup step).
 */
export async function emptyCellSchema(ctx: StepContext, env: string, cell: string, backup: BackupRecord): Promise<number> {
  const schema = pgTenantIdent(ctx.workflow.tenantId);
  return withSession(await ctx.ports.databases.cell(env, cell), async (c) => {
    if (!(await schemaExists(c, schema))) return 0;
    await ensureMember(c, schema);
    try {
      return await emptySchemaIfUnchanged(c, schema, dumpedTables(backup));
    } catch (err) {
      if (err instanceof ChangedSinceBackupError) throw new PermanentError(err.message);
      throw err;
    }
  });
}

/**
 * Refuses unless a backup of every env's database (schema dump or RDS snapshot) is recorded by
 * this workflow. Returns them by env. Object copies are recorded beside them (objectCopies).
 */
export async function requireBackups(ctx: StepContext, envs: readonly string[], what: string): Promise<Map<string, BackupRecord>> {
  const recorded = await ctx.backups();
  const byEnv = new Map(recorded.filter((b) => b.kind !== "object-copy").map((b) => [b.env, b]));
  const missing = envs.filter((e) => !byEnv.has(e));
  if (missing.length > 0) {
    throw new PermanentError(
      `refusing to ${what} for tenant ${ctx.workflow.tenantId}: no final backup is recorded for ${missing.join(", ")} ` +
        `(workflow ${ctx.workflow.id}); nothing was deleted`,
    );
  }
  return byEnv;
}

// --- the tenant's objects ---------------------------------------------------------------------------

/** Where the copy of a tenant's objects goes in a cell bucket: beside its dumps, outside `tenants/<id>/`. */
export function objectCopyPrefix(tenantId: string, workflowId: string, env: string): string {
  return `backups/tenants/${tenantId}/${workflowId}/${env}-objects/`;
}

/** One line naming a tenant's objects. */
export function describeObjects(source: TenantObjects): string {
  return source.kind === "cell-prefix" ? `prefix tenants/${source.tenant}/ of cell ${source.cell}'s bucket (${source.env})` : `the bucket of tenant ${source.tenant} (${source.env}, ${source.region})`;
}

/**
 * Copies every current version of the tenant's objects into the cell bucket `dest` (BackupStore
 * copyObjects) and returns the record of the copy: its manifest's digest is what a later purge
 * checks the manifest against. Run again after a crash it copies again (same keys).
 */
export async function copyTenantObjects(ctx: StepContext, source: TenantObjects, dest: CellBucketRef): Promise<BackupInput> {
  const prefix = objectCopyPrefix(ctx.workflow.tenantId, ctx.workflow.id, source.env);
  const copy = await ctx.ports.backups.copyObjects(source, dest, prefix);
  ctx.log({ env: source.env, location: copy.location, objects: copy.objects, bytes: copy.bytes }, `objects of ${describeObjects(source)} copied`);
  return {
    env: source.env, kind: "object-copy", location: copy.location, bytes: copy.bytes, sha256: copy.manifest.sha256,
    detail: json({ cell: dest.cell, manifestKey: `${prefix}manifest.json`, manifest: copy.manifest.location, objects: copy.objects, source: describeObjects(source), versions: "current versions only" }),
  };
}

/** The recorded object copies of this workflow, by env. */
export async function objectCopies(ctx: StepContext): Promise<Map<string, BackupRecord>> {
  return new Map((await ctx.backups()).filter((b) => b.kind === "object-copy").map((b) => [b.env, b]));
}

/** The manifest a recorded copy names (see copyTenantObjects). */
export function recordedCopy(b: BackupRecord): RecordedObjectCopy {
  const d = b.detail as { cell?: unknown; manifestKey?: unknown };
  if (typeof d.cell !== "string" || typeof d.manifestKey !== "string" || !b.sha256) throw new PermanentError(`backup ${b.id} (${b.location}) records no manifest; take it again`);
  return { dest: { env: b.env, cell: d.cell }, manifestKey: d.manifestKey, sha256: b.sha256 };
}

/**
 * Deletes every version and delete marker of the tenant's objects when no current version is
 * missing from the recorded copy (`verifyOnly`: checks, deletes nothing). A version written after
 * the copy is permanent for the workflow, like a schema changed after its dump: a person decides.
 */
export async function purgeTenantObjects(ctx: StepContext, source: TenantObjects, copy: BackupRecord, opts: { verifyOnly?: boolean } = {}): Promise<ObjectPurge> {
  try {
    return await ctx.ports.backups.purgeObjects(source, recordedCopy(copy), opts);
  } catch (err) {
    if (err instanceof ChangedSinceCopyError) throw new PermanentError(err.message);
    throw err;
  }
}
