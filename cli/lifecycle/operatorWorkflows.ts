/**
 * What `tenantctl retry` does (and the database access of `tenantctl workflows`): both act on the workflows recorded in the
 * control plane's database (DATABASE_URL), so, unlike upgrade/suspend/resume/offboard, they have
 * no local mode. `retry` puts a failed workflow back in the queue at the step it failed in
 * (WorkflowEngine.retry, which refuses naming why); the control plane's lifecycle worker runs it,
 * tenantctl runs no step.
 */
import pg from "pg";
import { WorkflowConflictError, WorkflowEngine, WorkflowNotFoundError, type WorkflowRecord } from "../../automation/lifecycle/engine.ts";
import { silentLogger, systemClock, type FleetRepo, type LifecyclePorts } from "../../automation/lifecycle/ports.ts";
import { LIFECYCLE_WORKFLOWS } from "../../automation/lifecycle/service.ts";
import type { OperatorIo } from "./operator.ts";

/** Exit codes as tenantctl's (cli/io.ts) and the other lifecycle commands'. */
const OK = 0;
const REFUSED = 1;

/**
 * The ports of tenantctl's lifecycle commands: no step runs in tenantctl, so every port but the
 * clock (and `repo`, when given: requests read the tenant files) refuses whatever is called on it
 * (a proxy, so a method added to a port later refuses too).
 */
export function tenantctlPorts(repo?: FleetRepo): LifecyclePorts {
  const refusing = <T extends object>(what: string): T =>
    new Proxy({} as T, {
      get: (_target, prop) =>
        prop === "then" ? undefined : () => {
          throw new Error(`${what} is not available in tenantctl: the control plane runs the workflow`);
        },
    });
  return {
    clock: systemClock,
    log: silentLogger,
    repo: repo ?? refusing<LifecyclePorts["repo"]>("the fleet repository"),
    runner: refusing<LifecyclePorts["runner"]>("a stack operation"),
    databases: refusing<LifecyclePorts["databases"]>("a tenant database"),
    backups: refusing<LifecyclePorts["backups"]>("the backup store"),
    snapshots: refusing<LifecyclePorts["snapshots"]>("RDS"),
    secrets: refusing<LifecyclePorts["secrets"]>("Secrets Manager"),
  };
}

/**
 * Runs `fn` on the control plane's database and returns its exit code; refuses (exit 1, saying
 * why) without DATABASE_URL or when the database has no lifecycle tables.
 */
export async function withControlPlane(databaseUrl: string | undefined, what: string, io: OperatorIo, fn: (pool: pg.Pool) => Promise<number>): Promise<number> {
  if (!databaseUrl) {
    io.err(`tenantctl: ${what} needs the control plane's database, where workflows are recorded: set DATABASE_URL`);
    return REFUSED;
  }
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  pool.on("error", () => undefined);
  try {
    const ready = await pool.query<{ t: string | null }>("SELECT to_regclass('lifecycle_workflows')::text AS t");
    if (!ready.rows[0]?.t) {
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
    const engine = new WorkflowEngine(pool, tenantctlPorts(), LIFECYCLE_WORKFLOWS);
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
