/**
 * An operator's cancel of an open workflow (WorkflowEngine.cancel; POST /api/workflows/:id/cancel,
 * `tenantctl cancel`; docs/lifecycle.md, "Cancelling a workflow"). Between steps it takes effect at
 * once; while a step runs (in whichever process) it is recorded, the process running the step stops
 * it if it is interruptible or lets it end, and then ends the workflow cancelled (finishRequestedCancel).
 */
import { backoffMs } from "./attempt.ts";
import { RECORD_CANCEL_SQL } from "./cancelWatch.ts";
import { OPEN_STATES, ProcessDeath, WorkflowConflictError, WorkflowNotFoundError, type RunOutcome, type WorkflowRecord } from "./definitions.ts";
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

/** The workflow is running the step after which a cancel is refused (its `cancelUntil`): it cannot be stopped there. */
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
function pastCancelUntil(current: WorkflowRecord, cancelUntil: string): CancelRefusedError {
  return new CancelRefusedError(
    `cancel of ${current.kind} workflow ${current.id} refused: it has completed ${cancelUntil}, so tenant ${current.tenantId} serves from its new place; ` +
      `a cancel now would leave the old copy and the file's record of the ${current.kind} behind for good. It finishes by itself` +
      `${current.currentStep ? ` (at ${current.currentStep}${current.wakeAt ? `, next attempt ${current.wakeAt.toISOString()}` : ""})` : ""}`,
    current,
    `it has completed ${cancelUntil}`,
  );
}

/**
 * Cancels an open workflow. Not running a step: at once (cancelNow). Running one (another
 * session holds the tenant's lock): the request is recorded and the record returned with
 * `cancelRequestedAt` set and its state still open; the process running the step ends it.
 */
export async function cancelWorkflow(e: EngineInternals, id: string, note: string): Promise<WorkflowRecord> {
  // The lock may be free again by the time the request would be recorded (the step ended): then cancel at once.
  for (let round = 0; ; round++) {
    const now = await cancelNow(e, id, note);
    if (now) return now;
    const requested = await requestCancel(e, id, note);
    if (requested) return requested;
    if (round >= 3) throw new WorkflowConflictError(`workflow ${id} changed state while it was being cancelled, four times over; ask again`);
  }
}

/** Records the cancel of a workflow whose step is running; undefined when it no longer runs one (cancel it at once). */
async function requestCancel(e: EngineInternals, id: string, note: string): Promise<WorkflowRecord | undefined> {
  const current = await e.get(id);
  if (!current) throw new WorkflowNotFoundError(`no workflow ${id}`);
  if (!OPEN_STATES.includes(current.state)) throw new WorkflowFinishedError(current);
  if (current.cancelRequestedAt) return current;
  const def = e.def(current.kind);
  if (def.cancelUntil) {
    if ((await e.steps(id)).some((s) => s.step === def.cancelUntil)) throw pastCancelUntil(current, def.cancelUntil);
    if (current.currentStep === def.cancelUntil) {
      throw new WorkflowBusyError(
        `${current.kind} workflow ${id} of tenant ${current.tenantId} is running ${def.cancelUntil} right now: that step is not interrupted, ` +
          `and once it has completed the tenant serves from its new place and a cancel is refused; should it fail, cancel then`,
        current,
      );
    }
  }
  const { rows } = await e.pool.query<WorkflowRow>(RECORD_CANCEL_SQL, [id, e.now(), note, OPEN_STATES, def.cancelUntil ?? null]);
  if (!rows[0]) return undefined;
  const wf = toRecord(rows[0]);
  const interruptible = def.steps.find((s) => s.name === wf.currentStep)?.interruptible === true;
  e.log.warn({ workflowId: id, tenantId: wf.tenantId, kind: wf.kind, step: wf.currentStep, interruptible }, "cancel requested while a step runs: the process running it ends the workflow");
  return wf;
}

