/** The most recent lifecycle workflows, newest first: how an operator finds the id to retry. */
import type pg from "pg";
import { OPEN_STATES } from "./engine/engine.ts";

export interface WorkflowSummary {
  id: string;
  kind: string;
  tenantId: string;
  state: string;
  currentStep: string | null;
  lastError: string | null;
  /** When an open workflow is taken up again (a wait's end, a scheduled switch's next wake-up, a retry's time); null when due now or ended. */
  wakeAt: Date | null;
  /** Why it waits (e.g. `cutover not before <time>`), or how it ended. */
  note: string | null;
  /** A cancel recorded while a step ran (the workflow ends cancelled once the step has stopped). */
  cancelRequestedAt: Date | null;
  updatedAt: Date;
}

export interface WorkflowFilter {
  tenantId?: string;
  /** One WorkflowState, or "open" for pending, running and waiting (checked where it is used). */
  state?: string;
  limit: number;
}

export async function listWorkflows(pool: pg.Pool, filter: WorkflowFilter): Promise<WorkflowSummary[]> {
  const where: string[] = [];
  const values: unknown[] = [];
  if (filter.tenantId) where.push(`tenant_id = $${values.push(filter.tenantId)}`);
  if (filter.state === "open") where.push(`state = ANY($${values.push(OPEN_STATES)}::text[])`);
  else if (filter.state) where.push(`state = $${values.push(filter.state)}`);
  const { rows } = await pool.query<{
    id: string; kind: string; tenant_id: string; state: string; current_step: string | null; last_error: string | null; wake_at: Date | null; note: string | null;
    cancel_requested_at: Date | null; updated_at: Date;
  }>(
    `SELECT id, kind, tenant_id, state, current_step, last_error, wake_at, note, cancel_requested_at, updated_at FROM lifecycle_workflows
      ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, id LIMIT $${values.push(filter.limit)}`,
    values,
  );
  return rows.map((r) => ({
    id: r.id, kind: r.kind, tenantId: r.tenant_id, state: r.state, currentStep: r.current_step, lastError: r.last_error,
    wakeAt: OPEN_STATES.includes(r.state as (typeof OPEN_STATES)[number]) ? r.wake_at : null, note: r.note, cancelRequestedAt: r.cancel_requested_at, updatedAt: r.updated_at,
  }));
}
