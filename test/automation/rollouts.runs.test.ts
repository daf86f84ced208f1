/**
 * Rollouts through the whole control plane: the HTTP API, the rollout worker, the run queue and
 * run workers, and the Pulumi CLI test double (nothing is deployed), on the example fleet with
 * its rings (bake times set to zero in the fixture repository). A failing canary halts the
 * rollout before the prod rings; after the fix, resume re-runs the canary and finishes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { bufferIo } from "../../cli/io.ts";
import type { RolloutTiming } from "../../automation/rollouts/timing.ts";
import { makeFixtureRepo, withoutBakeTime } from "./support/repo.ts";
import { startHarness, waitFor, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

let pg: TestPostgres;
let h: Harness;
const CANARY = "shared-prod-use1-01";

beforeAll(async () => {
  pg = await startTestPostgres();
  const repo = withoutBakeTime(makeFixtureRepo());
  h = await startHarness({ pg, repo, fake: { eventDelayMs: 5, failures: { [CANARY]: "the canary's update failed (injected)" } } });
});
afterAll(async () => {
  await h?.close();
  await pg?.stop();
});

interface View {
  rollout: { id: string; state: string; wave: number; haltReason: string | null; commit: string };
  waves: { ring: string; counts: Record<string, number>; stacks: { stack: string; state: string; attempts: number; runId: string | null }[] }[];
  timing: RolloutTiming;
}
const get = async (id: string) => (await h.api("GET", `/api/rollouts/${id}`)).json as unknown as View;
const runsOf = async (stack: string) => Number((await h.cp.db.pool.query<{ n: string }>("SELECT count(*) AS n FROM runs WHERE stack = $1", [stack])).rows[0]!.n);

describe("rollouts through the control plane", () => {
  it("halts at the failing canary with no prod-ring stack run, resumes after the fix and finishes", async () => {
    const commit = h.repo.git("rev-parse", "HEAD").trim();
    const started = await h.api("POST", "/api/rollouts", { name: "program change", commit });
    expect(started.status).toBe(201);
    const id = (started.json as unknown as View).rollout.id;
    const planned = (started.json as unknown as View).waves.map((w) => w.ring);
    expect(planned).toEqual(["non-prod", "canary", "prod-10", "prod-rest"]);

    const halted = await waitFor("the rollout to halt", async () => {
      const v = await get(id);
      return v.rollout.state === "halted" ? v : undefined;
    }, 60_000);
    expect(halted.rollout.wave).toBe(1);
    expect(halted.rollout.haltReason).toContain(`first: ${CANARY}: `);
    expect(halted.rollout.haltReason).toContain("the canary's update failed (injected)");
    // Nothing of the later rings ran.
    for (const w of halted.waves.slice(2)) {
      for (const s of w.stacks) {
        expect(s.state).toBe("pending");
        expect(await runsOf(s.stack)).toBe(0);
      }
    }
    const metrics = await h.cp.metrics.registry.metrics();
    expect(metrics).toMatch(/^tenancy_rollout_halts_total 1$/m);
    expect(metrics).toMatch(/^tenancy_rollout_stacks\{state="failed",wave="2"\} 1$/m);
    expect(metrics).toMatch(/^tenancy_rollouts\{state="halted"\} 1$/m);
    // The halt's figures (automation/rollouts/timing.ts): one canary failure, nothing of a later ring started, no canary time.
    expect(halted.timing).toMatchObject({ canaryWaves: 2, canaryMs: null, canaryFailed: 1, startedAhead: 0 });
    expect(metrics).toMatch(new RegExp(`^tenancy_rollout_canary_failed_stacks\\{rollout="${id}"\\} 1$`, "m"));
    expect(metrics).toMatch(new RegExp(`^tenancy_rollout_stacks_started_ahead\\{rollout="${id}"\\} 0$`, "m"));

    // A second rollout waits behind the halted one.
    const second = await h.api("POST", "/api/rollouts", { name: "next change", commit });
    expect((second.json as unknown as View).rollout.state).toBe("waiting");

    // The fix lands; a person resumes.
    delete h.fake.options.failures![CANARY];
    const resumed = await h.api("POST", `/api/rollouts/${id}/resume`);
    expect(resumed.status).toBe(200);
    const done = await waitFor("the rollout to succeed", async () => {
      const v = await get(id);
      return v.rollout.state === "succeeded" ? v : undefined;
    }, 90_000);
    const all = done.waves.flatMap((w) => w.stacks);
    expect(all.every((s) => s.state === "succeeded")).toBe(true);
    expect(all.find((s) => s.stack === CANARY)!.attempts).toBe(2);
    for (const s of done.waves[0]!.stacks) expect(s.attempts).toBe(1);
    // Every stack succeeded with an update summary: each has an overhead figure; the canary phase has its time.
    expect(done.timing.canaryFailed).toBe(0);
    expect(done.timing.startedAhead).toBe(0);
    expect(done.timing.overheadPerRunMs?.n).toBe(all.length);
    expect(done.timing.canaryMs).toBeGreaterThan(0);
    // The waiting rollout runs next.
    const secondId = (second.json as unknown as View).rollout.id;
    await waitFor("the second rollout to start", async () => ((await get(secondId)).rollout.state !== "waiting" ? true : undefined), 30_000);
    await h.api("POST", `/api/rollouts/${secondId}/abort`);
    expect((await get(secondId)).rollout.state).toBe("aborted");
  }, 180_000);

  it("answers bad requests with what to fix", async () => {
    expect((await h.api("POST", "/api/rollouts", { name: "x", commit: "not-a-sha" })).json).toEqual({
      error: { message: 'commit "not-a-sha" is not a git commit id (7-40 lower-case hex digits)' },
    });
    expect((await h.api("GET", "/api/rollouts/nope")).status).toBe(400);
    expect((await h.api("GET", "/api/rollouts/00000000-0000-0000-0000-000000000000")).status).toBe(404);
    const list = await h.api("GET", "/api/rollouts");
    expect(list.status).toBe(200);
    const first = ((list.json as { rollouts: { id: string; state: string }[] }).rollouts).find((r) => r.state === "succeeded")!;
    const again = await h.api("POST", `/api/rollouts/${first.id}/pause`);
    expect(again.status).toBe(409);
    expect((again.json as { error: { message: string } }).error.message).toBe(`rollout ${first.id} is succeeded; only a rollout that is running can become paused`);
  });

  it("streams a rollout's progress as server-sent events until it ends", async () => {
    const list = (await h.api("GET", "/api/rollouts")).json as { rollouts: { id: string; state: string }[] };
    const ended = list.rollouts.find((r) => r.state === "succeeded")!;
    const res = await fetch(`${h.baseUrl}/api/rollouts/${ended.id}/events`, { headers: { "x-api-key": (await import("./support/harness.ts")).API_KEY } });
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const text = await res.text();
    expect(text).toMatch(/^event: rollout\ndata: \{/);
    expect(text.trim().endsWith('event: end\ndata: {"state":"succeeded"}')).toBe(true);
  });

  it("tenantctl rollout start --follow waits for the end and exits 0; status shows the waves; without the settings it says what to set", async () => {
    const saved = { url: process.env.TENANCY_URL, key: process.env.TENANCY_API_KEY };
    try {
      delete process.env.TENANCY_URL;
      const bare = bufferIo();
      expect(await main(["rollout", "status"], bare)).toBe(2);
      expect(bare.stderr).toEqual(["tenantctl: this command talks to the control plane: set TENANCY_URL (its base URL) and TENANCY_API_KEY (an API key of the control plane)"]);

      process.env.TENANCY_URL = h.baseUrl;
      process.env.TENANCY_API_KEY = (await import("./support/harness.ts")).API_KEY;
      const commit = h.repo.git("rev-parse", "HEAD").trim();
      const io = bufferIo();
      expect(await main(["rollout", "start", "--name", "from tenantctl", "--commit", commit, "--follow"], io)).toBe(0);
      expect(io.stdout[0]).toMatch(/^rollout [0-9a-f-]{36} "from tenantctl" at [0-9a-f]{12}: running, wave 1 of 4$/);
      expect(io.stdout.join("\n")).toMatch(/: succeeded\n/);
      const id = /^rollout ([0-9a-f-]{36})/.exec(io.stdout[0]!)![1]!;
      const status = bufferIo();
      expect(await main(["rollout", "status", id], status)).toBe(0);
      expect(status.stdout[0]).toBe(`rollout ${id} "from tenantctl" at ${commit.slice(0, 12)}: succeeded`);
      expect(status.stdout.join("\n")).toContain("canary");
      const bad = bufferIo();
      expect(await main(["rollout", "pause", id], bad)).toBe(1);
      expect(bad.stderr).toEqual([`control plane answered 409 to POST /api/rollouts/${id}/pause: rollout ${id} is succeeded; only a rollout that is running can become paused`]);
    } finally {
      for (const [k, v] of [["TENANCY_URL", saved.url], ["TENANCY_API_KEY", saved.key]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  }, 120_000);
});
