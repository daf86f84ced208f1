/**
 * Holds on stacks (automation/runs/holds.ts, migration 321) on a live control plane: the real
 * RunStore and run workers (pg-boss on live PostgreSQL) with the Pulumi CLI test double (no real
 * Pulumi runs; the double records commands). A switch holds its tenant's stacks: an update that
 * arrives is queued, not started and not failed, and starts once the hold is released; a state move
 * is not held, nor stuck behind a held update queued on its stack; a run already running when the
 * hold is taken is waited for.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunStoreStackRunner } from "../../automation/lifecycle/adapters/controlPlane.ts";
import { stateMoveSummaryOf, type RunRecord } from "../../automation/runs/store.ts";
import { commandLog, seedResources } from "./support/fakePulumi.ts";
import { startHarness, waitFor, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

let pg: TestPostgres;
let h: Harness;
beforeAll(async () => {
  pg = await startTestPostgres();
  h = await startHarness({ pg, start: { runs: true } });
});
afterAll(async () => {
  await h?.close();
  await pg?.stop();
});

const SRC = "shared-prod-use1-01";
const DEST = "dedicated-acme-prod";
const OTHER = "shared-staging-use1-01";
const C = "saas-tenancy:components";
const urn = (stack: string, type: string, name: string) => `urn:pulumi:${stack}::saas-tenancy::${type}::${name}`;
const root = (stack: string) => urn(stack, "pulumi:pulumi:Stack", `saas-tenancy-${stack}`);
const role = urn(SRC, `${C}:PooledTenant$${C}:TenantRole`, "tenant-acme-role");
const ctx = { workflowId: "5b0c7a9e-0000-4000-8000-000000000321", tenant: "acme", reason: "the switch's write window (test)" };

const finished = (id: string) =>
  waitFor(`run ${id} to finish`, async () => {
    const r = await h.cp.runs.get(id);
    return r && (r.state === "succeeded" || r.state === "failed") ? r : undefined;
  }, 60_000);

async function jobOf(id: string): Promise<{ state: string; job_id: string | null }> {
  return (await h.cp.db.pool.query<{ state: string; job_id: string | null }>("SELECT state, job_id FROM runs WHERE id = $1", [id])).rows[0]!;
}

describe("holds on stacks", () => {
  it("keeps an update of a held stack queued while other stacks run and a state move out of it goes through; the update starts after the release", async () => {
    seedResources(h.stateDir, SRC, [
      { urn: root(SRC), type: "pulumi:pulumi:Stack" },
      { urn: urn(SRC, `${C}:PooledTenant`, "tenant-acme"), type: `${C}:PooledTenant`, parent: root(SRC) },
      { urn: role, type: `${C}:TenantRole`, parent: urn(SRC, `${C}:PooledTenant`, "tenant-acme") },
    ]);
    seedResources(h.stateDir, DEST, [{ urn: root(DEST), type: "pulumi:pulumi:Stack" }]);
    const runner = new RunStoreStackRunner(h.cp.runs, { pollMs: 50, timeoutMs: 60_000 });
    await runner.hold([SRC, DEST], ctx);
    expect((await h.cp.runs.holdsOn([SRC, DEST, OTHER])).map((x) => [x.stack, x.holder])).toEqual([[DEST, ctx.workflowId], [SRC, ctx.workflowId]]);

    // Updates of both held stacks arrive (what the switch's own phase commit queues): queued, no job.
    const [upSrc, upDest] = await h.cp.runs.enqueueAll([SRC, DEST], { reason: "a phase commit touched the tenant's stacks" });
    expect(await jobOf(upSrc!.runId)).toEqual({ state: "queued", job_id: null });
    expect(await jobOf(upDest!.runId)).toEqual({ state: "queued", job_id: null });
    // The control: an update of a stack nobody holds runs to its end meanwhile.
    const [other] = await h.cp.runs.enqueueAll([OTHER], { reason: "another tenant's change" });
    expect((await finished(other!.runId)).state).toBe("succeeded");

    // The switch hands state over while holding: the move into DEST is queued beside DEST's held
    // update (its own lane), is not waited behind SRC's held update, and runs.
    const moved = await runner.moveState({ source: SRC, dest: DEST, urns: [role] }, ctx);
    expect(moved).toMatchObject({ moved: [role], alreadyMoved: [], missing: [] });
    expect(stateMoveSummaryOf((await h.cp.runs.get(moved.runId))!)).toMatchObject({ moved: [role] });
    expect(await jobOf(upSrc!.runId)).toEqual({ state: "queued", job_id: null });
    expect(await jobOf(upDest!.runId)).toEqual({ state: "queued", job_id: null });
    const ups = () => commandLog(h.stateDir).filter((c) => c.args[0] === "up").length;
    const upsBefore = ups();

    // Released: both updates get their jobs and run, after the release.
    const releasedAt = Date.now();
    await runner.release(ctx);
    expect(await h.cp.runs.holdsOn([SRC, DEST])).toEqual([]);
    const [a, b] = await Promise.all([finished(upSrc!.runId), finished(upDest!.runId)]);
    for (const r of [a, b]) {
      expect(r.state).toBe("succeeded");
      expect(Date.parse(r.startedAt!)).toBeGreaterThanOrEqual(releasedAt - 1_000);
    }
    expect(ups()).toBe(upsBefore + 2);
    // Releasing again changes nothing.
    await runner.release(ctx);
  }, 120_000);

  it("waits for a run already running when the hold is taken, and a worker that fetched a held run's job leaves it queued", async () => {
    const pool = h.cp.db.pool;
    // An update of SRC running on a live worker (heartbeat now) when the switch asks for the hold.
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO runs (stack, operation, options, state, worker, heartbeat_at, started_at, attempts, reasons, region)
       VALUES ($1, 'up', '{}'::jsonb, 'running', 'worker-in-the-middle', now(), now(), 1, ARRAY['test: an update in flight'], 'us-east-1') RETURNING id`,
      [SRC],
    );
    const running = rows[0]!.id;
    const runner = new RunStoreStackRunner(h.cp.runs, { pollMs: 50, timeoutMs: 60_000 });
    let holding = false;
    const hold = runner.hold([SRC], ctx).then(() => void (holding = true));
    // A run queued now waits for the running one and then for the hold.
    const [queued] = await h.cp.runs.enqueueAll([SRC], { reason: "arrives during the hold" });
    await new Promise((r) => setTimeout(r, 500));
    expect(holding).toBe(false);
    expect(await h.cp.runs.finish(running, "worker-in-the-middle", { state: "succeeded", output: null })).toBe(true);
    await hold;
    expect(holding).toBe(true);
    // finish() gave the stack to its queued run only if no hold kept it: none was given.
    expect(await jobOf(queued!.runId)).toEqual({ state: "queued", job_id: null });
    // A job that reached a worker anyway (sent before the hold) is turned away with the holder's name.
    const jobId = "00000000-0000-4000-8000-0000000000ff";
    await pool.query("UPDATE runs SET job_id = $2 WHERE id = $1", [queued!.runId, jobId]);
    const decision = await h.cp.runs.start(queued!.runId, jobId, "worker-x", "local", ["us-east-1"]);
    expect(decision).toEqual({
      kind: "skip",
      reason: expect.stringMatching(new RegExp(`^stack ${SRC} is held by lifecycle workflow ${ctx.workflowId} \\(the switch's write window \\(test\\) \\(lifecycle workflow ${ctx.workflowId}\\)\\) since .+; the run starts when it is released$`)),
    });
    expect(await jobOf(queued!.runId)).toEqual({ state: "queued", job_id: null });
    await runner.release(ctx);
    const ran: RunRecord = await finished(queued!.runId);
    expect(ran.state).toBe("succeeded");
  }, 120_000);
});
