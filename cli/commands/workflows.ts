import { listWorkflows } from "../../automation/index.ts";
import { withControlPlane } from "../lifecycle/operatorWorkflows.ts";
import { TENANT_ID_PATTERN } from "../../infra/model/naming.ts";
import { UsageError, type Io } from "../io.ts";
import { table } from "../table.ts";
import { dbUrl } from "./upgrade.ts";

export interface WorkflowsOptions {
  tenant?: string;
  state?: string;
  limit?: string;
  json?: boolean;
}

/**
 * `tenantctl workflows [--tenant ID] [--state STATE|open] [--limit N] [--json]`: the most recent
 * lifecycle workflows in the control plane's database, newest first (how an operator finds the
 * id to give `tenantctl retry`). Needs DATABASE_URL.
 */
export async function workflowsCommand(opts: WorkflowsOptions, io: Io): Promise<number> {
  if (opts.tenant !== undefined && !TENANT_ID_PATTERN.test(opts.tenant)) throw new UsageError(`--tenant ${opts.tenant}: not a tenant id (a DNS label)`);
  const limit = opts.limit === undefined ? 50 : Number(opts.limit);
  if (!/^\d+$/.test(opts.limit ?? "50") || limit < 1 || limit > 1000) throw new UsageError(`--limit ${opts.limit}: expected a whole number from 1 to 1000`);
  return withControlPlane(dbUrl().databaseUrl, "listing workflows", io, async (pool) => {
    const rows = await listWorkflows(pool, { ...(opts.tenant ? { tenantId: opts.tenant } : {}), ...(opts.state ? { state: opts.state } : {}), limit });
    if (opts.json) {
      io.out(JSON.stringify(rows.map((r) => ({ id: r.id, kind: r.kind, tenant: r.tenantId, state: r.state, step: r.currentStep, lastError: r.lastError, updatedAt: r.updatedAt.toISOString() }))));
    } else if (rows.length === 0) {
      io.out("no workflows match");
    } else {
      io.out(table(
        ["ID", "KIND", "TENANT", "STATE", "STEP", "UPDATED", "LAST ERROR"],
        rows.map((r) => [r.id, r.kind, r.tenantId, r.state, r.currentStep ?? "-", r.updatedAt.toISOString(), oneLine(r.lastError)]),
      ));
    }
    return 0;
  });
}

function oneLine(s: string | null): string {
  if (!s) return "-";
  const line = s.replace(/\s+/g, " ");
  return line.length > 100 ? `${line.slice(0, 99)}…` : line;
}
