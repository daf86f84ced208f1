/**
 * A worker killed with SIGKILL in the middle of an update leaves its Pulumi CLI process running
 * (it is not killed with its parent). The attempt that takes the run over ends that process
 * before it touches the stack (automation/runs/cliProcess.ts), so two updates of one stack never
 * run at once. Both workers run the executable CLI test double (a process per command, as the
 * real CLI): the one that dies in a child process, the takeover in this one. The double records
 * every update that starts while another update of its stack runs (overlappingUpdates). Nothing
 * is deployed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { cliState, type CliProcess, type LeftoverCliOptions } from "../../automation/runs/cliProcess.ts";
import type { AttemptRecord } from "../../automation/runs/store.ts";
import { commandLog, installFakePulumiBinary, overlappingUpdates, stackLocks, stackState, type FakePulumiOptions } from "./support/fakePulumi.ts";
import { startHarness, waitFor, type Harness } from "./support/harness.ts";
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

const EUW1 = "shared-prod-euw1-01";
/** The event-log channel (CLI 3.205): an orphaned CLI finishes without the gRPC server of its dead parent. */
const CLI_VERSION = "3.205.0";

interface Worker {
  child: ChildProcess;
  id: string;
  exited: Promise<unknown>;
  /** Its log (pino JSON lines at info), for a failure's message. */
  output(): string;
}

