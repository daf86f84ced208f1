/**
 * Durable intake of a verified Stripe event, in one transaction:
 *
 *   INSERT the event id (primary key) -- a redelivery conflicts: answer 200, enqueue nothing
 *   lock the subscription's row, apply the event if it is not stale (subscriptions.ts)
 *   insert the reconcile job in the same transaction (pg-boss' own insert statement)
 *   COMMIT
 *
 * so "the event is recorded" and "its work is enqueued" are one fact: both or neither.
 *
 * The transaction takes two round trips to PostgreSQL (it took eight, one per statement; the
 * webhook-intake benchmark in BENCHMARKS.md measures the difference). Each trip is one
 * simple-protocol query of several statements, which PostgreSQL runs in order and stops at the
 * first error (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-MULTI-STATEMENT):
 *
 *   1. BEGIN; the event insert; the subscription's placeholder row; SELECT it FOR UPDATE
 *   2. (the transition is decided here, in subscriptions.ts) the subscription update, the job
 *      insert(s), a check that every job row exists, the event's outcome; COMMIT
 *
 * The transaction stays open between the trips (its BEGIN is explicit) and holds the
 * subscription's row lock, as it did. Any error rolls it back whole: the failing statement skips
 * the rest of its trip (COMMIT included) and the caller sends ROLLBACK. Values are quoted with pg's
 * escapeLiteral (the simple protocol has no parameters) and cast to their columns by PostgreSQL,
 * as the parameters were.
 */
import { escapeLiteral, type Pool, type PoolClient, type QueryResult } from "pg";
import type { PgBoss } from "pg-boss";
import { crashPoint } from "../crashPoints.ts";
import { jobInsertStatement, QUEUES, type JobInsertStatement, type ReconcileJob } from "../queue.ts";
import { readStripeEvent } from "./events.ts";
import { transition, type SubscriptionState } from "./subscriptions.ts";

export type IntakeResult =
  | { duplicate: true; eventId: string }
  | { duplicate: false; eventId: string; outcome: "accepted" | "stale" | "ignored" | "rejected"; reason?: string; subscriptionId?: string };

interface SubscriptionRow {
  id: string;
  customer_id: string | null;
  tenant_id: string | null;
  price_id: string | null;
  status: string;
  metadata: Record<string, string>;
  last_event_id: string;
  last_event_created: string;
  deleted_at: string | null;
  delinquent_since: string | null;
  suspended_by_billing: boolean;
}

/** A subscriptions row as state; the placeholder row of a first event (created -1) is no state. */
export function rowToState(r: SubscriptionRow): SubscriptionState | undefined {
  if (Number(r.last_event_created) < 0) return undefined;
  return {
    id: r.id,
    customerId: r.customer_id,
    tenantId: r.tenant_id,
    priceId: r.price_id,
    status: r.status,
    metadata: r.metadata,
    lastEventId: r.last_event_id,
    lastEventCreated: Number(r.last_event_created),
    deletedAt: r.deleted_at === null ? null : Number(r.deleted_at),
    delinquentSince: r.delinquent_since === null ? null : Number(r.delinquent_since),
    suspendedByBilling: r.suspended_by_billing,
  };
}

export async function loadSubscription(db: Pick<Pool, "query">, id: string): Promise<SubscriptionState | undefined> {
  const { rows } = await db.query<SubscriptionRow>("SELECT * FROM subscriptions WHERE id = $1", [id]);
  return rows[0] ? rowToState(rows[0]) : undefined;
}

export interface IntakeOptions {
  /** Hours past_due/unpaid before suspension; a delayed reconcile job fires when it ends. */
  graceHours: number;
}

/** A value as an SQL literal (text, cast by PostgreSQL to the column's type as a parameter would be). */
const lit = (v: string | number | null): string => (v === null ? "NULL" : escapeLiteral(String(v)));

/** One simple-protocol query of several statements: each statement's result, in order. */
async function trip(client: PoolClient, statements: readonly string[]): Promise<QueryResult<Record<string, unknown>>[]> {
  const res: unknown = await client.query(statements.map((s) => `${s};`).join("\n"));
  const all = (Array.isArray(res) ? res : [res]) as QueryResult<Record<string, unknown>>[];
  if (all.length !== statements.length) throw new Error(`an intake query of ${statements.length} statement(s) answered ${all.length} result(s)`);
  return all;
}

/** Fails the statement (and so the transaction) unless every job row exists: an accepted event always has its work. */
function jobsExist(jobs: readonly JobInsertStatement[]): string {
  return `SELECT 1 / (count(*) = ${jobs.length})::int AS jobs_inserted FROM pgboss.job WHERE name = ${lit(QUEUES.reconcile)} AND id = ANY(ARRAY[${jobs.map((j) => lit(j.id)).join(", ")}]::uuid[])`;
}

