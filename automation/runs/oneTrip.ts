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
 * The checking statements are calls of server-side functions (tenancy_claim_run, tenancy_finish_run:
 * automation/db/migrations/340_run_claim_functions.sql, as replaced by 341_run_claim_lookups.sql):
 * sent as text, each was parsed and planned
 * afresh on every claim, about 1 ms of the server's time a run where the work itself is a tenth of
 * that; PL/pgSQL plans a function's statements once per session.
 *
 * A claim or a finish is a TripItem: its stacks and its one checking statement. Several items go
 * in one query (runTrip: every item's locks first, sorted and taken once, then the statements), so
 * one commit records them all; RunStore sends them through a TripBatcher (groupCommit.ts). The
 * claims of a trip are one statement (the function called for each over a VALUES list, in order,
 * every call seeing the ones before it as a VOLATILE function does), and so are its finishes.
 */
import { escapeLiteral, type QueryResult } from "pg";
import { platformStackName } from "../../infra/model/naming.ts";
import { lockKey } from "../db/tx.ts";

/** What every platform stack's name starts with: the program in force for one is the head (automation/rollouts/inForce.ts). */
const PLATFORM_PREFIX = platformStackName("");

const lit = (v: string | null): string => (v === null ? "NULL" : escapeLiteral(v));
const textArray = (vs: readonly string[]): string => `ARRAY[${vs.map(lit).join(", ")}]::text[]`;

/** The stacks a run occupies (its own and a state move's source), sorted: the order their locks are taken in. */
export function runStacks(stack: string, operation: string, source: string | null | undefined): string[] {
  return [...new Set([stack, ...(operation === "move" && source ? [source] : [])])].sort();
}

function lockStatements(stacks: readonly string[]): string {
  return stacks.map((s) => `SELECT pg_advisory_xact_lock(${lockKey(`stack:${s}`) | 0});`).join("\n");
}

/** One claim or finish: the stacks it locks and its one statement, whose rows `read` turns into the answer. */
export interface TripItem<T> {
  kind: "claim" | "finish";
  stacks: readonly string[];
  /** One statement, without a trailing semicolon. */
  sql: string;
  read(rows: Record<string, unknown>[]): T;
  /**
   * Consecutive items of a trip with the same group key go as one statement instead of one each:
   * `statement` over the VALUES rows of all of them (`values(i)`, i the item's place in the trip,
   * its first column), which answers each item's rows marked `trip_item`. A statement in a
   * multi-statement query is parsed, planned and started on its own: for a claim, half of the
   * server's time (docs/control-plane.md, "Per-run overhead").
   */
  group?: { key: string; values: (i: number) => string; statement: (values: string) => string };
}

/** A statement of a trip: one item alone, or consecutive items of one group. */
export interface TripUnit {
  items: number[];
  grouped: boolean;
  sql: string;
}

function unitsOf(items: readonly TripItem<unknown>[]): TripUnit[] {
  const units: TripUnit[] = [];
  for (let i = 0; i < items.length; i++) {
    const group = items[i]!.group;
    const last = units[units.length - 1];
    if (group && last?.grouped && items[last.items[0]!]!.group?.key === group.key) last.items.push(i);
    else units.push({ items: [i], grouped: group !== undefined, sql: "" });
  }
  for (const u of units) {
    const first = items[u.items[0]!]!;
    u.grouped = u.grouped && u.items.length > 1;
    u.sql = u.grouped ? first.group!.statement(u.items.map((i) => items[i]!.group!.values(i)).join(",\n  ")) : first.sql;
  }
  return units;
}

/** The query of several items: the locks of all their stacks (sorted, each once), then the items' statements. */
export function tripSql(items: readonly TripItem<unknown>[]): { sql: string; locks: number; units: TripUnit[] } {
  const stacks = [...new Set(items.flatMap((i) => i.stacks))].sort();
  const units = unitsOf(items);
  return { sql: `${lockStatements(stacks)}\n${units.map((u) => `${u.sql};`).join("\n")}`, locks: stacks.length, units };
}

/** What runs a trip's query (a pg Pool). */
export interface TripQueryable {
  query(sql: string): Promise<unknown>;
}

/** Runs the items in one query, one implicit transaction (one commit); their answers in order. */
export async function runTrip(pool: TripQueryable, items: readonly TripItem<unknown>[]): Promise<unknown[]> {
  const { sql, locks, units } = tripSql(items);
  const res: unknown = await pool.query(sql);
  const all = (Array.isArray(res) ? res : [res]) as QueryResult<Record<string, unknown>>[];
  if (all.length !== locks + units.length) throw new Error(`a run trip of ${units.length} statement(s) and ${locks} lock(s) answered ${all.length} result(s)`);
  const answers: unknown[] = new Array(items.length);
  units.forEach((u, k) => {
    const rows = all[locks + k]!.rows;
    if (!u.grouped) {
      answers[u.items[0]!] = items[u.items[0]!]!.read(rows);
      return;
    }
    const byItem = new Map<number, Record<string, unknown>[]>(u.items.map((i) => [i, []]));
    for (const { trip_item: i, ...row } of rows) {
      const mine = byItem.get(Number(i));
      if (!mine) throw new Error(`a run trip's grouped statement answered for item ${String(i)}, not one of its ${u.items.length}`);
      mine.push(row);
    }
    for (const i of u.items) answers[i] = items[i]!.read(byItem.get(i)!);
  });
  return answers;
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
   * With `head`: pin the program in force for the run's stack (automation/rollouts/inForce.ts) as
   * the program commit of a run that has none, in the claim itself (the worker then needs no round
   * trip of its own to pin it). Absent: not pinned here.
   */
  pin?: boolean;
  startedAt: string;
}

/** The claimed row (as `SELECT *` returns it) and the tenants of its changes; undefined: take the transactional path. */
export function claimItem<Row>(c: FastClaim, channel: string): TripItem<{ row: Row; tenants: string[] } | undefined> {
  const args = [
    `${lit(c.runId)}::uuid`, `${lit(c.jobId)}::uuid`, textArray(c.stacks), `${lit(c.worker)}::text`, `${lit(c.runner)}::text`, textArray(c.regions),
    `${lit(c.head ?? null)}::text`, `${lit(c.pin && c.head ? PLATFORM_PREFIX : null)}::text`, `${lit(c.startedAt)}::text`, `${lit(channel)}::text`,
  ];
  const tenants = `ARRAY(SELECT DISTINCT ch.tenant_id FROM changes ch WHERE ch.id = ANY(c.change_ids) ORDER BY ch.tenant_id) AS claim_tenants`;
  return {
    kind: "claim",
    stacks: c.stacks,
    sql: `SELECT c.*, ${tenants}\n  FROM tenancy_claim_run(${args.join(", ")}) c`,
    group: {
      key: "claim",
      values: (i) => `(${i}, ${args.join(", ")})`,
      statement: (values) => `SELECT x.i AS trip_item, c.*, ${tenants}
  FROM (VALUES ${values}) AS x(i, run, job, stacks, worker, runner, regions, head, pin, started, channel)
  CROSS JOIN LATERAL tenancy_claim_run(x.run, x.job, x.stacks, x.worker, x.runner, x.regions, x.head, x.pin, x.started, x.channel) c`,
    },
    read: (rows) => {
      const row = rows[0] as (Row & { claim_tenants: string[] }) | undefined;
      if (!row) return undefined;
      const { claim_tenants: tenants, ...rest } = row;
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
  const args = [
    `${lit(f.runId)}::uuid`, `${lit(f.worker)}::text`, textArray(f.stacks), `${lit(f.state)}::text`, `${lit(JSON.stringify(f.output ?? null))}::jsonb`,
    `${lit(f.error ?? null)}::text`, `${lit(JSON.stringify(f.done))}::jsonb`, `${lit(channel)}::text`,
  ];
  return {
    kind: "finish",
    stacks: f.stacks,
    sql: `SELECT tenancy_finish_run(${args.join(", ")}) AS finished`,
    group: {
      key: "finish",
      values: (i) => `(${i}, ${args.join(", ")})`,
      statement: (values) => `SELECT x.i AS trip_item, tenancy_finish_run(x.run, x.worker, x.stacks, x.state, x.output, x.error, x.done, x.channel) AS finished
  FROM (VALUES ${values}) AS x(i, run, worker, stacks, state, output, error, done, channel)`,
    },
    read: (rows) => rows[0]?.finished === true,
  };
}
