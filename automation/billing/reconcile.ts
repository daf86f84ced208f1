/**
 * The billing worker: takes reconcile jobs in batches, and for each subscription in the batch
 * plans its tenant from the subscription's *latest* state (not from the event that queued the
 * job), so jobs may run late, twice or out of order and the tenant files still end at the newest
 * state. All changes of a batch are validated together and committed one by one by the writer.
 */
import type { Pool } from "pg";
import type { PgBoss } from "pg-boss";
import { withLogContext, type Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { QUEUES, type ReconcileJob } from "../queue.ts";
import { TENANT_ID_PATTERN } from "../../infra/model/naming.ts";
import type { Tenant } from "../../infra/model/schema.ts";
import { parseTenantFile } from "../../infra/model/tenantFile.ts";
import { tenantPath } from "../../infra/model/fleetFiles/index.ts";
import type { ChangeResult, GitWriter } from "../git/writer.ts";
import { planSubscription, tenantOfSubscription, type Plan } from "./planner.ts";
import type { PriceTiers } from "./priceTiers.ts";
import { loadSubscription } from "./intake.ts";
import { ReconcileClaims } from "./claims.ts";
import type { CellOpener } from "../cells/opener.ts";

export interface ReconcileOutcome {
  subscriptionId: string;
  tenantId: string | null;
  /** waiting: the new tenant waits for an opening cell's first run (`cell`); it is reconciled again once the cell opens. */
  outcome: "committed" | "proposed" | "rejected" | "noop" | "needs-workflow" | "missing" | "waiting";
  message: string;
  changeId?: string;
  commit?: string;
  branch?: string;
  pullRequest?: string;
  runs?: string[];
  /** waiting: the opening cell's stack and the run of it the tenant waits for. */
  cell?: string;
  cellRun?: string;
}

export interface ReconcilerOptions {
  pool: Pool;
  boss: PgBoss;
  writer: GitWriter;
  priceTiers: PriceTiers;
  graceHours: number;
  log: Logger;
  metrics?: Metrics;
  /** Reconcile jobs taken per batch (one validation of the fleet per batch). */
  batchSize?: number;
  pollingIntervalSeconds?: number;
  /** How often jobs of dead processes are looked for (besides at start); default 30 s. */
  sweepSeconds?: number;
  /**
   * Opens cells for new tenants like POST /api/tenants (docs/cells.md): absent, a creation never
   * opens a cell and is rejected when no open cell has room.
   */
  cells?: CellOpener;
}

export class BillingReconciler {
  private workerId?: string;
  /** Jobs in hand, so a crash's orphans are retried at the next start (claims.ts). */
  readonly claims: ReconcileClaims;

  constructor(private readonly opts: ReconcilerOptions) {
    this.claims = new ReconcileClaims(opts.pool, opts.boss, opts.log, opts.sweepSeconds);
  }

  async start(): Promise<void> {
    await this.claims.start();
    this.workerId = await this.opts.boss.work<ReconcileJob>(
      QUEUES.reconcile,
      { batchSize: this.opts.batchSize ?? 50, pollingIntervalSeconds: this.opts.pollingIntervalSeconds ?? 1 },
      async (jobs) => {
        const ids = jobs.map((j) => j.id);
        await this.claims.claim(ids);
        try {
          await this.handle(jobs.map((j) => j.data));
        } catch (err) {
          // pg-boss retries the batch with backoff; say why it failed.
          this.opts.log.error({ err: { message: err instanceof Error ? err.message : String(err) }, jobs: jobs.length }, "reconciling billing events failed; retrying");
          throw err;
        } finally {
          await this.claims.release(ids).catch(() => undefined);
        }
      },
    );
  }

  async stop(): Promise<void> {
    if (this.workerId) await this.opts.boss.offWork(QUEUES.reconcile, { id: this.workerId });
    this.workerId = undefined;
    await this.claims.stop();
  }

  /** Reconciles the subscriptions of these jobs and records the outcome on their events. */
  async handle(jobs: readonly ReconcileJob[]): Promise<ReconcileOutcome[]> {
    const bySub = new Map<string, Set<string>>();
    for (const j of jobs) bySub.set(j.subscriptionId, (bySub.get(j.subscriptionId) ?? new Set()).add(j.eventId));
    const outcomes = await this.reconcile([...bySub.keys()].sort(), bySub);
    for (const o of outcomes) {
      const ids = [...(bySub.get(o.subscriptionId) ?? [])];
      await this.opts.pool.query("UPDATE billing_events SET result = $2, processed_at = now() WHERE id = ANY($1)", [ids, JSON.stringify(o)]);
    }
    return outcomes;
  }

  /** Plans and commits the tenants of these subscriptions. Also used by POST /api/subscriptions/:id/reconcile. */
  async reconcile(subscriptionIds: readonly string[], eventIds: ReadonlyMap<string, ReadonlySet<string>> = new Map()): Promise<ReconcileOutcome[]> {
    const { log } = this.opts;
    const planned = new Map<string, { plan: Plan; changeId?: string; unchanged?: boolean }>();
    const states = new Map<string, Awaited<ReturnType<typeof loadSubscription>>>();
    for (const id of subscriptionIds) states.set(id, await loadSubscription(this.opts.pool, id));

    const { results } = await this.opts.writer.change(async (draft) => {
      const ctx = { regions: draft.fleet.platform.regions, environments: draft.fleet.platform.environments };
      for (const id of subscriptionIds) {
        const sub = states.get(id);
        if (!sub) continue;
        const found = tenantOfSubscription(draft.fleet, sub);
        let pending: { tenant: Tenant; text: string } | undefined;
        if (!found.tenant && found.id && TENANT_ID_PATTERN.test(found.id)) {
          const text = await draft.pending(found.id);
          const parsed = text === undefined ? undefined : parseTenantFile(tenantPath(found.id), text, ctx, found.id);
          if (text !== undefined && parsed && !Array.isArray(parsed)) pending = { tenant: parsed.tenant, text };
        }
        const planOn = () => planSubscription(sub, {
          fleet: draft.fleet,
          read: (p) => draft.read(p),
          ...(pending ? { pending } : {}),
          priceTiers: this.opts.priceTiers,
          now: Math.floor(Date.now() / 1000),
          graceHours: this.opts.graceHours,
        });
        const cited = [...new Set([sub.lastEventId, ...(eventIds.get(id) ?? [])])].filter((e) => e !== "");
        let plan = planOn();
        // A creation first opens a cell when the reserve asks for one, and opens a cell whose
        // first up succeeded (each its own commit), then places on the fleet that results.
        if ((plan.kind === "change" || plan.kind === "reject") && plan.creates && plan.tenantId && this.opts.cells) {
          const steps = await this.opts.cells.prepare(draft, plan.creates, plan.tenantId, { source: "stripe", ids: cited });
          if (steps.opened.length > 0 || steps.ready.length > 0) plan = planOn();
        }
        if (plan.kind !== "change") {
          planned.set(id, { plan });
          continue;
        }
        const staged = draft.stage({ ...plan.request, cause: { source: "stripe", ids: cited } });
        if (staged.kind === "staged") planned.set(id, { plan, changeId: staged.changeId });
        else if (staged.kind === "unchanged") planned.set(id, { plan, unchanged: true });
        else planned.set(id, { plan, changeId: staged.result.changeId });
      }
    });
    const byChange = new Map<string, ChangeResult>(results.map((r) => [r.changeId, r]));

    const outcomes: ReconcileOutcome[] = [];
    for (const id of subscriptionIds) {
      const entry = planned.get(id);
      const sub = states.get(id);
      let o = this.outcome(id, entry, entry?.changeId ? byChange.get(entry.changeId) : undefined, sub === undefined);
      const waitingFor = entry?.plan.kind === "reject" && this.opts.cells ? entry.plan.waitingFor?.[0] : undefined;
      if (waitingFor && this.opts.cells) {
        // Not rejected: the cell's first run (queued with the cell's commit, or now when it has
        // none or its last failed) decides; CellReadiness reconciles this subscription again when
        // the cell opens.
        const run = await this.opts.cells.ensureFirstUp(waitingFor, `first up of cell ${waitingFor} (opened for tenant ${o.tenantId ?? "?"}, subscription ${id})`);
        o = {
          subscriptionId: id, tenantId: o.tenantId, outcome: "waiting", cell: waitingFor, cellRun: run.id,
          message: `waiting for cell ${waitingFor} to open (its first run ${run.id} is ${run.state}); subscription ${id} is reconciled again when it has succeeded: ${o.message}`,
        };
      }
      await this.opts.pool.query("UPDATE subscriptions SET waiting_for_cell = $2 WHERE id = $1", [id, o.outcome === "waiting" ? o.cell : null]);
      outcomes.push(o);
      withLogContext({ tenantId: o.tenantId ?? undefined, eventId: sub?.lastEventId }, () => {
        if (o.outcome === "rejected" || o.outcome === "needs-workflow") log.warn({ subscriptionId: id, outcome: o.outcome }, o.message);
        else log.info({ subscriptionId: id, outcome: o.outcome, commit: o.commit, runs: o.runs }, o.message);
      });
      if (o.outcome === "rejected") this.opts.metrics?.eventsRejected.inc({ stage: "change" });
      // Remember which tenant the subscription pays for, and who suspended it.
      const plan = entry?.plan;
      const applied = o.outcome === "committed" || o.outcome === "proposed";
      if (o.tenantId && (applied || plan?.kind === "noop")) {
        await this.opts.pool.query("UPDATE subscriptions SET tenant_id = COALESCE(tenant_id, $2) WHERE id = $1", [id, o.tenantId]);
      }
      if (applied && plan?.kind === "change" && plan.suspendedByBilling !== undefined) {
        await this.opts.pool.query("UPDATE subscriptions SET suspended_by_billing = $2 WHERE id = $1", [id, plan.suspendedByBilling]);
      }
    }
    return outcomes;
  }

  private outcome(
    subscriptionId: string,
    entry: { plan: Plan; changeId?: string; unchanged?: boolean } | undefined,
    result: ChangeResult | undefined,
    missing: boolean,
  ): ReconcileOutcome {
    if (missing || !entry) return { subscriptionId, tenantId: null, outcome: "missing", message: `no state recorded for subscription ${subscriptionId}` };
    const { plan } = entry;
    if (plan.kind !== "change") {
      return { subscriptionId, tenantId: plan.tenantId, outcome: plan.kind === "reject" ? "rejected" : plan.kind, message: plan.message };
    }
    if (entry.unchanged || !result) {
      return { subscriptionId, tenantId: plan.tenantId, outcome: "noop", message: `tenant ${plan.tenantId} already matches subscription ${subscriptionId}` };
    }
    const base = { subscriptionId, tenantId: plan.tenantId, changeId: result.changeId };
    switch (result.state) {
      case "committed":
        return { ...base, outcome: "committed", message: `committed: ${result.summary}`, commit: result.commit, runs: result.runs.map((r) => r.runId) };
      case "proposed":
        return {
          ...base, outcome: "proposed", message: `proposed: ${result.summary}; ${result.note}`, commit: result.commit, branch: result.branch,
          ...(result.pullRequest ? { pullRequest: result.pullRequest.url } : {}),
        };
      case "rejected":
        return { ...base, outcome: "rejected", message: `rejected: ${result.summary}: ${result.problems.join("; ")}` };
    }
  }
}
