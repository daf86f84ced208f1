/**
 * The rollout engine: applies a change to the fleet's stacks wave by wave (docs/rollouts.md).
 * Every decision is a short transaction over the `rollouts` and `rollout_stacks`
 * tables (migration 200), so any control-plane process can advance any rollout and a crash at
 * any point resumes where the database says:
 *
 * - a stack is started by queueing its run through the run queue (which keeps one run per stack
 *   at a time) in the same transaction that marks the stack running and records the run: never
 *   started twice, never lost;
 * - a wave ends when none of its stacks is pending or running; the next starts after the wave's
 *   bake time; when a wave's failed stacks exceed its failure budget the rollout halts, and no
 *   stack of a later wave (or another of this wave) starts until a person resumes it;
 * - at most one rollout is active; a new one waits for it unless it supersedes it.
 *
 * `tick()` advances the active rollout once; the RolloutWorker calls it on a timer.
 */
import type { Pool, PoolClient } from "pg";
import { failureAllowance, type PlannedWave } from "../../infra/model/rings.ts";
import { lockKey, withTransaction } from "../db/tx.ts";
import { rolloutTiming, type RolloutTiming } from "./timing.ts";
import { haltReason } from "./waveBudget.ts";

export const ROLLOUT_STATES = ["waiting", "running", "paused", "halted", "succeeded", "aborted", "superseded"] as const;
export type RolloutState = (typeof ROLLOUT_STATES)[number];
export const ACTIVE_STATES: readonly RolloutState[] = ["running", "paused", "halted"];
export const STACK_STATES = ["pending", "running", "succeeded", "failed"] as const;
export type RolloutStackState = (typeof STACK_STATES)[number];
/** NOTIFY channel: a rollout changed (payload: its id). */
export const ROLLOUT_CHANNEL = "tenancy_rollout_state";
/** Advisory lock serializing ticks and state changes of rollouts (exported for tests that hold it). */
export const TICK_LOCK = lockKey("tenancy:rollouts:tick");

/** What the engine needs of the run queue (RunStore in production). */
export interface RolloutRunPort {
  /**
   * Queues a run of `stack` (or joins its queued run) inside the caller's transaction; the run
   * applies the program of `programCommit` (the rollout's commit) with the head's fleet files.
   */
  enqueue(client: PoolClient, stack: string, cause: { reason: string; programCommit: string }): Promise<{ runId: string }>;
  /** The runs' outcomes; runs not finished are absent. */
  outcomes(client: PoolClient, runIds: readonly string[]): Promise<Map<string, { state: "succeeded" | "failed"; error: string | null }>>;
  /** After a transaction that queued runs committed: lets local workers fetch the jobs at once. */
  jobsSent(): void;
}

