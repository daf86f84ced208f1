/**
 * pg-boss (v10) queues. Jobs are inserted through the caller's own transaction (pg-boss `send`
 * with `{ db }`), so whatever records a fact and the job that acts on it commit or roll back
 * together: an accepted billing event always has its reconcile job, and a run always has the job
 * that starts it when its stack is free.
 */
import PgBoss from "pg-boss";
import type { Queryable } from "./db/tx.ts";
import type { Logger } from "./log.ts";

export const QUEUES = {
  /** Reconcile one subscription's tenant with its latest state. Data: ReconcileJob. */
  reconcile: "billing-reconcile",
  /** Run `pulumi up` for one stack. Data: StackRunJob. */
  stackRun: "stack-run",
} as const;

export interface ReconcileJob {
  subscriptionId: string;
  eventId: string;
}
export interface StackRunJob {
  runId: string;
}

export type Boss = PgBoss;

/** A pg-boss executor bound to one client, i.e. to the caller's open transaction. */
export function executor(client: Queryable): PgBoss.Db {
  return {
    executeSql: async (text: string, values: unknown[]) => {
      const result = await client.query(text, values);
      return { rows: result.rows };
    },
  };
}

export interface QueueOptions {
  /** pg-boss expiry of stack-run jobs, hours. */
  runExpireHours: number;
}

export async function startBoss(url: string, opts: QueueOptions, log: Logger): Promise<PgBoss> {
  const boss = new PgBoss({ connectionString: url, max: 4, application_name: "tenancy-control-plane" });
  boss.on("error", (err) => log.error({ err: { message: err.message } }, "pg-boss error"));
  await boss.start();
  await ensureQueues(boss, opts);
  return boss;
}

export async function ensureQueues(boss: PgBoss, opts: QueueOptions): Promise<void> {
  const wanted: PgBoss.Queue[] = [
    // Reconciling is idempotent (it applies the subscription's latest state), so retrying is safe.
    { name: QUEUES.reconcile, policy: "standard", retryLimit: 20, retryDelay: 5, retryBackoff: true, expireInSeconds: 15 * 60 },
    // Per-stack serialization is done by the runs table (one running run per stack), not by the
    // queue policy: pg-boss' singleton policy blocks the whole queue behind a busy key in v10.
    { name: QUEUES.stackRun, policy: "standard", retryLimit: 3, retryDelay: 30, retryBackoff: true, expireInSeconds: opts.runExpireHours * 3600 },
  ];
  for (const q of wanted) {
    const existing = await boss.getQueue(q.name);
    if (existing) await boss.updateQueue(q.name, q);
    else await boss.createQueue(q.name, q);
  }
}
