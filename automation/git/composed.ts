/**
 * Composed run commits (docs/rollouts.md, "Which commit a run applies"): the program (everything
 * but tenants/ and stacks/) of a pinned commit with the fleet files of the main branch's head,
 * committed on no branch, and the refs that keep those commits from git gc.
 */
import { STACKS_DIR, TENANTS_DIR } from "../../infra/model/fleetFiles/index.ts";
import type { GitRepo } from "./repo.ts";

/** Refs keeping a rollout's composed commits reachable: `<prefix><program commit>/<composed commit>`. */
export const COMPOSED_REFS = "refs/tenancy/rollouts/";

export interface ComposedCommitsOptions {
  repo: GitRepo;
  repoDir: string;
  /** The main branch's name and head (GitWriter). */
  branch: () => string;
  head: () => Promise<string>;
}

export class ComposedCommits {
  /** Composed run commits by `${program}:${head}` (compose), the newest 16. */
  private composed = new Map<string, Promise<string>>();

  constructor(private readonly opts: ComposedCommitsOptions) {}

  /** The head's fleet files over the program of `program` (GitWriter.checkout); `name` names the run in errors and messages. */
  async compose(name: string, program: string): Promise<string> {
    const { repo } = this.opts;
    const head = await this.opts.head();
    const programSha = program === head ? head : await repo.resolve(program);
    if (!programSha) {
      throw new Error(`${name}: the program commit ${program} is not in the working copy ${this.opts.repoDir}; the rollout's commit must be on the ${this.opts.branch()} branch the control plane commits to`);
    }
    if (programSha === head) return head;
    // A wave's runs share one (program, head) pair: compose it once (a handful of git processes).
    const key = `${programSha}:${head}`;
    let composed = this.composed.get(key);
    if (!composed) {
      composed = repo
        .composeCommit(
          programSha,
          head,
          [TENANTS_DIR, STACKS_DIR],
          `saas-tenancy control plane: program of ${programSha.slice(0, 12)}, ${TENANTS_DIR}/ and ${STACKS_DIR}/ of ${head.slice(0, 12)} (first for ${name})\n`,
        )
        .then(async (sha) => {
          // On no branch, the composed commit would be pruned by git gc (after gc.pruneExpire, two
          // weeks by default) while runs still use it: a ref keeps it until the rollout ends.
          if (sha !== head) await repo.run(["update-ref", `${COMPOSED_REFS}${programSha}/${sha}`, sha]);
          return sha;
        });
      composed.catch(() => this.composed.delete(key));
      this.composed.set(key, composed);
      if (this.composed.size > 16) this.composed.delete(this.composed.keys().next().value!);
    }
    return composed;
  }

  /**
   * Drops the refs that kept the composed commits of `programCommit`'s rollout (compose): called
   * when the rollout ends. Commits a run recorded stay in the run records; git gc may prune them.
   */
  async release(programCommit: string): Promise<string[]> {
    const { repo } = this.opts;
    const prefix = `${COMPOSED_REFS}${programCommit}/`;
    const refs = (await repo.run(["for-each-ref", "--format=%(refname)", prefix])).stdout.split("\n").filter(Boolean);
    for (const ref of refs) await repo.run(["update-ref", "-d", ref]);
    for (const key of [...this.composed.keys()]) if (key.startsWith(`${programCommit}:`)) this.composed.delete(key);
    return refs;
  }
}
