/**
 * Subscription state -> tenant change. Pure: given the latest subscription state and the fleet
 * (as the writer's Draft sees it), decide what the tenant file should say:
 *
 *  - active/trialing, no tenant yet      -> create it (tier from the price, placed like `tenantctl new`)
 *  - price maps to another tier          -> change the tier (within its deployment)
 *  - past_due/unpaid beyond the grace    -> suspend; paid again -> resume (only a billing suspension)
 *  - paused                              -> suspend
 *  - deleted / canceled                  -> offboard (lifecycle offboarding, grace period from now on)
 *
 * Moving between pooled and dedicated is a data migration (the upgrade workflow), never a file edit;
 * while one is in progress (a migration block) no subscription change is applied.
 */
import type { Fleet } from "../../infra/model/fleet.ts";
import type { Tenant } from "../../infra/model/schema.ts";
import type { Tier } from "../../infra/model/tiers.ts";
import { DocumentError, editTenantText, lifecycleEdits, offboardEdits, planNewTenant, tenantPath, tierChangeEdits, type Edit } from "../../infra/model/fleetFiles/index.ts";
import type { ChangeRequest } from "../git/writer.ts";
import { METADATA } from "./events.ts";
import type { PriceTiers } from "./priceTiers.ts";
import { iso, PENDING_STATUSES, type SubscriptionState } from "./subscriptions.ts";

export interface PlanContext {
  fleet: Fleet;
  read(path: string): string | undefined;
  /** The subscription's tenant as proposed on its pending branch, when it is not on main yet. */
  pending?: { tenant: Tenant; text: string };
  priceTiers: PriceTiers;
  /** Unix seconds. */
  now: number;
  graceHours: number;
}

/** A plan that creates a tenant carries the tenant document it placed (or tried to), so cells can be opened for it first. */
interface Creates {
  /** The new tenant's document as planNewTenant takes it. */
  creates?: Readonly<Record<string, unknown>>;
}

export type Plan =
  | { kind: "noop"; tenantId: string | null; message: string }
  | ({ kind: "reject"; tenantId: string | null; message: string; /** Opening cells the tenant waits for (no open cell has room). */ waitingFor?: readonly string[] } & Creates)
  | { kind: "needs-workflow"; tenantId: string; workflow: "upgrade" | "downgrade"; message: string }
  | ({ kind: "change"; tenantId: string; request: Omit<ChangeRequest, "cause">; suspendedByBilling?: boolean } & Creates);

/**
 * The tenant a subscription pays for. Only a tenant file naming the subscription
 * (billing.subscriptionId) is the subscription's tenant; otherwise `id` is the tenant it would
 * create (recorded earlier, else metadata.tenant_id). Metadata alone never claims an existing
 * tenant: planCreate refuses when that id is taken.
 */
export function tenantOfSubscription(fleet: Fleet, sub: SubscriptionState): { id: string | null; tenant?: Tenant } {
  for (const { tenant } of fleet.tenants.values()) {
    if (tenant.billing?.subscriptionId === sub.id) return { id: tenant.id, tenant };
  }
  return { id: sub.tenantId ?? sub.metadata[METADATA.tenantId] ?? null };
}

export function suspensionDue(sub: SubscriptionState, now: number, graceHours: number): { due: boolean; why: string } {
  if (sub.status === "paused") return { due: true, why: `subscription ${sub.id} is paused` };
  if (sub.delinquentSince === null) return { due: false, why: "" };
  const until = sub.delinquentSince + graceHours * 3600;
  return {
    due: now >= until,
    why: `subscription ${sub.id} ${sub.status} since ${iso(sub.delinquentSince)}, beyond the ${graceHours} h grace period`,
  };
}

