import { OPEN_STATES } from "../../automation/lifecycle/engine.ts";
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
    const where: string[] = [];
    const values: unknown[] = [];
    if (opts.tenant) where.push(`tenant_id = $${values.push(opts.tenant)}`);
    if (opts.state === "open") where.push(`state = ANY($${values.push(OPEN_STATES)}::text[])`);
    else if (opts.state) where.push(`state = $${values.push(opts.state)}`);
    const { rows } = await pool.query<{ id: string; kind: string; tenant_id: string; state: string; current_step: string | null; last_error: string | null; updated_at: Date }>(
      `SELECT id, kind, tenant_id, state, current_step, last_error, updated_at FROM lifecycle_workflows
        ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, id LIMIT $${values.push(limit)}`,
      values,
    );
    if (opts.json) {
      io.out(JSON.stringify(rows.map((r) => ({ id: r.id, kind: r.kind, tenant: r.tenant_id, state: r.state, step: r.current_step, lastError: r.last_error, updatedAt: r.updated_at.toISOString() }))));
    } else if (rows.length === 0) {
      io.out("no workflows match");
    } else {
      io.out(table(
        ["ID", "KIND", "TENANT", "STATE", "STEP", "UPDATED", "LAST ERROR"],
        rows.map((r) => [r.id, r.kind, r.tenant_id, r.state, r.current_step ?? "-", r.updated_at.toISOString(), oneLine(r.last_error)]),
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