/** A run worker process driving the executable double installed under `root`. */
async function startWorker(h: Harness, root: string): Promise<Worker> {
  const child = spawn(process.execPath, [await childBundle(resolve(import.meta.dirname, "support/runWorkerChild.ts"))], {
    env: {
      ...process.env,
      TEST_LOG_LEVEL: "info",
      CHILD_INPUT: JSON.stringify({
        config: { databaseUrl: h.config.databaseUrl, repoDir: h.config.repoDir, dataDir: h.config.dataDir, heartbeatSeconds: 0.2, heartbeatTimeoutSeconds: 1.5, pulumiRoot: root },
      }),
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise((r) => child.once("exit", r));
  let out = "";
  const id = await new Promise<string>((ready, fail) => {
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
      const m = /ready (\S+)/.exec(out);
      if (m) ready(m[1]!);
    });
    child.once("exit", (code) => fail(new Error(`worker child exited early (${code})`)));
  });
  return { child, id, exited, output: () => out };
}

async function kill9(w: Worker): Promise<void> {
  w.child.kill("SIGKILL");
  await w.exited;
}

/**
 * A harness whose own run worker (started by the test: the takeover) drives the executable double
 * in `<dir>/cli-b`, and a second installation `<dir>/cli-a` on the same backend (state directory)
 * for the worker process that dies, with `dying` options.
 */
async function setUp(dying: (gate: string) => Partial<FakePulumiOptions>, leftoverCli: LeftoverCliOptions = { waitMs: 60_000, interruptMs: 20_000 }) {
  const dir = mkdtempSync(join(tmpdir(), "tenancy-leftover-"));
  const stateDir = join(dir, "pulumi-state");
  const gate = join(dir, "release-the-orphan");
  const a = installFakePulumiBinary(join(dir, "cli-a"), { stateDir, version: CLI_VERSION, ...dying(gate) });
  const b = installFakePulumiBinary(join(dir, "cli-b"), { stateDir, version: CLI_VERSION });
  const h = await startHarness({
    pg, start: { reconciler: true, runs: false }, config: { pulumiRoot: join(dir, "cli-b") }, deps: { pulumiCommand: undefined, leftoverCli },
  });
  return {
    h, stateDir, cliA: join(dir, "cli-a"), gate,
    async close() {
      await h.close();
      a.dispose();
      b.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function runRow(h: Harness): Promise<{ id: string; state: string; attempts: number; worker: string | null; attempt_log: AttemptRecord[] }> {
  return (await h.cp.db.pool.query("SELECT id, state, attempts, worker, attempt_log FROM runs ORDER BY created_at LIMIT 1")).rows[0];
}

/** Starts a run of EUW1 on a worker of CLI `root` and waits until its `up` process is recorded and holds the stack's lock. */
async function upRecorded(h: Harness, stateDir: string, root: string, tenant: string): Promise<{ worker: Worker; cli: CliProcess; runId: string }> {
  const worker = await startWorker(h, root);
  const event = subscriptionEvent(`evt_leftover_${tenant}`, "customer.subscription.created", Math.floor(Date.now() / 1000) - 60, {
    id: `sub_leftover_${tenant}`, status: "active", price: "price_standard_monthly", metadata: { tenant_id: tenant, region: "eu-west-1" },
  });
  expect((await h.post(event)).status).toBe(200);
  const cli = await waitFor("the attempt's `up` CLI process to be recorded and to hold the lock", async () => {
    const r = await runRow(h);
    const c = r?.attempt_log[0]?.cli;
    return c?.command === "up" && stackLocks(stateDir, EUW1).length === 1 ? c : undefined;
  }, 30_000);
  return { worker, cli, runId: (await runRow(h)).id };
}

const finished = (h: Harness) => waitFor("the run to finish", async () => {
  const r = await runRow(h);
  return r.state === "succeeded" || r.state === "failed" ? r : undefined;
}, 60_000);

const runUpdates = (stateDir: string, runId: string) => stackState(stateDir, EUW1)?.updates.filter((u) => u.message?.includes(`run ${runId} `)) ?? [];

describe("a worker killed with SIGKILL mid-update, its Pulumi CLI still running", () => {
  it("the takeover waits for that CLI before touching the stack; the run's update is applied once, never two at a time", { timeout: 120_000 }, async () => {
    const { h, stateDir, cliA, gate, close } = await setUp((gate) => ({ holdUntil: { [EUW1]: gate } }));
    const workers: Worker[] = [];
    onTestFailed(() => void process.stderr.write(workers.map((w) => `worker ${w.id}:\n${w.output().slice(-6000)}`).join("\n")));
    try {
      const { worker: a, cli: orphan, runId } = await upRecorded(h, stateDir, cliA, "leftover-wait");
      workers.push(a);
      expect(orphan.pid).not.toBe(a.child.pid);
      expect(orphan.pgid).toBe(orphan.pid);
      await kill9(a);
      const commandsBefore = commandLog(stateDir).length;
      // The CLI outlived its worker and still holds the stack's lock.
      expect(cliState(orphan)).toBe("running");
      expect(stackLocks(stateDir, EUW1).map((l) => l.pid)).toEqual([orphan.pid]);

      await h.cp.runWorker.start();
      await waitFor("the takeover to claim the run", async () => {
        const r = await runRow(h);
        return r.attempts === 2 && r.worker === h.cp.runWorker.workerId;
      }, 30_000);
      // Claimed, waiting: no command of the takeover has touched the stack (no `pulumi cancel`
      // deleting the live lock, no second `up`) while the dead attempt's CLI runs.
      await new Promise((r) => setTimeout(r, 1500));
      expect(cliState(orphan)).toBe("running");
      expect(commandLog(stateDir).slice(commandsBefore).filter((c) => c.args.includes(EUW1))).toEqual([]);

      writeFileSync(gate, "");
      const done = await finished(h);
      expect(done.state).toBe("succeeded");
      expect(done.attempt_log.map((x) => x.outcome)).toEqual(["lost", "succeeded"]);
      // The orphan's update was this run's (same message): recorded by the takeover, not applied again.
      expect(runUpdates(stateDir, runId)).toHaveLength(1);
      expect(overlappingUpdates(stateDir)).toEqual([]);
      expect(stackLocks(stateDir, EUW1)).toEqual([]);
      expect(cliState(orphan)).toBe("gone");
    } finally {
      writeFileSync(gate, "");
      for (const w of workers) await kill9(w);
      await close();
    }
  });

  it("a CLI that does not end is interrupted (SIGINT to its process group) after the wait; the takeover then applies the update once", { timeout: 120_000 }, async () => {
    // The dead attempt's CLI stops after two events until interrupted; the takeover's does not.
    const { h, stateDir, cliA, close } = await setUp(() => ({ hangAfterEvents: 2 }), { waitMs: 500, interruptMs: 20_000 });
    const workers: Worker[] = [];
    onTestFailed(() => void process.stderr.write(workers.map((w) => `worker ${w.id}:\n${w.output().slice(-6000)}`).join("\n")));
    try {
      const { worker: a, cli: orphan, runId } = await upRecorded(h, stateDir, cliA, "leftover-hang");
      workers.push(a);
      await kill9(a);
      expect(cliState(orphan)).toBe("running");
      await h.cp.runWorker.start();
      const done = await finished(h);
      expect(done.state).toBe("succeeded");
      expect(cliState(orphan)).toBe("gone");
      // Interrupted, the orphan recorded no update; the takeover's is the run's only one.
      expect(runUpdates(stateDir, runId)).toHaveLength(1);
      expect(overlappingUpdates(stateDir)).toEqual([]);
    } finally {
      for (const w of workers) await kill9(w);
      await close();
    }
  });

  it("negative control: a CLI recorded on another host cannot be checked; the takeover's `pulumi cancel` deletes its live lock and the two updates overlap", { timeout: 120_000 }, async () => {
    const { h, stateDir, cliA, gate, close } = await setUp((gate) => ({ holdUntil: { [EUW1]: gate } }));
    const workers: Worker[] = [];
    onTestFailed(() => void process.stderr.write(workers.map((w) => `worker ${w.id}:\n${w.output().slice(-6000)}`).join("\n")));
    try {
      const { worker: a, cli: orphan, runId } = await upRecorded(h, stateDir, cliA, "leftover-elsewhere");
      workers.push(a);
      await kill9(a);
      await h.cp.db.pool.query(
        "UPDATE runs SET attempt_log = jsonb_set(attempt_log, '{0,cli,host,name}', '\"another-host\"') WHERE id = $1", [runId],
      );
      await h.cp.runWorker.start();
      const overlaps = await waitFor("the takeover's update to overlap the orphan's", () => {
        const o = overlappingUpdates(stateDir);
        return o.length > 0 ? o : undefined;
      }, 30_000);
      expect(overlaps.map((o) => ({ stack: o.stack, runningPids: o.runningPids }))).toEqual([{ stack: EUW1, runningPids: [orphan.pid] }]);
      writeFileSync(gate, "");
      await waitFor("the orphan to end", () => cliState(orphan) === "gone", 20_000);
    } finally {
      writeFileSync(gate, "");
      for (const w of workers) await kill9(w);
      await close();
    }
  });
});