export interface RolloutRecord {
  id: string;
  name: string;
  commit: string;
  state: RolloutState;
  waves: PlannedWave[];
  /** Index of the current wave (equal to waves.length once every wave is done). */
  wave: number;
  waveDoneAt: string | null;
  haltReason: string | null;
  supersede: boolean;
  requestedBy: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

export interface RolloutStackRecord {
  wave: number;
  stack: string;
  state: RolloutStackState;
  runId: string | null;
  attempts: number;
  error: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface StartRollout {
  name: string;
  commit: string;
  waves: readonly PlannedWave[];
  /** Take over from the active rollout (it ends superseded; its stacks not yet started never start). */
  supersede?: boolean;
  requestedBy?: string;
}

type Ended = { id: string; commit: string; state: RolloutState };

/** A request that does not apply to the rollout's state (409 at the API, exit 1 in tenantctl). */
export class RolloutStateError extends Error {}

interface RolloutRow {
  id: string; name: string; commit: string; state: RolloutState; waves: PlannedWave[]; wave: number;
  wave_done_at: Date | null; halt_reason: string | null; supersede: boolean; requested_by: string | null;
  created_at: Date; updated_at: Date; finished_at: Date | null;
}
interface StackRow {
  wave: number; stack: string; state: RolloutStackState; run_id: string | null; attempts: number;
  error: string | null; started_at: Date | null; finished_at: Date | null;
}
const iso = (d: Date | null) => (d ? d.toISOString() : null);
function toRecord(r: RolloutRow): RolloutRecord {
  return {
    id: r.id, name: r.name, commit: r.commit, state: r.state, waves: r.waves, wave: r.wave, waveDoneAt: iso(r.wave_done_at),
    haltReason: r.halt_reason, supersede: r.supersede, requestedBy: r.requested_by, createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(), finishedAt: iso(r.finished_at),
  };
}
function toStack(r: StackRow): RolloutStackRecord {
  return { wave: r.wave, stack: r.stack, state: r.state, runId: r.run_id, attempts: r.attempts, error: r.error, startedAt: iso(r.started_at), finishedAt: iso(r.finished_at) };
}

export interface RolloutEngineOptions {
  /** Called when a rollout halts (metrics, logs). */
  onHalt?: (rollout: RolloutRecord) => void;
  /** Called when a rollout changes state or a stack starts or ends. */
  onChange?: (rolloutId: string) => void;
  /** Called after a rollout ended (succeeded, aborted or superseded) was committed. */
  onEnd?: (rollout: { id: string; commit: string; state: RolloutState }) => void;
  /**
   * Called after a tick that left the current wave baking, with the milliseconds until its bake
   * time ends: the caller ticks again then rather than at its next interval (no run's end announces it).
   */
  onBaking?: (remainingMs: number) => void;
}

export class RolloutEngine {
  constructor(
    private readonly pool: Pool,
    private readonly runs: RolloutRunPort,
    private readonly opts: RolloutEngineOptions = {},
  ) {}

  /** False only when this process's last tick found no active or waiting rollout and this process started or changed none since. */
  private seenActive = true;

  /**
   * Whether a rollout may be active or waiting: a run's end ticks the engine at once only then
   * (ControlPlane), so a fleet with no rollout does not pay a tick (five statements in a
   * transaction) per trip of finishes. A rollout started by another process is seen at the next
   * interval's tick, as the runs it ends are.
   */
  get mayBeActive(): boolean {
    return this.seenActive;
  }

  /** Records a rollout and its stacks. It runs at once, waits behind the active one, or supersedes it. */
  async start(input: StartRollout): Promise<RolloutRecord> {
    const stacks = input.waves.flatMap((w) => w.stacks);
    if (stacks.length === 0) throw new RolloutStateError(`rollout "${input.name}" has no stacks to update`);
    if (new Set(stacks).size !== stacks.length) throw new RolloutStateError(`rollout "${input.name}" lists a stack in two waves`);
    const ended: Ended[] = [];
    const id = await withTransaction(this.pool, async (c) => {
      await c.query("SELECT pg_advisory_xact_lock($1)", [TICK_LOCK]);
      const active = await c.query<{ id: string }>("SELECT id FROM rollouts WHERE state = ANY($1) FOR UPDATE", [ACTIVE_STATES]);
      let state: RolloutState = "running";
      if (active.rows.length > 0) {
        if (input.supersede) {
          const { rows: old } = await c.query<{ id: string; commit: string }>(
            "UPDATE rollouts SET state = 'superseded', finished_at = now(), updated_at = now() WHERE id = $1 RETURNING id, commit",
            [active.rows[0]!.id],
          );
          ended.push({ ...old[0]!, state: "superseded" });
          await this.notify(c, active.rows[0]!.id);
        } else state = "waiting";
      }
      const { rows } = await c.query<{ id: string }>(
        "INSERT INTO rollouts (name, commit, state, waves, supersede, requested_by) VALUES ($1, $2, $3, $4::jsonb, $5, $6) RETURNING id",
        [input.name, input.commit, state, JSON.stringify(input.waves), input.supersede ?? false, input.requestedBy ?? null],
      );
      const rid = rows[0]!.id;
      await c.query(
        `INSERT INTO rollout_stacks (rollout_id, wave, stack, state)
         SELECT $1, w.ordinality - 1, s.stack, 'pending'
           FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS w(value, ordinality),
                jsonb_array_elements_text(w.value -> 'stacks') AS s(stack)`,
        [rid, JSON.stringify(input.waves)],
      );
      await this.notify(c, rid);
      return rid;
    });
    // After the commit, which waited for any tick holding the rollouts' lock (that tick may have found none).
    this.seenActive = true;
    this.ended(ended);
    return (await this.get(id))!;
  }

