/** Stripe events as Stripe sends them, signed with the official library's test helper. */
import Stripe from "stripe";

export const WEBHOOK_SECRET = "whsec_test_control_plane_0123456789";

export interface SubscriptionFields {
  id: string;
  status: string;
  price: string;
  customer?: string;
  metadata?: Record<string, string>;
}

export function subscriptionEvent(id: string, type: string, created: number, sub: SubscriptionFields): Record<string, unknown> {
  return {
    id,
    object: "event",
    api_version: "2025-01-27.acacia",
    created,
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
    data: {
      object: {
        id: sub.id,
        object: "subscription",
        status: sub.status,
        customer: sub.customer ?? `cus_${sub.id.slice(4)}`,
        created,
        metadata: sub.metadata ?? {},
        items: { object: "list", data: [{ id: `si_${sub.id.slice(4)}`, object: "subscription_item", price: { id: sub.price, object: "price" } }] },
      },
    },
  };
}

export function sign(payload: string, opts: { secret?: string; timestamp?: number } = {}): string {
  return Stripe.webhooks.generateTestHeaderString({
    payload,
    secret: opts.secret ?? WEBHOOK_SECRET,
    ...(opts.timestamp !== undefined ? { timestamp: opts.timestamp } : {}),
  });
}
