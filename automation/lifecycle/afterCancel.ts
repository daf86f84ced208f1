/**
 * What an operator does after cancelling a workflow: the `next` of POST /api/workflows/:id/cancel,
 * printed by `tenantctl cancel` (docs/lifecycle.md, "Cancelling a workflow"). A cancel undoes only
 * what must not outlive the workflow (an open write window, holds, capture slots); what its
 * completed steps did stays done, and this says what that leaves and which request undoes it.
 */
import type { StepRecord, WorkflowRecord } from "./engine/engine.ts";

/** What a cancel recorded while a step runs does next (the 202 of POST /api/workflows/:id/cancel). */
export function whileCancelling(wf: WorkflowRecord, interrupting: boolean): string {
  const step = wf.currentStep;
  const how = !step ? "a worker is taking it up"
    : interrupting ? `step ${step} is being stopped (its database sessions are ended, what it had copied is rolled back)`
    : `step ${step} cannot be interrupted safely and is left to finish`;
  return `${how}; then the workflow's clean-up runs and it ends cancelled before any further step. ` +
    `GET /api/workflows/${wf.id} (tenantctl workflows --tenant ${wf.tenantId}) shows when it has`;
}

export function afterCancel(wf: WorkflowRecord, steps: readonly StepRecord[]): string {
  const t = wf.tenantId;
  if (steps.length === 0) return `it had completed no step: nothing of tenant ${t} changed`;
  const p = wf.params as { env?: string; from?: string; to?: string };
  if (wf.kind === "move") {
    return `tenant ${t} serves from cell ${p.from} (${p.env}) as before; its file still records the move to ${p.to}: ` +
      `tenantctl move ${t} --rollback (POST /api/tenants/${t}/move/rollback) gives the placement back and removes what the move built in ${p.to}`;
  }
  if (wf.kind === "upgrade") {
    return `tenant ${t} serves from its cell as before; its file still records the upgrade: ` +
      `tenantctl upgrade ${t} --rollback gives its pooled placement back (the dedicated stacks are kept unless --destroy-dedicated)`;
  }
  return `what its completed steps (${steps.map((s) => s.step).join(", ")}) did stays done; request what tenant ${t} needs now as a new workflow`;
}
