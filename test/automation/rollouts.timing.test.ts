/**
 * A rollout's timing (automation/rollouts/timing.ts) from records written with known times on a
 * live PostgreSQL: canary time, overhead per run (median and p99), canary failures and stacks
 * started ahead of the current wave, as the rollout view returns them (GET /api/rollouts/:id) and
 * as the tenancy_rollout_* gauges report them.
 */
import type { Pool } from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createPool } from "../../automation/db/database.ts";
import { migrate } from "../../automation/db/migrate.ts";
import { Metrics } from "../../automation/metrics.ts";
import { RolloutEngine } from "../../automation/rollouts/engine.ts";
import { RolloutService } from "../../automation/rollouts/service.ts";
import { canaryWaveCount, rolloutTiming } from "../../automation/rollouts/timing.ts";
import type { PlannedWave } from "../../infra/model/rings.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

let pg: TestPostgres;
let pool: Pool;
beforeAll(async () => {
  pg = await startTestPostgres();
  pool = createPool(await pg.newDatabase());
  await migrate(pool);
});
afterAll(async () => {
  await pool?.end();
  await pg?.stop();
});
beforeEach(async () => {
  await pool.query("DELETE FROM rollouts");
  await pool.query("DELETE FROM runs");
});

const wave = (index: number, ring: string, failureBudgetPercent: number, stacks: string[]): PlannedWave => ({ index, ring, parallelism: 2, bakeMs: 0, failureBudgetPercent, stacks });
const WAVES = [
  wave(0, "non-prod", 0, ["dedicated-s-staging"]),
  wave(1, "canary", 0, ["shared-prod-a", "shared-prod-b"]),
  wave(2, "prod-10", 10, ["dedicated-p1-prod", "dedicated-p2-prod"]),
  wave(3, "rest", 5, ["dedicated-p3-prod"]),
];
const T0 = Date.parse("2026-12-06T10:00:00.000Z");
const at = (s: number) => new Date(T0 + s * 1000);

interface StackAt {
  wave: number;
  stack: string;
  state: "pending" | "running" | "succeeded" | "failed";
  /** Seconds after T0: started, recorded by the rollout, and the update's own start and end. */
  started?: number;
  recorded?: number;
  update?: [number, number];
}

async function record(state: string, currentWave: number, stacks: StackAt[]): Promise<string> {
  const { rows } = await pool.query<{ id: string }>(
    "INSERT INTO rollouts (name, commit, state, waves, wave, created_at) VALUES ('timing', $1, $2, $3::jsonb, $4, $5) RETURNING id",
    ["a".repeat(40), state, JSON.stringify(WAVES), currentWave, at(-30)],
  );
  const id = rows[0]!.id;
  for (const s of stacks) {
    let runId: string | null = null;
    if (s.started !== undefined) {
      const output = s.update ? { summary: { startTime: at(s.update[0]).toISOString(), endTime: at(s.update[1]).toISOString(), result: "succeeded" } } : null;
      const run = await pool.query<{ id: string }>(
        "INSERT INTO runs (stack, state, output, created_at) VALUES ($1, $2, $3::jsonb, $4) RETURNING id",
        [s.stack, s.state === "pending" || s.state === "running" ? "running" : s.state, JSON.stringify(output), at(s.started)],
      );
      runId = run.rows[0]!.id;
    }
    await pool.query(
      "INSERT INTO rollout_stacks (rollout_id, wave, stack, state, run_id, started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
      [id, s.wave, s.stack, s.state, runId, s.started === undefined ? null : at(s.started), s.recorded === undefined ? null : at(s.recorded)],
    );
  }
  return id;
}

/** The exposition lines of the tenancy_rollout_* timing gauges, the rollout's id shown as ID. */
async function gauges(): Promise<string[]> {
  const m = new Metrics();
  m.attachRollouts(pool);
  const text = await m.registry.metrics();
  return text.split("\n").filter((l) => /^tenancy_rollout_(canary|overhead|stacks_started)/.test(l)).map((l) => l.replace(/rollout="[0-9a-f-]{36}"/, 'rollout="ID"'));
}

