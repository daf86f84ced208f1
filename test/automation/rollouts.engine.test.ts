/**
 * The rollout engine on a live PostgreSQL, with the run queue replaced by a recorder whose runs a
 * test finishes by hand: wave order, parallelism, bake time, failure budgets, halt and resume,
 * abort, a second rollout waiting or superseding, a crash between ticks, and 1,000 stacks through
 * four rings. The run queue itself is exercised in rollouts.runs.test.ts.
 */
import { randomUUID } from "node:crypto";
import type { Pool } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool } from "../../automation/db/database.ts";
import { migrate } from "../../automation/db/migrate.ts";
import { RolloutEngine, TICK_LOCK, type RolloutRunPort } from "../../automation/rollouts/engine.ts";
import { planWaves, type RolloutsConfig, type RolloutTarget } from "../../infra/model/rings.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

/** Runs recorded in memory; `finish` decides their outcome. Survives an engine "crash" like the runs table would. */
class RecordingRuns implements RolloutRunPort {
  readonly started: { stack: string; runId: string }[] = [];
  readonly outcome = new Map<string, { state: "succeeded" | "failed"; error: string | null }>();
  readonly byRun = new Map<string, string>();
  async enqueue(_c: unknown, stack: string): Promise<{ runId: string }> {
    const runId = randomUUID();
    this.started.push({ stack, runId });
    this.byRun.set(runId, stack);
    return { runId };
  }
  async outcomes(_c: unknown, ids: readonly string[]) {
    return new Map(ids.flatMap((id) => (this.outcome.has(id) ? [[id, this.outcome.get(id)!] as const] : [])));
  }
  jobsSent(): void {}
  /** Finishes every unfinished run; stacks in `fail` fail. */
  finishAll(fail: ReadonlySet<string> = new Set()): number {
    let n = 0;
    for (const [runId, stack] of this.byRun) {
      if (this.outcome.has(runId)) continue;
      this.outcome.set(runId, fail.has(stack) ? { state: "failed", error: `update of ${stack} failed` } : { state: "succeeded", error: null });
      n++;
    }
    return n;
  }
  unfinished(): string[] {
    return [...this.byRun].filter(([id]) => !this.outcome.has(id)).map(([, s]) => s);
  }
}

const RINGS: RolloutsConfig = {
  rings: [
    { name: "non-prod", select: { envs: ["staging", "dev"] }, parallelism: 2, bakeMinutes: 0, failureBudgetPercent: 0 },
    { name: "canary", select: { stacks: ["shared-prod-a"] }, parallelism: 1, bakeMinutes: 0, failureBudgetPercent: 0 },
    { name: "prod-10", select: { percent: 10 }, parallelism: 4, bakeMinutes: 0, failureBudgetPercent: 0 },
    { name: "rest", select: { rest: true }, parallelism: 8, bakeMinutes: 0, failureBudgetPercent: 10 },
  ],
};
function targets(prod: number, staging = 3): RolloutTarget[] {
  const out: RolloutTarget[] = [{ stack: "shared-prod-a", env: "prod", pins: [] }];
  for (let i = 0; i < prod; i++) out.push({ stack: `dedicated-t${String(i).padStart(4, "0")}-prod`, env: "prod", pins: [] });
  for (let i = 0; i < staging; i++) out.push({ stack: `dedicated-s${i}-staging`, env: "staging", pins: [] });
  return out;
}

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

async function reset(): Promise<void> {
  await pool.query("DELETE FROM rollouts");
}
/** Ticks and finishes runs until nothing moves; returns the waves in which stacks started, in order. */
async function drive(engine: RolloutEngine, runs: RecordingRuns, fail: ReadonlySet<string> = new Set(), maxTicks = 10_000): Promise<void> {
  for (let i = 0; i < maxTicks; i++) {
    const before = runs.started.length;
    await engine.tick();
    const finished = runs.finishAll(fail);
    if (runs.started.length === before && finished === 0) {
      await engine.tick();
      if (runs.started.length === before) return;
    }
  }
  throw new Error("rollout did not settle");
}

