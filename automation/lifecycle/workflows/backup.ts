/**
 * Final backups and the guard every destructive step calls. A backup counts only once it is a
 * row in lifecycle_backups (written with its step's completion); the guard reads those rows from
 * the database, never a value held in memory.
 */
import { pipeline } from "node:stream/promises";
import { PassThrough } from "node:stream";
import { createGzip } from "node:zlib";
import { pgTenantIdent } from "../../../infra/model/naming.ts";
import { PermanentError, type BackupInput, type BackupRecord, type StepContext } from "../engine.ts";
import { schemaExists } from "../pg/catalog.ts";
import { dumpSchema } from "../pg/copy.ts";
import { ensureMember } from "../pg/sql.ts";
import { withSession } from "./common.ts";

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
export async function dumpToCellBucket(ctx: StepContext, env: string, cell: string, reason: string): Promise<BackupInput> {
  const tenantId = ctx.workflow.tenantId;
  const schema = pgTenantIdent(tenantId);
  const key = dumpKey(tenantId, ctx.workflow.id, env);
  const stored = await withSession(await ctx.ports.databases.cell(env, cell), async (c) => {
    if (!(await schemaExists(c, schema))) throw new PermanentError(`schema ${schema} does not exist in cell ${cell} (${env}); nothing to dump`);
    await ensureMember(c, schema);
    const gz = new PassThrough();
    const put = ctx.ports.backups.put({ env, cell }, key, gz);
    await Promise.all([pipeline(dumpSchema(c, schema, `tenant ${tenantId}, ${env}, cell ${cell}`), createGzip(), gz), put]);
    return put;
  });
  ctx.log({ env, cell, location: stored.location, bytes: stored.bytes }, `schema ${schema} dumped to the cell bucket`);
  return { env, kind: "schema-dump", location: stored.location, bytes: stored.bytes, sha256: stored.sha256, detail: { cell, schema, reason, format: "psql plain SQL, gzip" } };
}

/**
 * Refuses unless a backup of every env is recorded by this workflow. Returns them by env.
 */
export async function requireBackups(ctx: StepContext, envs: readonly string[], what: string): Promise<Map<string, BackupRecord>> {
  const recorded = await ctx.backups();
  const byEnv = new Map(recorded.map((b) => [b.env, b]));
  const missing = envs.filter((e) => !byEnv.has(e));
  if (missing.length > 0) {
    throw new PermanentError(
      `refusing to ${what} for tenant ${ctx.workflow.tenantId}: no final backup is recorded for ${missing.join(", ")} ` +
        `(workflow ${ctx.workflow.id}); nothing was deleted`,
    );
  }
  return byEnv;
}
