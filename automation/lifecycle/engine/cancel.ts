/**
 * An operator's cancel of an open workflow (WorkflowEngine.cancel; POST /api/workflows/:id/cancel,
 * `tenantctl cancel`; docs/lifecycle.md, "Cancelling a workflow").
 */
import { OPEN_STATES, ProcessDeath, WorkflowConflictError, WorkflowNotFoundError, type WorkflowRecord } from "./definitions.ts";
import { tenantLockKey, type EngineInternals } from "./internals.ts";
import { toRecord, type WorkflowRow } from "./rows.ts";

/**
 * Cancels an open workflow that is not running right now. What it did stays done, except what its
 * definition's `onCancelled` releases (run first, holding the tenant's lock as a step does, so no
 * worker or request comes between; when it fails the cancel is refused and nothing changes).
 */
export async function cancelWorkflow(e: EngineInternals, id: string, note: string): Promise<WorkflowRecord> {
  const wf = await e.get(id);
  if (!wf) throw new WorkflowNotFoundError(`no workflow ${id}`);
  const client = await e.pool.connect();
  const key = tenantLockKey(wf.tenantId);
  let locked = false;
  try {
    locked = (await client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1) AS ok", [key])).rows[0]?.ok === true;
    if (!locked) throw new WorkflowConflictError(`workflow ${id} is running a step right now; cancel it when the step has finished`);
    const current = (await e.get(id))!;
    if (!OPEN_STATES.includes(current.state)) throw new WorkflowConflictError(`workflow ${id} is already ${current.state}`);
    const def = e.def(current.kind);
    if (def.onCancelled) {
      const ctx = e.stepContext(current, current.currentStep ?? "cancel", await e.steps(id));
      try {
        await def.onCancelled({ ...ctx, signal: new AbortController().signal }, note);
      } catch (err) {
        if (err instanceof ProcessDeath) throw err;
        const why = err instanceof Error ? err.message : String(err);
        e.log.error({ workflowId: id, tenantId: current.tenantId, kind: current.kind, error: why }, "cancel refused: the workflow's clean-up failed");
        throw new WorkflowConflictError(
          `cancel of ${current.kind} workflow ${id} refused: its clean-up failed (${why}); the workflow is left ${current.state}` +
            `${current.currentStep ? ` at ${current.currentStep}` : ""} (its next attempt undoes a write window left open first); fix the cause and cancel again`,
        );
      }
    }
    const { rows } = await client.query<WorkflowRow>(
      `UPDATE lifecycle_workflows SET state = 'cancelled', note = $2, updated_at = $3, finished_at = $3, wake_at = NULL
        WHERE id = $1 AND state = ANY($4::text[]) RETURNING *`,
      [id, note, e.now(), OPEN_STATES],
    );
    if (!rows[0]) throw new WorkflowConflictError(`workflow ${id} is already ${wf.state}`);
    return toRecord(rows[0]);
  } finally {
    if (locked) await client.query("SELECT pg_advisory_unlock($1)", [key]).catch(() => undefined);
    client.release();
  }
}
