/**
 * Composed run commits (docs/rollouts.md, "Which commit a run applies"): the program (everything
 * but tenants/ and stacks/) of a pinned program commit with the fleet files of a main-branch commit
 * (the head a run read), committed on no branch, and the refs that keep those commits from git gc.
 *
 * One ref per program commit, `refs/tenancy/programs/<program commit>`, whatever the number of
 * stacks pinned to it: each composition of a program is committed with the head as its first
 * parent and the program's previous composition (the ref's old value) as its second, and the ref
 * moves to it by compare-and-swap. Every composition of a program so stays reachable from that one
 * ref (a run taken over applies the commit it recorded, however old), the ref only ever moves
 * forward (pushing it to a remote is a fast-forward), and dropping the ref when no stack's program
 * in force is that program any more releases them all (release).
 */
import { STACKS_DIR, TENANTS_DIR } from "../../infra/model/fleetFiles/index.ts";
import type { GitRepo } from "./repo.ts";

/** The ref keeping the compositions of a program commit reachable: `<prefix><program commit>`. */
export const PROGRAM_REFS = "refs/tenancy/programs/";
/**
 * Where a program's compositions are pushed for a runner that clones the remote (Pulumi Deployments):
 * branches `<prefix><program commit>`, since a clone fetches branches and tags only (`git clone`'s
 * default refspec; the Go Automation API clones with go-git the same way and then checks the commit
 * out, pulumi/pulumi sdk/go/auto/git.go), so a commit reachable from refs/tenancy/ alone is not there.
 */
export const PROGRAM_BRANCHES = "refs/heads/tenancy/programs/";
/** Refs of earlier versions, one per composed commit: `<prefix><program commit>/<composed commit>`; dropped by release. */
export const LEGACY_COMPOSED_REFS = "refs/tenancy/rollouts/";
const ZERO = "0".repeat(40);
const FULL_ID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
/** Compare-and-swap attempts of a program's ref (each lost only to another composition of the same program). */
const REF_ATTEMPTS = 8;

export interface ComposedCommitsOptions {
  repo: GitRepo;
  repoDir: string;
  /** The main branch's name and head (GitWriter). */
  branch: () => string;
  head: () => Promise<string>;
}

export class ComposedCommits {
  /** Composed run commits by `${program}:${fleet}` (compose), the newest 16. */
  private composed = new Map<string, Promise<string>>();

  constructor(private readonly opts: ComposedCommitsOptions) {}

  /**
   * The fleet files (tenants/, stacks/) of `fleet` (default: the head) over the program of
   * `program` (GitWriter.checkout); `fleet` itself when its program is `program`'s, so composing a
   * composed commit of `program` again returns it. `name` names the run in errors and messages.
   */
  async compose(name: string, program: string, fleet?: string): Promise<string> {
    const from = fleet ?? (await this.opts.head());
    if (program === from) return from;
    // A wave's runs share one (program, head) pair, so do the runs of one tenant change at the
    // same pin: decide and compose it once per process.
    const key = `${program}:${from}`;
    let composed = this.composed.get(key);
    if (!composed) {
      composed = this.decide(name, program, from);
      composed.catch(() => this.composed.delete(key));
      this.composed.set(key, composed);
      if (this.composed.size > 16) this.composed.delete(this.composed.keys().next().value!);
    }
    return composed;
  }

  /** `from` when its program is `program`'s (one git process for full commit ids), else a composition. */
  private async decide(name: string, program: string, from: string): Promise<string> {
    const { repo } = this.opts;
    const programSha = FULL_ID.test(program) ? program : await repo.resolve(program);
    const fromSha = FULL_ID.test(from) ? from : await repo.resolve(from);
    const missing = () => new Error(`${name}: the program commit ${program} is not in the working copy ${this.opts.repoDir}; a program a run is pinned to must be a commit of the ${this.opts.branch()} branch the control plane commits to`);
    if (!programSha) throw missing();
    if (!fromSha) throw new Error(`${name}: the commit ${from} whose fleet files the run applies is not in the working copy ${this.opts.repoDir}`);
    // The common case outside a program change: the same program, nothing to compose.
    const same = await repo.run(["diff-tree", "-r", "--quiet", programSha, fromSha, "--", ".", `:(exclude)${TENANTS_DIR}`, `:(exclude)${STACKS_DIR}`], { okCodes: [1, 128] });
    if (same.code === 128) {
      if (!(await repo.resolve(programSha))) throw missing();
      throw new Error(`${name}: comparing the programs of ${programSha.slice(0, 12)} and ${fromSha.slice(0, 12)} failed: ${same.stderr.trim()}`);
    }
    return same.code === 0 ? fromSha : this.commit(name, programSha, fromSha);
  }

