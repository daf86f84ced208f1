/**
 * Taking over the runs of dead workers (RunStore.reapStale): how long a handover waits after a run
 * has lost attempts, and the conditions a running or fetched-but-unclaimed run is handed over on
 * (docs/control-plane.md, "After a crash").
 */

/**
 * Takeovers of a run whose worker died that are handed over at once; after that each handover waits
 * (runTakeoverDelaySeconds). A run is never failed for losing its worker: the process dies for
 * reasons that are not the run's (kill -9, a deploy, the host), and a failed run would leave its
 * accepted change unapplied until a person re-runs it (docs/control-plane.md, "After a crash").
 */
export const IMMEDIATE_TAKEOVERS = 5;
/** The longest wait between two takeovers of a run whose workers keep dying. */
export const MAX_TAKEOVER_DELAY_SECONDS = 3600;

/**
 * How long the handover of a run whose worker died waits, after `lost` lost attempts: nothing for
 * the first IMMEDIATE_TAKEOVERS, then the heartbeat timeout doubled per further loss, at most
 * MAX_TAKEOVER_DELAY_SECONDS. A run that itself kills its worker (a poison run) so costs one dead
 * worker per interval instead of a crash loop, and is still applied once the cause is gone.
 */
export function runTakeoverDelaySeconds(lost: number, heartbeatTimeoutSeconds: number): number {
  if (lost < IMMEDIATE_TAKEOVERS) return 0;
  return Math.min(MAX_TAKEOVER_DELAY_SECONDS, heartbeatTimeoutSeconds * 2 ** (lost - IMMEDIATE_TAKEOVERS));
}

/**
 * reapStale's condition on a run `r` already handed over (worker NULL): its job must have been
 * fetched (active) or be gone. A job still waiting to be fetched is not sent again: a new one
 * would wait the same, and replacing it on a loaded host (claims slower than the heartbeat
 * timeout) cancelled each job before a worker got to claim it, again and again.
 */
export const HANDOVER_NOT_FETCHED = `NOT (r.worker IS NULL AND EXISTS (
  SELECT 1 FROM pgboss.job j WHERE j.name = r.job_queue AND j.id = r.job_id AND j.state IN ('created', 'retry')))`;

/**
 * reapStale's condition on a running run `r` ($1: the heartbeat timeout in seconds): nothing for
 * longer than the timeout, neither a heartbeat nor, for a run already handed over, its handover's
 * due time (a handover whose job was fetched but not claimed within the timeout goes again).
 */
export const SILENT_FOR_TIMEOUT = "GREATEST(r.heartbeat_at, r.handover_due_at) < now() - make_interval(secs => $1)";

/** A run handed to another worker by reapStale: its attempts lost so far, and when its job is due. */
export interface ReapedRun {
  id: string;
  lostAttempts: number;
  delaySeconds: number;
  /** A queued run whose job a process fetched and never claimed (resendUnclaimed): no attempt was lost. */
  unclaimedJob?: true;
}
