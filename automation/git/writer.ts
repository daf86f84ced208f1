/**
 * The one writer of tenant files. Every change to TENANCY_REPO_DIR goes through `change()`,
 * which holds an in-process mutex and a PostgreSQL advisory lock (so a second control-plane
 * process on the same database waits too), and:
 *
 *  1. builds a Draft on the main branch head: the valid fleet (model/fleet.ts) plus what was
 *     staged so far, so placement (chooseCell) and CIDR allocation see earlier changes;
 *  2. validates each staged tenant file alone (parseTenantFile) when it is staged, then the whole
 *     resulting fleet (loadFleet on a copy of tenants/ and stacks/ with the changes applied);
 *     an invalid change is rejected with the model's problem lines and nothing is committed;
 *  3. commits each valid change on its own, citing its cause (the Stripe event id): pooled
 *     changes on the main branch, then queues runs of the stacks it touches (before and after)
 *     in the same transaction that marks the change committed; changes of dedicated tenants on
 *     branch `tenancy/<tenant>` with a pull request (GitHub API) or, without a token, a pushed
 *     branch, and no run (the stack changes when a person merges).
 *
 * A change is recorded as `planned` before git is touched, and its commit carries a
 * `Tenancy-Change: <id>` trailer, so a crash between commit and database is repaired on the next
 * session (recovery.ts: the commit is found and its runs queued, or the half-written files are
 * restored). The change contract is change.ts, the Draft draft.ts, a dedicated tenant's proposal
 * on its branch proposal.ts, the composed commits of pinned runs composed.ts.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Pool } from "pg";
import { loadFleet, type Fleet, type FleetDirs } from "../../infra/model/fleet.ts";
import { STACKS_DIR, tenantPath, TENANTS_DIR, validateWithChanges, writeAtomic } from "../../infra/model/fleetFiles/index.ts";
import { formatProblem } from "../../infra/model/problems.ts";
import { crashPoint } from "../crashPoints.ts";
import { lockKey, withTransaction } from "../db/tx.ts";
import type { Logger } from "../log.ts";
import type { EnqueuedRun, RunStore } from "../runs/store.ts";
import { ComposedCommits } from "./composed.ts";
import { branchOf, commitMessage, type ChangeRequest, type ChangeResult, type Staged } from "./change.ts";
import { Draft } from "./draft.ts";
import type { GitHubClient } from "./github.ts";
import { proposeOnBranch } from "./proposal.ts";
import { recoverInterruptedChanges } from "./recovery.ts";
import { GitRepo } from "./repo.ts";
import { chooseRunRoot } from "./runRoot.ts";
import { TreeCache } from "./treeCache.ts";

// The writer's callers use one module: the change contract, the Draft and the recovery's wording.
export {
  branchOf, CHANGE_TRAILER, type ChangeCause, type ChangeRequest, type ChangeResult, type ChangeRoute, type ChangeSource, type StageOutcome,
} from "./change.ts";
export { Draft } from "./draft.ts";
export { redoneBy } from "./recovery.ts";

const WRITER_LOCK = "saas-tenancy:git-writer";

export class DirtyWorkingCopyError extends Error {}
export class InvalidMainError extends Error {}


export interface GitWriterOptions {
  repoDir: string;
  /** Scratch space (validation copies, private index files, the runs' exported trees). */
  dataDir: string;
  /** Where runs' working directories are made (TENANCY_RUN_DIR); absent: chosen by runRoot.ts. */
  runDir?: string;
  pool: Pool;
  runs: RunStore;
  log: Logger;
  identity: { name: string; email: string };
  /** Remote pulled from before and pushed to after changes; absent: none (never pushes). */
  remote?: string;
  /** Main branch; default: the branch checked out in repoDir. */
  branch?: string;
  github?: GitHubClient;
}

export interface Checkout {
  dir: string;
  commit: string;
  release(): Promise<void>;
}

export class GitWriter {
  readonly repo: GitRepo;
  private chain: Promise<unknown> = Promise.resolve();
  /** Composed run commits and their refs (composed.ts). */
  private readonly composed: ComposedCommits;
  private cache?: { head: string; fleet: Fleet };
  private mainBranch?: string;
  private treeCache?: TreeCache;

  constructor(private readonly opts: GitWriterOptions) {
    this.repo = new GitRepo(opts.repoDir, opts.identity);
    this.composed = new ComposedCommits({ repo: this.repo, repoDir: opts.repoDir, branch: () => this.branch, head: () => this.head() });
  }

