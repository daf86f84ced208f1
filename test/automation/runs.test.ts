import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../automation/log.ts";
import { DeploymentsRunner, type RunContext } from "../../automation/runs/runner.ts";
import { IMMEDIATE_TAKEOVERS, MAX_TAKEOVER_DELAY_SECONDS, runTakeoverDelaySeconds } from "../../automation/runs/store.ts";
import { commandLog, installFakePulumiBinary, stackLocks, stackState } from "./support/fakePulumi.ts";
import { count, startHarness, waitFor, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { subscriptionEvent } from "./support/stripe.ts";
import { childBundle } from "../support/childBundle.ts";

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startTestPostgres();
});
afterAll(async () => {
  await pg?.stop();
});

const now = () => Math.floor(Date.now() / 1000);
let seq = 0;
/** A new pooled tenant; region eu-west-1 has one prod cell, so its stack is known. */
function createEvent(tenant: string, region = "eu-west-1") {
  seq++;
  return subscriptionEvent(`evt_run_${tenant}_${seq}`, "customer.subscription.created", now() - 60, {
    id: `sub_run_${tenant}`,
    status: "active",
    price: "price_standard_monthly",
    metadata: { tenant_id: tenant, region },
  });
}
const EUW1 = "shared-prod-euw1-01";

interface RunRow {
  id: string;
  stack: string;
  state: string;
  attempts: number;
  attempt_log: { attempt: number; outcome?: string; message?: string }[];
  started_at: Date | null;
  finished_at: Date | null;
  output: { concurrentUpdateRetries?: number } | null;
  error: string | null;
  job_id: string | null;
}
async function runs(h: Harness, where = "true", values: unknown[] = []): Promise<RunRow[]> {
  return (await h.cp.db.pool.query<RunRow>(`SELECT * FROM runs WHERE ${where} ORDER BY created_at`, values)).rows;
}
async function runOf(h: Harness, tenant: string): Promise<RunRow> {
  return waitFor(`a run for ${tenant}`, async () => {
    const r = await runs(h, "id IN (SELECT r.id FROM runs r, changes c WHERE c.id = ANY(r.change_ids) AND c.tenant_id = $1)", [tenant]);
    return r[0];
  });
}
const finished = (h: Harness, id: string) =>
  waitFor(`run ${id} to finish`, async () => {
    const [r] = await runs(h, "id = $1", [id]);
    return r && (r.state === "succeeded" || r.state === "failed") ? r : undefined;
  }, 30_000);

