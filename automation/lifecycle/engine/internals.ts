/**
 * What the engine's operator requests (cancel.ts, retry.ts) use of the engine: its pool, clock,
 * log, definitions, reads and the context a workflow's clean-up runs with; and the tenant lock
 * every worker and request of a tenant serializes on.
 */
import type pg from "pg";
import { lockKey } from "../../db/tx.ts";
import type { LifecyclePorts } from "../ports.ts";
import type { StepContext, StepRecord, WorkflowDef, WorkflowKind, WorkflowRecord } from "./definitions.ts";

export interface EngineInternals {
  readonly pool: pg.Pool;
  readonly log: LifecyclePorts["log"];
  now(): Date;
  def(kind: WorkflowKind): WorkflowDef;
  get(id: string): Promise<WorkflowRecord | undefined>;
  steps(id: string): Promise<StepRecord[]>;
  /** What a step of `wf` (or its clean-up) runs with, but its signal. */
  stepContext(wf: WorkflowRecord, step: string, completed: readonly StepRecord[]): Omit<StepContext, "signal">;
}

/** The advisory lock a tenant's workflows serialize on. */
export function tenantLockKey(tenantId: string): number {
  return lockKey(`saas-tenancy:lifecycle:${tenantId}`);
}
