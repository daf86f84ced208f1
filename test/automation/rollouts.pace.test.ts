/**
 * A rollout does not wait for its ticker's interval between runs: a run that ends pokes the
 * rollout tick (RunStore.onRunFinished), which records the outcome and starts the wave's next
 * stack, or the next wave. The interval here is an hour, so only the pokes can move the rollout.
 * Control plane on live PostgreSQL with the Pulumi CLI test double (nothing is deployed).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadRings, planWaves, rolloutTargets } from "../../infra/model/rings.ts";
import { requireFleet } from "../../infra/model/fleet.ts";
import { makeFixtureRepo, withoutBakeTime } from "./support/repo.ts";
import { startHarness, waitFor, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

let pg: TestPostgres;
let h: Harness;
/** The first two stacks of the first wave: the first one's update is held until its gate file exists. */
let first: string;
let second: string;
const gates = mkdtempSync(join(tmpdir(), "tenancy-rollout-gates-"));
const gate = join(gates, "first");

beforeAll(async () => {
  pg = await startTestPostgres();
  const repo = withoutBakeTime(makeFixtureRepo());
  [first, second] = planWaves(loadRings(repo.dir), rolloutTargets(requireFleet({ projectDir: repo.dir })))[0]!.stacks as [string, string];
  h = await startHarness({ pg, repo, fake: { eventDelayMs: 2, holdUntil: { [first]: gate } }, deps: { pollingIntervalSeconds: 3600 } });
});
afterAll(async () => {
  await h?.close();
  await pg?.stop();
  rmSync(gates, { recursive: true, force: true });
});

const runsOf = async (stack: string) =>
  (await h.cp.db.pool.query<{ id: string; state: string }>("SELECT id, state FROM runs WHERE stack = $1 ORDER BY created_at", [stack])).rows;

describe("rollout pace", () => {
  it("a run's end starts the wave's next stack in the transaction that records the end; while the run goes on, nothing starts it", async () => {
    const r = await h.cp.rollouts.engine.start({
      name: "one slot",
      commit: await h.cp.writer.head(),
      waves: [{ index: 0, ring: "one-slot", parallelism: 1, bakeMs: 0, failureBudgetPercent: 0, stacks: [first, second] }],
    });
    h.cp.rolloutWorker.poke();
    await waitFor("the first stack's update to be under way", async () => ((await runsOf(first))[0]?.state === "running" ? true : undefined), 30_000);
    // Negative control: with the first stack's update held, the wave's one slot is taken and the
    // tick interval is an hour away: the second stack does not start, however long we wait.
    await sleep(1500);
    const held = await h.cp.rollouts.engine.stacks(r.id);
    expect(held.map((s) => [s.stack, s.state])).toEqual([[first, "running"], [second, "pending"]].sort((a, b) => a[0]!.localeCompare(b[0]!)));
    expect(await runsOf(second)).toEqual([]);
    // The update ends: its run's end (nothing else) records it and starts the second stack.
    writeFileSync(gate, "");
    const done = await waitFor("the rollout to succeed", async () => {
      const x = await h.cp.rollouts.engine.get(r.id);
      return x?.state === "succeeded" ? x : undefined;
    }, 60_000);
    expect(done.wave).toBe(1);
    const stacks = new Map((await h.cp.rollouts.engine.stacks(r.id)).map((s) => [s.stack, s]));
    const a = stacks.get(first)!;
    const b = stacks.get(second)!;
    expect([a.state, a.attempts, b.state, b.attempts]).toEqual(["succeeded", 1, "succeeded", 1]);
    // One transaction (one now()) recorded the first stack's outcome and started the second.
    expect(b.startedAt).toBe(a.finishedAt);
    const [runA] = await runsOf(first);
    const [runB] = await runsOf(second);
    expect([a.runId, b.runId]).toEqual([runA!.id, runB!.id]);
    const { rows } = await h.cp.db.pool.query<{ b_after_a: boolean }>(
      "SELECT b.created_at >= a.finished_at AS b_after_a FROM runs a, runs b WHERE a.id = $1 AND b.id = $2",
      [runA!.id, runB!.id],
    );
    expect(rows[0]!.b_after_a).toBe(true);
  }, 120_000);

  it("the next wave starts when the bake time ends, not at the next interval (an hour away)", async () => {
    writeFileSync(gate, "");
    const bakeMs = 1500;
    const r = await h.cp.rollouts.engine.start({
      name: "bake",
      commit: await h.cp.writer.head(),
      waves: [
        { index: 0, ring: "baked", parallelism: 1, bakeMs, failureBudgetPercent: 0, stacks: [first] },
        { index: 1, ring: "after", parallelism: 1, bakeMs: 0, failureBudgetPercent: 0, stacks: [second] },
      ],
    });
    h.cp.rolloutWorker.poke();
    const done = await waitFor("the rollout to succeed", async () => {
      const x = await h.cp.rollouts.engine.get(r.id);
      return x?.state === "succeeded" ? x : undefined;
    }, 60_000);
    expect(done.wave).toBe(2);
    const stacks = new Map((await h.cp.rollouts.engine.stacks(r.id)).map((s) => [s.stack, s]));
    const a = stacks.get(first)!;
    const b = stacks.get(second)!;
    expect([a.state, a.attempts, b.state, b.attempts]).toEqual(["succeeded", 1, "succeeded", 1]);
    // The bake held the second wave: it started no earlier than the bake time after the first wave's end.
    expect(Date.parse(b.startedAt!) - Date.parse(a.finishedAt!)).toBeGreaterThanOrEqual(bakeMs);
  }, 120_000);

  it("each finished run advances the rollout at once; with an hour-long tick interval, nothing else does", async () => {
    const dir = h.repo.dir;
    const waves = planWaves(loadRings(dir), rolloutTargets(requireFleet({ projectDir: dir })));
    expect(waves.length).toBeGreaterThan(2);
    const r = await h.cp.rollouts.engine.start({ name: "pace", commit: await h.cp.writer.head(), waves });
    // Negative control: the ticker's own start tick ran before the rollout existed, and its next
    // one is an hour away: nothing starts by itself.
    await sleep(1500);
    const before = await h.cp.rollouts.engine.stacks(r.id);
    expect(before.filter((s) => s.state !== "pending")).toEqual([]);
    // One poke starts the first wave; from then on only finished runs poke the tick.
    h.cp.rolloutWorker.poke();
    const done = await waitFor("the rollout to succeed", async () => {
      const x = await h.cp.rollouts.engine.get(r.id);
      return x?.state === "succeeded" ? x : undefined;
    }, 90_000);
    expect(done.wave).toBe(waves.length);
    const stacks = await h.cp.rollouts.engine.stacks(r.id);
    expect(stacks.map((s) => [s.stack, s.state, s.attempts]).sort()).toEqual(waves.flatMap((w) => w.stacks.map((s) => [s, "succeeded", 1])).sort());
  }, 150_000);
});
