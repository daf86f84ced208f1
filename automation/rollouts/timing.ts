/**
 * How long a rollout's canary phase took, what the control plane added around each run, and the
 * safety figure of a halt, from the rollout's own records (docs/rollouts.md, "Timing"): the rollout
 * API's `timing` and the `tenancy_rollout_*` timing gauges.
 */
import type { Queryable } from "../db/tx.ts";
import type { PlannedWave } from "../../infra/model/rings.ts";

export interface OverheadFigure {
  median: number;
  p99: number;
  n: number;
}

export interface RolloutTiming {
  /**
   * The canary phase: the leading waves whose failure budget is 0 (any failure halts the rollout;
   * in the example rings, non-prod and canary), counted from the first wave.
   */
  canaryWaves: number;
  /** From the rollout's first stack start to the last canary stack's recorded success; null until every canary stack succeeded. */
  canaryMs: number | null;
  /** Canary stacks whose last run failed. */
  canaryFailed: number;
  /**
   * Stacks of waves after the current one that started. The engine starts none (a halted wave
   * stops everything after it): anything but 0 is a bug.
   */
  startedAhead: number;
  /**
   * Per stack the rollout recorded as succeeded: its time in the rollout (started -> outcome
   * recorded) minus the update itself (the update summary the CLI reported, endTime - startTime),
   * in ms; null when no stack has both. What the control plane adds: queueing, claim, checkout,
   * the Automation API's other CLI commands, the finish and the rollout's tick.
   */
  overheadPerRunMs: OverheadFigure | null;
}

/** The number of leading waves whose failure budget is 0. */
export function canaryWaveCount(waves: readonly Pick<PlannedWave, "failureBudgetPercent">[]): number {
  const i = waves.findIndex((w) => w.failureBudgetPercent > 0);
  return i === -1 ? waves.length : i;
}

/** Nearest-rank percentile of sorted values. */
function rank(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

interface Row {
  wave: number;
  state: string;
  started_at: Date | null;
  finished_at: Date | null;
  update_start: string | null;
  update_end: string | null;
}

export async function rolloutTiming(db: Queryable, rollout: { id: string; wave: number; waves: readonly PlannedWave[] }): Promise<RolloutTiming> {
  const { rows } = await db.query<Row>(
    `SELECT s.wave, s.state, s.started_at, s.finished_at,
            r.output->'summary'->>'startTime' AS update_start, r.output->'summary'->>'endTime' AS update_end
       FROM rollout_stacks s LEFT JOIN runs r ON r.id = s.run_id
      WHERE s.rollout_id = $1`,
    [rollout.id],
  );
  const canaryWaves = canaryWaveCount(rollout.waves);
  const canary = rows.filter((r) => r.wave < canaryWaves);
  const starts = rows.flatMap((r) => (r.started_at ? [r.started_at.getTime()] : []));
  const canaryDone = canary.length > 0 && canary.every((r) => r.state === "succeeded" && r.finished_at);
  const overheads: number[] = [];
  for (const r of rows) {
    if (r.state !== "succeeded" || !r.started_at || !r.finished_at || !r.update_start || !r.update_end) continue;
    const update = Date.parse(r.update_end) - Date.parse(r.update_start);
    if (!Number.isFinite(update)) continue;
    overheads.push(r.finished_at.getTime() - r.started_at.getTime() - update);
  }
  overheads.sort((a, b) => a - b);
  return {
    canaryWaves,
    canaryMs: canaryDone && starts.length > 0 ? Math.max(...canary.map((r) => r.finished_at!.getTime())) - Math.min(...starts) : null,
    canaryFailed: canary.filter((r) => r.state === "failed").length,
    startedAhead: rows.filter((r) => r.wave > rollout.wave && r.state !== "pending").length,
    overheadPerRunMs: overheads.length > 0 ? { median: rank(overheads, 50), p99: rank(overheads, 99), n: overheads.length } : null,
  };
}