  get repoDir(): string {
    return this.opts.repoDir;
  }

  private get dirs(): Required<FleetDirs> {
    return { projectDir: this.opts.repoDir, tenantsDir: join(this.opts.repoDir, TENANTS_DIR), stacksDir: join(this.opts.repoDir, STACKS_DIR) };
  }

  /** Checks the working copy once at start-up; returns the main branch name. */
  async init(): Promise<string> {
    if (!(await this.repo.isRepo())) throw new Error(`TENANCY_REPO_DIR ${this.opts.repoDir} is not a git working copy; run git init (or clone the repository) there`);
    const current = await this.repo.currentBranch().catch(() => undefined);
    const branch = this.opts.branch ?? current;
    if (!branch) throw new Error(`TENANCY_REPO_DIR ${this.opts.repoDir} has a detached HEAD; check out the main branch or set TENANCY_GIT_BRANCH`);
    if (current !== branch) throw new Error(`TENANCY_REPO_DIR has ${current ?? "a detached HEAD"} checked out, but TENANCY_GIT_BRANCH is ${branch}; check out ${branch}`);
    this.mainBranch = branch;
    return branch;
  }

  /**
   * At start-up, before any worker runs: repairs what a crash left in the working copy and the
   * changes table (see recover()), so the tree is clean and a committed change's runs are queued
   * even when no new change arrives.
   */
  async recoverAtStart(): Promise<void> {
    await this.exclusive(() => this.recover());
  }

  /** The configured remote when the working copy has it; undefined: nothing is pulled or pushed. */
  private async pushRemote(): Promise<string | undefined> {
    const r = this.opts.remote;
    return r && (await this.repo.hasRemote(r)) ? r : undefined;
  }

  get branch(): string {
    if (!this.mainBranch) throw new Error("GitWriter.init() was not called");
    return this.mainBranch;
  }