  private async commit(name: string, program: string, fromCommit: string): Promise<string> {
    const { repo } = this.opts;
    const tree = await repo.composeTree(program, fromCommit, [TENANTS_DIR, STACKS_DIR]);
    const ref = `${PROGRAM_REFS}${program}`;
    const message = `saas-tenancy control plane: program of ${program.slice(0, 12)}, ${TENANTS_DIR}/ and ${STACKS_DIR}/ of ${fromCommit.slice(0, 12)} (first for ${name})\n`;
    for (let attempt = 1; ; attempt++) {
      const tip = await repo.resolve(ref);
      // The same composition made before (another process, or before a restart): the same commit.
      if (tip && (await repo.out(["rev-parse", `${tip}^{tree}`, `${tip}^1`])) === `${tree}\n${fromCommit}`) return tip;
      const sha = await repo.out(["commit-tree", tree, "-p", fromCommit, ...(tip ? ["-p", tip] : []), "-F", "-"], { input: message });
      // On no branch, the composed commit would be pruned by git gc (after gc.pruneExpire, two weeks
      // by default) while runs still use it: the program's ref keeps it.
      const moved = await repo.run(["update-ref", ref, sha, tip ?? ZERO], { okCodes: [1, 128] });
      if (moved.code === 0) return sha;
      if (attempt >= REF_ATTEMPTS) throw new Error(`${name}: could not move ${ref} to the composed commit ${sha.slice(0, 12)} after ${attempt} attempts: ${moved.stderr.trim()}`);
    }
  }

  /**
   * Pushes the compositions of `program` (its ref, which `commit` must be under) to `remote` as the
   * branch PROGRAM_BRANCHES<program>, so a runner cloning the remote can check `commit` out. Each
   * composition descends from the previous one, so the push is a fast-forward; only a branch left
   * from before its program's ref was released and made again is replaced.
   */
  async publish(program: string, commit: string, remote: string): Promise<string> {
    const { repo } = this.opts;
    const ref = `${PROGRAM_REFS}${program}`;
    const tip = await repo.resolve(ref);
    if (!tip || !(await repo.isAncestor(commit, tip))) {
      throw new Error(`the composed commit ${commit.slice(0, 12)} is not kept by ${ref} in ${this.opts.repoDir}, so it cannot be pushed for a runner that clones ${remote}`);
    }
    const branch = `${PROGRAM_BRANCHES}${program}`;
    try {
      await repo.push(remote, `${tip}:${branch}`);
    } catch {
      await repo.push(remote, `+${tip}:${branch}`);
    }
    return branch;
  }

  /** The program commits whose compositions a ref keeps (PROGRAM_REFS and the legacy refs). */
  async kept(): Promise<Map<string, string[]>> {
    const out = (await this.opts.repo.run(["for-each-ref", "--format=%(refname)", PROGRAM_REFS, LEGACY_COMPOSED_REFS])).stdout.split("\n").filter(Boolean);
    const byProgram = new Map<string, string[]>();
    for (const ref of out) {
      const program = ref.startsWith(PROGRAM_REFS) ? ref.slice(PROGRAM_REFS.length) : ref.slice(LEGACY_COMPOSED_REFS.length).split("/")[0]!;
      byProgram.set(program, [...(byProgram.get(program) ?? []), ref]);
    }
    return byProgram;
  }

  /**
   * Drops the refs of every program commit not in `needed` (the programs in force and those of
   * queued and running runs: automation/rollouts/inForce.ts), so git gc may prune their
   * compositions, and with `remote` the branches publish pushed there for them; returns the refs
   * dropped. Run records keep the commit ids.
   */
  async release(needed: ReadonlySet<string>, remote?: string): Promise<string[]> {
    const dropped: string[] = [];
    for (const [program, refs] of await this.kept()) {
      if (needed.has(program)) continue;
      for (const ref of refs) await this.opts.repo.run(["update-ref", "-d", ref]);
      dropped.push(...refs);
      for (const key of [...this.composed.keys()]) if (key.startsWith(`${program}:`)) this.composed.delete(key);
    }
    if (remote) {
      // The branches pushed for a cloning runner (publish) go with their programs' refs.
      const listed = (await this.opts.repo.run(["ls-remote", "--heads", remote, `${PROGRAM_BRANCHES}*`])).stdout.split("\n").filter(Boolean);
      const gone = listed.map((l) => l.split("\t")[1]!).filter((b) => !needed.has(b.slice(PROGRAM_BRANCHES.length)));
      if (gone.length > 0) await this.opts.repo.run(["push", "--quiet", remote, ...gone.map((b) => `:${b}`)]);
      dropped.push(...gone.map((b) => `${remote}:${b}`));
    }
    return dropped;
  }
}