/** Whether a cancel recorded for `wf` stops its running step (true) or waits for it to end (false). */
export function cancelInterrupts(e: Pick<EngineInternals, "def">, wf: WorkflowRecord): boolean {
  return e.def(wf.kind).steps.find((s) => s.name === wf.currentStep)?.interruptible === true;
}

/** The cancel of a workflow no step of which runs now (undefined: a step runs, the tenant's lock is held). */
async function cancelNow(e: EngineInternals, id: string, note: string): Promise<WorkflowRecord | undefined> {
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
      return undefined;
    }
    const current = (await e.get(id))!;
    if (!OPEN_STATES.includes(current.state)) throw new WorkflowFinishedError(current);
    const def = e.def(current.kind);
    const completed = await e.steps(id);
    if (def.cancelUntil && completed.some((s) => s.step === def.cancelUntil)) throw pastCancelUntil(current, def.cancelUntil);
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

/**
 * Ends a workflow whose cancel was recorded while a step ran: called by the process that holds the
 * tenant's lock, once the step has stopped (or before the next step, or on the next run after a
 * crash). Runs `onCancelled` as a cancel between steps does. When the clean-up fails the workflow
 * stays open with the request, and is tried again after a back-off (the request was accepted and
 * is not dropped). Undefined when the request came too late (the workflow completed its
 * `cancelUntil` meanwhile): it is dropped, logged, and the workflow goes on.
 */
export async function finishRequestedCancel(e: EngineInternals, wf: WorkflowRecord): Promise<RunOutcome | undefined> {
  const id = wf.id;
  const def = e.def(wf.kind);
  const completed = await e.steps(id);
  const { rows: noteRows } = await e.pool.query<{ note: string | null }>("SELECT cancel_note AS note FROM lifecycle_workflows WHERE id = $1", [id]);
  const note = noteRows[0]?.note ?? "cancelled";
  const fields = { workflowId: id, tenantId: wf.tenantId, kind: wf.kind, step: wf.currentStep };
  if (def.cancelUntil && completed.some((s) => s.step === def.cancelUntil)) {
    await e.pool.query("UPDATE lifecycle_workflows SET cancel_requested_at = NULL, cancel_note = NULL, updated_at = $2 WHERE id = $1", [id, e.now()]);
    e.log.warn({ ...fields, note }, `a cancel requested as ${def.cancelUntil} completed came too late and is dropped: the workflow finishes by itself`);
    return undefined;
  }
  if (def.onCancelled) {
    try {
      await def.onCancelled({ ...e.stepContext(wf, wf.currentStep ?? "cancel", completed), signal: new AbortController().signal }, note);
    } catch (err) {
      if (err instanceof ProcessDeath) throw err;
      const why = err instanceof Error ? err.message : String(err);
      const attempts = wf.attempts + 1;
      const wakeAt = new Date(e.now().getTime() + backoffMs(attempts));
      const error = `the cancel's clean-up failed (${why}); it is tried again at ${wakeAt.toISOString()}`;
      await e.pool.query(
        "UPDATE lifecycle_workflows SET state = 'running', attempts = $2, last_error = $3, wake_at = $4, updated_at = $5 WHERE id = $1",
        [id, attempts, error, wakeAt, e.now()],
      );
      e.log.error({ ...fields, error: why, retryAt: wakeAt.toISOString() }, "the cancel's clean-up failed; it is tried again");
      return { id, state: "running", step: wf.currentStep, wakeAt, error };
    }
  }
  const now = e.now();
  await e.pool.query(
    `UPDATE lifecycle_workflows SET state = 'cancelled', note = $2, updated_at = $3, finished_at = $3, wake_at = NULL
      WHERE id = $1 AND state = ANY($4::text[])`,
    [id, note, now, OPEN_STATES],
  );
  e.log.info({ ...fields, note }, "workflow cancelled (requested while a step ran)");
  return { id, state: "cancelled", step: wf.currentStep };
}
