/**
 * planSubscription (pure) for a tenant in the middle of a pooled -> dedicated upgrade: the tenant
 * file belongs to the upgrade workflow, so no subscription change is applied, each with a reason.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { planSubscription, type PlanContext } from "../../automation/billing/planner.ts";
import type { SubscriptionState } from "../../automation/billing/subscriptions.ts";
import type { Fleet } from "../../infra/model/fleet.ts";
import { editYaml, tempFleet, writeYaml } from "../infra/support.ts";

function migratingFleet(): { fleet: Fleet; dir: string } {
  let dir = "";
  const fleet = tempFleet((d) => {
    dir = d;
    editYaml(d, "tenants/startup-alpha.yaml", (doc) => {
      doc.tier = "dedicated";
      delete doc.placement;
      doc.dedicated = { prod: { cidr: "10.68.0.0/16" }, staging: { cidr: "10.69.0.0/16" } };
      doc.migration = { phase: "copying", from: { prod: "use1-01", staging: "use1-01" }, fromTier: "standard", startedAt: "2026-11-01T00:00:00Z" };
    });
    for (const env of ["prod", "staging"]) writeYaml(d, `stacks/Pulumi.dedicated-startup-alpha-${env}.yaml`, { config: { "aws:region": "us-east-1" } });
  });
  return { fleet, dir };
}

const NOW = Date.parse("2026-11-22T12:00:00Z") / 1000;

function sub(over: Partial<SubscriptionState>): SubscriptionState {
  return {
    id: "sub_ALPHA0001", customerId: "cus_ALPHA0001", tenantId: "startup-alpha", priceId: "price_dedicated_annual", status: "active", metadata: {},
    lastEventId: "evt_1", lastEventCreated: NOW, deletedAt: null, delinquentSince: null, suspendedByBilling: false, ...over,
  };
}

describe("billing during an upgrade", () => {
  const { fleet, dir } = migratingFleet();
  const ctx: PlanContext = {
    fleet,
    read: (path) => readFileSync(join(dir, path), "utf8"),
    priceTiers: new Map([["price_dedicated_annual", "dedicated"], ["price_enterprise", "enterprise"], ["price_standard_monthly", "standard"]]),
    now: NOW,
    graceHours: 72,
  };

  it("applies no tier change, suspension or offboarding to a migrating tenant, and says how to apply it after", () => {
    const cases = [
      sub({ priceId: "price_enterprise" }),
      sub({ status: "unpaid", delinquentSince: NOW - 100 * 3600 }),
      sub({ status: "canceled", deletedAt: NOW - 60 }),
    ];
    for (const c of cases) {
      const plan = planSubscription(c, ctx);
      expect(plan).toEqual({
        kind: "reject",
        tenantId: "startup-alpha",
        message: expect.stringMatching(/^tenant startup-alpha is being upgraded to dedicated \(migration phase copying\); subscription sub_ALPHA0001 .* POST \/api\/subscriptions\/sub_ALPHA0001\/reconcile$/),
      });
    }
  });

  it("still plans changes for a tenant that is not migrating", () => {
    const plan = planSubscription(sub({ id: "sub_BETA0001", customerId: "cus_BETA0001", tenantId: "company-beta", priceId: "price_standard_monthly" }), ctx);
    expect(plan.kind).toBe("change");
  });
});
