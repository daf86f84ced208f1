/**
 * Reading runs (RunStore extends this): one run, several, a filtered list, a run's engine events,
 * counts by state, waiting for a run to end; and the registry of live stack-run workers
 * (run_workers), which says which regions' queued runs no worker serves.
 */
import type { Pool } from "pg";
import { RUN_STATES, toRecord, type RunEventRow, type RunRecord, type RunRow, type RunState } from "./records.ts";

/** Queued runs of a region that no live worker serves (tenancy_runs_unserved). */
export interface UnservedRegion {
  /** null: runs older than region routing whose region is still unknown. */
  region: string | null;
  queued: number;
  oldestQueuedAt: string;
}

export class RunQueries {
  constructor(
    readonly pool: Pool,
    /** Seconds without a heartbeat after which a worker (or a run's worker) counts as dead. */
    protected readonly heartbeatTimeoutSeconds: number,
  ) {}

  /** A stack-run worker is alive and serves `regions` (refreshed every heartbeat). */
  async registerWorker(workerId: string, regions: readonly string[]): Promise<void> {
    await this.pool.query(
      `INSERT INTO run_workers (worker_id, regions, seen_at) VALUES ($1, $2::text[], now())
       ON CONFLICT (worker_id) DO UPDATE SET regions = EXCLUDED.regions, seen_at = now()`,
      [workerId, regions],
    );
  }

  async unregisterWorker(workerId: string): Promise<void> {
    await this.pool.query("DELETE FROM run_workers WHERE worker_id = $1", [workerId]);
  }

  /**
   * Regions with queued runs that no live worker (seen within the heartbeat timeout) serves: those
   * runs wait until a runner of their region starts.
   */
  async unserved(): Promise<UnservedRegion[]> {
    const { rows } = await this.pool.query<{ region: string | null; queued: string; oldest: Date }>(
      `SELECT r.region, count(*) AS queued, min(r.created_at) AS oldest FROM runs r
        WHERE r.state = 'queued'
          AND NOT EXISTS (SELECT 1 FROM run_workers w WHERE r.region = ANY(w.regions) AND w.seen_at > now() - make_interval(secs => $1))
        GROUP BY r.region ORDER BY r.region NULLS LAST`,
      [this.heartbeatTimeoutSeconds],
    );
    return rows.map((r) => ({ region: r.region, queued: Number(r.queued), oldestQueuedAt: r.oldest.toISOString() }));
  }

  async get(runId: string): Promise<RunRecord | undefined> {
    if (!/^[0-9a-f-]{36}$/i.test(runId)) return undefined;
    const { rows } = await this.pool.query<RunRow>("SELECT * FROM runs WHERE id = $1", [runId]);
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  /** The runs of these ids, newest first (ids of no run, or not UUIDs, are left out). */
  async getMany(runIds: readonly string[]): Promise<RunRecord[]> {
    const ids = runIds.filter((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id));
    if (ids.length === 0) return [];
    const { rows } = await this.pool.query<RunRow>("SELECT * FROM runs WHERE id = ANY($1::uuid[]) ORDER BY created_at DESC, id", [ids]);
    return rows.map(toRecord);
  }

  async list(filter: { stacks?: readonly string[]; states?: readonly RunState[]; limit?: number } = {}): Promise<RunRecord[]> {
    const { rows } = await this.pool.query<RunRow>(
      `SELECT * FROM runs WHERE ($1::text[] IS NULL OR stack = ANY($1)) AND ($2::text[] IS NULL OR state = ANY($2))
       ORDER BY created_at DESC, id LIMIT $3`,
      [filter.stacks ?? null, filter.states ?? null, filter.limit ?? 100],
    );
    return rows.map(toRecord);
  }

  async events(runId: string, afterId = "0", limit = 500): Promise<RunEventRow[]> {
    const { rows } = await this.pool.query<{ id: string; attempt: number; at: Date; event: unknown }>(
      "SELECT id, attempt, at, event FROM run_events WHERE run_id = $1 AND id > $2 ORDER BY id LIMIT $3",
      [runId, afterId, limit],
    );
    return rows.map((r) => ({ id: String(r.id), attempt: r.attempt, at: r.at.toISOString(), event: r.event }));
  }

  async countByState(): Promise<Record<RunState, number>> {
    const { rows } = await this.pool.query<{ state: RunState; n: string }>("SELECT state, count(*) AS n FROM runs GROUP BY state");
    const out = Object.fromEntries(RUN_STATES.map((s) => [s, 0])) as Record<RunState, number>;
    for (const r of rows) out[r.state] = Number(r.n);
    return out;
  }

  /** Resolves when the run is succeeded or failed (polling; for workflows and tests). */
  async waitFor(runId: string, opts: { timeoutMs?: number; pollMs?: number; signal?: AbortSignal } = {}): Promise<RunRecord> {
    const deadline = Date.now() + (opts.timeoutMs ?? 3 * 3600 * 1000);
    for (;;) {
      const run = await this.get(runId);
      if (!run) throw new Error(`run ${runId} does not exist`);
      if (run.state === "succeeded" || run.state === "failed") return run;
      if (Date.now() > deadline) throw new Error(`run ${runId} still ${run.state} after ${opts.timeoutMs} ms`);
      if (opts.signal?.aborted) throw new Error(`waiting for run ${runId} aborted`);
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 250));
    }
  }
}
