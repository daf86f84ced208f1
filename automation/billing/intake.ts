/**
 * Durable intake of a verified Stripe event, in one transaction:
 *
 *   INSERT the event id (primary key) -- a redelivery conflicts: answer 200, enqueue nothing
 *   lock the subscription's row, apply the event if it is not stale (subscriptions.ts)
 *   send the reconcile job through the same transaction (pg-boss `send` with `{ db }`)
 *   COMMIT
 *
 * so "the event is recorded" and "its work is enqueued" are one fact: both or neither.
 */
import type { Pool } from "pg";
import type { PgBoss } from "pg-boss";
import { crashPoint } from "../crashPoints.ts";
import { withTransaction } from "../db/tx.ts";
import { executor, QUEUES, type ReconcileJob } from "../queue.ts";
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

export async function recordStripeEvent(pool: Pool, boss: PgBoss, raw: unknown, opts: IntakeOptions): Promise<IntakeResult> {
  const read = readStripeEvent(raw);
  if (!read.ok && !read.id) return { duplicate: false, eventId: "", outcome: "rejected", reason: read.reason };
  const base = read.ok ? read.event : { id: read.id!, type: String((raw as { type?: unknown }).type), created: Number((raw as { created?: unknown }).created) || 0 };
  return withTransaction(pool, async (client) => {
    const inserted = await client.query(
      `INSERT INTO billing_events (id, type, created, subscription_id, payload, outcome, reason)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING RETURNING id`,
      [base.id, base.type, base.created, read.ok ? (read.event.subscription?.id ?? null) : null, JSON.stringify(raw),
        read.ok ? "ignored" : "rejected", read.ok ? null : read.reason],
    );
    if (!inserted.rowCount) return { duplicate: true, eventId: base.id };
    crashPoint("intake.stored");
    if (!read.ok) return { duplicate: false, eventId: base.id, outcome: "rejected", reason: read.reason };
    const ev = read.event;
    const snap = ev.subscription;
    if (!snap) return { duplicate: false, eventId: ev.id, outcome: "ignored", reason: `${ev.type} does not change tenants` };

    await client.query(
      "INSERT INTO subscriptions (id, status, last_event_id, last_event_created) VALUES ($1, 'unknown', '', -1) ON CONFLICT (id) DO NOTHING",
      [snap.id],
    );
    const { rows } = await client.query<SubscriptionRow>("SELECT * FROM subscriptions WHERE id = $1 FOR UPDATE", [snap.id]);
    const t = transition(rowToState(rows[0]!), { ...ev, subscription: snap });
    if (t.kind === "stale") {
      await client.query("UPDATE billing_events SET outcome = 'stale', reason = $2 WHERE id = $1", [ev.id, t.reason]);
      return { duplicate: false, eventId: ev.id, outcome: "stale", reason: t.reason, subscriptionId: snap.id };
    }
    const n = t.next;
    await client.query(
      `UPDATE subscriptions SET customer_id = $2, price_id = $3, status = $4, metadata = $5, last_event_id = $6,
         last_event_created = $7, deleted_at = $8, delinquent_since = $9, updated_at = now() WHERE id = $1`,
      [n.id, n.customerId, n.priceId, n.status, JSON.stringify(n.metadata), n.lastEventId, n.lastEventCreated, n.deletedAt, n.delinquentSince],
    );
    const job: ReconcileJob = { subscriptionId: snap.id, eventId: ev.id };
    const jobId = await boss.send(QUEUES.reconcile, job, { db: executor(client) });
    if (t.becameDelinquent && n.delinquentSince !== null) {
      // Re-check when the grace period ends (the reconcile then suspends if still unpaid).
      const at = new Date((n.delinquentSince + opts.graceHours * 3600) * 1000 + 1000);
      if (at.getTime() > Date.now()) await boss.send(QUEUES.reconcile, job, { db: executor(client), startAfter: at });
    }
    await client.query("UPDATE billing_events SET outcome = 'accepted', job_id = $2 WHERE id = $1", [ev.id, jobId]);
    return { duplicate: false, eventId: ev.id, outcome: "accepted", subscriptionId: snap.id };
  });
}
