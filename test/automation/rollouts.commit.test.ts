/**
 * A rollout applies the program of the commit it was created for, whatever lands on the main
 * branch meanwhile, with the head's tenant and stack files (docs/rollouts.md, "Which commit a run
 * applies"). Control plane on live PostgreSQL with the Pulumi CLI test double, which records a
 * digest of the Pulumi.yaml each update ran with and the tenants it found (nothing is deployed).
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeFixtureRepo, withoutBakeTime } from "./support/repo.ts";
import { startHarness, waitFor, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { stackState } from "./support/fakePulumi.ts";

let pg: TestPostgres;
let h: Harness;
const CANARY = "shared-prod-use1-01";
/** prod-rest: company-beta and gamma-labs live there; the later commit adds a tenant to it. */
const LATE_CELL = "shared-prod-use1-02";
const digest = (text: string) => createHash("sha256").update(text).digest("hex");

beforeAll(async () => {
  pg = await startTestPostgres();
  const repo = withoutBakeTime(makeFixtureRepo());
  h = await startHarness({ pg, repo, fake: { eventDelayMs: 2, failures: { [CANARY]: "the canary's update failed (injected)" } } });
});
afterAll(async () => {
  await h?.close();
  await pg?.stop();
});

interface View {
  rollout: { id: string; state: string; wave: number; commit: string };
  waves: { ring: string; stacks: { stack: string; state: string; runId: string | null }[] }[];
}
const get = async (id: string) => (await h.api("GET", `/api/rollouts/${id}`)).json as unknown as View;
const runOf = async (runId: string) =>
  (await h.cp.db.pool.query<{ commit_sha: string; program_commit: string | null; state: string }>("SELECT commit_sha, program_commit, state FROM runs WHERE id = $1", [runId])).rows[0]!;
const lastUpdate = (stack: string) => stackState(h.stateDir, stack)?.updates.at(-1);
const composedRefs = () => h.repo.git("for-each-ref", "--format=%(refname)", "refs/tenancy/").trim();

