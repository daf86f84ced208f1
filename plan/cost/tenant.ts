/**
 * One tenant's monthly cost (the operator console's tenant page, docs/cost.md): its stacks
 * rendered offline and priced with the dated price table (prices.ts), its part allocated as
 * `tenantctl cost` allocates it (cost.ts: a dedicated tenant pays its stack, a pooled tenant its
 * own resources plus an equal share of each cell it lives in).
 */
import { stacksOfTenant, type Fleet } from "../../infra/model/fleet.ts";
import { SHARED_TENANT } from "../../infra/model/naming.ts";
import { allocate, type StackCost, type TenantStackCost, type Unpriced } from "./cost.ts";
import { ASSUMPTION_NOTES, PRICES_AS_OF } from "./prices.ts";

export interface TenantMonthlyCost {
  tenant: string;
  /** The date the price table's figures were taken (prices.ts). */
  pricesAsOf: string;
  assumptions: readonly string[];
  stacks: TenantStackCost[];
  monthlyUsd: number;
  /** Resources of its stacks that cost money but have no price: the figure understates by them. */
  unpriced: (Unpriced & { stack: string })[];
  /** Some line of its stacks rests on a figure marked unverified in prices.ts. */
  unverified: boolean;
}

/** The stacks whose costs `tenantCostOf` needs for a tenant: every stack it lives in. */
export function costStacksOf(fleet: Fleet, tenantId: string): string[] {
  const t = fleet.tenants.get(tenantId);
  if (!t) throw new Error(`no tenant ${tenantId} in the fleet`);
  return stacksOfTenant(t.tenant).filter((s) => fleet.stacks.has(s));
}

/** The tenant's part of the given stack costs (those of costStacksOf). */
export function tenantCostOf(fleet: Fleet, tenantId: string, costs: readonly StackCost[]): TenantMonthlyCost {
  const mine = allocate(fleet, costs).tenants.find((t) => t.tenant === tenantId);
  return {
    tenant: tenantId,
    pricesAsOf: PRICES_AS_OF,
    assumptions: ASSUMPTION_NOTES,
    stacks: mine?.stacks ?? [],
    monthlyUsd: mine?.monthlyUsd ?? 0,
    unpriced: costs.flatMap((c) => c.unpriced.map((u) => ({ ...u, stack: c.stack }))),
    unverified: costs.some((c) => c.lines.some((l) => l.unverified && (l.tenant === tenantId || l.tenant === SHARED_TENANT))),
  };
}