  async get(id: string): Promise<RolloutRecord | undefined> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
    const { rows } = await this.pool.query<RolloutRow>("SELECT * FROM rollouts WHERE id = $1", [id]);
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async list(limit = 50): Promise<RolloutRecord[]> {
    const { rows } = await this.pool.query<RolloutRow>("SELECT * FROM rollouts ORDER BY created_at DESC LIMIT $1", [limit]);
    return rows.map(toRecord);
  }

  async stacks(id: string): Promise<RolloutStackRecord[]> {
    const { rows } = await this.pool.query<StackRow>("SELECT * FROM rollout_stacks WHERE rollout_id = $1 ORDER BY wave, stack", [id]);
    return rows.map(toStack);
  }

  /** Canary time, overhead per run and the halt's safety figure (timing.ts). */
  timing(rollout: RolloutRecord): Promise<RolloutTiming> {
    return rolloutTiming(this.pool, rollout);
  }

  /** No new stack starts; running ones finish. */
  pause(id: string): Promise<RolloutRecord> {
    return this.transition(id, ["running"], "paused");
  }

  /**
   * A paused or halted rollout runs again. After a halt, the current wave's failed stacks start
   * again, with the rollout's program (a failure outside the program: a tenant file fixed on the
   * main branch, whose fleet files every run takes from the head, or a transient error). A fix
   * of the program itself is a new commit: a new rollout that supersedes this one.
   */
  async resume(id: string): Promise<RolloutRecord> {
    return this.transition(id, ["paused", "halted"], "running", async (c, before) => {
      if (before === "halted") {
        await c.query("UPDATE rollout_stacks SET state = 'pending', error = NULL WHERE rollout_id = $1 AND wave = (SELECT wave FROM rollouts WHERE id = $1) AND state = 'failed'", [id]);
      }
    });
  }

  /** Ends the rollout: stacks not yet started never start (runs already queued or running go on: a run is never cut off mid-update). */
  abort(id: string): Promise<RolloutRecord> {
    return this.transition(id, ["waiting", "running", "paused", "halted"], "aborted");
  }

  private async transition(
    id: string,
    from: readonly RolloutState[],
    to: RolloutState,
    extra?: (c: PoolClient, before: RolloutState) => Promise<void>,
  ): Promise<RolloutRecord> {
    const ended: Ended[] = [];
    await withTransaction(this.pool, async (c) => {
      await c.query("SELECT pg_advisory_xact_lock($1)", [TICK_LOCK]);
      const { rows } = await c.query<{ state: RolloutState }>("SELECT state FROM rollouts WHERE id = $1 FOR UPDATE", [id]);
      const before = rows[0]?.state;
      if (!before) throw new RolloutStateError(`rollout ${id} does not exist`);
      if (!from.includes(before)) {
        throw new RolloutStateError(`rollout ${id} is ${before}; only a rollout that is ${from.join(" or ")} can become ${to}`);
      }
      if (extra) await extra(c, before);
      const ends = to === "aborted";
      if (ends) ended.push({ id, commit: (await c.query<{ commit: string }>("SELECT commit FROM rollouts WHERE id = $1", [id])).rows[0]!.commit, state: to });
      await c.query(
        `UPDATE rollouts SET state = $2, updated_at = now(), halt_reason = CASE WHEN $2 = 'running' THEN NULL ELSE halt_reason END${ends ? ", finished_at = now()" : ""} WHERE id = $1`,
        [id, to],
      );
      await this.notify(c, id);
    });
    this.seenActive = true;
    this.ended(ended);
    return (await this.get(id))!;
  }

  private ended(list: readonly Ended[]): void {
    for (const r of list) this.opts.onEnd?.(r);
  }