export function planSubscription(sub: SubscriptionState, ctx: PlanContext): Plan {
  const { fleet } = ctx;
  const found = tenantOfSubscription(fleet, sub);
  // A tenant proposed on a branch and not merged yet is changed on that branch.
  const onBranch = !found.tenant && ctx.pending !== undefined && ctx.pending.tenant.id === found.id;
  const tenant = found.tenant ?? (onBranch ? ctx.pending!.tenant : undefined);
  const read = (id: string) => (onBranch ? ctx.pending!.text : ctx.read(tenantPath(id)));
  const route = onBranch ? { route: "branch" as const } : {};

  // Mid-upgrade the tenant file belongs to the upgrade workflow: an edit now (tier, suspension,
  // offboarding) would change what its steps check and render. Recorded as rejected, to apply after.
  if (tenant?.deployment === "dedicated" && tenant.migration) {
    return {
      kind: "reject",
      tenantId: tenant.id,
      message:
        `tenant ${tenant.id} is being upgraded to dedicated (migration phase ${tenant.migration.phase}); subscription ${sub.id} (${sub.status}${sub.deletedAt !== null ? ", ended" : ""}) ` +
        `is not applied mid-upgrade: once the upgrade (or its rollback) has finished, POST /api/subscriptions/${sub.id}/reconcile`,
    };
  }

  if (sub.deletedAt !== null) {
    if (!tenant) return { kind: "noop", tenantId: found.id, message: `subscription ${sub.id} ended before a tenant was provisioned; nothing to do` };
    if (tenant.lifecycle === "offboarding") return { kind: "noop", tenantId: tenant.id, message: `tenant ${tenant.id} is already offboarding` };
    const text = read(tenant.id);
    if (text === undefined) return { kind: "reject", tenantId: tenant.id, message: `tenant file ${tenantPath(tenant.id)} is missing` };
    return {
      kind: "change",
      tenantId: tenant.id,
      request: {
        ...route,
        tenantId: tenant.id,
        summary: `offboard ${tenant.id}: subscription ${sub.id} ${sub.status === "canceled" ? "deleted" : sub.status} at ${iso(sub.deletedAt)}`,
        files: { [tenantPath(tenant.id)]: editTenantText(text, offboardEdits(iso(sub.deletedAt))) },
      },
    };
  }

  if (PENDING_STATUSES.has(sub.status)) {
    return { kind: "noop", tenantId: found.id, message: `subscription ${sub.id} is ${sub.status} (first payment pending); nothing is provisioned yet` };
  }
  if (!sub.priceId) return { kind: "reject", tenantId: found.id, message: `subscription ${sub.id} has no price; cannot tell its tier` };
  const tier: Tier | undefined = ctx.priceTiers.get(sub.priceId);
  if (!tier) {
    return {
      kind: "reject",
      tenantId: found.id,
      message:
        `price ${sub.priceId} of subscription ${sub.id} has no tier in TENANCY_PRICE_TIERS (known: ${[...ctx.priceTiers.keys()].join(", ")}); ` +
        `add it, restart, then POST /api/subscriptions/${sub.id}/reconcile`,
    };
  }
  const suspension = suspensionDue(sub, ctx.now, ctx.graceHours);

  if (!tenant) return planCreate(sub, tier, suspension.due, found.id, ctx);

  if (tenant.lifecycle === "offboarding") {
    return { kind: "noop", tenantId: tenant.id, message: `tenant ${tenant.id} is offboarding; billing changes are no longer applied` };
  }
  const edits: Edit[] = [];
  const what: string[] = [];
  if (tier !== tenant.tier) {
    if (tenant.deployment === "pooled" && tier === "dedicated") {
      return {
        kind: "needs-workflow",
        tenantId: tenant.id,
        workflow: "upgrade",
        message: `subscription ${sub.id} moved ${tenant.id} to the dedicated tier, which needs a pooled -> dedicated upgrade (a data migration): run tenantctl upgrade ${tenant.id} --to dedicated`,
      };
    }
    if (tenant.deployment === "dedicated" && tier !== "dedicated" && tier !== "enterprise") {
      return {
        kind: "needs-workflow",
        tenantId: tenant.id,
        workflow: "downgrade",
        message: `subscription ${sub.id} moved dedicated tenant ${tenant.id} to tier ${tier}, which is pooled only; moving a dedicated tenant into a cell is not automated: decide with the customer`,
      };
    }
    edits.push(...tierChangeEdits(tenant, tier));
    what.push(`tier ${tenant.tier} -> ${tier}`);
  }
  const billing = tenant.billing;
  if (!billing || billing.provider !== "stripe" || billing.subscriptionId !== sub.id || billing.priceId !== sub.priceId || (sub.customerId && billing.customerId !== sub.customerId)) {
    edits.push([["billing"], {
      provider: "stripe",
      customerId: sub.customerId ?? billing?.customerId ?? "unknown",
      subscriptionId: sub.id,
      priceId: sub.priceId,
    }]);
    what.push(`price ${sub.priceId}`);
  }
  let suspendedByBilling: boolean | undefined;
  if (suspension.due && tenant.lifecycle === "active") {
    edits.push(...lifecycleEdits(tenant, "suspended"));
    what.push(`suspend: ${suspension.why}`);
    suspendedByBilling = true;
  } else if (!suspension.due && tenant.lifecycle === "suspended" && sub.suspendedByBilling) {
    edits.push(...lifecycleEdits(tenant, "active"));
    what.push(`resume: subscription ${sub.id} is ${sub.status}`);
    suspendedByBilling = false;
  }
  if (edits.length === 0) return { kind: "noop", tenantId: tenant.id, message: `tenant ${tenant.id} already matches subscription ${sub.id}` };
  const text = read(tenant.id);
  if (text === undefined) return { kind: "reject", tenantId: tenant.id, message: `tenant file ${tenantPath(tenant.id)} is missing` };
  return {
    kind: "change",
    tenantId: tenant.id,
    request: { ...route, tenantId: tenant.id, summary: `${tenant.id}: ${what.join("; ")}`, files: { [tenantPath(tenant.id)]: editTenantText(text, edits) } },
    ...(suspendedByBilling !== undefined ? { suspendedByBilling } : {}),
  };
}