describe("stack runs", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ pg, fake: { eventDelayMs: 120, conflicts: { "shared-prod-use1-02": 2 } } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("runs two changes of one stack one after the other, never overlapping", async () => {
    await h.post(createEvent("serial-one"));
    const first = await runOf(h, "serial-one");
    await waitFor("the first run to be running", async () => (await runs(h, "id = $1 AND state = 'running'", [first.id]))[0]);
    await h.post(createEvent("serial-two"));
    const second = await runOf(h, "serial-two");
    expect(second.id).not.toBe(first.id);
    expect(second.stack).toBe(EUW1);
    // While the first runs, the second waits queued without a job.
    const waiting = (await runs(h, "id = $1", [second.id]))[0]!;
    if ((await runs(h, "id = $1", [first.id]))[0]!.state === "running") {
      expect(waiting.state).toBe("queued");
      expect(waiting.job_id).toBeNull();
    }
    const a = await finished(h, first.id);
    const b = await finished(h, second.id);
    expect([a.state, b.state]).toEqual(["succeeded", "succeeded"]);
    expect(b.started_at!.getTime()).toBeGreaterThanOrEqual(a.finished_at!.getTime());
    expect(a.output!.concurrentUpdateRetries).toBe(0);
    expect(b.output!.concurrentUpdateRetries).toBe(0);
    // The second update saw both tenants: it applied the head that includes both commits.
    expect(stackState(h.stateDir, EUW1)!.updates.at(-1)!.tenants).toEqual(expect.arrayContaining(["serial-one", "serial-two"]));
  });

  it("runs different stacks in parallel", async () => {
    await h.post(createEvent("parallel-eu", "eu-west-1"));
    await h.post(subscriptionEvent("evt_parallel_dev", "customer.subscription.created", now() - 60, {
      id: "sub_parallel_dev",
      status: "active",
      price: "price_free",
      metadata: { tenant_id: "parallel-st", region: "us-east-1", environments: "staging" },
    }));
    const eu = await runOf(h, "parallel-eu");
    const st = await runOf(h, "parallel-st");
    expect(st.stack).toBe("shared-staging-use1-01");
    const [x, y] = [await finished(h, eu.id), await finished(h, st.id)];
    expect(x.state).toBe("succeeded");
    expect(y.state).toBe("succeeded");
    // Overlap: each started before the other finished.
    expect(x.started_at!.getTime()).toBeLessThan(y.finished_at!.getTime());
    expect(y.started_at!.getTime()).toBeLessThan(x.finished_at!.getTime());
  });

  it("retries `up` with backoff on ConcurrentUpdateError and then succeeds", async () => {
    // The CLI double answers the first two `up`s of shared-prod-use1-02 with the backend's 409.
    const res = await h.api("POST", "/api/stacks/shared-prod-use1-02/runs");
    expect(res.status).toBe(202);
    const run = await finished(h, (res.json.run as { id: string }).id);
    expect(run.state).toBe("succeeded");
    expect(run.output!.concurrentUpdateRetries).toBe(2);
    expect(commandLog(h.stateDir).filter((c) => c.args[0] === "up" && c.args.includes("shared-prod-use1-02"))).toHaveLength(3);
  });

  it("streams a run's engine events over server-sent events, live, and ends with its state", async () => {
    await h.post(createEvent("sse-co"));
    const run = await runOf(h, "sse-co");
    const res = await fetch(`${h.baseUrl}/api/runs/${run.id}/events`, { headers: { "x-api-key": "tcp_test_key_for_the_control_plane_tests" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const text = await res.text();
    const frames = text.split("\n\n").filter((f) => f.trim() !== "" && !f.startsWith(":"));
    const engine = frames.filter((f) => f.includes("event: engine"));
    const stored = await count(h, "SELECT 1 FROM run_events WHERE run_id = $1", [run.id]);
    expect(engine).toHaveLength(stored);
    expect(engine[0]).toContain('"preludeEvent"');
    expect(frames.at(-1)).toMatch(/^event: end\ndata: \{"state":"succeeded","error":null\}$/);
    // Resuming from an id sends only what follows it.
    const firstId = /^id: (\d+)/.exec(engine[0]!)![1]!;
    const resumed = await (await fetch(`${h.baseUrl}/api/runs/${run.id}/events`, { headers: { "x-api-key": "tcp_test_key_for_the_control_plane_tests", "last-event-id": firstId } })).text();
    expect(resumed.split("\n\n").filter((f) => f.includes("event: engine"))).toHaveLength(stored - 1);
  });
});

describe("cancellation", () => {
  it("cancels a running update through stack.cancel() and records the run as failed (cancelled)", async () => {
    const h = await startHarness({ pg, fake: { hangAfterEvents: 1 } });
    try {
      await h.post(createEvent("cancel-co"));
      const run = await runOf(h, "cancel-co");
      await waitFor("the update to be in progress", async () => (await count(h, "SELECT 1 FROM run_events WHERE run_id = $1", [run.id])) >= 1);
      const res = await h.api("POST", `/api/runs/${run.id}/cancel`);
      expect(res.status).toBe(202);
      const done = await finished(h, run.id);
      expect(done.state).toBe("failed");
      expect(done.error).toMatch(/^cancelled: cancelled by request/);
      expect(commandLog(h.stateDir).some((c) => c.args[0] === "cancel" && c.args.includes(EUW1))).toBe(true);
      expect(stackLocks(h.stateDir, EUW1)).toEqual([]);
    } finally {
      await h.close();
    }
  });
});

describe("a worker killed mid-run", () => {
  it("is taken over by another worker after its heartbeats stop, and the run completes", async () => {
    // No run workers in this process: the child process takes the job.
    const h = await startHarness({ pg, start: { reconciler: true, runs: false } });
    const child = spawn(process.execPath, [await childBundle(resolve(import.meta.dirname, "support/runWorkerChild.ts"))], {
      env: {
        ...process.env,
        CHILD_INPUT: JSON.stringify({
          config: { databaseUrl: h.config.databaseUrl, repoDir: h.config.repoDir, dataDir: h.config.dataDir, heartbeatSeconds: 0.2, heartbeatTimeoutSeconds: 1.5 },
          fake: { stateDir: h.stateDir, hangAfterEvents: 2 },
        }),
      },
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      const childWorker = await new Promise<string>((ready, fail) => {
        child.stdout.on("data", (b: Buffer) => {
          const m = /ready (\S+)/.exec(b.toString());
          if (m) ready(m[1]!);
        });
        child.on("exit", (code) => fail(new Error(`worker child exited early (${code})`)));
      });
      await h.post(createEvent("crash-co"));
      const run = await runOf(h, "crash-co");
      await waitFor("the child to be mid-update", async () => {
        const [r] = await runs(h, "id = $1 AND state = 'running'", [run.id]);
        return r && (await count(h, "SELECT 1 FROM run_events WHERE run_id = $1", [run.id])) >= 2;
      }, 30_000);
      expect((await h.cp.db.pool.query("SELECT worker FROM runs WHERE id = $1", [run.id])).rows[0].worker).toBe(childWorker);
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
      // The killed CLI left the stack locked (its own lock file); the run still says running.
      expect(stackLocks(h.stateDir, EUW1)).toHaveLength(1);
      expect((await runs(h, "id = $1", [run.id]))[0]!.state).toBe("running");

      await h.cp.runWorker.start();
      const done = await finished(h, run.id);
      expect(done.state).toBe("succeeded");
      expect(done.attempts).toBe(2);
      expect(done.attempt_log.map((a) => a.outcome)).toEqual(["lost", "succeeded"]);
      // Nothing lost: the first attempt's events are kept, the second attempt's are complete.
      const perAttempt = (await h.cp.db.pool.query<{ attempt: number; n: string }>(
        "SELECT attempt, count(*) AS n FROM run_events WHERE run_id = $1 GROUP BY attempt ORDER BY attempt", [run.id],
      )).rows.map((r) => [r.attempt, Number(r.n)]);
      expect(perAttempt[0]).toEqual([1, 2]);
      expect(perAttempt[1]![0]).toBe(2);
      expect(perAttempt[1]![1]).toBeGreaterThan(2);
      // The takeover cancelled the dead update (releasing its lock) before running up again.
      const log = commandLog(h.stateDir).filter((c) => c.args.includes(EUW1));
      const cancelAt = log.findIndex((c) => c.args[0] === "cancel");
      expect(cancelAt).toBeGreaterThan(-1);
      expect(log.slice(cancelAt).some((c) => c.args[0] === "up" && c.pid === process.pid)).toBe(true);
      expect(stackState(h.stateDir, EUW1)!.updates.at(-1)!.tenants).toContain("crash-co");
      expect(stackLocks(h.stateDir, EUW1)).toEqual([]);
    } finally {
      child.kill("SIGKILL");
      await h.close();
    }
  });
});

describe("a run whose worker keeps dying", () => {
  it("the takeover waits once IMMEDIATE_TAKEOVERS attempts are lost (doubling, capped), and is never failed for it", () => {
    expect([0, 1, 4].map((lost) => runTakeoverDelaySeconds(lost, 90))).toEqual([0, 0, 0]);
    expect([5, 6, 7].map((lost) => runTakeoverDelaySeconds(lost, 90))).toEqual([90, 180, 360]);
    expect(runTakeoverDelaySeconds(30, 90)).toBe(MAX_TAKEOVER_DELAY_SECONDS);
    expect(IMMEDIATE_TAKEOVERS).toBe(5);
  });

  it("is handed over at once up to the fifth loss, then its job is due after the delay; it stays running, not failed", async () => {
    const h = await startHarness({ pg, start: { reconciler: false, runs: false }, config: { heartbeatTimeoutSeconds: 1.5 } });
    try {
      const [queued] = await h.cp.runs.enqueueAll([EUW1], { reason: "takeover backoff test" });
      const id = queued!.runId;
      const jobOf = async () =>
        (await h.cp.db.pool.query<{ queue: string; due_in: number }>(
          "SELECT j.name AS queue, extract(epoch FROM j.start_after - now())::float8 AS due_in FROM runs r JOIN pgboss.job j ON j.id = r.job_id WHERE r.id = $1",
          [id],
        )).rows[0]!;
      const dieAfter = async (attempts: number) => {
        await h.cp.db.pool.query("UPDATE runs SET state = 'running', attempts = $2, worker = 'dead-worker', heartbeat_at = now() - interval '1 minute', handover_due_at = NULL WHERE id = $1", [id, attempts]);
        return h.cp.runs.reapStale();
      };

      // Fourth loss: handed over at once (negative control of the delay).
      expect(await dieAfter(4)).toEqual([{ id, lostAttempts: 4, delaySeconds: 0 }]);
      expect((await jobOf()).due_in).toBeLessThan(1);
      // Handed over, its job not fetched yet past the timeout (a loaded host): left to wait, not
      // replaced; once fetched (active) and still unclaimed, handed over again.
      await h.cp.db.pool.query("UPDATE runs SET heartbeat_at = now() - interval '1 minute', handover_due_at = now() - interval '1 minute' WHERE id = $1", [id]);
      expect(await h.cp.runs.reapStale()).toEqual([]);
      await h.cp.db.pool.query("UPDATE pgboss.job SET state = 'active', started_on = now() WHERE id = (SELECT job_id FROM runs WHERE id = $1)", [id]);
      expect(await h.cp.runs.reapStale()).toEqual([{ id, lostAttempts: 4, delaySeconds: 0 }]);
      // Fifth and sixth: the job waits 1.5 s, then 3 s; the run stays running with no worker.
      expect(await dieAfter(5)).toEqual([{ id, lostAttempts: 5, delaySeconds: 1.5 }]);
      const job = await jobOf();
      expect(job.queue).toBe("stack-run-eu-west-1");
      expect(job.due_in).toBeGreaterThan(1);
      expect(job.due_in).toBeLessThanOrEqual(1.5);
      // Not reaped again while its job is not yet due. The record says when it is due; its
      // heartbeat stays the dead worker's last one, never a time in the future.
      expect(await h.cp.runs.reapStale()).toEqual([]);
      const delayed = (await h.cp.runs.get(id))!;
      expect(Date.parse(delayed.heartbeatAt!)).toBeLessThan(Date.now() - 30_000);
      expect(Date.parse(delayed.handoverDueAt!) - Date.now()).toBeGreaterThan(500);
      expect(Date.parse(delayed.handoverDueAt!) - Date.now()).toBeLessThanOrEqual(1_500);
      expect(await dieAfter(6)).toEqual([{ id, lostAttempts: 6, delaySeconds: 3 }]);
      const [after] = await runs(h, "id = $1", [id]);
      expect({ state: after!.state, error: after!.error, worker: (after as unknown as { worker: string | null }).worker }).toEqual({ state: "running", error: null, worker: null });
      // Claimed by a worker: the handover is over, the heartbeat is the new worker's.
      await h.cp.db.pool.query("UPDATE pgboss.job SET start_after = now() WHERE id = (SELECT job_id FROM runs WHERE id = $1)", [id]);
      const job6 = (await h.cp.db.pool.query<{ id: string }>("SELECT job_id AS id FROM runs WHERE id = $1", [id])).rows[0]!.id;
      const claimed = await h.cp.runs.start(id, job6, "live-worker", "local", ["eu-west-1"]);
      expect(claimed.kind).toBe("start");
      const live = (await h.cp.runs.get(id))!;
      expect(live.handoverDueAt).toBeNull();
      expect(Math.abs(Date.parse(live.heartbeatAt!) - Date.now())).toBeLessThan(5_000);
    } finally {
      await h.close();
    }
  });
});

describe("a queued run whose job was fetched by a process that died before claiming it", () => {
  it("gets a new job once the fetch is older than the heartbeat timeout; the old job can no longer start it", async () => {
    const h = await startHarness({ pg, start: { reconciler: false, runs: false }, config: { heartbeatTimeoutSeconds: 1.5 } });
    try {
      const [queued] = await h.cp.runs.enqueueAll([EUW1], { reason: "unclaimed job test" });
      const id = queued!.runId;
      const jobOf = async () => (await h.cp.db.pool.query<{ job_id: string }>("SELECT job_id FROM runs WHERE id = $1", [id])).rows[0]!.job_id;
      const oldJob = await jobOf();
      // Not fetched: left alone however old (a new job would wait the same).
      await h.cp.db.pool.query("UPDATE pgboss.job SET created_on = now() - interval '1 hour' WHERE id = $1", [oldJob]);
      expect(await h.cp.runs.reapStale()).toEqual([]);
      // Fetched just now (a live worker is about to claim it): left alone (negative control).
      await h.cp.db.pool.query("UPDATE pgboss.job SET state = 'active', started_on = now() WHERE id = $1", [oldJob]);
      expect(await h.cp.runs.reapStale()).toEqual([]);
      expect(await jobOf()).toBe(oldJob);
      // Fetched a minute ago and still unclaimed: the fetcher died. A new job, the old one cancelled.
      await h.cp.db.pool.query("UPDATE pgboss.job SET started_on = now() - interval '1 minute' WHERE id = $1", [oldJob]);
      expect(await h.cp.runs.reapStale()).toEqual([{ id, lostAttempts: 0, delaySeconds: 0, unclaimedJob: true }]);
      const newJob = await jobOf();
      expect(newJob).not.toBe(oldJob);
      const states = await h.cp.db.pool.query<{ id: string; state: string }>("SELECT id, state FROM pgboss.job WHERE id = ANY($1::uuid[])", [[oldJob, newJob]]);
      expect(Object.fromEntries(states.rows.map((r) => [r.id, r.state]))).toEqual({ [oldJob]: "cancelled", [newJob]: "created" });
      // A slow fetcher that was alive after all cannot start it through the old job; the new one does.
      expect(await h.cp.runs.start(id, oldJob, "slow-worker", "local", ["eu-west-1"])).toEqual({ kind: "skip", reason: `job ${oldJob} no longer owns run ${id}` });
      expect((await h.cp.runs.start(id, newJob, "live-worker", "local", ["eu-west-1"])).kind).toBe("start");
      // Claimed: nothing left to resend.
      expect(await h.cp.runs.reapStale()).toEqual([]);
    } finally {
      await h.close();
    }
  });
});

describe("CLI variants", () => {
  it("receives engine events through the --event-log file when the CLI is 3.205 or older", async () => {
    const h = await startHarness({ pg, fake: { version: "3.205.0" } });
    try {
      await h.post(createEvent("filelog-co"));
      const run = await finished(h, (await runOf(h, "filelog-co")).id);
      expect(run.state).toBe("succeeded");
      const up = commandLog(h.stateDir).find((c) => c.args[0] === "up")!;
      const log = up.args[up.args.indexOf("--event-log") + 1]!;
      expect(log.startsWith("tcp://")).toBe(false);
      const tenants = stackState(h.stateDir, EUW1)!.updates.at(-1)!.tenants.length;
      expect(await count(h, "SELECT 1 FROM run_events WHERE run_id = $1", [run.id])).toBe(3 + 2 * tenants);
    } finally {
      await h.close();
    }
  });

  it("uses the CLI found in TENANCY_PULUMI_ROOT (PulumiCommand.get, one process per command)", async () => {
    const root = mkdtempSync(join(tmpdir(), "tenancy-pulumi-root-"));
    const stateDir = join(root, "state");
    const fake = installFakePulumiBinary(root, { stateDir });
    const h = await startHarness({ pg, config: { pulumiRoot: root }, deps: { pulumiCommand: undefined } });
    try {
      const res = await h.api("POST", `/api/stacks/${EUW1}/runs`);
      const run = await finished(h, (res.json.run as { id: string }).id);
      expect(run.error).toBeNull();
      expect(run.state).toBe("succeeded");
      const log = commandLog(stateDir);
      expect(log[0]!.args).toEqual(["version"]);
      expect(log.some((c) => c.args[0] === "up" && c.pid !== process.pid)).toBe(true);
      expect(await count(h, "SELECT 1 FROM run_events WHERE run_id = $1", [run.id])).toBeGreaterThan(2);
    } finally {
      await h.close();
      fake.dispose();
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("asks Pulumi Deployments (RemoteWorkspace) to update the stack at the commit", async () => {
    const root = mkdtempSync(join(tmpdir(), "tenancy-pulumi-remote-"));
    const stateDir = join(root, "state");
    const fake = installFakePulumiBinary(root, { stateDir });
    const path = process.env.PATH;
    process.env.PATH = `${join(root, "bin")}${delimiter}${path}`;
    // A TMPDIR of this test's own: RemoteWorkspace makes an automation-* directory there per run,
    // which the runner must remove (the SDK never does).
    const tmp = process.env.TMPDIR;
    process.env.TMPDIR = join(root, "tmp");
    mkdirSync(process.env.TMPDIR);
    try {
      const runner = new DeploymentsRunner({ retries: 0, baseMs: 10, settings: { org: "acme-platform", project: "saas-tenancy", repoUrl: "https://github.com/example/fleet.git" } });
      const events: unknown[] = [];
      const ctx: RunContext = {
        runId: "00000000-0000-0000-0000-000000000001", stack: EUW1, workDir: root, commit: "0123456789abcdef0123456789abcdef01234567", attempt: 1,
        recovering: false, signal: new AbortController().signal, onEvent: (e) => events.push(e), onOutput: () => undefined, log: createLogger("silent"),
      };
      await runner.up(ctx);
      const up = commandLog(stateDir).find((c) => c.args[0] === "up")!;
      expect(up.args).toEqual(expect.arrayContaining([
        "--remote", "https://github.com/example/fleet.git", "--remote-git-commit", ctx.commit, "--stack", `acme-platform/saas-tenancy/${EUW1}`,
      ]));
      expect(events.length).toBeGreaterThan(0);
      await expect(runner.destroy(ctx, { unprotect: true })).rejects.toThrow(/TENANCY_RUNNER=local/);
      // A failed remote operation's directory goes too.
      await expect(runner.destroy(ctx, { unprotect: false })).rejects.toThrow(/is protected/);
      expect(commandLog(stateDir).filter((c) => c.args[0] === "destroy")).toHaveLength(1);
      expect(readdirSync(join(root, "tmp"))).toEqual([]);
    } finally {
      if (tmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = tmp;
      process.env.PATH = path;
      fake.dispose();
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("destroy runs (for offboarding workflows)", () => {
  it("refuses to destroy protected resources unless the run lifts protection first", async () => {
    const h = await startHarness({ pg });
    try {
      const up = (await h.cp.runs.enqueueAll(["dedicated-acme-prod"], { reason: "test: create" }))[0]!;
      expect((await finished(h, up.runId)).state).toBe("succeeded");
      const plain = (await h.cp.runs.enqueueAll(["dedicated-acme-prod"], { reason: "test: destroy", operation: "destroy" }))[0]!;
      const refused = await finished(h, plain.runId);
      expect(refused.state).toBe("failed");
      expect(refused.error).toMatch(/is protected/);
      const released = (await h.cp.runs.enqueueAll(["dedicated-acme-prod"], {
        reason: "test: offboarding destroy", operation: "destroy", options: { unprotect: true, release: { backupId: "b-1" } },
      }))[0]!;
      expect((await finished(h, released.runId)).state).toBe("succeeded");
      const log = commandLog(h.stateDir).filter((c) => c.args.includes("dedicated-acme-prod"));
      const unprotect = log.findIndex((c) => c.args[0] === "state" && c.args[1] === "unprotect");
      expect(log[unprotect]!.args).toEqual(expect.arrayContaining(["--all", "--yes"]));
      expect(log.slice(unprotect).some((c) => c.args[0] === "destroy")).toBe(true);
      expect(stackState(h.stateDir, "dedicated-acme-prod")!.destroyed).toBe(true);
    } finally {
      await h.close();
    }
  });
});
