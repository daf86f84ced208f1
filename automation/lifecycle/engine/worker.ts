/**
 * Runs lifecycle workflows inside the control plane: every `intervalMs` it runs the workflows
 * that are due (new, retry time reached, wait over, or left `running` by a worker that died: the
 * tenant's advisory lock tells a live worker from a dead one), and adopts offboardings that
 * were requested by editing the tenant file (the billing reconciler, DELETE /api/tenants/:id, a
 * person) by starting their workflow, so the data is deleted only through the guarded steps.
 */
import { loadFleet } from "../../../infra/model/fleet.ts";
import type { Logger } from "../ports.ts";
import type { LifecycleService } from "../service.ts";

export interface LifecycleWorkerOptions {
  /** Default 30 s. */
  intervalMs?: number;
  log: Logger;
}

export class LifecycleWorker {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly service: LifecycleService, private readonly repoRoot: string, private readonly opts: LifecycleWorkerOptions) {}

  /** Starts offboarding workflows for tenants whose file says offboarding but that have none since the request. */
  async adoptOffboardings(): Promise<string[]> {
    const { fleet } = loadFleet({ projectDir: this.repoRoot });
    if (!fleet) return [];
    const started: string[] = [];
    for (const { tenant } of fleet.tenants.values()) {
      if (tenant.lifecycle !== "offboarding" || !tenant.offboarding) continue;
      if (await this.service.engine.openFor(tenant.id)) continue;
      const since = new Date(tenant.offboarding.requestedAt);
      // A workflow created since the request, or one that was still at work when it was made (the
      // request time is written by the workflow's own first step, after the workflow was created):
      // either has taken this request; a failed one waits for a person, it is not started again.
      const prior = (await this.service.engine.list(tenant.id)).filter((w) => w.kind === "offboard" && (w.createdAt >= since || (w.finishedAt ?? w.updatedAt) >= since));
      if (prior.length > 0) continue;
      const wf = await this.service.requestOffboard(tenant.id, { requestedBy: "lifecycle worker (tenant file says offboarding)" });
      this.opts.log.info({ tenantId: tenant.id, workflowId: wf.id }, "adopted an offboarding requested in the tenant file");
      started.push(wf.id);
    }
    return started;
  }

  async tick(): Promise<void> {
    try {
      await this.adoptOffboardings();
      for (const r of await this.service.engine.runDue()) {
        if (r.state === "failed") this.opts.log.error({ workflowId: r.id, step: r.step, error: r.error }, "lifecycle workflow failed");
      }
    } catch (err) {
      this.opts.log.error({ error: (err as Error).message }, "lifecycle worker tick failed; retrying at the next tick");
    }
  }

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.running = this.tick().finally(() => {
        this.running = undefined;
        if (!this.stopped) this.timer = setTimeout(loop, this.opts.intervalMs ?? 30_000);
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
