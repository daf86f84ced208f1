/**
 * A rollout does not wait for its ticker's interval between runs: a run that ends pokes the
 * rollout tick (RunStore.onRunFinished), which records the outcome and starts the wave's next
 * stack, or the next wave. The interval here is an hour, so only the pokes can move the rollout.
 * Control plane on live PostgreSQL with the Pulumi CLI test double (nothing is deployed).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadRings, planWaves, rolloutTargets } from "../../infra/model/rings.ts";
import { requireFleet } from "../../infra/model/fleet.ts";
import { makeFixtureRepo, withoutBakeTime } from "./support/repo.ts";
import { startHarness, waitFor, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

let pg: TestPostgres;
let h: Harness;

beforeAll(async () => {
  pg = await startTestPostgres();
  const repo = withoutBakeTime(makeFixtureRepo());
  h = await startHarness({ pg, repo, fake: { eventDelayMs: 2 }, deps: { pollingIntervalSeconds: 3600 } });
});
afterAll(async () => {
  await h?.close();
  await pg?.stop();
});

describe("rollout pace", () => {
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