describe("a rollout applies its own commit's program", () => {
  it("a program committed after the rollout started never reaches its later rings; tenants committed meanwhile do", async () => {
    const x = h.repo.git("rev-parse", "HEAD").trim();
    const programX = digest(h.repo.show(x, "Pulumi.yaml")!);
    const started = await h.api("POST", "/api/rollouts", { name: "program X", commit: x.slice(0, 12) });
    expect(started.status).toBe(201);
    const view = started.json as unknown as View;
    // The short id is stored as the full commit the runs are pinned to.
    expect(view.rollout.commit).toBe(x);
    const id = view.rollout.id;
    const halted = await waitFor("the rollout to halt at the canary", async () => {
      const v = await get(id);
      return v.rollout.state === "halted" ? v : undefined;
    }, 60_000);
    expect(halted.rollout.wave).toBe(1);

    // While it is halted, main moves on: a program change (Pulumi.yaml) and a new tenant in a
    // prod-rest cell, in one commit.
    const file = join(h.repo.dir, "Pulumi.yaml");
    writeFileSync(file, `${readFileSync(file, "utf8")}# program Y: committed after rollout "program X" started\n`);
    const beta = h.repo.show("HEAD", "tenants/company-beta.yaml")!;
    writeFileSync(join(h.repo.dir, "tenants", "company-late.yaml"), beta.replaceAll("company-beta", "company-late").replace("Company Beta GmbH", "Company Late GmbH").replaceAll("BETA0001", "LATE0001"));
    h.repo.git("add", "--all");
    h.repo.git("commit", "--quiet", "-m", "program Y and a new tenant");
    const y = h.repo.git("rev-parse", "HEAD").trim();
    const programY = digest(h.repo.show(y, "Pulumi.yaml")!);
    expect(programY).not.toBe(programX);

    delete h.fake.options.failures![CANARY];
    expect((await h.api("POST", `/api/rollouts/${id}/resume`)).status).toBe(200);
    const done = await waitFor("the rollout to succeed", async () => {
      const v = await get(id);
      return v.rollout.state === "succeeded" ? v : undefined;
    }, 90_000);

    // The failed canary re-ran after Y, and every stack of the rings after it.
    const all = done.waves.flatMap((w) => w.stacks);
    const late = [...done.waves[1]!.stacks.filter((s) => s.stack === CANARY), ...done.waves.slice(2).flatMap((w) => w.stacks)];
    expect(late.map((s) => s.stack)).toContain(LATE_CELL);
    for (const s of late) {
      const run = await runOf(s.runId!);
      expect(run).toMatchObject({ state: "succeeded", program_commit: x });
      // The CLI ran X's Pulumi.yaml, not the head's.
      expect(lastUpdate(s.stack)?.program).toBe(programX);
      // The commit the run recorded: X's program, Y's fleet files, on no branch.
      expect(h.repo.show(run.commit_sha, "Pulumi.yaml")).toBe(h.repo.show(x, "Pulumi.yaml"));
      expect(h.repo.git("rev-parse", `${run.commit_sha}:tenants`).trim()).toBe(h.repo.git("rev-parse", `${y}:tenants`).trim());
      expect(h.repo.git("rev-parse", `${run.commit_sha}:stacks`).trim()).toBe(h.repo.git("rev-parse", `${y}:stacks`).trim());
      expect(h.repo.git("branch", "--contains", run.commit_sha).trim()).toBe("");
    }
    // The tenant committed meanwhile is in its cell's update (a run at X's whole tree would drop it).
    expect(lastUpdate(LATE_CELL)?.tenants).toEqual(["company-beta", "company-late", "gamma-labs"]);
    // The stacks that ran before Y existed applied X as it is, the branch commit itself.
    const early = all.filter((s) => !late.includes(s));
    expect(early.length).toBeGreaterThan(2);
    for (const s of early) expect(await runOf(s.runId!)).toMatchObject({ commit_sha: x, program_commit: x });

    // A run that is not a rollout's applies the program in force for its stack, X (the rollout
    // reached it), not the head's Y: the composed commit of the rollout's runs at the same head.
    const [plain] = await h.cp.runs.enqueueAll([LATE_CELL], { reason: "test: a tenant change" });
    await waitFor("the plain run to finish", async () => ((await runOf(plain!.runId)).state === "succeeded" ? true : undefined), 30_000);
    const lateRun = await runOf(done.waves.flatMap((w) => w.stacks).find((s) => s.stack === LATE_CELL)!.runId!);
    expect(await runOf(plain!.runId)).toMatchObject({ commit_sha: lateRun.commit_sha, program_commit: x });
    expect(lastUpdate(LATE_CELL)?.program).toBe(programX);
    // The rollout ended, and X is in force for every stack: the one ref keeping its compositions stays.
    expect(composedRefs()).toBe(`refs/tenancy/programs/${x}`);
  }, 180_000);

  it("a program's composed commits survive git gc --prune=now while a stack runs it; the ref goes when none does", async () => {
    // The commit before program Y: its program differs from the head's, so its runs use a composed commit.
    const programY = h.repo.git("log", "--format=%H", "-1", "--", "Pulumi.yaml").trim();
    const older = h.repo.git("rev-parse", `${programY}~1`).trim();
    expect(h.repo.show(older, "Pulumi.yaml")).not.toBe(h.repo.show("HEAD", "Pulumi.yaml"));
    h.fake.options.failures = { [CANARY]: "the canary's update failed again (injected)" };
    const started = await h.api("POST", "/api/rollouts", { name: "program before Y", commit: older });
    expect(started.status).toBe(201);
    const id = (started.json as unknown as View).rollout.id;
    const halted = await waitFor("the rollout to halt at the canary", async () => {
      const v = await get(id);
      return v.rollout.state === "halted" ? v : undefined;
    }, 60_000);
    const composed = new Set<string>();
    for (const s of halted.waves.flatMap((w) => w.stacks).filter((s) => s.runId)) {
      const run = await runOf(s.runId!);
      expect(run.program_commit).toBe(older);
      composed.add(run.commit_sha);
    }
    expect(composed.size).toBe(1);
    const [sha] = [...composed];
    expect(h.repo.git("branch", "--contains", sha!).trim()).toBe("");
    // The commit before Y is X, the first test's rollout: its one ref, whose composition at the
    // same head the runs found again rather than committing another.
    const head = h.repo.git("rev-parse", "HEAD").trim();
    expect(composedRefs()).toBe(`refs/tenancy/programs/${older}`);
    expect(h.repo.git("rev-parse", `refs/tenancy/programs/${older}`).trim()).toBe(sha);
    h.repo.git("gc", "--quiet", "--prune=now");
    expect(h.repo.git("cat-file", "-t", sha!).trim()).toBe("commit");

    // Aborted: every stack still runs that program (the first test's rollout reached them all), so the ref stays.
    expect((await h.api("POST", `/api/rollouts/${id}/abort`)).status).toBe(200);
    await waitFor("the rollout to end", async () => ((await get(id)).rollout.state === "aborted" ? true : undefined), 10_000);
    h.repo.git("gc", "--quiet", "--prune=now");
    expect(h.repo.git("cat-file", "-t", sha!).trim()).toBe("commit");
    // A rollout of the head reaches every stack: no stack runs an older program, and the head's
    // own program needs no composition, so no ref is left and the same gc prunes the commit.
    delete h.fake.options.failures[CANARY];
    const head2 = await h.api("POST", "/api/rollouts", { name: "the head", commit: head });
    expect(head2.status).toBe(201);
    const id2 = (head2.json as unknown as View).rollout.id;
    await waitFor("the head's rollout to succeed", async () => ((await get(id2)).rollout.state === "succeeded" ? true : undefined), 90_000);
    await waitFor("the composed commits' refs to be dropped", async () => (composedRefs() === "" ? true : undefined), 10_000);
    h.repo.git("gc", "--quiet", "--prune=now");
    expect(() => h.repo.git("cat-file", "-t", sha!)).toThrow();
  }, 180_000);

  it("refuses a commit that is not on the main branch, naming it", async () => {
    const main = h.repo.git("rev-parse", "HEAD").trim();
    h.repo.git("checkout", "--quiet", "-b", "side");
    h.repo.git("commit", "--quiet", "--allow-empty", "-m", "not on main");
    const side = h.repo.git("rev-parse", "HEAD").trim();
    h.repo.git("checkout", "--quiet", "main");
    const res = await h.api("POST", "/api/rollouts", { name: "side", commit: side });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ error: { message: `commit ${side.slice(0, 12)} is not on the main branch (head ${main.slice(0, 12)}); a rollout applies a commit of main` } });
    const missing = await h.api("POST", "/api/rollouts", { name: "missing", commit: "0123456789abcdef" });
    expect(missing.status).toBe(400);
    expect((missing.json as { error: { message: string } }).error.message).toBe(`commit 0123456789abcdef is not in the control plane's working copy ${h.repo.dir}; push it to main first`);
  }, 60_000);
});
