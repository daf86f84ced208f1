/**
 * Who is reconciling which billing-reconcile job, so that a job cut off by a crash is retried
 * within seconds of a restart (or by a surviving process) instead of staying `active` until
 * pg-boss expires it (15 minutes). Each reconciler has an owner id and holds a session advisory
 * lock on it for its lifetime; it records a claim per job it takes and deletes it when the job
 * ends. A sweep (at start and every `sweepSeconds`) fails the still-active jobs of claims whose
 * owner's lock is free (the owner's connection, hence the process, is gone): pg-boss then retries
 * them. Reconciling is idempotent (the subscription's latest state is applied, an unchanged tenant
 * is a no-op, an interrupted git change is repaired by the writer), so nothing is applied twice.
 */
import { randomUUID } from "node:crypto";
import type { Pool, PoolClient } from "pg";
import type { PgBoss } from "pg-boss";
import { lockKey } from "../db/tx.ts";
import type { Logger } from "../log.ts";
import { QUEUES } from "../queue.ts";

/** First key of the owners' two-key advisory locks (the second is the owner id's hash). */
const OWNER_LOCK_CLASS = 7_240_010;

export class ReconcileClaims {
  readonly owner = randomUUID();
  private lockClient?: PoolClient;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly pool: Pool,
    private readonly boss: PgBoss,
    private readonly log: Logger,
    private readonly sweepSeconds = 30,
  ) {}

  /** Takes the owner lock, sweeps once, then sweeps periodically. */
  async start(): Promise<void> {
    const client = await this.pool.connect();
    await client.query("SELECT pg_advisory_lock($1, $2)", [OWNER_LOCK_CLASS, lockKey(this.owner)]);
    this.lockClient = client;
    await this.sweep();
    this.timer = setInterval(() => {
      this.sweep().catch((err: unknown) => this.log.warn({ err: { message: err instanceof Error ? err.message : String(err) } }, "sweep of interrupted reconcile jobs failed; retried later"));
    }, this.sweepSeconds * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const client = this.lockClient;
    this.lockClient = undefined;
    if (client) {
      await client.query("SELECT pg_advisory_unlock($1, $2)", [OWNER_LOCK_CLASS, lockKey(this.owner)]).catch(() => undefined);
      client.release();
    }
  }

  async claim(jobIds: readonly string[]): Promise<void> {
    if (jobIds.length === 0) return;
    await this.pool.query(
      `INSERT INTO reconcile_claims (job_id, owner) SELECT unnest($1::uuid[]), $2
       ON CONFLICT (job_id) DO UPDATE SET owner = EXCLUDED.owner, claimed_at = now()`,
      [jobIds, this.owner],
    );
  }

  async release(jobIds: readonly string[]): Promise<void> {
    if (jobIds.length === 0) return;
    await this.pool.query("DELETE FROM reconcile_claims WHERE job_id = ANY($1::uuid[]) AND owner = $2", [jobIds, this.owner]);
  }

  /** Retries the active jobs of owners that died; returns their ids. */
  async sweep(): Promise<string[]> {
    const { rows } = await this.pool.query<{ job_id: string; owner: string; active: boolean }>(
      `SELECT c.job_id, c.owner, (j.id IS NOT NULL) AS active
         FROM reconcile_claims c
         LEFT JOIN pgboss.job j ON j.id = c.job_id AND j.name = $1 AND j.state = 'active'
        WHERE c.owner <> $2`,
      [QUEUES.reconcile, this.owner],
    );
    const byOwner = new Map<string, { active: string[]; gone: string[] }>();
    for (const r of rows) {
      const e = byOwner.get(r.owner) ?? { active: [], gone: [] };
      (r.active ? e.active : e.gone).push(r.job_id);
      byOwner.set(r.owner, e);
    }
    const retried: string[] = [];
    for (const [owner, jobs] of byOwner) {
      if (!(await this.ownerIsDead(owner))) continue;
      if (jobs.active.length > 0) {
        for (const id of jobs.active) {
          await this.boss.fail(QUEUES.reconcile, id, { message: "interrupted: the control-plane process reconciling it died; retried at once" });
        }
        retried.push(...jobs.active);
        this.log.warn({ jobs: jobs.active, formerOwner: owner }, "retrying billing reconcile jobs interrupted by the death of the process that ran them");
      }
      await this.pool.query("DELETE FROM reconcile_claims WHERE owner = $1", [owner]);
    }
    return retried;
  }

  private async ownerIsDead(owner: string): Promise<boolean> {
    const client = await this.pool.connect();
    try {
      const { rows } = await client.query<{ free: boolean }>("SELECT pg_try_advisory_lock($1, $2) AS free", [OWNER_LOCK_CLASS, lockKey(owner)]);
      if (rows[0]?.free) await client.query("SELECT pg_advisory_unlock($1, $2)", [OWNER_LOCK_CLASS, lockKey(owner)]);
      return rows[0]?.free === true;
    } finally {
      client.release();
    }
  }
}
