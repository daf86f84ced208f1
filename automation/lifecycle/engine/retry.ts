/**
 * An operator's retry of a failed workflow (WorkflowEngine.retry; POST /api/workflows/:id/retry,
 * `tenantctl retry`): back in the queue at the step it failed in.
 */
import { OPEN_STATES, WorkflowConflictError, WorkflowNotFoundError, type WorkflowRecord } from "./definitions.ts";
import { tenantLockKey, type EngineInternals } from "./internals.ts";
import { toRecord, type WorkflowRow } from "./rows.ts";

/**
 * Puts a failed workflow back in the queue at the step it failed in (after the cause is fixed):
 * state running, attempts 0, due now; `last_error` is kept until the step completes. Refused,
 * naming why, unless the workflow is failed; while the tenant has another workflow under way;
 * and when a later workflow of the tenant has done anything since (a resume after a failed
 * offboarding, say): this one would carry on from a tenant state it no longer knows, so a new
 * request is needed instead. A later workflow cancelled before its first step changed nothing
 * and does not count. Takes the tenant's lock like `create`, so it cannot race a new request.
 */
export async function retryWorkflow(e: EngineInternals, id: string, opts: { by?: string; apiKey?: string } = {}): Promise<WorkflowRecord> {
  const first = await e.get(id);
  if (!first) throw new WorkflowNotFoundError(`no workflow ${id}`);
  const tenantId = first.tenantId;
  const client = await e.pool.connect();
  try {
    await client.query("BEGIN");
    const locked = await client.query<{ ok: boolean }>("SELECT pg_try_advisory_xact_lock($1) AS ok", [tenantLockKey(tenantId)]);
    if (!locked.rows[0]?.ok) {
      throw new WorkflowConflictError(`a workflow step for tenant ${tenantId} is running right now; retry ${id} when it has finished`);
    }
    const wf = toRecord((await client.query<WorkflowRow>("SELECT * FROM lifecycle_workflows WHERE id = $1 FOR UPDATE", [id])).rows[0]!);
    const what = `${wf.kind} workflow ${id} of tenant ${tenantId}`;
    if (wf.state !== "failed") {
      const why =
        wf.state === "succeeded" ? "it has finished; there is nothing to retry"
        : wf.state === "cancelled" ? `a cancelled workflow is not resumed${wf.note ? ` (${wf.note})` : ""}; request a new one`
        : `it is still under way${wf.currentStep ? ` (at ${wf.currentStep}${wf.lastError ? `, last error: ${wf.lastError}` : ""})` : ""}; the lifecycle worker retries its steps itself`;
      throw new WorkflowConflictError(`${what} is ${wf.state}, not failed: only a failed workflow can be retried; ${why}`);
    }
    const open = await client.query<WorkflowRow>(
      "SELECT * FROM lifecycle_workflows WHERE tenant_id = $1 AND id <> $2 AND state = ANY($3::text[])",
      [tenantId, id, OPEN_STATES],
    );
    if (open.rows[0]) {
      const o = toRecord(open.rows[0]);
      throw new WorkflowConflictError(
        `tenant ${tenantId} has another workflow under way: ${o.kind} ${o.id} (${o.state}${o.currentStep ? ` at ${o.currentStep}` : ""}); ` +
          `wait for it to finish or cancel it, then retry ${id}`,
      );
    }
    const later = await client.query<WorkflowRow>(
      `SELECT w.* FROM lifecycle_workflows w
        WHERE w.tenant_id = $1 AND w.id <> $2 AND w.created_at >= $3
          -- (>=: on a tie, count it; a spurious refusal is safer than resuming past a later workflow)
          AND NOT (w.state = 'cancelled' AND w.current_step IS NULL AND NOT EXISTS (SELECT 1 FROM lifecycle_steps s WHERE s.workflow_id = w.id))
        ORDER BY w.created_at DESC LIMIT 1`,
      [tenantId, id, wf.createdAt],
    );
    if (later.rows[0]) {
      const l = toRecord(later.rows[0]);
      throw new WorkflowConflictError(
        `tenant ${tenantId} has had a later workflow since ${what} failed: ${l.kind} ${l.id} (${l.state}, requested ${l.createdAt.toISOString()}); ` +
          `retrying would carry on from a tenant state this workflow no longer knows: request a new ${wf.kind} instead`,
      );
    }
    const note = `retried${opts.by ? ` by ${opts.by}` : ""} after: ${wf.lastError ?? "(no error recorded)"}`;
    const { rows } = await client.query<WorkflowRow>(
      `UPDATE lifecycle_workflows SET state = 'running', attempts = 0, wake_at = NULL, finished_at = NULL, note = $2, updated_at = $3,
              retried_by_api_key = $4
        WHERE id = $1 RETURNING *`,
      [id, note, e.now(), opts.apiKey ?? null],
    );
    await client.query("COMMIT");
    const out = toRecord(rows[0]!);
    e.log.info({ workflowId: id, tenantId, kind: out.kind, step: out.currentStep, by: opts.by ?? null, lastError: out.lastError }, "failed workflow retried");
    return out;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    // The one-open-workflow index: a request that did not take the tenant's lock got there first.
    if ((err as { code?: string }).code === "23505") throw new WorkflowConflictError(`tenant ${tenantId} has another workflow under way; retry ${id} when it has finished`);
    throw err;
  } finally {
    client.release();
  }
}
