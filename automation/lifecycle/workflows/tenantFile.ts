/**
 * A workflow step's view of the tenant's file: read it as committed now (validated on its own)
 * and commit edits through the FleetRepo port. The edits themselves are the model layer's
 * (infra/model/fleetFiles).
 */
import { loadPlatform, type Platform } from "../../../infra/model/platform.ts";
import type { Tenant } from "../../../infra/model/schema.ts";
import { parseTenantFile } from "../../../infra/model/tenantFile.ts";
import { formatProblem } from "../../../infra/model/problems.ts";
import { tenantPath } from "../../../infra/model/fleetFiles/index.ts";
import { PermanentError, type StepContext } from "../engine/engine.ts";

export interface TenantFile {
  text: string;
  tenant: Tenant;
  platform: Platform;
}

/** The tenant's file as committed now, parsed and validated on its own. */
export async function readTenant(ctx: StepContext, tenantId: string = ctx.workflow.tenantId): Promise<TenantFile | undefined> {
  const path = tenantPath(tenantId);
  const text = await ctx.ports.repo.read(path);
  if (text === undefined) return undefined;
  const platform = loadPlatform(ctx.ports.repo.root);
  const parsed = parseTenantFile(path, text, { regions: platform.regions, environments: platform.environments }, tenantId);
  if (Array.isArray(parsed)) throw new PermanentError(`${path} does not validate: ${parsed.map(formatProblem).join("; ")}`);
  return { text, tenant: parsed.tenant, platform };
}

export async function requireTenant(ctx: StepContext): Promise<TenantFile> {
  const t = await readTenant(ctx);
  if (!t) throw new PermanentError(`tenant ${ctx.workflow.tenantId} has no file ${tenantPath(ctx.workflow.tenantId)}`);
  return t;
}

/** Commits `files` (no-op when nothing changes); returns the commit id, if one was made. */
export async function commitFiles(ctx: StepContext, summary: string, files: Record<string, string | null>): Promise<string | undefined> {
  const commit = await ctx.ports.repo.commit({ tenantId: ctx.workflow.tenantId, workflowId: ctx.workflow.id, summary, files });
  ctx.log({ commit: commit ?? null, files: Object.keys(files) }, commit ? `committed: ${summary}` : `already committed: ${summary}`);
  return commit;
}
