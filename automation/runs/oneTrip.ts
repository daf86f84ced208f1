/**
 * A run's claim and its finish, each in one round trip to PostgreSQL in the common case
 * (RunStore.start and RunStore.finish try these first; docs/control-plane.md, "Per-run overhead").
 *
 * The transactional paths of RunStore take the stacks' advisory locks, read the run, check the
 * stacks and update, one statement at a time: nine round trips for a claim, seven for a finish, each
 * holding one of the pool's connections. Here the same work is one simple-protocol query of several
 * statements, which PostgreSQL runs as one implicit transaction (rolled back as a whole on an error;
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-MULTI-STATEMENT): first
 * the advisory locks of the run's stacks, then one statement that checks and updates. Under READ
 * COMMITTED every statement takes a new snapshot, so the checking statement, which starts after the
 * locks are held, sees everything committed by whoever held them before (an enqueue, a finish, a
 * hold); a single statement could not, its snapshot being older than its lock.
 *
 * The fast paths do only what needs no decision outside SQL: a queued run whose job still owns it,
 * of a served region, with no running run on its stacks and no hold (the claim); the owner ending
 * its run while no queued run waits for the stacks (the finish). Anything else (a takeover, a skip,
 * a reroute, a queued run to kick) changes nothing here, and the caller takes its transactional
 * path, which decides as before. The statements need literal values (the simple protocol has no
 * parameters): every value is quoted with pg's escapeLiteral, lock keys are integers.
 *
 * A claim or a finish is a TripItem: its stacks and its one checking statement. Several items go
 * in one query (runTrip: every item's locks first, sorted and taken once, then each statement), so
 * one commit records them all; RunStore sends them through a TripBatcher (groupCommit.ts).
 */
import { escapeLiteral, type QueryResult } from "pg";
import { lockKey } from "../db/tx.ts";

const lit = (v: string | null): string => (v === null ? "NULL" : escapeLiteral(v));
const textArray = (vs: readonly string[]): string => `ARRAY[${vs.map(lit).join(", ")}]::text[]`;

/** The stacks a run occupies (its own and a state move's source), sorted: the order their locks are taken in. */
export function runStacks(stack: string, operation: string, source: string | null | undefined): string[] {
  return [...new Set([stack, ...(operation === "move" && source ? [source] : [])])].sort();
}

function lockStatements(stacks: readonly string[]): string {
  return stacks.map((s) => `SELECT pg_advisory_xact_lock(${lockKey(`stack:${s}`) | 0});`).join("\n");
}

/** Whether a running run occupies one of `stacks` (alias b), as RunStore.busy asks. */
const busy = (stacks: string) =>
  `EXISTS (SELECT 1 FROM runs b WHERE b.state = 'running' AND (b.stack = ANY(${stacks}) OR (b.operation = 'move' AND b.options->>'source' = ANY(${stacks}))))`;

/** The run's stacks in SQL, sorted as runStacks sorts them (code points: COLLATE "C"). */
const occupied = (r: string) =>
  `ARRAY(SELECT s FROM (SELECT DISTINCT s FROM unnest(ARRAY[${r}stack, CASE WHEN ${r}operation = 'move' THEN ${r}options->>'source' END]) s WHERE s IS NOT NULL) d ORDER BY s COLLATE "C")`;

/** One claim or finish: the stacks it locks and its one statement, whose rows `read` turns into the answer. */
export interface TripItem<T> {
  kind: "claim" | "finish";
  stacks: readonly string[];
  /** One statement, without a trailing semicolon. */
  sql: string;
  read(rows: Record<string, unknown>[]): T;
}

/** The query of several items: the locks of all their stacks (sorted, each once), then each item's statement. */
export function tripSql(items: readonly TripItem<unknown>[]): { sql: string; locks: number } {
  const stacks = [...new Set(items.flatMap((i) => i.stacks))].sort();
  return { sql: `${lockStatements(stacks)}\n${items.map((i) => `${i.sql};`).join("\n")}`, locks: stacks.length };
}

/** What runs a trip's query (a pg Pool). */
export interface TripQueryable {
  query(sql: string): Promise<unknown>;
}

/** Runs the items in one query, one implicit transaction (one commit); their answers in order. */
export async function runTrip(pool: TripQueryable, items: readonly TripItem<unknown>[]): Promise<unknown[]> {
  const { sql, locks } = tripSql(items);
  const res: unknown = await pool.query(sql);
  const all = (Array.isArray(res) ? res : [res]) as QueryResult<Record<string, unknown>>[];
  if (all.length !== locks + items.length) throw new Error(`a run trip of ${items.length} statement(s) and ${locks} lock(s) answered ${all.length} result(s)`);
  return items.map((item, i) => item.read(all[locks + i]!.rows));
}

export interface FastClaim {
  runId: string;
  jobId: string;
  /** The run's stacks as the job carries them (StackRunJob.stacks); the claim checks they are the run's. */
  stacks: readonly string[];
  worker: string;
  runner: string;
  regions: readonly string[];
  /** The main head read just before: recorded as the run's commit when it applies the head (no programCommit). */
  head?: string;
  /**
   * With `head`: the program in force for the run's stack as an SQL expression of the stack and
   * the head (automation/rollouts/inForce.ts programInForceSql), recorded as the program commit of
   * a run that has none; the worker then needs no round trip of its own to pin it. Absent: not pinned here.
   */
  pin?: (stack: string, head: string) => string;
  startedAt: string;
}

