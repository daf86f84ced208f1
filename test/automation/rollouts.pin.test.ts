/**
 * Runs outside a rollout apply the program in force for their stack, not the head's (docs/rollouts.md,
 * "Which commit a run applies"): while a program change is halted at its canary ring, a tenant
 * change to a later ring's stack and a drift check of it run the previous rollout's program with
 * the head's tenant files; once the rollout reaches the stack, the new program. Control plane on
 * live PostgreSQL with the Pulumi CLI test double, which records a digest of the Pulumi.yaml each
 * update and preview ran with (nothing is deployed, nothing is read from a cloud). The same
 * scenario with the pin turned off is the negative control: the head's program reaches the stack.
 */
import { createHash } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeFixtureRepo, withoutBakeTime } from "./support/repo.ts";
import { startHarness, waitFor } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { stackLocks, stackState } from "./support/fakePulumi.ts";

const CANARY = "shared-prod-use1-01";
/** prod-rest: company-beta and gamma-labs live there. */
const LATE_CELL = "shared-prod-use1-02";
/** Checked for drift only by request. */
const DRIFT_PERIOD_MS = 30 * 24 * 3_600_000;
const digest = (text: string) => createHash("sha256").update(text).digest("hex");

interface View {
  rollout: { id: string; state: string; wave: number; commit: string };
  waves: { ring: string; stacks: { stack: string; state: string; runId: string | null }[] }[];
}
interface DriftRow { stack: string; state: string; checkedAt: string | null; resources: { urn: string; op: string; diffs: string[] }[] }

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startTestPostgres();
});
afterAll(async () => {
  await pg?.stop();
});

/** A harness and what the tests ask of it. */
async function setUp(pin: boolean) {
  const h = await startHarness({
    pg,
    repo: withoutBakeTime(makeFixtureRepo()),
    fake: { eventDelayMs: 2, programDrift: true },
    config: { drift: { periodMs: DRIFT_PERIOD_MS, concurrency: 2 } },
    ...(pin ? {} : { deps: { pinPrograms: false } }),
  });
  const get = async (id: string) => (await h.api("GET", `/api/rollouts/${id}`)).json as unknown as View;
  const rollout = async (name: string, commit: string, until: string) => {
    const res = await h.api("POST", "/api/rollouts", { name, commit });
    expect(res.status).toBe(201);
    const id = (res.json as unknown as View).rollout.id;
    return waitFor(`rollout "${name}" to be ${until}`, async () => {
      const v = await get(id);
      return v.rollout.state === until ? v : undefined;
    }, 90_000);
  };
  const runOf = async (runId: string) =>
    (await h.cp.db.pool.query<{ commit_sha: string; program_commit: string | null; state: string; attempts: number }>(
      "SELECT commit_sha, program_commit, state, attempts FROM runs WHERE id = $1", [runId],
    )).rows[0]!;
  const runToEnd = async (stack: string, reason: string) => {
    const [queued] = await h.cp.runs.enqueueAll([stack], { reason });
    return waitFor(`the run of ${stack} to succeed`, async () => {
      const r = await runOf(queued!.runId);
      if (r.state === "failed") throw new Error(`run of ${stack} failed`);
      return r.state === "succeeded" ? { id: queued!.runId, ...r } : undefined;
    }, 30_000);
  };
  const program = (rev: string) => digest(h.repo.show(rev, "Pulumi.yaml")!);
  const commitProgram = (label: string) => {
    const file = join(h.repo.dir, "Pulumi.yaml");
    writeFileSync(file, `${readFileSync(file, "utf8")}# ${label}\n`);
    h.repo.git("commit", "--quiet", "-am", label);
    return h.repo.git("rev-parse", "HEAD").trim();
  };
  /** A new pooled tenant in LATE_CELL, committed on main as a tenant change would be. */
  const commitTenant = (id: string, code: string) => {
    const beta = h.repo.show("HEAD", "tenants/company-beta.yaml")!;
    writeFileSync(join(h.repo.dir, "tenants", `${id}.yaml`), beta.replaceAll("company-beta", id).replace("Company Beta GmbH", `${id} GmbH`).replaceAll("BETA0001", `${code}0001`));
    h.repo.git("add", "--all");
    h.repo.git("commit", "--quiet", "-m", `tenant ${id}`);
    return h.repo.git("rev-parse", "HEAD").trim();
  };
  const lastUpdate = (stack: string) => stackState(h.stateDir, stack)?.updates.at(-1);
  const driftOf = async (stack: string) => ((await h.api("GET", `/api/drift?stack=${stack}`)).json as unknown as { stacks: DriftRow[] }).stacks[0];
  const checkDrift = async (stack: string) => {
    const before = (await driftOf(stack))?.checkedAt ?? null;
    expect((await h.api("POST", `/api/drift/${stack}/check`)).status).toBe(202);
    return waitFor(`the drift check of ${stack}`, async () => {
      const row = await driftOf(stack);
      return row && row.checkedAt !== before && ["clean", "drifted", "failed"].includes(row.state) ? row : undefined;
    }, 30_000);
  };
  return { h, get, rollout, runOf, runToEnd, program, commitProgram, commitTenant, lastUpdate, checkDrift };
}