describe("rollout timing", () => {
  it("the canary phase is the leading waves with a zero failure budget", () => {
    expect(canaryWaveCount(WAVES)).toBe(2);
    expect(canaryWaveCount([wave(0, "only", 0, ["x"])])).toBe(1);
    expect(canaryWaveCount([wave(0, "all", 5, ["x"])])).toBe(0);
  });

  it("a succeeded rollout: canary time from the first start to the last canary success, overhead = time in the rollout minus the update", async () => {
    const id = await record("succeeded", 4, [
      // overhead 2 s: 10 s in the rollout, an update of 8 s.
      { wave: 0, stack: "dedicated-s-staging", state: "succeeded", started: 0, recorded: 10, update: [1, 9] },
      // overheads 3 s and 1.5 s.
      { wave: 1, stack: "shared-prod-a", state: "succeeded", started: 12, recorded: 30, update: [14, 29] },
      { wave: 1, stack: "shared-prod-b", state: "succeeded", started: 12, recorded: 34, update: [13, 33.5] },
      // overheads 4 s, 2.5 s and 6 s.
      { wave: 2, stack: "dedicated-p1-prod", state: "succeeded", started: 40, recorded: 50, update: [42, 48] },
      { wave: 2, stack: "dedicated-p2-prod", state: "succeeded", started: 40, recorded: 52, update: [41, 50.5] },
      { wave: 3, stack: "dedicated-p3-prod", state: "succeeded", started: 60, recorded: 70, update: [63, 67] },
    ]);
    const service = new RolloutService(new RolloutEngine(pool, { enqueue: () => Promise.reject(new Error("unused")), outcomes: async () => new Map(), jobsSent: () => undefined }), ".");
    const view = await service.view(id);
    // Overheads sorted: 1.5, 2, 2.5, 3, 4, 6 s: nearest-rank median the 3rd, p99 the 6th.
    expect(view!.timing).toEqual({ canaryWaves: 2, canaryMs: 34_000, canaryFailed: 0, startedAhead: 0, overheadPerRunMs: { median: 2_500, p99: 6_000, n: 6 } });
    expect(await gauges()).toEqual([
      'tenancy_rollout_canary_seconds{rollout="ID"} 34',
      'tenancy_rollout_canary_failed_stacks{rollout="ID"} 0',
      'tenancy_rollout_stacks_started_ahead{rollout="ID"} 0',
      'tenancy_rollout_overhead_seconds{rollout="ID",quantile="0.5"} 2.5',
      'tenancy_rollout_overhead_seconds{rollout="ID",quantile="0.99"} 6',
    ]);
  });

  it("a rollout halted at a failing canary: no canary time, the failure counted, nothing ahead started; a stack started ahead is counted (negative control)", async () => {
    const stacks: StackAt[] = [
      { wave: 0, stack: "dedicated-s-staging", state: "succeeded", started: 0, recorded: 10, update: [1, 9] },
      { wave: 1, stack: "shared-prod-a", state: "failed", started: 12, recorded: 20 },
      { wave: 1, stack: "shared-prod-b", state: "succeeded", started: 12, recorded: 25, update: [13, 24] },
      { wave: 2, stack: "dedicated-p1-prod", state: "pending" },
      { wave: 2, stack: "dedicated-p2-prod", state: "pending" },
      { wave: 3, stack: "dedicated-p3-prod", state: "pending" },
    ];
    const id = await record("halted", 1, stacks);
    const engine = new RolloutEngine(pool, { enqueue: () => Promise.reject(new Error("unused")), outcomes: async () => new Map(), jobsSent: () => undefined });
    const rollout = (await engine.get(id))!;
    // Overheads 2 s and 2 s (a failed stack has no update summary: not counted).
    expect(await rolloutTiming(pool, rollout)).toEqual({ canaryWaves: 2, canaryMs: null, canaryFailed: 1, startedAhead: 0, overheadPerRunMs: { median: 2_000, p99: 2_000, n: 2 } });
    expect(await gauges()).toEqual([
      'tenancy_rollout_canary_failed_stacks{rollout="ID"} 1',
      'tenancy_rollout_stacks_started_ahead{rollout="ID"} 0',
      'tenancy_rollout_overhead_seconds{rollout="ID",quantile="0.5"} 2',
      'tenancy_rollout_overhead_seconds{rollout="ID",quantile="0.99"} 2',
    ]);
    await pool.query("UPDATE rollout_stacks SET state = 'running', started_at = $2 WHERE rollout_id = $1 AND stack = 'dedicated-p1-prod'", [id, at(21)]);
    expect((await rolloutTiming(pool, rollout)).startedAhead).toBe(1);
    expect(await gauges()).toContain('tenancy_rollout_stacks_started_ahead{rollout="ID"} 1');
  });

  it("the gauges follow the active rollout over a newer ended one, and are absent without any rollout", async () => {
    expect(await gauges()).toEqual([]);
    const halted = await record("halted", 1, [{ wave: 1, stack: "shared-prod-a", state: "failed", started: 0, recorded: 5 }]);
    await pool.query("INSERT INTO rollouts (name, commit, state, waves, created_at) VALUES ('newer, aborted', $1, 'aborted', $2::jsonb, $3)", ["b".repeat(40), JSON.stringify(WAVES), at(100)]);
    const m = new Metrics();
    m.attachRollouts(pool);
    expect((await m.registry.metrics()).split("\n")).toContain(`tenancy_rollout_canary_failed_stacks{rollout="${halted}"} 1`);
  });
});
