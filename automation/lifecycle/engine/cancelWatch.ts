/**
 * How the process running a step learns that an operator cancelled its workflow (docs/lifecycle.md,
 * "Cancelling a workflow"). The cancel may be asked of any control-plane process; it is recorded in
 * lifecycle_workflows (cancel_requested_at) and announced with NOTIFY on CANCEL_CHANNEL. The process
 * running an interruptible step LISTENs on the session that holds the tenant's lock (idle while the
 * step runs) and polls the row every CANCEL_POLL_MS as a safety net (a notification is lost when
 * that session drops and is opened again, or when the request was written by hand). Either way the
 * step's signal is aborted once, with a WorkflowCancelRequested as its reason.
 */
import type pg from "pg";
import { ProcessDeath } from "./definitions.ts";

export const CANCEL_CHANNEL = "lifecycle_workflow_cancel";
/** How often a running interruptible step's process reads its workflow's row for a cancel it was not told of. */
export const CANCEL_POLL_MS = 5_000;

/** The reason a step's signal is aborted with when an operator cancelled its workflow. */
export class WorkflowCancelRequested extends Error {}

export interface CancelWatch {
  readonly signal: AbortSignal;
  /** Whether the cancel request was seen (the signal is aborted). */
  readonly requested: boolean;
  /** Set when the test hook stood for the process dying as it learned of the cancel (kill -9 there). */
  readonly died: ProcessDeath | undefined;
  stop(): Promise<void>;
}

/**
 * Records an operator's cancel of a running workflow and tells every process, in one round trip.
 * Refused (no row) once the workflow is at or past its `cancelUntil` ($5); `wake_at` is cleared so
 * a workflow no process runs any more (it died) is taken by the next worker tick and ended.
 */
export const RECORD_CANCEL_SQL = `WITH r AS (
  UPDATE lifecycle_workflows SET cancel_requested_at = $2, cancel_note = $3, wake_at = NULL
   WHERE id = $1 AND state = ANY($4::text[]) AND cancel_requested_at IS NULL
     AND ($5::text IS NULL OR (current_step IS DISTINCT FROM $5::text
          AND NOT EXISTS (SELECT 1 FROM lifecycle_steps s WHERE s.workflow_id = $1 AND s.step = $5::text)))
  RETURNING *)
SELECT r.*, pg_notify('${CANCEL_CHANNEL}', r.id::text) IS NULL AS notified FROM r`;

/**
 * Watches for a cancel of `workflowId` while one attempt of a step runs. `listener` is a session
 * the caller holds and does not use meanwhile; `learned` runs once when the request is seen, before
 * the signal is aborted (a test hook may throw ProcessDeath there: the signal is then aborted with it).
 */
export async function watchCancel(
  listener: pg.ClientBase,
  pool: pg.Pool,
  workflowId: string,
  learned: () => Promise<void> | void,
  pollMs = CANCEL_POLL_MS,
): Promise<CancelWatch> {
  const controller = new AbortController();
  let requested = false;
  let died: ProcessDeath | undefined;
  let seen = false;
  const trigger = async () => {
    if (seen) return;
    seen = true;
    try {
      await learned();
    } catch (err) {
      if (err instanceof ProcessDeath) died = err;
    }
    requested = true;
    controller.abort(died ?? new WorkflowCancelRequested(`workflow ${workflowId} was cancelled by an operator while this step ran`));
  };
  const check = async () => {
    const { rows } = await pool.query<{ c: boolean }>("SELECT cancel_requested_at IS NOT NULL AS c FROM lifecycle_workflows WHERE id = $1", [workflowId]);
    if (rows[0]?.c) await trigger();
  };
  const onNotification = (msg: pg.Notification) => {
    if (msg.channel === CANCEL_CHANNEL && msg.payload === workflowId) void trigger();
  };
  listener.on("notification", onNotification);
  await listener.query(`LISTEN ${CANCEL_CHANNEL}`);
  // A request recorded before the LISTEN (between the step's start and now) is read here.
  await check();
  const timer = setInterval(() => void check().catch(() => undefined), pollMs);
  timer.unref();
  return {
    signal: controller.signal,
    get requested() {
      return requested;
    },
    get died() {
      return died;
    },
    async stop() {
      clearInterval(timer);
      listener.removeListener("notification", onNotification);
      await listener.query(`UNLISTEN ${CANCEL_CHANNEL}`).catch(() => undefined);
    },
  };
}