/**
 * What both variants share: a rollout of X0 reaches every stack, then a rollout of a new program X1
 * halts at its canary; returns the stacks of its last ring (not reached) and the commits.
 */
async function haltedAtCanary(t: Awaited<ReturnType<typeof setUp>>) {
  const x0 = t.h.repo.git("rev-parse", "HEAD").trim();
  await t.rollout("program X0", x0, "succeeded");
  const x1 = t.commitProgram("program X1");
  expect(t.program(x1)).not.toBe(t.program(x0));
  t.h.fake.options.failures = { [CANARY]: "the canary's update failed (injected)" };
  const halted = await t.rollout("program X1", x1, "halted");
  expect(halted.rollout.wave).toBe(1);
  const later = halted.waves.slice(2).flatMap((w) => w.stacks);
  expect(later.every((s) => s.state === "pending")).toBe(true);
  const unreached = later.map((s) => s.stack);
  expect(unreached).toContain(LATE_CELL);
  return { x0, x1, halted, unreached };
}

describe("runs outside a rollout apply the program in force for their stack", () => {
  let t: Awaited<ReturnType<typeof setUp>>;
  beforeAll(async () => {
    t = await setUp(true);
  }, 60_000);
  afterAll(async () => {
    await t?.h.close();
  });

  it("while a program change is halted at its canary, a later ring's tenant change and drift check run the previous program; after the resume reaches it, the new one", async () => {
    const { h, runToEnd, program, commitTenant, lastUpdate, checkDrift, runOf } = t;
    const { x0, x1, halted, unreached } = await haltedAtCanary(t);

    // A stack the halted rollout reached (its first ring) runs X1 outside the rollout too.
    const reached = halted.waves[0]!.stacks[0]!.stack;
    expect((await runToEnd(reached, "test: a person's run"))).toMatchObject({ program_commit: x1 });
    expect(lastUpdate(reached)?.program).toBe(program(x1));

    // A tenant change to a last-ring cell: X0's program with the head's tenants (the new tenant kept).
    const z = commitTenant("company-late", "LATE");
    const run = await runToEnd(LATE_CELL, "test: a tenant change");
    expect(run.program_commit).toBe(x0);
    expect(lastUpdate(LATE_CELL)?.program).toBe(program(x0));
    expect(lastUpdate(LATE_CELL)?.tenants).toEqual(["company-beta", "company-late", "gamma-labs"]);
    expect(h.repo.show(run.commit_sha, "Pulumi.yaml")).toBe(h.repo.show(x0, "Pulumi.yaml"));
    expect(h.repo.git("rev-parse", `${run.commit_sha}:tenants`).trim()).toBe(h.repo.git("rev-parse", `${z}:tenants`).trim());
    expect(h.repo.git("rev-parse", `${run.commit_sha}^1`).trim()).toBe(z);
    expect(h.repo.git("rev-parse", `refs/tenancy/programs/${x0}`).trim()).toBe(run.commit_sha);

    // A drift check of another unreached stack previews X0, what it runs: clean.
    const other = unreached.find((s) => s !== LATE_CELL && (lastUpdate(s)?.tenants.length ?? 0) > 0)!;
    const verdict = await checkDrift(other);
    expect(verdict).toMatchObject({ stack: other, state: "clean", resources: [] });
    expect(stackState(h.stateDir, other)?.previews?.at(-1)).toMatchObject({ refresh: true, program: program(x0) });
    const check = (await h.cp.db.pool.query<{ program_commit: string }>("SELECT program_commit FROM runs WHERE stack = $1 AND operation = 'preview' ORDER BY created_at DESC LIMIT 1", [other])).rows[0]!;
    expect(check.program_commit).toBe(x0);

    // A takeover applies the commit the dead attempt recorded, even after the head moved on.
    const hold = join(h.tmp, "hold-late-cell");
    h.fake.options.holdUntil = { [LATE_CELL]: hold };
    commitTenant("company-later", "LATR");
    const [queued] = await h.cp.runs.enqueueAll([LATE_CELL], { reason: "test: another tenant change" });
    // Under way: the update holds the stack's lock (the double's), so the run's commit is recorded.
    const first = await waitFor("the held run's update to be under way", async () => {
      const r = await runOf(queued!.runId);
      return r.state === "running" && stackLocks(h.stateDir, LATE_CELL).length > 0 ? r : undefined;
    }, 30_000);
    expect(h.repo.show(first.commit_sha, "Pulumi.yaml")).toBe(h.repo.show(x0, "Pulumi.yaml"));
    expect(first.program_commit).toBe(x0);
    commitTenant("company-latest", "LTST");
    await h.cp.db.pool.query("UPDATE runs SET worker = 'dead-worker', heartbeat_at = now() - interval '1 minute' WHERE id = $1", [queued!.runId]);
    await waitFor("the takeover's attempt", async () => ((await runOf(queued!.runId)).attempts >= 2 && (await runOf(queued!.runId)).state === "running" ? true : undefined), 30_000);
    writeFileSync(hold, "");
    await waitFor("the taken-over run to succeed", async () => ((await runOf(queued!.runId)).state === "succeeded" ? true : undefined), 30_000);
    delete h.fake.options.holdUntil;
    rmSync(hold, { force: true });
    expect(await runOf(queued!.runId)).toMatchObject({ commit_sha: first.commit_sha, program_commit: x0 });
    expect(lastUpdate(LATE_CELL)?.program).toBe(program(x0));
    // The commit of the first attempt: company-latest, committed after it, is not in the update.
    expect(lastUpdate(LATE_CELL)?.tenants).toEqual(["company-beta", "company-late", "company-later", "gamma-labs"]);

    // Resumed after the fix, the rollout reaches the cell: its next tenant change runs X1, at the
    // head itself (only tenant files changed since X1).
    delete h.fake.options.failures![CANARY];
    expect((await h.api("POST", `/api/rollouts/${halted.rollout.id}/resume`)).status).toBe(200);
    await waitFor("the rollout to succeed", async () => ((await t.get(halted.rollout.id)).rollout.state === "succeeded" ? true : undefined), 90_000);
    const after = await runToEnd(LATE_CELL, "test: a tenant change after the rollout");
    expect(after).toMatchObject({ program_commit: x1, commit_sha: h.repo.git("rev-parse", "HEAD").trim() });
    expect(lastUpdate(LATE_CELL)?.program).toBe(program(x1));
    // And the drift check of the other stack, reached too, previews X1: still clean.
    expect(await checkDrift(other)).toMatchObject({ state: "clean" });
    expect(stackState(h.stateDir, other)?.previews?.at(-1)?.program).toBe(program(x1));
    // No stack runs X0 any more: its ref is gone.
    await waitFor("X0's ref to be dropped", async () => (h.repo.git("for-each-ref", "refs/tenancy/").trim() === "" ? true : undefined), 10_000);
  }, 300_000);
});

describe("negative control: without the pin, runs outside a rollout apply the head's program", () => {
  let t: Awaited<ReturnType<typeof setUp>>;
  beforeAll(async () => {
    t = await setUp(false);
  }, 60_000);
  afterAll(async () => {
    await t?.h.close();
  });

  it("a later ring's tenant change runs the program the rollout holds back, and its drift check shows the program as drift", async () => {
    const { runToEnd, program, commitTenant, lastUpdate, checkDrift } = t;
    const { x1, unreached } = await haltedAtCanary(t);
    const z = commitTenant("company-late", "LATE");
    const run = await runToEnd(LATE_CELL, "test: a tenant change");
    expect(run).toMatchObject({ program_commit: null, commit_sha: z });
    expect(lastUpdate(LATE_CELL)?.program).toBe(program(x1));
    const other = unreached.find((s) => s !== LATE_CELL && (t.lastUpdate(s)?.tenants.length ?? 0) > 0)!;
    const verdict = await checkDrift(other);
    expect(verdict.state).toBe("drifted");
    expect(verdict.resources.length).toBeGreaterThan(0);
    expect(verdict.resources.every((r) => r.diffs.includes("program"))).toBe(true);
  }, 300_000);
});
