/**
 * Tenants' monthly costs for the API (automation/cost/tenantCosts.ts) with a pricer that records
 * what it is asked: "computing" while the stacks are priced, each stack priced once per loaded
 * fleet, a new fleet priced again, a failure answered once and retried. The real pricer (a plan
 * worker process rendering the stacks) is covered over HTTP in consoleSessions.test.ts.
 */
import { describe, expect, it } from "vitest";
import { TenantCosts, type StackPricer } from "../../automation/cost/tenantCosts.ts";
import { requireFleet, type Fleet } from "../../infra/model/fleet.ts";
import type { StackCost } from "../../plan/cost/cost.ts";

const PROJECT = new URL("../..", import.meta.url).pathname;

/** A stack's cost: one shared line and one line per resident tagged with it. */
function fakeCost(fleet: Fleet, stack: string): StackCost {
  const kind = stack.startsWith("dedicated-") ? "dedicated" : "shared";
  const line = (tenant: string, usd: number) => ({ urn: `urn:${stack}:${tenant}`, type: "aws:x", name: tenant, tenant, item: "x", monthlyUsd: usd, unverified: false });
  const residents = [...fleet.tenants.values()].filter((t) => t.tenant.deployment === "pooled" && Object.entries(t.tenant.placement).some(([env, c]) => `shared-${env}-${c}` === stack)).map((t) => t.tenant.id);
  const lines = kind === "dedicated" ? [line(stack.split("-")[1]!, 300)] : [line("shared", 100), ...residents.map((r) => line(r, 1))];
  return { stack, kind, region: fleet.stacks.get(stack)!.region, lines, unpriced: [], monthlyUsd: lines.reduce((s, l) => s + l.monthlyUsd, 0) };
}

/** A pricer whose n-th call finishes at the n-th release (a release may come before its call). */
function recordingPricer() {
  const asked: string[][] = [];
  const gates: { promise: Promise<void>; open: () => void }[] = [];
  const gate = (n: number) => {
    while (gates.length <= n) {
      let open!: () => void;
      const promise = new Promise<void>((r) => (open = r));
      gates.push({ promise, open });
    }
    return gates[n]!;
  };
  let releases = 0;
  let fail: string | undefined;
  const pricer: StackPricer = async (fleet, stacks) => {
    const n = asked.push([...stacks]) - 1;
    await gate(n).promise;
    if (fail) throw new Error(fail);
    return stacks.map((s) => fakeCost(fleet, s));
  };
  return { asked, pricer, release: () => gate(releases++).open(), failNext: (m: string | undefined) => (fail = m) };
}

describe("TenantCosts", () => {
  it("answers computing until the tenant's stacks are priced, then the allocation, pricing each stack once per fleet", async () => {
    const fleet = requireFleet({ projectDir: PROJECT });
    const p = recordingPricer();
    const costs = new TenantCosts(p.pricer);
    expect(costs.get(fleet, "startup-alpha")).toEqual({ state: "computing", stacks: ["shared-prod-use1-01", "shared-staging-use1-01"] });
    // Asked again while pricing: nothing new is started.
    expect(costs.get(fleet, "startup-alpha").state).toBe("computing");
    p.release();
    await costs.idle();
    expect(p.asked).toEqual([["shared-prod-use1-01", "shared-staging-use1-01"]]);
    const ready = costs.get(fleet, "startup-alpha");
    expect(ready.state).toBe("ready");
    if (ready.state !== "ready") return;
    // An equal share of each cell's shared 100 (2 residents in each) plus its own line.
    expect(ready.cost.stacks).toEqual([
      { stack: "shared-prod-use1-01", ownUsd: 1, shareUsd: 50, residents: 2 },
      { stack: "shared-staging-use1-01", ownUsd: 1, shareUsd: 50, residents: 2 },
    ]);
    expect({ monthlyUsd: ready.cost.monthlyUsd, pricesAsOf: ready.cost.pricesAsOf, unverified: ready.cost.unverified }).toEqual({ monthlyUsd: 102, pricesAsOf: "2026-11-22", unverified: false });

    // Its cell neighbour needs only the cell already priced: answered at once, nothing priced.
    const neighbour = costs.get(fleet, "freebie-one");
    expect(neighbour.state === "ready" && neighbour.cost.monthlyUsd).toBe(51);
    expect(p.asked).toHaveLength(1);
    expect(costs.priced).toBe(2);

    // A new load of the fleet (a new commit, a changed file) prices again.
    const next = requireFleet({ projectDir: PROJECT });
    expect(costs.get(next, "freebie-one")).toEqual({ state: "computing", stacks: ["shared-prod-use1-01"] });
    p.release();
    await costs.idle();
    expect(p.asked).toEqual([["shared-prod-use1-01", "shared-staging-use1-01"], ["shared-prod-use1-01"]]);
  });

  it("answers a failed pricing once with its message, then prices again", async () => {
    const fleet = requireFleet({ projectDir: PROJECT });
    const p = recordingPricer();
    const costs = new TenantCosts(p.pricer);
    p.failNext("renderer process exited with code 1");
    expect(costs.get(fleet, "acme").state).toBe("computing");
    p.release();
    await costs.idle();
    expect(costs.get(fleet, "acme")).toEqual({ state: "failed", message: "pricing dedicated-acme-prod failed: renderer process exited with code 1" });
    p.failNext(undefined);
    expect(costs.get(fleet, "acme").state).toBe("computing");
    p.release();
    await costs.idle();
    const ready = costs.get(fleet, "acme");
    expect(ready.state === "ready" && ready.cost.stacks).toEqual([{ stack: "dedicated-acme-prod", ownUsd: 300, shareUsd: 0, residents: 1 }]);
    expect(p.asked).toEqual([["dedicated-acme-prod"], ["dedicated-acme-prod"]]);
  });

  it("refuses a tenant that is not in the fleet", () => {
    const costs = new TenantCosts(recordingPricer().pricer);
    expect(() => costs.get(requireFleet({ projectDir: PROJECT }), "no-such-co")).toThrow("no tenant no-such-co in the fleet");
  });
});
