/**
 * What `tenantctl retry` does (and the database access of `tenantctl workflows`): both act on the workflows recorded in the
 * control plane's database (DATABASE_URL), so, unlike upgrade/suspend/resume/offboard, they have
 * no local mode. `retry` puts a failed workflow back in the queue at the step it failed in
 * (WorkflowEngine.retry, which refuses naming why); the control plane's lifecycle worker runs it,
 * tenantctl runs no step.
 */
import type pg from "pg";
import { connectControlPlane, LifecycleService, requestOnlyPorts, WorkflowConflictError, WorkflowNotFoundError, type WorkflowRecord } from "../../automation/index.ts";

/** How tenantctl's lifecycle commands print (cli/io.ts's Io satisfies it). */
export interface OperatorIo {
  out(line: string): void;
  err(line: string): void;
}

/** Exit codes as tenantctl's (cli/io.ts) and the other lifecycle commands'. */
const OK = 0;
const REFUSED = 1;

/**
 * Runs `fn` on the control plane's database and returns its exit code; refuses (exit 1, saying
 * why) without DATABASE_URL or when the database has no lifecycle tables.
 */
export async function withControlPlane(databaseUrl: string | undefined, what: string, io: OperatorIo, fn: (pool: pg.Pool) => Promise<number>): Promise<number> {
  if (!databaseUrl) {
    io.err(`tenantctl: ${what} needs the control plane's database, where workflows are recorded: set DATABASE_URL`);
    return REFUSED;
  }
  const { pool, ready } = await connectControlPlane(databaseUrl);
  try {
    if (!ready) {
      io.err("tenantctl: DATABASE_URL's database has no lifecycle tables; start the control plane once (npm run control-plane) so it applies its migrations");
      return REFUSED;
    }
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

export async function runRetryRequest(id: string, opts: { databaseUrl?: string; by?: string }, io: OperatorIo): Promise<number> {
  return withControlPlane(opts.databaseUrl, "retrying a workflow", io, async (pool) => {
    const { engine } = new LifecycleService(pool, requestOnlyPorts());
    let wf: WorkflowRecord;
    try {
      wf = await engine.retry(id, opts.by ? { by: opts.by } : {});
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        io.err(`tenantctl: no workflow ${id} in DATABASE_URL's database; tenantctl workflows lists the recorded ones`);
        return REFUSED;
      }
      if (err instanceof WorkflowConflictError) {
        io.err(`tenantctl: ${err.message}`);
        return REFUSED;
      }
      throw err;
    }
    const resumesAt = await engine.resumeStep(wf);
    const failedAt = wf.currentStep && wf.currentStep !== resumesAt ? ` (it failed at ${wf.currentStep}; the steps from ${resumesAt} on have no record)` : "";
    io.out(`retried ${wf.kind} workflow ${wf.id} of tenant ${wf.tenantId}: it resumes at step ${resumesAt ?? "(none left)"}${failedAt}, state ${wf.state}`);
    io.out(`its last error: ${wf.lastError ?? "(none recorded)"}`);
    io.out("the control plane's lifecycle worker runs it, not tenantctl: no step has run again yet");
    return OK;
  });
}
