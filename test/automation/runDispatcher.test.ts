/**
 * Batched fetching of stack-run jobs (automation/runs/dispatcher.ts) on live PostgreSQL with
 * pg-boss: the free slots' jobs come in one statement, never more in hand than slots, each job
 * settled on its own when its run ends, a throwing handler's job failed for pg-boss to retry,
 * nothing fetched after stop().
 */
import type { PgBoss } from "pg-boss";
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from "vitest";
import { createLogger } from "../../automation/log.ts";
import { startBoss } from "../../automation/queue.ts";
import { JobDispatcher } from "../../automation/runs/dispatcher.ts";
import { stackRunQueue } from "../../automation/runs/regions.ts";
import { waitFor } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

const QUEUE = stackRunQueue("us-east-1");
let server: TestPostgres;
let boss: PgBoss;

beforeAll(async () => {
  server = await startTestPostgres();
}, 180_000);
afterAll(async () => {
  await server?.stop();
});
beforeEach(async () => {
  boss = await startBoss(await server.newDatabase(), { runExpireHours: 3, regions: ["us-east-1"] }, createLogger("silent"));
});
afterEach(async () => {
  await boss?.stop({ graceful: false, close: true });
});

/** A handler whose runs end when the test says so, counting how many run at once. */
function gatedHandler(fail: ReadonlySet<string> = new Set()) {
  const gates = new Map<string, () => void>();
  const handled: string[] = [];
  let running = 0;
  let peak = 0;
  return {
    handled,
    gates,
    get peak() {
      return peak;
    },
    handle: async (_jobId: string, data: { runId: string }) => {
      handled.push(data.runId);
      running++;
      peak = Math.max(peak, running);
      try {
        await new Promise<void>((r) => gates.set(data.runId, r));
        if (fail.has(data.runId)) throw new Error(`run ${data.runId} could not start`);
      } finally {
        running--;
      }
    },
    release(runId: string) {
      const open = gates.get(runId);
      if (!open) throw new Error(`run ${runId} is not in hand`);
      gates.delete(runId);
      open();
    },
  };
}

async function jobs(): Promise<{ runId: string; state: string; startedOn: string | null; output: { message?: string } | null }[]> {
  const { rows } = await boss.getDb().executeSql(
    "SELECT data->>'runId' AS run_id, state, started_on::text AS started_on, output FROM pgboss.job WHERE name = $1 ORDER BY data->>'runId'",
    [QUEUE],
  );
  return (rows as { run_id: string; state: string; started_on: string | null; output: { message?: string } | null }[]).map((r) => ({ runId: r.run_id, state: r.state, startedOn: r.started_on, output: r.output }));
}

const errors: string[] = [];
beforeEach(() => {
  errors.length = 0;
});
const dispatcher = (slots: number, handle: (jobId: string, data: { runId: string }) => Promise<void>) =>
  new JobDispatcher({ boss, queue: QUEUE, slots, pollingIntervalSeconds: 0.5, handle, onError: (err, what) => void errors.push(`${what}: ${err.message}`) });

it("fetches the free slots' jobs in one statement, never holds more than its slots, and completes each job when its run ends", { timeout: 60_000 }, async () => {
  const ids = Array.from({ length: 10 }, (_, i) => `run-${String(i).padStart(2, "0")}`);
  for (const runId of ids) await boss.send(QUEUE, { runId });
  const h = gatedHandler();
  const d = dispatcher(3, h.handle);
  d.start();
  try {
    await waitFor("three runs in hand", async () => h.gates.size === 3 || undefined, 20_000);
    // One statement fetched all three: pg-boss stamps a fetch's jobs with that statement's time.
    expect(d.stats).toEqual({ fetches: 1, jobs: 3, largestBatch: 3 });
    const active = (await jobs()).filter((j) => j.state === "active");
    expect(active.map((j) => j.runId)).toEqual(h.handled.slice().sort());
    expect(new Set(active.map((j) => j.startedOn)).size).toBe(1);
    // Every slot busy: no fetch, however long the queue waits.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(d.stats.fetches).toBe(1);
    expect(d.inHand).toBe(3);
    // A run ending frees its slot, which takes the next job at once; its job alone is completed.
    const first = h.handled[0]!;
    h.release(first);
    await waitFor("a fourth run in hand", async () => h.handled.length === 4 || undefined, 20_000);
    await waitFor("the first job completed", async () => (await jobs()).find((j) => j.runId === first)?.state === "completed" || undefined, 20_000);
    expect((await jobs()).filter((j) => j.state === "completed").map((j) => j.runId)).toEqual([first]);
    // The rest, releasing whatever is in hand until every job ran.
    while (h.handled.length < ids.length || h.gates.size > 0) {
      await waitFor("a run in hand", async () => h.gates.size > 0 || undefined, 20_000);
      h.release([...h.gates.keys()][0]!);
    }
    await d.stop();
    await d.drain();
    expect(h.peak).toBe(3);
    expect(h.handled.slice().sort()).toEqual(ids);
    expect((await jobs()).map((j) => [j.runId, j.state])).toEqual(ids.map((id) => [id, "completed"]));
    expect(errors).toEqual([]);
  } finally {
    for (const open of h.gates.values()) open();
    await d.stop();
    await d.drain();
  }
});

it("fails the job of a handler that throws (pg-boss retries it) and frees its slot", { timeout: 60_000 }, async () => {
  await boss.send(QUEUE, { runId: "bad" });
  await boss.send(QUEUE, { runId: "good" });
  const h = gatedHandler(new Set(["bad"]));
  const d = dispatcher(1, h.handle);
  d.start();
  try {
    await waitFor("the first run in hand", async () => h.gates.size === 1 || undefined, 20_000);
    const firstIn = h.handled[0]!;
    h.release(firstIn);
    await waitFor("the second run in hand", async () => h.handled.length === 2 || undefined, 20_000);
    h.release(h.handled[1]!);
    await waitFor("both jobs settled", async () => (await jobs()).every((j) => j.state !== "active" && j.state !== "created") || undefined, 20_000);
    const byRun = Object.fromEntries((await jobs()).map((j) => [j.runId, j]));
    // The stack-run queue retries (retryLimit 3): the failed job waits for its retry with the error.
    expect(byRun.bad!.state).toBe("retry");
    expect(byRun.bad!.output?.message).toBe("run bad could not start");
    expect(byRun.good!.state).toBe("completed");
    expect(h.peak).toBe(1);
  } finally {
    for (const open of h.gates.values()) open();
    await d.stop();
    await d.drain();
  }
});

it("fetches nothing after stop(); drain() waits for the jobs in hand and settles them", { timeout: 60_000 }, async () => {
  for (const runId of ["a", "b", "c", "d"]) await boss.send(QUEUE, { runId });
  const h = gatedHandler();
  const d = dispatcher(2, h.handle);
  d.start();
  await waitFor("two runs in hand", async () => h.gates.size === 2 || undefined, 20_000);
  await d.stop();
  let drained = false;
  const draining = d.drain().then(() => (drained = true));
  await new Promise((r) => setTimeout(r, 300));
  expect(drained).toBe(false);
  for (const id of [...h.gates.keys()]) h.release(id);
  await draining;
  await new Promise((r) => setTimeout(r, 1_200));
  expect(h.handled.length).toBe(2);
  const states = await jobs();
  expect(states.filter((j) => j.state === "completed").map((j) => j.runId)).toEqual(h.handled.slice().sort());
  expect(states.filter((j) => j.state === "created").length).toBe(2);
});