function planCreate(sub: SubscriptionState, tier: Tier, suspended: boolean, id: string | null, ctx: PlanContext): Plan {
  if (suspended) {
    return { kind: "noop", tenantId: id, message: `subscription ${sub.id} is ${sub.status}; a tenant is provisioned once it is paid` };
  }
  if (!id) {
    return {
      kind: "reject",
      tenantId: null,
      message: `subscription ${sub.id} has no metadata.${METADATA.tenantId}; set it (a DNS label, the tenant's id) on the subscription in Stripe, then POST /api/subscriptions/${sub.id}/reconcile`,
    };
  }
  const existing = ctx.fleet.tenants.get(id)?.tenant;
  if (existing) {
    return {
      kind: "reject",
      tenantId: id,
      message: `tenant ${id} already exists${existing.billing?.subscriptionId ? ` with subscription ${existing.billing.subscriptionId}` : " without a Stripe subscription"}; subscription ${sub.id} cannot claim it (set billing.subscriptionId in tenants/${id}.yaml if it should)`,
    };
  }
  const md = sub.metadata;
  const envs = (md[METADATA.environments] ?? "prod").split(",").map((e) => e.trim()).filter((e) => e !== "");
  const doc: Record<string, unknown> = {
    id,
    displayName: md[METADATA.tenantName] ?? id,
    tier,
    region: md[METADATA.region] ?? ctx.fleet.platform.regions[0],
    ...(md[METADATA.contactEmail] ? { contact: { email: md[METADATA.contactEmail] } } : {}),
    billing: { provider: "stripe", customerId: sub.customerId ?? "unknown", subscriptionId: sub.id, priceId: sub.priceId },
    environments: Object.fromEntries(envs.map((e) => [e, {}])),
  };
  try {
    const planned = planNewTenant(ctx.fleet, doc);
    return {
      kind: "change",
      tenantId: id,
      request: { tenantId: id, summary: `create ${id} (${tier}, ${planned.where}) for subscription ${sub.id}`, files: planned.files },
      creates: doc,
    };
  } catch (err) {
    if (err instanceof DocumentError) {
      return {
        kind: "reject", tenantId: id, message: `tenants/${id}.yaml: ${err.path}: ${err.message}`, creates: doc,
        ...(err.waitingFor.length > 0 ? { waitingFor: err.waitingFor } : {}),
      };
    }
    throw err;
  }
}
