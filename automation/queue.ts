/**
 * pg-boss (v12) queues. Jobs are inserted through the caller's own transaction (pg-boss `send`
 * with `{ db }`), so whatever records a fact and the job that acts on it commit or roll back
 * together: an accepted billing event always has its reconcile job, and a run always has the job
 * that starts it when its stack is free.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { PgBoss, type Db, type Queue, type SendOptions } from "pg-boss";
import type { Queryable } from "./db/tx.ts";
import type { Logger } from "./log.ts";
import { LEGACY_STACK_RUN_QUEUE, stackRunQueue } from "./runs/regions.ts";

export const QUEUES = {
  /** Reconcile one subscription's tenant with its latest state. Data: ReconcileJob. */
  reconcile: "billing-reconcile",
  /**
   * Stack runs queued before region routing (migration 004); new runs go to their region's
   * queue, stackRunQueue(region) in automation/runs/regions.ts. Data: StackRunJob.
   */
  stackRun: LEGACY_STACK_RUN_QUEUE,
} as const;

export interface ReconcileJob {
  subscriptionId: string;
  eventId: string;
}
export interface StackRunJob {
  runId: string;
  /**
   * The stacks the run occupies (its own, a state move's source), sorted: the worker takes their
   * locks and claims in one round trip (automation/runs/oneTrip.ts). Absent in jobs sent before.
   */
  stacks?: string[];
}

export type Boss = PgBoss;

/** A pg-boss executor bound to one client, i.e. to the caller's open transaction. */
export function executor(client: Queryable): Db {
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
  /** The platform regions: one stack-run queue each (default none: only the legacy queue). */
  regions?: readonly string[];
}

/** Every stack-run queue: the legacy one, then one per region. */
export function stackRunQueues(regions: readonly string[]): string[] {
  return [QUEUES.stackRun, ...regions.map((r) => stackRunQueue(r))];
}

/**
 * The oldest pg-boss schema pg-boss 12 migrates from (its migrations start at schema 25, pg-boss
 * 11.0). A control-plane database created with pg-boss 10 (schema 24 and older) is refused with
 * what to do instead of failing inside pg-boss' migration.
 */
export const OLDEST_MIGRATABLE_PGBOSS_SCHEMA = 25;

async function assertMigratable(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, application_name: "tenancy-control-plane" });
  await client.connect();
  try {
    const table = await client.query<{ name: string | null }>("SELECT to_regclass('pgboss.version')::text AS name");
    if (!table.rows[0]?.name) return;
    const found = await client.query<{ version: number }>("SELECT version FROM pgboss.version");
    const version = found.rows[0]?.version;
    if (version !== undefined && version < OLDEST_MIGRATABLE_PGBOSS_SCHEMA)
      throw new Error(
        `the control plane's database has pg-boss schema ${version} (pg-boss 10 or older); pg-boss 12 migrates from schema ${OLDEST_MIGRATABLE_PGBOSS_SCHEMA} on. ` +
          "Stop the old control plane once no job is pending (SELECT count(*) FROM pgboss.job WHERE state < 'completed'), run DROP SCHEMA pgboss CASCADE, and start again (see docs/control-plane.md)",
      );
  } finally {
    await client.end();
  }
}

export async function startBoss(url: string, opts: QueueOptions, log: Logger): Promise<PgBoss> {
  await assertMigratable(url);
  const boss = new PgBoss({ connectionString: url, max: 4, application_name: "tenancy-control-plane" });
  boss.on("error", (err: Error) => log.error({ err: { message: err.message } }, "pg-boss error"));
  await boss.start();
  await ensureQueues(boss, opts);
  return boss;
}

export async function ensureQueues(boss: PgBoss, opts: QueueOptions): Promise<void> {
  const wanted: Queue[] = [
    // Reconciling is idempotent (it applies the subscription's latest state), so retrying is safe.
    { name: QUEUES.reconcile, policy: "standard", retryLimit: 20, retryDelay: 5, retryBackoff: true, expireInSeconds: 15 * 60 },
    // Per-stack serialization is done by the runs table (one running run per stack), not by the
    // queue policy: the runs table also knows state moves that occupy two stacks at once.
    ...stackRunQueues(opts.regions ?? []).map((name): Queue => ({ name, policy: "standard", retryLimit: 3, retryDelay: 30, retryBackoff: true, expireInSeconds: opts.runExpireHours * 3600 })),
  ];
  for (const { name, policy, ...settings } of wanted) {
    // updateQueue refuses the policy (fixed at creation) and the name: only the settings go.
    if (await boss.getQueue(name)) await boss.updateQueue(name, settings);
    else await boss.createQueue(name, { policy, ...settings });
  }
}

/** A job insert as one parameter-less statement, for a multi-statement query (see jobInsertStatement). */
export interface JobInsertStatement {
  /** The job's id, chosen here (pg-boss inserts the id it is given). */
  id: string;
  /** pg-boss' own insert of the job (its queue's defaults, its NOTIFY), values inlined; no trailing semicolon. */
  sql: string;
}

/**
 * The statement pg-boss' `send` would run in the caller's transaction, captured instead of run, so
 * the caller can send it in one multi-statement query with its own statements (one round trip;
 * automation/billing/intake.ts). pg-boss builds it (plans.insertJobs: the queue's retry, expiry and
 * retention settings, the NOTIFY of an immediately runnable job) with one JSON parameter, $1; here
 * the parameter is inlined as a quoted literal, as pg-boss itself does for its multi-statement flow
 * inserts (plans.insertFlowJobs). Anything but one statement with exactly that one parameter is
 * refused, so a pg-boss upgrade that changes the shape fails loudly here, not in the database.
 */
export async function jobInsertStatement<T extends object>(boss: PgBoss, queue: string, data: T, options: Omit<SendOptions, "db" | "id"> = {}): Promise<JobInsertStatement> {
  const id = randomUUID();
  const captured: { text: string; values: unknown[] }[] = [];
  const db: Db = {
    executeSql: async (text: string, values: unknown[]) => {
      captured.push({ text, values });
      return { rows: [{ id }] };
    },
  };
  const sent = await boss.send(queue, data, { ...options, id, db });
  const only = captured[0];
  if (sent !== id || captured.length !== 1 || !only || only.values.length !== 1 || typeof only.values[0] !== "string" || !/\$1(?!\d)/.test(only.text) || /\$(?:[2-9]|1\d)/.test(only.text)) {
    throw new Error(
      `pg-boss' send of a ${queue} job did not run the one statement with one JSON parameter ($1) this control plane inlines ` +
        `(${captured.length} statement(s), parameters ${JSON.stringify(captured.map((c) => c.values.length))}); check automation/queue.ts against the installed pg-boss`,
    );
  }
  return { id, sql: only.text.replace(/\$1(?!\d)/g, () => pg.escapeLiteral(only.values[0] as string)).trim() };
}