/** The claimed row (as `SELECT *` returns it) and the tenants of its changes; undefined: take the transactional path. */
export function claimItem<Row>(c: FastClaim, channel: string): TripItem<{ row: Row; tenants: string[] } | undefined> {
  const stacks = textArray(c.stacks);
  const sql = `WITH cur AS (
  SELECT r.id, r.stack AS pin_stack FROM runs r
   WHERE r.id = ${lit(c.runId)}::uuid AND r.job_id = ${lit(c.jobId)}::uuid AND r.state = 'queued' AND r.region = ANY(${textArray(c.regions)})
     AND ${occupied("r.")} = ${stacks}
     AND NOT ${busy(stacks)}
     AND (r.operation = 'move' OR NOT EXISTS (SELECT 1 FROM stack_holds h WHERE h.stack = ANY(${stacks})))
   FOR UPDATE
), claimed AS (
  UPDATE runs r SET state = 'running', attempts = r.attempts + 1, worker = ${lit(c.worker)}, runner = ${lit(c.runner)}, heartbeat_at = now(), handover_due_at = NULL,
     started_at = COALESCE(r.started_at, now()),
     commit_sha = CASE WHEN r.program_commit IS NULL AND ${lit(c.head ?? null)}::text IS NOT NULL THEN ${lit(c.head ?? null)} ELSE r.commit_sha END,${
       c.pin && c.head ? `\n     program_commit = COALESCE(r.program_commit, ${c.pin("cur.pin_stack", `${lit(c.head)}::text`)}),` : ""}
     attempt_log = (SELECT COALESCE(jsonb_agg(CASE WHEN e->>'outcome' IS NULL THEN e || '{"outcome":"lost","message":"worker stopped sending heartbeats"}'::jsonb ELSE e END), '[]'::jsonb)
                    FROM jsonb_array_elements(r.attempt_log) e)
                   || jsonb_build_array(jsonb_build_object('attempt', r.attempts + 1, 'worker', ${lit(c.worker)}::text, 'startedAt', ${lit(c.startedAt)}::text))
    FROM cur WHERE r.id = cur.id
  RETURNING r.*
), notified AS (SELECT pg_notify(${lit(channel)}, id::text) FROM claimed)
SELECT c.*, (SELECT count(*) FROM notified) AS notified,
       ARRAY(SELECT DISTINCT ch.tenant_id FROM changes ch WHERE ch.id = ANY(c.change_ids) ORDER BY ch.tenant_id) AS claim_tenants
  FROM claimed c`;
  return {
    kind: "claim",
    stacks: c.stacks,
    sql,
    read: (rows) => {
      const row = rows[0] as (Row & { notified: string; claim_tenants: string[] }) | undefined;
      if (!row) return undefined;
      const { notified: _n, claim_tenants: tenants, ...rest } = row;
      return { row: rest as unknown as Row, tenants };
    },
  };
}


export interface FastFinish {
  runId: string;
  worker: string;
  stacks: readonly string[];
  state: "succeeded" | "failed";
  output: unknown;
  error?: string;
  /** The attempt log entry's closing fields (endedAt, outcome, message). */
  done: Record<string, unknown>;
}

/** Records the outcome; false: nothing changed (not the owner, or a queued run waits): take the transactional path. */
export function finishItem(f: FastFinish, channel: string): TripItem<boolean> {
  const stacks = textArray(f.stacks);
  const sql = `WITH done AS (
  UPDATE runs SET state = ${lit(f.state)}, output = ${lit(JSON.stringify(f.output ?? null))}::jsonb, error = ${lit(f.error ?? null)}, finished_at = now(), heartbeat_at = NULL, handover_due_at = NULL,
     attempt_log = CASE WHEN jsonb_array_length(attempt_log) = 0 THEN attempt_log
                        ELSE jsonb_set(attempt_log, ARRAY[(jsonb_array_length(attempt_log) - 1)::text], (attempt_log -> -1) || ${lit(JSON.stringify(f.done))}::jsonb) END
   WHERE id = ${lit(f.runId)}::uuid AND worker = ${lit(f.worker)} AND state = 'running'
     AND ${occupied("")} = ${stacks}
     AND NOT EXISTS (SELECT 1 FROM runs q WHERE q.state = 'queued' AND q.job_id IS NULL
                      AND (q.stack = ANY(${stacks}) OR (q.operation = 'move' AND q.options->>'source' = ANY(${stacks}))))
  RETURNING id
), notified AS (SELECT pg_notify(${lit(channel)}, id::text) FROM done)
SELECT (SELECT count(*) FROM done)::int AS finished, (SELECT count(*) FROM notified)::int AS notified`;
  return { kind: "finish", stacks: f.stacks, sql, read: (rows) => Number(rows[0]?.finished ?? 0) > 0 };
}

