import { listWorkflows, type WorkflowSummary } from "../../automation/index.ts";
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
    io.out(formatWorkflows(rows, opts.json === true));
    return 0;
  });
}

/**
 * The listing as `tenantctl workflows` prints it. WAKES: when an open workflow is taken up again
 * and why (a scheduled switch: its next wake-up to apply the change stream, and the time it waits
 * for); `cancelling` when a cancel is recorded while a step runs.
 */
export function formatWorkflows(rows: readonly WorkflowSummary[], json: boolean): string {
  if (json) {
    return JSON.stringify(rows.map((r) => ({
      id: r.id, kind: r.kind, tenant: r.tenantId, state: r.state, step: r.currentStep, lastError: r.lastError,
      wakeAt: r.wakeAt?.toISOString() ?? null, note: r.note, cancelRequestedAt: r.cancelRequestedAt?.toISOString() ?? null, updatedAt: r.updatedAt.toISOString(),
    })));
  }
  if (rows.length === 0) return "no workflows match";
  return table(
    ["ID", "KIND", "TENANT", "STATE", "STEP", "WAKES", "UPDATED", "LAST ERROR"],
    rows.map((r) => [r.id, r.kind, r.tenantId, r.cancelRequestedAt && OPEN.includes(r.state) ? `${r.state} (cancelling)` : r.state, r.currentStep ?? "-", wakes(r), r.updatedAt.toISOString(), oneLine(r.lastError)]),
  );
}

const OPEN = ["pending", "running", "waiting"];

function wakes(r: WorkflowSummary): string {
  if (!r.wakeAt) return "-";
  return r.state === "waiting" && r.note ? `${r.wakeAt.toISOString()} (${r.note})` : r.wakeAt.toISOString();
}

function oneLine(s: string | null): string {
  if (!s) return "-";
  const line = s.replace(/\s+/g, " ");
  return line.length > 100 ? `${line.slice(0, 99)}…` : line;
}
