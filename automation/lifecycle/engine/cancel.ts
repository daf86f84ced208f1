/**
 * An operator's cancel of an open workflow (WorkflowEngine.cancel; POST /api/workflows/:id/cancel,
 * `tenantctl cancel`; docs/lifecycle.md, "Cancelling a workflow").
 */
import { OPEN_STATES, ProcessDeath, WorkflowConflictError, WorkflowNotFoundError, type WorkflowRecord } from "./definitions.ts";
import { tenantLockKey, type EngineInternals } from "./internals.ts";
import { toRecord, type WorkflowRow } from "./rows.ts";

/** The workflow has ended (succeeded, failed or cancelled): there is nothing to cancel. */
export class WorkflowFinishedError extends WorkflowConflictError {
  constructor(readonly workflow: WorkflowRecord) {
    const why =
      workflow.state === "succeeded" ? "it did everything it was asked to; nothing is left to cancel"
      : workflow.state === "failed" ? "a failed workflow runs no step again unless someone retries it (tenantctl retry); what it did stays done"
      : `it was cancelled before${workflow.note ? ` (${workflow.note})` : ""}`;
    super(
      `${workflow.kind} workflow ${workflow.id} of tenant ${workflow.tenantId} is already ${workflow.state}` +
        `${workflow.finishedAt ? ` (since ${workflow.finishedAt.toISOString()})` : ""}: only a pending, running or waiting workflow can be cancelled; ${why}`,
    );
  }
}

/** A step of the workflow is running right now (its worker holds the tenant's lock): a running step is never interrupted. */
export class WorkflowBusyError extends WorkflowConflictError {
  constructor(
    message: string,
    readonly workflow: WorkflowRecord,
  ) {
    super(message);
  }
}

/** The workflow's clean-up (its definition's `onCancelled`) failed: the cancel is refused and the workflow left as it was. */
export class CancelRefusedError extends WorkflowConflictError {
  constructor(
    message: string,
    readonly workflow: WorkflowRecord,
    /** The clean-up's error. */
    readonly reason: string,
  ) {
    super(message);
  }
}

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
    if (!locked) {
      const now = (await e.get(id)) ?? wf;
      if (!OPEN_STATES.includes(now.state)) throw new WorkflowFinishedError(now);
      throw new WorkflowBusyError(
        `${now.kind} workflow ${id} of tenant ${now.tenantId} is running a step right now${now.currentStep ? ` (${now.currentStep})` : ""}: ` +
          "a running step is never interrupted; cancel it when the step has finished (or when it waits between attempts)",
        now,
      );
    }
    const current = (await e.get(id))!;
    if (!OPEN_STATES.includes(current.state)) throw new WorkflowFinishedError(current);
    const def = e.def(current.kind);
    const completed = await e.steps(id);
    if (def.cancelUntil && completed.some((s) => s.step === def.cancelUntil)) {
      throw new CancelRefusedError(
        `cancel of ${current.kind} workflow ${id} refused: it has completed ${def.cancelUntil}, so tenant ${current.tenantId} serves from its new place; ` +
          `a cancel now would leave the old copy and the file's record of the ${current.kind} behind for good. It finishes by itself` +
          `${current.currentStep ? ` (at ${current.currentStep}${current.wakeAt ? `, next attempt ${current.wakeAt.toISOString()}` : ""})` : ""}`,
        current,
        `it has completed ${def.cancelUntil}`,
      );
    }
    if (def.onCancelled) {
      const ctx = e.stepContext(current, current.currentStep ?? "cancel", completed);
      try {
        await def.onCancelled({ ...ctx, signal: new AbortController().signal }, note);
      } catch (err) {
        if (err instanceof ProcessDeath) throw err;
        const why = err instanceof Error ? err.message : String(err);
        e.log.error({ workflowId: id, tenantId: current.tenantId, kind: current.kind, error: why }, "cancel refused: the workflow's clean-up failed");
        throw new CancelRefusedError(
          `cancel of ${current.kind} workflow ${id} refused: its clean-up failed (${why}); the workflow is left ${current.state}` +
            `${current.currentStep ? ` at ${current.currentStep}` : ""} (its next attempt undoes a write window left open first); fix the cause and cancel again`,
          current,
          why,
        );
      }
    }
    const { rows } = await client.query<WorkflowRow>(
      `UPDATE lifecycle_workflows SET state = 'cancelled', note = $2, updated_at = $3, finished_at = $3, wake_at = NULL
        WHERE id = $1 AND state = ANY($4::text[]) RETURNING *`,
      [id, note, e.now(), OPEN_STATES],
    );
    if (!rows[0]) throw new WorkflowFinishedError((await e.get(id))!);
    return toRecord(rows[0]);
  } finally {
    if (locked) await client.query("SELECT pg_advisory_unlock($1)", [key]).catch(() => undefined);
    client.release();
  }
}
