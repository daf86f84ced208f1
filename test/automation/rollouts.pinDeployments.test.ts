/**
 * A pinned run through Pulumi Deployments (docs/rollouts.md, "Which commit a run applies"): the
 * composed commit exists only in the control plane's working copy, so it is pushed to the remote
 * before the run. Deployments is modelled by a stand-in runner that does what its executor does
 * with a git source and a commit (https://www.pulumi.com/docs/reference/cloud-rest-api/schema/sourcecontextgit/):
 * clone the repository (through the transport, as from GitHub: `--no-local`) and check the commit
 * out; a local bare repository is the remote. Nothing reaches Pulumi Cloud.
 */
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunContext, RunOutcome, Runner } from "../../automation/runs/contract.ts";
import { makeFixtureRepo } from "./support/repo.ts";
import { startHarness, waitFor, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

const STACK = "shared-prod-use1-02";
const digest = (text: string) => createHash("sha256").update(text).digest("hex");

/** What the stand-in cloned for each update: the commit and the digest of its Pulumi.yaml. */
const cloned: { stack: string; commit: string; program: string }[] = [];
let remote: string;
const standIn: Runner = {
  kind: "deployments",
  up(ctx: RunContext): Promise<RunOutcome> {
    const dir = mkdtempSync(join(tmpdir(), "tenancy-deployments-clone-"));
    try {
      execFileSync("git", ["clone", "--quiet", "--no-local", remote, dir], { stdio: ["ignore", "pipe", "pipe"] });
      execFileSync("git", ["checkout", "--quiet", ctx.commit], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
      cloned.push({ stack: ctx.stack, commit: ctx.commit, program: digest(readFileSync(join(dir, "Pulumi.yaml"), "utf8")) });
    } catch (err) {
      return Promise.reject(new Error(`stand-in for Pulumi Deployments: cannot check ${ctx.commit} out of a clone of ${remote}: ${(err as { stderr?: Buffer }).stderr?.toString().trim() ?? String(err)}`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return Promise.resolve({ summary: { result: "succeeded" }, outputs: {}, concurrentUpdateRetries: 0, stdoutTail: "" });
  },
  destroy: () => Promise.reject(new Error("not used here")),
  moveState: () => Promise.reject(new Error("not used here")),
  preview: () => Promise.reject(new Error("not used here")),
};

let pg: TestPostgres;
let h: Harness;
beforeAll(async () => {
  pg = await startTestPostgres();
  const repo = makeFixtureRepo();
  remote = `${repo.dir}-remote.git`;
  execFileSync("git", ["init", "--quiet", "--bare", "--initial-branch=main", remote]);
  h = await startHarness({ pg, repo, deps: { runner: standIn } });
});
afterAll(async () => {
  await h?.close();
  await pg?.stop();
  if (remote) rmSync(remote, { recursive: true, force: true });
});

const runToEnd = async (reason: string) => {
  const [queued] = await h.cp.runs.enqueueAll([STACK], { reason });
  return waitFor(`the run of ${STACK} to end`, async () => {
    const r = (await h.cp.db.pool.query<{ state: string; commit_sha: string; program_commit: string; error: string | null }>(
      "SELECT state, commit_sha, program_commit, error FROM runs WHERE id = $1", [queued!.runId],
    )).rows[0]!;
    return r.state === "succeeded" || r.state === "failed" ? r : undefined;
  }, 30_000);
};

describe("a pinned run through Pulumi Deployments", () => {
  it("pushes the composed commit to the remote before the run, so the clone checks it out; without a remote it fails saying so", async () => {
    const x0 = h.repo.git("rev-parse", "HEAD").trim();
    h.repo.git("remote", "add", "origin", remote);
    h.repo.git("push", "--quiet", "origin", "main");
    // First update at the head (no rollout ever: the head is the program in force).
    expect(await runToEnd("test: first update")).toMatchObject({ state: "succeeded", commit_sha: x0, program_commit: x0 });

    // A program change merged (its rollout not started): the stack keeps X0's program.
    const file = join(h.repo.dir, "Pulumi.yaml");
    writeFileSync(file, `${readFileSync(file, "utf8")}# program X1\n`);
    h.repo.git("commit", "--quiet", "-am", "program X1");
    h.repo.git("push", "--quiet", "origin", "main");

    // Negative control: no remote to push the composed commit to.
    h.repo.git("remote", "remove", "origin");
    const failed = await runToEnd("test: a tenant change without a remote");
    expect(failed.state).toBe("failed");
    expect(failed.error).toMatch(/exists only in the working copy .*no remote is configured to push it to for Pulumi Deployments; set TENANCY_GIT_REMOTE/);

    h.repo.git("remote", "add", "origin", remote);
    const run = await runToEnd("test: a tenant change");
    expect(run).toMatchObject({ state: "succeeded", program_commit: x0 });
    expect(h.repo.git("branch", "--contains", run.commit_sha).trim()).toBe("");
    expect(cloned.at(-1)).toEqual({ stack: STACK, commit: run.commit_sha, program: digest(h.repo.show(x0, "Pulumi.yaml")!) });
    expect(execFileSync("git", ["rev-parse", `refs/heads/tenancy/programs/${x0}`], { cwd: remote, encoding: "utf8" }).trim()).toBe(run.commit_sha);
  }, 120_000);
});
