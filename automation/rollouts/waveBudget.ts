/**
 * The failure budget of a wave, shared by the rollout engine (units: stacks) and the fleet schema
 * migrations (units: tenant schemas): how many failures a wave tolerates and the one-line reason a
 * rollout halts with once they are exceeded (docs/rollouts.md, docs/schema-migrations.md).
 */
import type { PlannedWave } from "../../infra/model/rings.ts";

export interface WaveTally {
  /** 0-based index of the wave and how many waves the rollout has. */
  index: number;
  waveCount: number;
  wave: Pick<PlannedWave, "ring" | "failureBudgetPercent">;
  /** Units in the wave and how many failed so far. */
  total: number;
  failed: number;
  /** The first failure (by finish time), for the reason. */
  first: { unit: string; error: string | null };
}

/** Failures a wave of `total` units tolerates: its budget percent of them, rounded down (0%: none). */
export function allowance(total: number, failureBudgetPercent: number): number {
  return Math.floor((total * failureBudgetPercent) / 100);
}

/** Why the rollout halts after this tally, or undefined while the failures are within budget. */
export function haltReason(t: WaveTally, unit: "stacks" | "schemas"): string | undefined {
  const allowed = allowance(t.total, t.wave.failureBudgetPercent);
  if (t.failed <= allowed) return undefined;
  return (
    `wave ${t.index + 1} of ${t.waveCount} (ring ${t.wave.ring}): ${t.failed} of ${t.total} ${unit} failed, ` +
    `budget ${allowed} (${t.wave.failureBudgetPercent}%); first: ${t.first.unit}: ${t.first.error ?? "failed"}`
  );
}
