/**
 * What the control plane reads from a verified Stripe event. Only subscription events change
 * tenants; the rest are recorded (for deduplication) and ignored.
 */
import { z } from "zod";
import { TENANT_ID_PATTERN } from "../../infra/model/naming.ts";

export const SUBSCRIPTION_EVENT_TYPES = [
  "customer.subscription.created",
  "customer.subscription.updated",
  "customer.subscription.deleted",
  "customer.subscription.paused",
  "customer.subscription.resumed",
  "customer.subscription.pending_update_applied",
  "customer.subscription.pending_update_expired",
] as const;

/**
 * Subscription metadata the control plane reads when it creates a tenant (set them in Stripe,
 * e.g. by the checkout session): the tenant id is required, the rest have defaults.
 */
export const METADATA = {
  tenantId: "tenant_id",
  tenantName: "tenant_name",
  region: "region",
  /** Comma-separated environments; default prod. */
  environments: "environments",
  contactEmail: "contact_email",
} as const;

export interface SubscriptionSnapshot {
  id: string;
  customerId: string | null;
  status: string;
  priceId: string | null;
  metadata: Record<string, string>;
}

export interface BillingEvent {
  id: string;
  type: string;
  /** Unix seconds, Stripe's clock. */
  created: number;
  subscription?: SubscriptionSnapshot;
}

const envelope = z.object({
  id: z.string().min(1).max(255),
  type: z.string().min(1),
  created: z.number().int().nonnegative(),
  data: z.object({ object: z.unknown() }),
});

const subscription = z.object({
  id: z.string().min(1),
  object: z.literal("subscription").optional(),
  status: z.string().min(1),
  customer: z.union([z.string(), z.object({ id: z.string() }), z.null()]).optional(),
  metadata: z.record(z.string(), z.string()).nullish(),
  items: z
    .object({ data: z.array(z.object({ price: z.object({ id: z.string() }).nullish() })) })
    .nullish(),
});

export type ReadResult = { ok: true; event: BillingEvent } | { ok: false; id?: string; reason: string };

export function readStripeEvent(raw: unknown): ReadResult {
  const env = envelope.safeParse(raw);
  if (!env.success) return { ok: false, reason: `not a Stripe event: ${env.error.issues[0]?.message ?? "bad shape"}` };
  const { id, type, created } = env.data;
  if (!(SUBSCRIPTION_EVENT_TYPES as readonly string[]).includes(type)) return { ok: true, event: { id, type, created } };
  const sub = subscription.safeParse(env.data.data.object);
  if (!sub.success) {
    const issue = sub.error.issues[0];
    return { ok: false, id, reason: `${type} without a usable subscription object (${issue?.path.join(".") || "object"}: ${issue?.message ?? "bad shape"})` };
  }
  const s = sub.data;
  // The id becomes a file path (tenants/<id>.yaml): checked where it enters, not first by the model.
  const tenantId = s.metadata?.[METADATA.tenantId];
  if (tenantId !== undefined && !TENANT_ID_PATTERN.test(tenantId)) {
    return { ok: false, id, reason: `metadata.${METADATA.tenantId} ${JSON.stringify(tenantId.slice(0, 64))} is not a tenant id (a DNS label: lower-case letters, digits and single dashes, starting with a letter, at most 24 characters)` };
  }
  const customer = typeof s.customer === "string" ? s.customer : (s.customer?.id ?? null);
  const priceId = s.items?.data.find((i) => i.price?.id)?.price?.id ?? null;
  return { ok: true, event: { id, type, created, subscription: { id: s.id, customerId: customer, status: s.status, priceId, metadata: s.metadata ?? {} } } };
}