  /** Runs `fn` with the writer lock held (in-process and across processes sharing the database). */
  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = async () => {
      const client = await this.opts.pool.connect();
      try {
        await client.query("SELECT pg_advisory_lock($1)", [lockKey(WRITER_LOCK)]);
        try {
          return await fn();
        } finally {
          await client.query("SELECT pg_advisory_unlock($1)", [lockKey(WRITER_LOCK)]).catch(() => undefined);
        }
      } finally {
        client.release();
      }
    };
    const next = this.chain.then(run, run);
    this.chain = next.catch(() => undefined);
    return next;
  }

  async head(): Promise<string> {
    const sha = await this.repo.branchHead(this.branch);
    if (!sha) throw new Error(`branch ${this.branch} has no commits in ${this.opts.repoDir}`);
    return sha;
  }

  /**
   * Plans changes against the current main head and commits them. `fn` stages changes on the
   * Draft; everything it staged is validated and committed (or rejected) before this resolves.
   */
  async change<T>(fn: (draft: Draft) => Promise<T> | T): Promise<{ value: T; results: ChangeResult[] }> {
    return this.exclusive(async () => {
      await this.prepare();
      const head = await this.head();
      const draft = new Draft(await this.fleetAt(head), this.opts.repoDir, head, async (id) => {
        const ref = `refs/heads/${branchOf(id)}`;
        return (await this.repo.resolve(ref)) ? this.repo.show(ref, tenantPath(id)) : undefined;
      });
      const value = await fn(draft);
      const { staged, rejected } = draft.take();
      const results: ChangeResult[] = rejected.map((r) => r.result);
      if (rejected.length > 0) await this.recordRejected(rejected);
      if (staged.length > 0) results.push(...(await this.apply(staged)));
      return { value, results };
    });
  }

  /**
   * The files of `commit` (default: the main head) for a run, in a directory of its own, with
   * node_modules linked from the repo. Nothing takes the writer's lock: the head is read from its
   * ref, which git updates atomically (a lock file renamed into place), so a run sees the branch
   * before or after a commit, never between; a commit whose runs are not queued yet is simply
   * applied early (its own run applies it again, without changes). The files are exported without
   * touching the repository (GitRepo.exportTree), so runs check out in parallel with each other
   * and with commits (a worktree per run serialized every run behind the commit lock, and reading
   * the head under the lock still queued 32 runs' checkouts one behind the other: BENCHMARKS.md,
   * rollout-1k). A commit's tree is exported once per process
   * and shared by every run at it (treeCache.ts): the run's directory is an overlay whose only
   * files of its own are the config files of `stacks` (the Pulumi CLI may write them).
   *
   * With `program` (the run's pinned program: a rollout's commit, or the program in force for the
   * stack, automation/rollouts/inForce.ts) and no `commit`: the program of `program` with the fleet
   * files (tenants/, stacks/) of `fleet` (default: the head), composed into a commit of its own on
   * no branch (composed.ts; `fleet` itself when its program is that commit's, so composing a
   * recorded composed commit again returns it), so a program committed after the pin never reaches
   * the stack while tenants created or changed meanwhile are kept (a cell's run at the pinned
   * commit's whole tree would delete them).
   */
  async checkout(name: string, commit?: string, program?: string, stacks: readonly string[] = [], fleet?: string): Promise<Checkout> {
    const sha = commit ?? (program ? await this.composed.compose(name, program, fleet) : await this.head());
    const lease = await this.trees.acquire(name, sha, stacks);
    return { dir: lease.dir, commit: sha, release: () => lease.release() };
  }

  /** Exports of commits' trees shared by runs (created on first use: a writer that runs nothing exports nothing). */
  get trees(): TreeCache {
    if (this.treeCache) return this.treeCache;
    const runRoot = chooseRunRoot(this.opts.dataDir, this.opts.runDir);
    this.opts.log.info({ runRoot: runRoot.dir, source: runRoot.source }, `runs' working directories under ${runRoot.dir} (${runRoot.source})`);
    this.treeCache = new TreeCache({
      root: join(this.opts.dataDir, "trees"),
      runsRoot: runRoot.dir,
      removeRunsRoot: runRoot.source === "RUNTIME_DIRECTORY" || runRoot.source === "/dev/shm",
      removeSync: runRoot.memory,
      exportTree: (commit, dir) => this.repo.exportTree(commit, dir),
      treeOf: (commit) => this.repo.treeOf(commit),
      // The program and the policy pack resolve their packages from the project's install.
      links: ["node_modules", join("policy", "node_modules")].map((path) => ({ path, target: join(this.opts.repoDir, path) })),
    });
    return this.treeCache;
  }

  /** Removes the exported trees (control-plane shutdown, after the run workers stopped). */
  closeTrees(): void {
    this.treeCache?.close();
  }

  /**
   * The full id of `commit` when it is on the main branch (after pulling, like a change), else
   * undefined and why: what a rollout may pin its runs to.
   */
  async commitOnBranch(commit: string): Promise<{ sha: string } | { problem: string }> {
    return this.exclusive(async () => {
      await this.prepare();
      const sha = await this.repo.resolve(commit);
      const remote = await this.pushRemote();
      if (!sha) return { problem: `commit ${commit} is not in the control plane's working copy ${this.opts.repoDir}${remote ? ` (pulled from ${remote})` : ""}; push it to ${this.branch} first` };
      const head = await this.head();
      if (!(await this.repo.isAncestor(sha, head))) return { problem: `commit ${sha.slice(0, 12)} is not on the ${this.branch} branch (head ${head.slice(0, 12)}); a rollout applies a commit of ${this.branch}` };
      return { sha };
    });
  }

  /**
   * Drops the refs keeping the composed commits of programs not in `needed` (composed.ts); called
   * when a rollout ends with the programs still in force (automation/rollouts/inForce.ts).
   */
  async releaseComposed(needed: ReadonlySet<string>): Promise<string[]> {
    return this.composed.release(needed, await this.pushRemote());
  }

  /**
   * Makes a pinned run's composed commit cloneable from the remote (composed.ts, publish): what a
   * runner that clones the repository at a commit needs (Pulumi Deployments). Without a remote,
   * an error saying so.
   */
  async publishComposed(program: string, commit: string): Promise<string> {
    const remote = await this.pushRemote();
    if (!remote) {
      throw new Error(
        `the composed commit ${commit.slice(0, 12)} (program of ${program.slice(0, 12)}, fleet files of the ${this.branch} head) exists only in the working copy ${this.opts.repoDir}, ` +
          "and no remote is configured to push it to for Pulumi Deployments; set TENANCY_GIT_REMOTE to the working copy's remote for TENANCY_DEPLOYMENTS_REPO_URL",
      );
    }
    return this.composed.publish(program, commit, remote);
  }

  // --- session preparation -------------------------------------------------------------------

  private async prepare(): Promise<void> {
    await this.recover();
    const pullFrom = await this.pushRemote();
    if (pullFrom) {
      try {
        await this.repo.pullFastForward(pullFrom, this.branch);
      } catch (err) {
        throw new Error(
          `cannot fast-forward ${this.branch} from ${pullFrom}: ${(err as Error).message}. ` +
            `The working copy and the remote diverged; reconcile them by hand (the control plane only fast-forwards)`,
          { cause: err },
        );
      }
    }
    const dirty = await this.repo.status([TENANTS_DIR, STACKS_DIR]);
    if (dirty.length > 0) {
      throw new DirtyWorkingCopyError(
        `the working copy ${this.opts.repoDir} has uncommitted changes in tenants/ or stacks/ (${dirty.slice(0, 5).join("; ")}); ` +
          `commit or discard them: the control plane only writes on a clean tree`,
      );
    }
  }

  /** Repairs what a crash between git and the database left behind (recovery.ts). */
  private async recover(): Promise<void> {
    await recoverInterruptedChanges({
      pool: this.opts.pool, runs: this.opts.runs, log: this.opts.log, repo: this.repo, repoDir: this.opts.repoDir,
      branch: () => this.branch, head: () => this.head(), pushRemote: () => this.pushRemote(),
    });
  }

  /** The valid fleet of a main-branch commit (the working copy, which is clean at that commit). */
  private async fleetAt(head: string): Promise<Fleet> {
    if (this.cache?.head === head) return this.cache.fleet;
    const { fleet, problems } = loadFleet(this.dirs);
    if (!fleet) {
      throw new InvalidMainError(
        `${this.branch} (${head.slice(0, 12)}) does not validate, so no change can be checked against it; fix these first:\n` +
          problems.map(formatProblem).join("\n"),
      );
    }
    this.cache = { head, fleet };
    return fleet;
  }

  // --- validation ------------------------------------------------------------------------------

  /** The fleet of the working copy with `layers` applied in order (validated in memory, nothing written). */
  private validate(layers: readonly Readonly<Record<string, string | null>>[]): { fleet?: Fleet; problems: string[] } {
    return validateWithChanges(this.dirs, layers);
  }

  // --- applying --------------------------------------------------------------------------------

  private async recordPlanned(staged: readonly Staged[]): Promise<void> {
    await withTransaction(this.opts.pool, async (client) => {
      for (const s of staged) {
        await client.query(
          `INSERT INTO changes (id, tenant_id, summary, source, cause_ids, route, state, paths, stacks, branch)
           VALUES ($1, $2, $3, $4, $5, $6, 'planned', $7, $8, $9)`,
          [s.id, s.req.tenantId, s.req.summary, s.req.cause.source, [...s.req.cause.ids], s.route, Object.keys(s.req.files), s.stacks,
            s.route === "branch" ? branchOf(s.req.tenantId) : null],
        );
      }
    });
  }

  /** Changes refused before validation of the fleet (the tenant file alone is invalid). */
  private async recordRejected(rejected: readonly { req: ChangeRequest; result: ChangeResult & { state: "rejected" } }[]): Promise<void> {
    await withTransaction(this.opts.pool, async (client) => {
      for (const { req, result } of rejected) {
        await client.query(
          `INSERT INTO changes (id, tenant_id, summary, source, cause_ids, route, state, paths, stacks, problems)
           VALUES ($1, $2, $3, $4, $5, $6, 'rejected', $7, '{}', $8)`,
          [result.changeId, req.tenantId, req.summary, req.cause.source, [...req.cause.ids], result.route, Object.keys(req.files), JSON.stringify(result.problems)],
        );
      }
    });
    for (const { result } of rejected) {
      this.opts.log.warn({ changeId: result.changeId, tenantId: result.tenantId, problems: result.problems }, `change rejected: ${result.summary}`);
    }
  }

  private async apply(staged: readonly Staged[]): Promise<ChangeResult[]> {
    await this.recordPlanned(staged);
    const byId = new Map<string, ChangeResult>();
    const main = staged.filter((s) => s.route === "main");
    if (main.length > 0) for (const r of await this.applyMain(main)) byId.set(r.changeId, r);
    for (const s of staged.filter((x) => x.route === "branch")) byId.set(s.id, await this.applyBranch(s));
    return staged.map((s) => byId.get(s.id)!);
  }

  private async applyMain(staged: readonly Staged[]): Promise<ChangeResult[]> {
    // Validate the whole batch once; only when that fails find the culprits one by one.
    const accepted: Staged[] = [];
    const rejected: (ChangeResult & { state: "rejected" })[] = [];
    const all = this.validate(staged.map((s) => s.req.files));
    if (all.fleet) accepted.push(...staged);
    else {
      for (const s of staged) {
        const v = this.validate([...accepted.map((a) => a.req.files), s.req.files]);
        if (v.fleet) accepted.push(s);
        else rejected.push({ state: "rejected", changeId: s.id, tenantId: s.req.tenantId, summary: s.req.summary, route: "main", stacks: s.stacks, problems: v.problems });
      }
    }
    if (rejected.length > 0) {
      await withTransaction(this.opts.pool, async (client) => {
        for (const r of rejected) {
          await client.query("UPDATE changes SET state = 'rejected', problems = $2, updated_at = now() WHERE id = $1", [r.changeId, JSON.stringify(r.problems)]);
        }
      });
      for (const r of rejected) this.opts.log.warn({ changeId: r.changeId, tenantId: r.tenantId, problems: r.problems }, `change rejected by validation: ${r.summary}`);
    }

    for (const s of accepted) {
      const added: string[] = [];
      for (const [p, content] of Object.entries(s.req.files)) {
        const abs = join(this.opts.repoDir, p);
        if (content !== null && !existsSync(abs)) added.push(p);
        writeAtomic(abs, content);
      }
      crashPoint("git.written");
      await this.repo.commitPaths(Object.keys(s.req.files), commitMessage(s), added);
    }
    const shas = await this.repo.recentCommits(`refs/heads/${this.branch}`, accepted.length);
    const committed = accepted.map((s, i) => ({ s, commit: shas[i]! }));
    for (const { s, commit } of committed) {
      this.opts.log.info({ changeId: s.id, commit, tenantId: s.req.tenantId, causes: s.req.cause.ids }, `committed: ${s.req.summary}`);
    }
    this.cache = undefined;
    if (accepted.length === staged.length && all.fleet && committed.length > 0) {
      this.cache = { head: committed[committed.length - 1]!.commit, fleet: all.fleet };
    }

    crashPoint("git.committed");

    let pushed = false;
    let note: string | undefined;
    const pushTo = committed.length > 0 ? await this.pushRemote() : undefined;
    if (pushTo) {
      crashPoint("git.pushing");
      try {
        await this.repo.push(pushTo, `refs/heads/${this.branch}:refs/heads/${this.branch}`);
        pushed = true;
      } catch (err) {
        note = `committed locally; push to ${pushTo} failed: ${(err as Error).message}`;
        this.opts.log.warn({ err: { message: (err as Error).message } }, "push of the main branch failed; the next change retries it");
      }
    }

    const results: ChangeResult[] = [...rejected];
    await withTransaction(this.opts.pool, async (client) => {
      for (const { s, commit } of committed) {
        const runs: EnqueuedRun[] = [];
        for (const stack of s.stacks) runs.push(await this.opts.runs.enqueue(client, stack, { changeId: s.id, reason: s.req.summary, ...(s.req.cause.apiKey ? { apiKey: s.req.cause.apiKey } : {}) }));
        await client.query("UPDATE changes SET state = 'committed', commit_sha = $2, pushed = $3, note = $4, updated_at = now() WHERE id = $1", [
          s.id, commit, pushed, note ?? null,
        ]);
        results.push({
          state: "committed", route: "main", changeId: s.id, tenantId: s.req.tenantId, summary: s.req.summary, stacks: s.stacks, commit, runs, pushed,
          ...(note ? { note } : {}),
        });
      }
    });
    if (committed.length > 0) crashPoint("run.queued");
    if (committed.length > 0) this.opts.runs.jobsSent();
    return results;
  }

  /** A dedicated tenant's change: proposed on its branch (proposal.ts). */
  private async applyBranch(s: Staged): Promise<ChangeResult> {
    const o = this.opts;
    return proposeOnBranch(
      {
        repo: this.repo, pool: o.pool, log: o.log, repoDir: o.repoDir, dataDir: o.dataDir, ...(o.remote !== undefined ? { remote: o.remote } : {}),
        ...(o.github ? { github: o.github } : {}), mainBranch: () => this.branch, head: () => this.head(), pushRemote: () => this.pushRemote(),
        validate: (layers) => this.validate(layers),
      },
      s,
    );
  }
}
