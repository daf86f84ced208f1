/**
 * Real git, run with child_process.execFile (no shell: arguments are never interpreted).
 * GitRepo knows nothing about tenants; the writer (writer.ts) decides what to commit and keeps
 * every call serialized.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crashPoint } from "../crashPoints.ts";
import { RefFiles } from "./refs.ts";

export class GitError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly stderr: string,
    readonly code: number | string | null,
  ) {
    super(`git ${args.join(" ")} failed${code === null ? "" : ` (exit ${code})`}: ${stderr.trim().split("\n").slice(-3).join(" / ") || "no output"}`);
  }
}

export interface GitIdentity {
  name: string;
  email: string;
}

export interface GitRunOptions {
  input?: string;
  env?: Record<string, string>;
  /** Exit codes that are answers rather than failures (e.g. 1 for "not found"). */
  okCodes?: readonly number[];
}

export interface GitOutput {
  stdout: string;
  stderr: string;
  code: number;
}

const ZERO_SHA = "0000000000000000000000000000000000000000";

export class GitRepo {
  private refFiles?: RefFiles;

  constructor(
    readonly dir: string,
    private readonly identity: GitIdentity,
  ) {}

  run(args: readonly string[], opts: GitRunOptions = {}): Promise<GitOutput> {
    const env = {
      ...process.env,
      GIT_TERMINAL_PROMPT: "0",
      GIT_AUTHOR_NAME: this.identity.name,
      GIT_AUTHOR_EMAIL: this.identity.email,
      GIT_COMMITTER_NAME: this.identity.name,
      GIT_COMMITTER_EMAIL: this.identity.email,
      ...opts.env,
    };
    return new Promise((resolve, reject) => {
      const child = execFile("git", [...args], { cwd: this.dir, env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as NodeJS.ErrnoException).code === "number" ? Number((err as NodeJS.ErrnoException).code) : -1) : 0;
        if (err && !(opts.okCodes ?? []).includes(code)) {
          reject(new GitError(args, String(stderr) || err.message, (err as NodeJS.ErrnoException).code ?? null));
          return;
        }
        resolve({ stdout: String(stdout), stderr: String(stderr), code });
      });
      if (opts.input !== undefined) child.stdin?.end(opts.input);
    });
  }

  async out(args: readonly string[], opts?: GitRunOptions): Promise<string> {
    return (await this.run(args, opts)).stdout.trim();
  }

  async isRepo(): Promise<boolean> {
    const r = await this.run(["rev-parse", "--is-inside-work-tree"], { okCodes: [128] });
    return r.code === 0 && r.stdout.trim() === "true";
  }

  currentBranch(): Promise<string> {
    return this.out(["symbolic-ref", "--short", "HEAD"]);
  }

  /** The commit a ref points to, or undefined when it does not exist. */
  async resolve(ref: string): Promise<string | undefined> {
    const r = await this.run(["rev-parse", "--verify", "--quiet", `${ref}^{commit}`], { okCodes: [1, 128] });
    return r.code === 0 ? r.stdout.trim() : undefined;
  }

  /**
   * The commit `refs/heads/<branch>` points to, or undefined when there is no such branch: read
   * from the ref files when they can be read plainly (refs.ts: no git process per run), else git.
   */
  async branchHead(branch: string): Promise<string | undefined> {
    const ref = `refs/heads/${branch}`;
    this.refFiles ??= new RefFiles(this);
    return (await this.refFiles.read(ref)) ?? this.resolve(ref);
  }

  /** Porcelain status lines for paths (tracked changes and untracked files). */
  async status(paths: readonly string[]): Promise<string[]> {
    const out = await this.out(["status", "--porcelain=v1", "--untracked-files=all", "--", ...paths]);
    return out === "" ? [] : out.split("\n");
  }

  /** A file's content at a commit, or undefined when the commit has no such file. */
  async show(ref: string, path: string): Promise<string | undefined> {
    const r = await this.run(["cat-file", "-p", `${ref}:${path}`], { okCodes: [1, 128] });
    return r.code === 0 ? r.stdout : undefined;
  }

  /**
   * Commits exactly `paths` as they are in the working copy (edits, deletions; `added` are new
   * files, which git must be told about first), whatever else is staged. One or two processes:
   * the caller reads the new commits' ids afterwards with `recentCommits`.
   */
  async commitPaths(paths: readonly string[], message: string, added: readonly string[] = []): Promise<void> {
    if (added.length > 0) await this.run(["add", "--", ...added]);
    crashPoint("git.staged");
    await this.run(["commit", "--quiet", "--no-verify", "--file=-", "--", ...paths], { input: message });
  }

  /**
   * Puts `paths` back as they are in `commit`, in the index AND the working tree: a file absent
   * from `commit` leaves both (a crash after `git add` of a new file left it staged: `AD`).
   */
  async restorePaths(commit: string, paths: readonly string[]): Promise<void> {
    if (paths.length === 0) return;
    // Index first: entries of files absent from `commit` are removed, others reset to it.
    await this.run(["reset", "--quiet", commit, "--", ...paths]);
    for (const p of paths) {
      const content = await this.show(commit, p);
      if (content === undefined) {
        await this.run(["rm", "--cached", "--quiet", "--ignore-unmatch", "--", p]);
        rmSync(join(this.dir, p), { force: true });
      } else {
        await this.run(["checkout", commit, "--", p]);
      }
    }
  }

  /** The last `n` commits of `ref`, oldest first. */
  async recentCommits(ref: string, n: number): Promise<string[]> {
    if (n === 0) return [];
    const out = await this.out(["rev-list", `--max-count=${n}`, ref]);
    return out.split("\n").reverse();
  }

  /**
   * Commits `files` on top of `parent` to `branch` without touching the working copy or its
   * index (a private index file): the way a change reaches a branch that is not checked out.
   * `expectedOld` guards the ref update (compare-and-swap).
   */
  async commitToBranch(opts: {
    branch: string;
    parent: string;
    expectedOld: string | undefined;
    files: Readonly<Record<string, string | null>>;
    message: string;
    indexFile: string;
  }): Promise<string> {
    const env = { GIT_INDEX_FILE: opts.indexFile };
    await this.run(["read-tree", opts.parent], { env });
    for (const [path, content] of Object.entries(opts.files)) {
      if (content === null) {
        await this.run(["update-index", "--force-remove", "--", path], { env });
      } else {
        const blob = await this.out(["hash-object", "-w", "--stdin"], { input: content });
        await this.run(["update-index", "--add", "--cacheinfo", `100644,${blob},${path}`], { env });
      }
    }
    const tree = await this.out(["write-tree"], { env });
    const commit = await this.out(["commit-tree", tree, "-p", opts.parent, "-F", "-"], { input: opts.message });
    await this.run(["update-ref", `refs/heads/${opts.branch}`, commit, opts.expectedOld ?? ZERO_SHA]);
    return commit;
  }

  async isAncestor(ancestor: string, of: string): Promise<boolean> {
    return (await this.run(["merge-base", "--is-ancestor", ancestor, of], { okCodes: [1] })).code === 0;
  }

  async remotes(): Promise<string[]> {
    const out = await this.out(["remote"]);
    return out === "" ? [] : out.split("\n");
  }

  async hasRemote(name: string): Promise<boolean> {
    return (await this.remotes()).includes(name);
  }

  async remoteUrl(name: string): Promise<string | undefined> {
    const r = await this.run(["remote", "get-url", name], { okCodes: [2, 128] });
    return r.code === 0 ? r.stdout.trim() : undefined;
  }

  async push(remote: string, refspec: string, force = false): Promise<void> {
    await this.run(["push", "--quiet", ...(force ? ["--force-with-lease"] : []), remote, refspec]);
  }

  /** Fast-forwards the checked-out branch to the remote's; fails when they diverged. */
  async pullFastForward(remote: string, branch: string): Promise<void> {
    await this.run(["fetch", "--quiet", remote, branch]);
    await this.run(["merge", "--ff-only", "--quiet", "FETCH_HEAD"]);
  }

  /** Newest commit on `ref` whose message contains `text`, or undefined. */
  async findCommit(ref: string, text: string, depth = 500): Promise<string | undefined> {
    const out = await this.out(["log", `-n${depth}`, "--format=%H", "--fixed-strings", `--grep=${text}`, ref]);
    return out === "" ? undefined : out.split("\n")[0];
  }

  /** The id of `commit`'s tree: what the run tree cache (treeCache.ts) keys its exports by. */
  async treeOf(commit: string): Promise<string> {
    return (await this.run(["rev-parse", "--verify", `${commit}^{tree}`])).stdout.trim();
  }

  /**
   * Writes the files of `commit` into `dir` (which need not exist) without touching the repository:
   * a throwaway index file, `read-tree`, then `checkout-index --prefix`. Unlike a worktree this
   * takes no lock in the repository, so runs can check out while the writer commits.
   */
  async exportTree(commit: string, dir: string): Promise<void> {
    const index = join(tmpdir(), `tenancy-export-${randomUUID()}.index`);
    try {
      await this.run(["read-tree", commit], { env: { GIT_INDEX_FILE: index } });
      await this.run(["checkout-index", "--all", "--force", `--prefix=${dir.endsWith("/") ? dir : `${dir}/`}`], { env: { GIT_INDEX_FILE: index } });
    } finally {
      rmSync(index, { force: true });
    }
  }

  /**
   * The tree of `base` with the directories `dirs` replaced by theirs in `from` (a directory absent
   * from `from` is absent from the result), written to the object store. Built in a throwaway index
   * (read-tree, rm --cached, read-tree --prefix, write-tree), so the repository's own index and
   * working tree are never touched.
   */
  async composeTree(base: string, from: string, dirs: readonly string[]): Promise<string> {
    const index = join(tmpdir(), `tenancy-compose-${randomUUID()}.index`);
    const env = { GIT_INDEX_FILE: index };
    try {
      await this.run(["read-tree", `${base}^{tree}`], { env });
      for (const d of dirs) {
        await this.run(["rm", "-r", "--cached", "--quiet", "--force", "--ignore-unmatch", "--", d], { env });
        const sub = await this.run(["rev-parse", "--verify", "--quiet", `${from}:${d}`], { okCodes: [1, 128] });
        if (sub.code === 0) await this.run(["read-tree", `--prefix=${d}/`, sub.stdout.trim()], { env });
      }
      return await this.out(["write-tree"], { env });
    } finally {
      rmSync(index, { force: true });
    }
  }

  async addWorktree(dir: string, commit: string): Promise<void> {
    await this.run(["worktree", "add", "--detach", "--force", dir, commit]);
  }

  async removeWorktree(dir: string): Promise<void> {
    await this.run(["worktree", "remove", "--force", dir], { okCodes: [128] });
  }

  async pruneWorktrees(): Promise<void> {
    await this.run(["worktree", "prune"]);
  }

  /** Files (relative paths) under `dir` at `ref`. */
  async listFiles(ref: string, dir: string): Promise<string[]> {
    const out = await this.out(["ls-tree", "-r", "--name-only", ref, "--", dir]);
    return out === "" ? [] : out.split("\n");
  }
}
