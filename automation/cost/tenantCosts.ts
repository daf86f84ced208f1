/**
 * Tenants' monthly costs for the HTTP API (GET /api/tenants/:id/cost, the console's tenant page;
 * docs/cost.md). A stack's cost needs its program rendered offline (plan/render, seconds per
 * stack), so stack costs are computed in a plan worker process (plan/planStacks.ts with `fork`:
 * the control plane's event loop and its own state stay untouched), one batch at a time, and kept
 * per loaded fleet: a new commit or a changed fleet file (automation/git/fleetCache.ts gives a new
 * Fleet object) prices the stacks again. A request while its stacks are being priced is answered
 * "computing" at once and never waits for the render.
 */
import type { Fleet } from "../../infra/model/fleet.ts";
import { costOfStack, type StackCost } from "../../plan/cost/cost.ts";
import { costStacksOf, tenantCostOf, type TenantMonthlyCost } from "../../plan/cost/tenant.ts";
import { planStacks } from "../../plan/planStacks.ts";

export type StackPricer = (fleet: Fleet, stacks: readonly string[]) => Promise<StackCost[]>;

export type TenantCostAnswer = { state: "ready"; cost: TenantMonthlyCost } | { state: "computing"; stacks: string[] } | { state: "failed"; message: string };

/** The real pricer: render in one worker process, price each stack in its region. */
export const renderAndPrice: StackPricer = async (fleet, stacks) => {
  const plan = await planStacks(fleet, stacks, { fork: true, parallel: 1 });
  return plan.stacks.map((s) => costOfStack(s, fleet.stacks.get(s.name)!.region));
};

type Entry = { done?: StackCost; failed?: string };

export class TenantCosts {
  private readonly perFleet = new WeakMap<Fleet, Map<string, Entry>>();
  private queue: Promise<void> = Promise.resolve();
  /** Stacks sent to the pricer so far (each once per loaded fleet). */
  priced = 0;

  constructor(private readonly price: StackPricer = renderAndPrice) {}

  /** The tenant's cost when all its stacks are priced; else starts what is missing and answers "computing". */
  get(fleet: Fleet, tenantId: string): TenantCostAnswer {
    const stacks = costStacksOf(fleet, tenantId);
    let entries = this.perFleet.get(fleet);
    if (!entries) this.perFleet.set(fleet, (entries = new Map<string, Entry>()));
    const failed = stacks.map((s) => entries.get(s)?.failed).find((f) => f !== undefined);
    if (failed) {
      // Answered once; the next request prices them again (a worker killed, say, is not permanent).
      for (const s of stacks) if (entries.get(s)?.failed) entries.delete(s);
      return { state: "failed", message: failed };
    }
    const missing = stacks.filter((s) => !entries.has(s));
    if (missing.length > 0) this.start(fleet, entries, missing);
    const pending = stacks.filter((s) => !entries.get(s)?.done);
    if (pending.length > 0) return { state: "computing", stacks: pending };
    return { state: "ready", cost: tenantCostOf(fleet, tenantId, stacks.map((s) => entries.get(s)!.done!)) };
  }

  /** Resolves when every batch started so far has finished (tests, shutdown). */
  idle(): Promise<void> {
    return this.queue;
  }

  private start(fleet: Fleet, entries: Map<string, Entry>, stacks: string[]): void {
    const batch = stacks.map((s) => {
      const e: Entry = {};
      entries.set(s, e);
      return e;
    });
    this.queue = this.queue.then(async () => {
      this.priced += stacks.length;
      try {
        const costs = await this.price(fleet, stacks);
        costs.forEach((c, i) => (batch[i]!.done = c));
      } catch (err) {
        const message = `pricing ${stacks.join(", ")} failed: ${(err as Error).message}`;
        for (const e of batch) e.failed = message;
      }
    });
  }
}
