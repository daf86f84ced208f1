/**
 * A dedicated tenant's change, proposed rather than applied (writer.ts): committed on branch
 * `tenancy/<tenant>` (on top of an unmerged earlier proposal, or afresh from main once that was
 * merged), validated with what the branch already changes, pushed, and offered as a pull request
 * (GitHub API) when a token is configured; the change row says which of these happened.
 */
import { mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Pool } from "pg";
import type { Fleet } from "../../infra/model/fleet.ts";
import { STACKS_DIR, TENANTS_DIR } from "../../infra/model/fleetFiles/index.ts";
import type { Logger } from "../log.ts";
import { branchOf, commitMessage, pullRequestBody, type ChangeResult, type Staged } from "./change.ts";
import type { GitHubClient, PullRequestRef } from "./github.ts";
import type { GitRepo } from "./repo.ts";

/** What a proposal needs of the writer (GitWriter holds the lock while it runs). */
export interface ProposalDeps {
  repo: GitRepo;
  pool: Pool;
  log: Logger;
  repoDir: string;
  /** Scratch space for the proposal's private index file. */
  dataDir: string;
  /** The configured remote (named in notes even when the working copy lacks it). */
  remote?: string;
  github?: GitHubClient;
  /** The main branch's name and head. */
  mainBranch: () => string;
  head: () => Promise<string>;
  /** The configured remote when the working copy has it. */
  pushRemote: () => Promise<string | undefined>;
  /** The working copy's fleet with `layers` applied in order (validated in memory). */
  validate: (layers: readonly Readonly<Record<string, string | null>>[]) => { fleet?: Fleet; problems: string[] };
}

/** Commits `s` on its tenant's branch, pushes it and opens or updates its pull request; records the outcome. */
export async function proposeOnBranch(d: ProposalDeps, s: Staged): Promise<ChangeResult> {
  const branch = branchOf(s.req.tenantId);
  const mainHead = await d.head();
  const branchHead = await d.repo.resolve(`refs/heads/${branch}`);
  // A branch already merged into main starts afresh from main.
  const merged = branchHead !== undefined && (await d.repo.isAncestor(branchHead, mainHead));
  const parent = branchHead && !merged ? branchHead : mainHead;
  // What the branch already changes since it left main (an earlier, unmerged proposal).
  const pending: Record<string, string | null> = {};
  if (branchHead && !merged) {
    const out = await d.repo.out(["diff", "--name-only", "--no-renames", `${mainHead}...${branchHead}`, "--", TENANTS_DIR, STACKS_DIR]);
    for (const p of out === "" ? [] : out.split("\n")) pending[p] = (await d.repo.show(branchHead, p)) ?? null;
  }
  const v = d.validate([pending, s.req.files]);
  if (!v.fleet) {
    await d.pool.query("UPDATE changes SET state = 'rejected', problems = $2, updated_at = now() WHERE id = $1", [s.id, JSON.stringify(v.problems)]);
    d.log.warn({ changeId: s.id, tenantId: s.req.tenantId, problems: v.problems }, `change rejected by validation: ${s.req.summary}`);
    return { state: "rejected", route: "branch", changeId: s.id, tenantId: s.req.tenantId, summary: s.req.summary, stacks: s.stacks, problems: v.problems };
  }
  const indexFile = join(d.dataDir, "tmp", `index-${s.id}`);
  mkdirSync(dirname(indexFile), { recursive: true });
  let commit: string;
  try {
    commit = await d.repo.commitToBranch({ branch, parent, expectedOld: branchHead, files: s.req.files, message: commitMessage(s), indexFile });
  } finally {
    rmSync(indexFile, { force: true });
  }
  let pushed = false;
  let pullRequest: PullRequestRef | undefined;
  let note: string;
  const remote = d.remote;
  const pushTo = await d.pushRemote();
  if (pushTo) {
    try {
      await d.repo.push(pushTo, `refs/heads/${branch}:refs/heads/${branch}`);
      pushed = true;
    } catch (err) {
      note = `branch ${branch} committed locally; push to ${remote} failed: ${(err as Error).message}`;
    }
  }
  if (pushed && d.github) {
    try {
      pullRequest = await d.github.openPullRequest({
        head: branch,
        base: d.mainBranch(),
        title: `tenants: ${s.req.summary}`,
        body: pullRequestBody(s, commit),
      });
      note = `${pullRequest.created ? "opened" : "updated"} pull request ${pullRequest.url}; the stacks change when it is merged`;
    } catch (err) {
      note = `branch ${branch} pushed to ${remote}; opening the pull request failed: ${(err as Error).message}`;
    }
  } else if (pushed) {
    note = `branch ${branch} pushed to ${remote}; no GITHUB_TOKEN/TENANCY_GITHUB_REPO configured, so no pull request was opened: open one from ${branch}`;
  } else {
    note ??= remote
      ? `branch ${branch} committed in ${d.repoDir} only: there is no remote "${remote}" to push it to; push it and open a pull request`
      : `branch ${branch} committed in ${d.repoDir} only: no remote is configured for pushes (TENANCY_GIT_REMOTE); push it and open a pull request`;
  }
  await d.pool.query(
    "UPDATE changes SET state = 'proposed', commit_sha = $2, pushed = $3, pull_request = $4, note = $5, updated_at = now() WHERE id = $1",
    [s.id, commit, pushed, pullRequest ? JSON.stringify(pullRequest) : null, note],
  );
  d.log.info({ changeId: s.id, tenantId: s.req.tenantId, branch, commit, pushed, pullRequest: pullRequest?.url }, note);
  return {
    state: "proposed", route: "branch", changeId: s.id, tenantId: s.req.tenantId, summary: s.req.summary, stacks: s.stacks, branch, commit, pushed, note,
    ...(pullRequest ? { pullRequest } : {}),
  };
}