  /**
   * Advances the active rollout (or promotes the oldest waiting one): records finished runs,
   * halts on a spent budget, starts pending stacks up to the wave's parallelism, moves to the
   * next wave after the bake time. Safe to call from several processes at once.
   */
  async tick(): Promise<void> {
    const result = await withTransaction(this.pool, async (c) => {
      await c.query("SELECT pg_advisory_xact_lock($1)", [TICK_LOCK]);
      // Rollouts that changed, announced once each at the end of the transaction (one NOTIFY a
      // rollout, not one per stack: this runs after every run's end).
      const touched = new Set<string>();
      const out = await this.advanceActive(c, touched);
      for (const id of touched) await this.notify(c, id);
      return out;
    });
    if (result.queued) this.runs.jobsSent();
    if (result.bakingMs !== undefined) this.opts.onBaking?.(result.bakingMs);
    this.ended(result.ended);
    if (result.halted && this.opts.onHalt) {
      const r = await this.get(result.halted);
      if (r) this.opts.onHalt(r);
    }
  }

  /** tick()'s work inside its transaction, under the rollouts' lock. */
  private async advanceActive(c: PoolClient, touched: Set<string>): Promise<{ queued: boolean; halted?: string; ended: Ended[]; bakingMs?: number }> {
    const out: { queued: boolean; halted?: string; ended: Ended[]; bakingMs?: number } = { queued: false, ended: [] };
    let active = (await c.query<RolloutRow>("SELECT * FROM rollouts WHERE state = ANY($1) FOR UPDATE", [ACTIVE_STATES])).rows[0];
    if (!active) {
      const next = (await c.query<RolloutRow>("SELECT * FROM rollouts WHERE state = 'waiting' ORDER BY created_at LIMIT 1 FOR UPDATE")).rows[0];
      // Under the rollouts' lock: a start() in this process commits after this and sets it again.
      this.seenActive = next !== undefined;
      if (!next) return out;
      await c.query("UPDATE rollouts SET state = 'running', updated_at = now() WHERE id = $1", [next.id]);
      touched.add(next.id);
      active = { ...next, state: "running" };
    }
    this.seenActive = true;
    await this.recordOutcomes(c, active, touched);
    if (active.state !== "running") return out;
    // Several waves may complete in one tick when bake times are zero.
    for (let guard = 0; guard <= active.waves.length; guard++) {
      const step = await this.advance(c, active, touched);
      if (step.succeeded) out.ended.push({ id: active.id, commit: active.commit, state: "succeeded" });
      if (step.queued) out.queued = true;
      if (step.halted) out.halted = active.id;
      if (step.bakingMs !== undefined) out.bakingMs = step.bakingMs;
      if (!step.nextWave) break;
      active = (await c.query<RolloutRow>("SELECT * FROM rollouts WHERE id = $1", [active.id])).rows[0]!;
      if (active.state !== "running") break;
    }
    return out;
  }

  /**
   * Marks the active rollout's running stacks whose runs ended (whatever the rollout's state), in
   * one statement: a tick after every run's end must stay a handful of round trips.
   */
  private async recordOutcomes(c: PoolClient, r: RolloutRow, touched: Set<string>): Promise<void> {
    const running = (await c.query<{ stack: string; run_id: string }>(
      "SELECT stack, run_id FROM rollout_stacks WHERE rollout_id = $1 AND state = 'running'", [r.id],
    )).rows;
    if (running.length === 0) return;
    const outcomes = await this.runs.outcomes(c, running.map((s) => s.run_id));
    const ended = running.flatMap((s) => {
      const o = outcomes.get(s.run_id);
      return o ? [{ stack: s.stack, state: o.state, error: o.state === "failed" ? (o.error ?? `run ${s.run_id} failed`) : null }] : [];
    });
    if (ended.length === 0) return;
    await c.query(
      `UPDATE rollout_stacks s SET state = o.state, error = o.error, finished_at = now()
         FROM unnest($2::text[], $3::text[], $4::text[]) AS o(stack, state, error)
        WHERE s.rollout_id = $1 AND s.stack = o.stack`,
      [r.id, ended.map((e) => e.stack), ended.map((e) => e.state), ended.map((e) => e.error)],
    );
    touched.add(r.id);
  }

