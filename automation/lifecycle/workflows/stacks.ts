/**
 * The stacks a workflow step updates: which cells and dedicated stacks a tenant has per
 * environment, and running `up` on them in order through the runner port.
 */
import { cellStackName, dedicatedStackName } from "../../../infra/model/naming.ts";
import type { Tenant } from "../../../infra/model/schema.ts";
import type { StepContext } from "../engine/engine.ts";

/** Runs `up` on each stack in order; returns the run ids. A failed run rejects (the step is retried). */
export async function upStacks(ctx: StepContext, stacks: readonly string[], reason: string): Promise<string[]> {
  const runs: string[] = [];
  for (const stack of stacks) {
    const { runId } = await ctx.ports.runner.up(stack, ctx.runContext(reason));
    ctx.log({ stack, runId }, `stack update succeeded: ${stack}`);
    runs.push(runId);
  }
  return runs;
}

export function envsOf(t: Tenant): string[] {
  return Object.keys(t.environments).sort();
}

/** The cell each env of a pooled (or migrating) tenant lives in. */
export function cellsOf(t: Tenant): Record<string, string> {
  const out: Record<string, string> = {};
  for (const env of envsOf(t)) {
    const cell = t.deployment === "pooled" ? t.placement[env] : t.migration?.from[env];
    if (cell) out[env] = cell;
  }
  return out;
}

export function cellStacks(cells: Record<string, string>): string[] {
  return Object.entries(cells).map(([env, cell]) => cellStackName(env, cell)).sort();
}

export function dedicatedStacks(tenantId: string, envs: readonly string[]): string[] {
  return envs.map((env) => dedicatedStackName(tenantId, env)).sort();
}
