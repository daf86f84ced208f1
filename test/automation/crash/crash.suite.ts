/**
 * Crash injection: the control plane runs as a child process (automation/main.ts, embedded
 * PostgreSQL, the Pulumi CLI test double) and is killed with SIGKILL at each named point of
 * intake, the git writer, a run and a lifecycle step (TENANCY_CRASH_AT, automation/crashPoints.ts),
 * then started again on the same data directory and working copy. Each life sends a new Stripe
 * event and Stripe's redeliveries of the events that got no answer, so the point may be reached by
 * the new work or by the recovery of what the previous kill interrupted. At the end, one clean
 * life must have: every accepted event applied exactly once (one commit each, its tenant file),
 * every run succeeded and each update applied once and never alongside another update of its
 * stack (a killed life's Pulumi CLI may outlive it: the next life starts at once), the working
 * copy clean and pushed, and each life ready (its own `listening` line, then /healthz) within a
 * bound against a hang (START_BOUND_MS), failing at once when a life exits instead.
 *
 * The points are split into two scenarios (intake and git; runs) with an installation each, run
 * at the same time: the installations share nothing (own data directory, embedded PostgreSQL,
 * working copy, remote and Pulumi CLI double), so the kills of one cannot touch the other.
 */
import { execFileSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { describe, expect, it, type ExpectStatic } from "vitest";
import { CRASH_POINTS, type CrashPointName } from "../../../automation/crashPoints.ts";
import { seedControlPlaneDataDir } from "../../support/pgTemplate.ts";
import { overlappingUpdates, stackState } from "../support/fakePulumi.ts";
import { subscriptionEvent } from "../support/stripe.ts";
import {
  embeddedSql, leftoverTempDirs, makeInstallation, running, startLife, stopLeftoverPostgres, stopLife, waitCliProcessesGone, waitKilledAt, waitReady, deliver, type Installation, type Life,
} from "./controlPlaneProcess.ts";

interface Sent {
  event: Record<string, unknown>;
  id: string;
  tenant: string;
}

function newTenantEvent(prefix: string, n: number): Sent {
  const tenant = `${prefix}${n}`;
  const id = `evt_${prefix.replace(/-/g, "_")}_${n}`;
  const event = subscriptionEvent(id, "customer.subscription.created", Math.floor(Date.now() / 1000), {
    id: `sub_${prefix.replace(/-/g, "_").toUpperCase()}${n}`,
    status: "active",
    price: "price_standard_monthly",
    metadata: { tenant_id: tenant },
  });
  return { event, id, tenant };
}

/** Work left: reconcile jobs due or running, runs not finished, changes still planned. */
async function outstanding(sql: Sql): Promise<string[]> {
  const jobs = await sql<{ n: string }>("SELECT count(*)::text AS n FROM pgboss.job WHERE name = 'billing-reconcile' AND state IN ('created', 'retry', 'active')");
  const runs = await sql<{ state: string; n: string }>("SELECT state, count(*)::text AS n FROM runs WHERE state IN ('queued', 'running') GROUP BY state");
  const planned = await sql<{ n: string }>("SELECT count(*)::text AS n FROM changes WHERE state = 'planned'");
  const out: string[] = [];
  if (jobs[0]!.n !== "0") out.push(`${jobs[0]!.n} reconcile jobs`);
  for (const r of runs) out.push(`${r.n} runs ${r.state}`);
  if (planned[0]!.n !== "0") out.push(`${planned[0]!.n} changes planned`);
  return out;
}

async function settle(sql: Sql, life: Life, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let left: string[] = [];
  while (Date.now() < deadline) {
    left = await outstanding(sql);
    if (left.length === 0) return;
    await sleep(200);
  }
  const runs = await sql("SELECT id, stack, state, worker, job_id, attempts, heartbeat_at FROM runs WHERE state IN ('queued', 'running')");
  const jobs = await sql("SELECT id, name, state, data, start_after FROM pgboss.job WHERE state IN ('created', 'retry', 'active')");
  throw new Error(`work left after ${timeoutMs} ms: ${left.join(", ")}\nruns ${JSON.stringify(runs)}\njobs ${JSON.stringify(jobs)}\n${life.output().slice(-8000)}`);
}

type Sql = <T extends pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<T[]>;

/** The two scenarios: every point but the lifecycle one, each in exactly one. */
const RUN_POINTS = (Object.keys(CRASH_POINTS) as CrashPointName[]).filter((p) => p.startsWith("run."));
const SCENARIOS: { name: string; points: CrashPointName[]; tenantPrefix: string }[] = [
  { name: "intake and git writer", points: (Object.keys(CRASH_POINTS) as CrashPointName[]).filter((p) => p.startsWith("intake.") || p.startsWith("git.")), tenantPrefix: "crash-a" },
  { name: "runs", points: RUN_POINTS, tenantPrefix: "crash-b" },
];

describe.concurrent("kill -9 anywhere, start again", () => {
  it("the scenarios cover every point but the lifecycle one, each once", () => {
    expect(SCENARIOS.flatMap((s) => s.points).sort()).toEqual((Object.keys(CRASH_POINTS) as CrashPointName[]).filter((p) => p !== "lifecycle.step").sort());
  });

  // Concurrent tests assert with their own context's expect.
  it.for(SCENARIOS)("$name: every accepted event is applied exactly once, no run is lost or run twice, the working copy is clean", { timeout: 1_800_000 }, async ({ points, tenantPrefix }, { expect }) => {
    const inst = makeInstallation({ eventDelayMs: 40 });
    try {
      // Its embedded PostgreSQL from the run's template: the kills are the subject, not the first start's initdb.
      await seedControlPlaneDataDir(inst.dataDir);
      await killAt(expect, inst, points, tenantPrefix);
    } finally {
      await stopLeftoverPostgres(inst);
      await waitCliProcessesGone(inst).catch(() => undefined);
      inst.dispose();
    }
  });
});

async function killAt(expect: ExpectStatic, inst: Installation, points: readonly CrashPointName[], tenantPrefix: string): Promise<void> {
  const sql: Sql = (text, values) => embeddedSql(inst).query(text, values);
  const git = (...args: string[]) => execFileSync("git", args, { cwd: inst.repo.dir, encoding: "utf8" }).trim();
  {
    const pending: Sent[] = [];
    const answered: Sent[] = [];
    let n = 0;
    for (const point of points) {
      const life = await startLife(inst, point);
      await killedAtPoint(life, point);
    }
    async function killedAtPoint(life: Life, point: CrashPointName): Promise<void> {
      try {
        await oneLife(life, point);
      } catch (err) {
        // A life that failed the test is not left running (it would write into the directory removed next).
        if (running(life)) {
          life.child.kill("SIGKILL");
          await life.exited;
        }
        throw err;
      }
    }
    async function oneLife(life: Life, point: CrashPointName): Promise<void> {
      // The point may be reached by recovering what the previous kill interrupted (a queued run
      // started at once) before this life answered /healthz: then it gets no events.
      const ready = await waitReady(life).then(() => "ready" as const, async (err: unknown) => {
        if (running(life)) throw err;
        await waitKilledAt(life, point, 5_000);
        return "died" as const;
      });
      if (ready === "died") return;
      // Stripe redelivers what got no 2xx, then sends a new event (queued like the others, so an
      // event this life never got to send is sent by the next one).
      pending.push(newTenantEvent(tenantPrefix, ++n));
      for (const sent of [...pending]) {
        const r = await deliver(life, sent.event);
        if (r?.status === 200) {
          answered.push(sent);
          pending.splice(pending.indexOf(sent), 1);
        } else {
          if (r) throw new Error(`delivery of ${sent.id} answered ${r.status}: ${JSON.stringify(r.json)}`);
          break;
        }
      }
      // The next life starts at once: a Pulumi CLI the killed one started may still run, and the
      // run's takeover must end it before its own update (automation/runs/cliProcess.ts).
      await waitKilledAt(life, point, 90_000);
    }

    const life = await startLife(inst);
    let failure: unknown;
    try {
      await waitReady(life);
      for (const sent of pending) {
        const r = await deliver(life, sent.event);
        expect(r?.status, `redelivery of ${sent.id}`).toBe(200);
        answered.push(sent);
      }
      await settle(sql, life, 120_000);
      const events = [...new Map(answered.map((s) => [s.id, s])).values()];
      expect(events.length).toBe(n);

      // Each accepted event: recorded accepted, one committed change, one commit, its tenant file.
      const rows = await sql<{ id: string; outcome: string }>("SELECT id, outcome FROM billing_events ORDER BY id");
      expect(rows).toEqual(events.map((s) => ({ id: s.id, outcome: "accepted" })).sort((a, b) => a.id.localeCompare(b.id)));
      for (const s of events) {
        const commits = git("log", "main", "--format=%H", `--grep=^Stripe-Event: ${s.id}$`).split("\n").filter(Boolean);
        expect(commits, `commits of ${s.id}`).toHaveLength(1);
        expect(git("show", `main:tenants/${s.tenant}.yaml`)).toContain("tier: standard");
        const changes = await sql<{ state: string }>("SELECT state FROM changes WHERE $1 = ANY(cause_ids) AND state = 'committed'", [s.id]);
        expect(changes, `committed changes of ${s.id}`).toHaveLength(1);
      }
      // Interrupted changes are recorded failed, with who redoes them; none is left planned.
      const states = await sql<{ state: string; n: string }>("SELECT state, count(*)::text AS n FROM changes GROUP BY state ORDER BY state");
      expect(states.map((s) => s.state).filter((s) => s !== "committed" && s !== "failed")).toEqual([]);

      // Runs: every one succeeded; each committed change is in a succeeded run of each of its stacks.
      const runs = await sql<{ id: string; stack: string; state: string; change_ids: string[]; attempts: number; error: string | null; attempt_log: unknown }>(
        "SELECT id, stack, state, change_ids::text[] AS change_ids, attempts, error, attempt_log FROM runs ORDER BY created_at",
      );
      // A run that did not succeed is shown with its error and attempts (who ran it, how each ended).
      expect(runs.filter((r) => r.state !== "succeeded")).toEqual([]);
      const committed = await sql<{ id: string; stacks: string[] }>("SELECT id::text, stacks FROM changes WHERE state = 'committed'");
      for (const c of committed) {
        for (const stack of c.stacks) {
          expect(runs.some((r) => r.stack === stack && r.change_ids.includes(c.id)), `a run of ${stack} for change ${c.id}`).toBe(true);
        }
      }
      // No run applied twice: each run's update appears once in its stack's history (the CLI double's backend).
      for (const r of runs) {
        const updates = stackState(inst.stateDir, r.stack)?.updates.filter((u) => u.message?.includes(`run ${r.id} `)) ?? [];
        expect(updates.length, `updates of run ${r.id} (${r.stack}, ${r.attempts} attempts)`).toBe(1);
      }
      // Never two updates of one stack at once (the CLI double records any that overlapped).
      expect(overlappingUpdates(inst.stateDir)).toEqual([]);
      // The run points kill runs in flight: some run was taken over.
      if (points.some((p) => p.startsWith("run."))) expect(runs.some((r) => r.attempts > 1)).toBe(true);

      // The working copy is clean and the remote has every commit.
      expect(git("status", "--porcelain")).toBe("");
      expect(execFileSync("git", ["rev-parse", "main"], { cwd: inst.remote, encoding: "utf8" }).trim()).toBe(git("rev-parse", "main"));
    } catch (err) {
      failure = err;
      throw err;
    } finally {
      // Stopped in any case; its exit code is checked only when nothing failed before: a life that
      // could not start exits 2, and that check would hide the error that says why.
      const code = await stopLife(life);
      if (failure === undefined) expect(code).toBe(0);
    }
    // The killed lives' temporary directories were removed by the next start, the last one's at its stop.
    expect(leftoverTempDirs(inst)).toEqual([]);
  }
}