  private async advance(c: PoolClient, r: RolloutRow, touched: Set<string>): Promise<{ queued?: boolean; halted?: boolean; nextWave?: boolean; succeeded?: boolean; bakingMs?: number }> {
    const wave = r.waves[r.wave];
    if (!wave) {
      await c.query("UPDATE rollouts SET state = 'succeeded', finished_at = now(), updated_at = now() WHERE id = $1", [r.id]);
      touched.add(r.id);
      return { succeeded: true };
    }
    // The wave's counts and, in the same statement, its first pending stacks (as many as could start).
    const tally = (await c.query<{ state: RolloutStackState; n: string; first: string[] | null }>(
      "SELECT state, count(*) AS n, (array_agg(stack ORDER BY stack) FILTER (WHERE state = 'pending'))[1:$3] AS first FROM rollout_stacks WHERE rollout_id = $1 AND wave = $2 GROUP BY state",
      [r.id, r.wave, wave.parallelism],
    )).rows;
    const counts = new Map<RolloutStackState, number>(tally.map((x) => [x.state, Number(x.n)]));
    const failed = counts.get("failed") ?? 0;
    if (failed > failureAllowance(wave)) {
      const first = (await c.query<{ stack: string; error: string | null }>(
        "SELECT stack, error FROM rollout_stacks WHERE rollout_id = $1 AND wave = $2 AND state = 'failed' ORDER BY finished_at, stack LIMIT 1", [r.id, r.wave],
      )).rows[0]!;
      const reason = haltReason({ index: r.wave, waveCount: r.waves.length, wave, total: wave.stacks.length, failed, first: { unit: first.stack, error: first.error } }, "stacks")!;
      await c.query("UPDATE rollouts SET state = 'halted', halt_reason = $2, updated_at = now() WHERE id = $1", [r.id, reason]);
      touched.add(r.id);
      return { halted: true };
    }
    const running = counts.get("running") ?? 0;
    const pending = counts.get("pending") ?? 0;
    const free = wave.parallelism - running;
    if (pending > 0 && free > 0) {
      const next = (tally.find((x) => x.state === "pending")?.first ?? []).slice(0, free).map((stack) => ({ stack }));
      const reason = `rollout ${r.name} (${r.commit.slice(0, 12)}), wave ${r.wave + 1} of ${r.waves.length} (ring ${wave.ring})`;
      const runIds: string[] = [];
      for (const { stack } of next) runIds.push((await this.runs.enqueue(c, stack, { reason, programCommit: r.commit })).runId);
      // Marked running with their runs in the transaction that queued them: never started twice, never lost.
      await c.query(
        `UPDATE rollout_stacks s SET state = 'running', run_id = n.run_id, attempts = attempts + 1, started_at = now(), finished_at = NULL, error = NULL
           FROM unnest($2::text[], $3::uuid[]) AS n(stack, run_id)
          WHERE s.rollout_id = $1 AND s.stack = n.stack`,
        [r.id, next.map((x) => x.stack), runIds],
      );
      touched.add(r.id);
      return { queued: next.length > 0 };
    }
    if (pending > 0 || running > 0) return {};
    // The wave is done: bake, then the next wave.
    if (!r.wave_done_at) {
      await c.query("UPDATE rollouts SET wave_done_at = now(), updated_at = now() WHERE id = $1", [r.id]);
      touched.add(r.id);
    }
    const { rows } = await c.query<{ remaining: number }>(
      "SELECT GREATEST(0, EXTRACT(EPOCH FROM COALESCE(wave_done_at, now()) + make_interval(secs => $2::double precision / 1000) - now()) * 1000)::double precision AS remaining FROM rollouts WHERE id = $1",
      [r.id, wave.bakeMs],
    );
    if (rows[0]!.remaining > 0) return { bakingMs: rows[0]!.remaining };
    await c.query("UPDATE rollouts SET wave = wave + 1, wave_done_at = NULL, updated_at = now() WHERE id = $1", [r.id]);
    touched.add(r.id);
    return { nextWave: true };
  }

  private async notify(c: PoolClient, id: string): Promise<void> {
    await c.query("SELECT pg_notify($1, $2)", [ROLLOUT_CHANNEL, id]);
    this.opts.onChange?.(id);
  }
}