export async function recordStripeEvent(pool: Pool, boss: PgBoss, raw: unknown, opts: IntakeOptions): Promise<IntakeResult> {
  const read = readStripeEvent(raw);
  if (!read.ok && !read.id) return { duplicate: false, eventId: "", outcome: "rejected", reason: read.reason };
  const base = read.ok ? read.event : { id: read.id!, type: String((raw as { type?: unknown }).type), created: Number((raw as { created?: unknown }).created) || 0 };
  const snap = read.ok ? read.event.subscription : undefined;
  const client = await pool.connect();
  let open = false;
  let broken: Error | undefined;
  try {
    open = true;
    const first = await trip(client, [
      "BEGIN",
      `INSERT INTO billing_events (id, type, created, subscription_id, payload, outcome, reason)
       VALUES (${lit(base.id)}, ${lit(base.type)}, ${lit(base.created)}, ${lit(snap?.id ?? null)}, ${lit(JSON.stringify(raw))},
               ${lit(read.ok ? "ignored" : "rejected")}, ${lit(read.ok ? null : read.reason)}) ON CONFLICT (id) DO NOTHING RETURNING id`,
      ...(snap
        ? [
            `INSERT INTO subscriptions (id, status, last_event_id, last_event_created) VALUES (${lit(snap.id)}, 'unknown', '', -1) ON CONFLICT (id) DO NOTHING`,
            `SELECT * FROM subscriptions WHERE id = ${lit(snap.id)} FOR UPDATE`,
          ]
        : []),
    ]);
    if (!first[1]!.rowCount) {
      await trip(client, ["ROLLBACK"]);
      open = false;
      return { duplicate: true, eventId: base.id };
    }
    crashPoint("intake.stored");
    const commit = async <T>(statements: string[], value: T): Promise<T> => {
      await trip(client, [...statements, "COMMIT"]);
      open = false;
      return value;
    };
    if (!read.ok) return await commit([], { duplicate: false, eventId: base.id, outcome: "rejected", reason: read.reason });
    const ev = read.event;
    if (!snap) return await commit([], { duplicate: false, eventId: ev.id, outcome: "ignored", reason: `${ev.type} does not change tenants` });

    const row = first[3]!.rows[0] as unknown as SubscriptionRow;
    const t = transition(rowToState(row), { ...ev, subscription: snap });
    if (t.kind === "stale") {
      return await commit([`UPDATE billing_events SET outcome = 'stale', reason = ${lit(t.reason)} WHERE id = ${lit(ev.id)}`], {
        duplicate: false, eventId: ev.id, outcome: "stale", reason: t.reason, subscriptionId: snap.id,
      });
    }
    const n = t.next;
    const job: ReconcileJob = { subscriptionId: snap.id, eventId: ev.id };
    const jobs = [await jobInsertStatement(boss, QUEUES.reconcile, job)];
    if (t.becameDelinquent && n.delinquentSince !== null) {
      // Re-check when the grace period ends (the reconcile then suspends if still unpaid).
      const at = new Date((n.delinquentSince + opts.graceHours * 3600) * 1000 + 1000);
      if (at.getTime() > Date.now()) jobs.push(await jobInsertStatement(boss, QUEUES.reconcile, job, { startAfter: at }));
    }
    return await commit(
      [
        `UPDATE subscriptions SET customer_id = ${lit(n.customerId)}, price_id = ${lit(n.priceId)}, status = ${lit(n.status)}, metadata = ${lit(JSON.stringify(n.metadata))},
           last_event_id = ${lit(n.lastEventId)}, last_event_created = ${lit(n.lastEventCreated)}, deleted_at = ${lit(n.deletedAt)},
           delinquent_since = ${lit(n.delinquentSince)}, updated_at = now() WHERE id = ${lit(n.id)}`,
        ...jobs.map((j) => j.sql),
        jobsExist(jobs),
        `UPDATE billing_events SET outcome = 'accepted', job_id = ${lit(jobs[0]!.id)} WHERE id = ${lit(ev.id)}`,
      ],
      { duplicate: false, eventId: ev.id, outcome: "accepted" as const, subscriptionId: snap.id },
    );
  } catch (err) {
    if (open) await client.query("ROLLBACK").catch((e: unknown) => (broken = e instanceof Error ? e : new Error(String(e))));
    throw err;
  } finally {
    client.release(broken);
  }
}
