/**
 * Subscription state, applied per subscription in Stripe's `created` order. Stripe does not
 * deliver events in order, so an event older than the state already applied is stale and changes
 * nothing; a deleted (or otherwise ended) subscription stays ended whatever arrives later, so a
 * late event can never provision it again. Events created in the same second are applied in
 * arrival order (Stripe gives no finer ordering).
 */
import type { BillingEvent, SubscriptionSnapshot } from "./events.ts";

/** Statuses after which a subscription never becomes active again. */
export const ENDED_STATUSES: ReadonlySet<string> = new Set(["canceled", "incomplete_expired"]);
/** Statuses in which payment is overdue: after the grace period the tenant is suspended. */
export const DELINQUENT_STATUSES: ReadonlySet<string> = new Set(["past_due", "unpaid"]);
/** Not yet paid for the first time: nothing is provisioned. */
export const PENDING_STATUSES: ReadonlySet<string> = new Set(["incomplete"]);

export interface SubscriptionState {
  id: string;
  customerId: string | null;
  /** The tenant this subscription pays for, once known. */
  tenantId: string | null;
  priceId: string | null;
  status: string;
  metadata: Record<string, string>;
  lastEventId: string;
  lastEventCreated: number;
  /** Unix seconds the subscription ended; never cleared. */
  deletedAt: number | null;
  delinquentSince: number | null;
  suspendedByBilling: boolean;
}

export type Transition =
  | { kind: "stale"; reason: string }
  | { kind: "apply"; next: SubscriptionState; becameDelinquent: boolean };

export function transition(prev: SubscriptionState | undefined, ev: BillingEvent & { subscription: SubscriptionSnapshot }): Transition {
  const snap = ev.subscription;
  if (prev?.deletedAt != null) {
    return {
      kind: "stale",
      reason: `subscription ${snap.id} ended at ${iso(prev.deletedAt)} (event ${prev.lastEventId}); an ended subscription is never provisioned again`,
    };
  }
  if (prev && ev.created < prev.lastEventCreated) {
    return {
      kind: "stale",
      reason: `event created ${iso(ev.created)} is older than the state already applied (event ${prev.lastEventId}, created ${iso(prev.lastEventCreated)})`,
    };
  }
  const status = ev.type === "customer.subscription.deleted" ? "canceled" : snap.status;
  const ended = ev.type === "customer.subscription.deleted" || ENDED_STATUSES.has(status);
  const delinquent = DELINQUENT_STATUSES.has(status);
  const delinquentSince = delinquent ? (prev?.delinquentSince ?? ev.created) : null;
  const next: SubscriptionState = {
    id: snap.id,
    customerId: snap.customerId ?? prev?.customerId ?? null,
    tenantId: prev?.tenantId ?? null,
    priceId: snap.priceId ?? prev?.priceId ?? null,
    status,
    metadata: { ...prev?.metadata, ...snap.metadata },
    lastEventId: ev.id,
    lastEventCreated: ev.created,
    deletedAt: ended ? ev.created : null,
    delinquentSince,
    suspendedByBilling: prev?.suspendedByBilling ?? false,
  };
  return { kind: "apply", next, becameDelinquent: delinquent && prev?.delinquentSince == null };
}

export function iso(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString();
}