describe("rollout engine", () => {
  it("runs the waves in order, never more stacks at once than the wave's parallelism", async () => {
    await reset();
    const runs = new RecordingRuns();
    const engine = new RolloutEngine(pool, runs);
    const waves = planWaves(RINGS, targets(20));
    expect(waves.map((w) => [w.ring, w.stacks.length])).toEqual([["non-prod", 3], ["canary", 1], ["prod-10", 2], ["rest", 18]]);
    const r = await engine.start({ name: "program v2", commit: "a".repeat(40), waves });
    const waveOf = new Map(waves.flatMap((w) => w.stacks.map((s) => [s, w.index] as const)));
    let maxRunning = 0;
    const order: number[] = [];
    for (let i = 0; i < 200 && (await engine.get(r.id))!.state === "running"; i++) {
      await engine.tick();
      const open = runs.unfinished();
      const wavesOpen = new Set(open.map((s) => waveOf.get(s)));
      expect(wavesOpen.size).toBeLessThanOrEqual(1); // never two waves at once
      if (open.length > 0) {
        const w = waves[waveOf.get(open[0]!)!]!;
        expect(open.length).toBeLessThanOrEqual(w.parallelism);
        maxRunning = Math.max(maxRunning, open.length);
        if (order.at(-1) !== w.index) order.push(w.index);
      }
      runs.finishAll();
    }
    expect((await engine.get(r.id))!.state).toBe("succeeded");
    expect(order).toEqual([0, 1, 2, 3]);
    expect(maxRunning).toBe(8);
    expect(runs.started).toHaveLength(24);
    expect(new Set(runs.started.map((s) => s.stack)).size).toBe(24);
  });

  it("halts on a canary failure: nothing of a later wave starts; resume after the fix re-runs the failed stack and goes on", async () => {
    await reset();
    const runs = new RecordingRuns();
    const engine = new RolloutEngine(pool, runs);
    const waves = planWaves(RINGS, targets(20));
    const r = await engine.start({ name: "bad change", commit: "b".repeat(40), waves });
    await drive(engine, runs, new Set(["shared-prod-a"]));
    const halted = (await engine.get(r.id))!;
    expect(halted.state).toBe("halted");
    expect(halted.wave).toBe(1);
    expect(halted.haltReason).toBe("wave 2 of 4 (ring canary): 1 of 1 stacks failed, budget 0 (0%); first: shared-prod-a: update of shared-prod-a failed");
    // Only non-prod and the canary ran.
    expect(runs.started.map((s) => s.stack).sort()).toEqual([...waves[0]!.stacks, "shared-prod-a"].sort());
    // Ticking a halted rollout starts nothing.
    for (let i = 0; i < 5; i++) await engine.tick();
    expect(runs.started).toHaveLength(4);

    await engine.resume(r.id);
    await drive(engine, runs);
    const done = (await engine.get(r.id))!;
    expect(done.state).toBe("succeeded");
    expect(done.haltReason).toBeNull();
    const stacks = await engine.stacks(r.id);
    expect(stacks.find((s) => s.stack === "shared-prod-a")).toMatchObject({ state: "succeeded", attempts: 2 });
    // Non-prod stacks were not run again.
    for (const s of waves[0]!.stacks) expect(runs.started.filter((x) => x.stack === s)).toHaveLength(1);
    expect(stacks.every((s) => s.state === "succeeded")).toBe(true);
  });

  it("tolerates failures within a wave's budget and halts beyond it", async () => {
    await reset();
    const rings: RolloutsConfig = { rings: [{ name: "all", select: { rest: true }, parallelism: 20, bakeMinutes: 0, failureBudgetPercent: 10 }] };
    const t = targets(19, 0); // 20 stacks: 2 failures allowed
    const waves = planWaves(rings, t);
    const within = new RecordingRuns();
    const e1 = new RolloutEngine(pool, within);
    const r1 = await e1.start({ name: "within", commit: "c".repeat(40), waves });
    await drive(e1, within, new Set([t[1]!.stack, t[2]!.stack]));
    expect((await e1.get(r1.id))!.state).toBe("succeeded");

    const beyond = new RecordingRuns();
    const e2 = new RolloutEngine(pool, beyond);
    const r2 = await e2.start({ name: "beyond", commit: "d".repeat(40), waves });
    await drive(e2, beyond, new Set([t[1]!.stack, t[2]!.stack, t[3]!.stack]));
    const h = (await e2.get(r2.id))!;
    expect(h.state).toBe("halted");
    expect(h.haltReason).toMatch(/^wave 1 of 1 \(ring all\): 3 of 20 stacks failed, budget 2 \(10%\)/);
  });

  it("waits out the bake time before the next wave", async () => {
    await reset();
    const rings: RolloutsConfig = {
      rings: [
        { name: "first", select: { envs: ["staging"] }, parallelism: 5, bakeMinutes: 0.01, failureBudgetPercent: 0 }, // 600 ms
        { name: "second", select: { rest: true }, parallelism: 5, bakeMinutes: 0, failureBudgetPercent: 0 },
      ],
    };
    const runs = new RecordingRuns();
    const engine = new RolloutEngine(pool, runs);
    const r = await engine.start({ name: "bake", commit: "e".repeat(40), waves: planWaves(rings, targets(1, 2)) });
    await engine.tick();
    runs.finishAll();
    await engine.tick(); // wave done: bake starts
    const baking = (await engine.get(r.id))!;
    expect(baking.waveDoneAt).not.toBeNull();
    await engine.tick();
    expect(runs.started).toHaveLength(2); // second wave not started while baking
    await new Promise((res) => setTimeout(res, 700));
    await engine.tick();
    expect(runs.started).toHaveLength(4);
  });

  it("a second rollout waits for the active one; one that supersedes takes over and the first starts nothing more", async () => {
    await reset();
    const runs = new RecordingRuns();
    const engine = new RolloutEngine(pool, runs);
    const waves = planWaves(RINGS, targets(5));
    const first = await engine.start({ name: "first", commit: "1".repeat(40), waves });
    const second = await engine.start({ name: "second", commit: "2".repeat(40), waves });
    expect(second.state).toBe("waiting");
    await engine.tick();
    expect(new Set(runs.started.map((s) => s.stack)).size).toBe(runs.started.length);
    const third = await engine.start({ name: "third", commit: "3".repeat(40), waves, supersede: true });
    expect(third.state).toBe("running");
    expect((await engine.get(first.id))!.state).toBe("superseded");
    expect((await engine.get(second.id))!.state).toBe("waiting");
    await drive(engine, runs);
    expect((await engine.get(third.id))!.state).toBe("succeeded");
    expect((await engine.get(second.id))!.state).toBe("succeeded"); // ran after the third
    const firstStacks = await engine.stacks(first.id);
    expect(firstStacks.filter((s) => s.state !== "pending").map((s) => s.wave)).toEqual([0, 0]); // only what it had started
  });

  it("pause stops new starts, abort ends the rollout with its pending stacks never started", async () => {
    await reset();
    const runs = new RecordingRuns();
    const engine = new RolloutEngine(pool, runs);
    const r = await engine.start({ name: "p", commit: "f".repeat(40), waves: planWaves(RINGS, targets(10)) });
    await engine.tick();
    await engine.pause(r.id);
    runs.finishAll();
    for (let i = 0; i < 3; i++) await engine.tick();
    expect(runs.started).toHaveLength(2);
    expect((await engine.stacks(r.id)).filter((s) => s.state === "succeeded")).toHaveLength(2); // outcomes still recorded while paused
    await expect(engine.pause(r.id)).rejects.toThrow(`rollout ${r.id} is paused; only a rollout that is running can become paused`);
    await engine.abort(r.id);
    for (let i = 0; i < 3; i++) await engine.tick();
    expect(runs.started).toHaveLength(2);
    expect((await engine.get(r.id))!.state).toBe("aborted");
  });

  it("says whether a rollout may be active (a run's end ticks it only then): no after a tick that found none, yes from a start on, even one that waited for such a tick, no again once it ended", async () => {
    await reset();
    const runs = new RecordingRuns();
    const engine = new RolloutEngine(pool, runs);
    // Nothing known yet: a run's end ticks.
    expect(engine.mayBeActive).toBe(true);
    await engine.tick();
    expect(engine.mayBeActive).toBe(false);
    // A tick that finds nothing, and a start queued behind it on the rollouts' lock: the start
    // commits after the tick decided, and the answer is yes (a flag set before the start's
    // transaction would be cleared by that tick).
    const holder = await pool.connect();
    let r: Awaited<ReturnType<RolloutEngine["start"]>>;
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT pg_advisory_xact_lock($1)", [TICK_LOCK]);
      const waiters = async () => Number((await pool.query<{ n: string }>("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).rows[0]!.n);
      const ticking = engine.tick();
      while ((await waiters()) < 1) await new Promise((res) => setTimeout(res, 5));
      const starting = engine.start({ name: "after a tick", commit: "9".repeat(40), waves: planWaves(RINGS, targets(1, 1)) });
      while ((await waiters()) < 2) await new Promise((res) => setTimeout(res, 5));
      await holder.query("COMMIT");
      [, r] = await Promise.all([ticking, starting]);
    } finally {
      holder.release();
    }
    expect(runs.started).toHaveLength(0); // the tick went first and found nothing
    expect(engine.mayBeActive).toBe(true);
    await drive(engine, runs);
    expect((await engine.get(r.id))!.state).toBe("succeeded");
    await engine.tick();
    expect(engine.mayBeActive).toBe(false);
    // Another process's rollout (a second engine on the same database) is seen at this engine's next tick.
    await new RolloutEngine(pool, new RecordingRuns()).start({ name: "elsewhere", commit: "8".repeat(40), waves: planWaves(RINGS, targets(1, 1)) });
    expect(engine.mayBeActive).toBe(false);
    await engine.tick();
    expect(engine.mayBeActive).toBe(true);
  });

  it("a crash between ticks loses nothing: a new engine goes on without starting a finished stack again", async () => {
    await reset();
    const runs = new RecordingRuns();
    const waves = planWaves(RINGS, targets(30));
    const r = await new RolloutEngine(pool, runs).start({ name: "crash", commit: "9".repeat(40), waves });
    for (let i = 0; i < 4; i++) {
      // Each round a fresh engine on a fresh pool: the process that ticked before is gone.
      const p = createPool((pool.options as { connectionString: string }).connectionString, 2);
      await new RolloutEngine(p, runs).tick();
      await p.end();
      runs.finishAll();
    }
    const after = runs.started.length;
    expect(after).toBeGreaterThan(3);
    await drive(new RolloutEngine(pool, runs), runs);
    expect((await new RolloutEngine(pool, runs).get(r.id))!.state).toBe("succeeded");
    expect(runs.started).toHaveLength(31 + 3);
    expect(new Set(runs.started.map((s) => s.stack)).size).toBe(34);
  });

  it("takes 1,000 stacks through four rings, each once", async () => {
    await reset();
    const runs = new RecordingRuns();
    const engine = new RolloutEngine(pool, runs);
    const rings: RolloutsConfig = { rings: RINGS.rings.map((r) => ({ ...r, parallelism: 64 })) };
    const waves = planWaves(rings, targets(900, 99));
    expect(waves.map((w) => w.stacks.length)).toEqual([99, 1, 90, 810]);
    const r = await engine.start({ name: "fleet", commit: "0".repeat(40), waves });
    await drive(engine, runs);
    expect((await engine.get(r.id))!.state).toBe("succeeded");
    expect(runs.started).toHaveLength(1000);
    expect(new Set(runs.started.map((s) => s.stack)).size).toBe(1000);
    const order = runs.started.map((s) => waves.findIndex((w) => w.stacks.includes(s.stack)));
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });
});
