/**
 * A branch's head read from the ref files (automation/git/refs.ts): the same commit git reports,
 * loose or packed, from a linked worktree too, without a git process per read; whatever is not a
 * plain ref file goes back to git.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RefFiles, type RefGit } from "../../automation/git/refs.ts";
import { GitRepo, type GitRunOptions } from "../../automation/git/repo.ts";

let dir: string;
const env = { ...process.env, GIT_AUTHOR_NAME: "T", GIT_AUTHOR_EMAIL: "t@test.invalid", GIT_COMMITTER_NAME: "T", GIT_COMMITTER_EMAIL: "t@test.invalid" };
const git = (...args: string[]) => execFileSync("git", args, { cwd: dir, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
const commit = (n: number) => {
  writeFileSync(join(dir, "file.txt"), `${n}\n`);
  git("add", "file.txt");
  git("commit", "--quiet", "-m", `commit ${n}`);
  return git("rev-parse", "HEAD");
};

/** A GitRepo that counts the git processes it starts. */
class CountingRepo extends GitRepo {
  calls: string[][] = [];
  override run(args: readonly string[], opts?: GitRunOptions) {
    this.calls.push([...args]);
    return super.run(args, opts);
  }
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "tenancy-refs-"));
  git("init", "--quiet", "--initial-branch=main");
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("GitRepo.branchHead", { timeout: 60_000 }, () => {
  it("reads a loose ref: git's answer, and no git process after the first read", async () => {
    const repo = new CountingRepo(dir, { name: "t", email: "t@test.invalid" });
    const first = commit(1);
    expect(await repo.branchHead("main")).toBe(first);
    const setUp = repo.calls.length;
    expect(repo.calls.map((c) => c[0])).toEqual(["config", "rev-parse"]);
    const second = commit(2);
    expect(await repo.branchHead("main")).toBe(second);
    expect(await repo.branchHead("main")).toBe(git("rev-parse", "refs/heads/main"));
    expect(repo.calls.length).toBe(setUp);
  });

  it("reads packed-refs once the ref is packed, and a newer loose ref over its packed line", async () => {
    const repo = new CountingRepo(dir, { name: "t", email: "t@test.invalid" });
    const first = commit(1);
    git("branch", "other");
    git("pack-refs", "--all");
    expect(await repo.branchHead("main")).toBe(first);
    expect(await repo.branchHead("other")).toBe(first);
    const second = commit(2);
    expect(await repo.branchHead("main")).toBe(second);
    expect(await repo.branchHead("other")).toBe(first);
    expect(repo.calls.map((c) => c[0])).toEqual(["config", "rev-parse"]);
  });

  it("answers undefined for a branch that does not exist (git asked, as before)", async () => {
    const repo = new CountingRepo(dir, { name: "t", email: "t@test.invalid" });
    commit(1);
    expect(await repo.branchHead("nope")).toBeUndefined();
    expect(repo.calls.at(-1)).toEqual(["rev-parse", "--verify", "--quiet", "refs/heads/nope^{commit}"]);
  });

  it("reads the common directory's refs from a linked worktree", async () => {
    commit(1);
    const wt = `${dir}-wt`;
    git("worktree", "add", "--quiet", "-b", "side", wt);
    try {
      const repo = new CountingRepo(wt, { name: "t", email: "t@test.invalid" });
      const main = commit(2);
      expect(await repo.branchHead("main")).toBe(main);
      expect(repo.calls.filter((c) => c[0] === "rev-parse" && c[1] === "--verify")).toEqual([]);
    } finally {
      git("worktree", "remove", "--force", wt);
    }
  });

  it("goes back to git for a symbolic ref and for a ref file that holds no object id", async () => {
    const repo = new CountingRepo(dir, { name: "t", email: "t@test.invalid" });
    const first = commit(1);
    git("symbolic-ref", "refs/heads/alias", "refs/heads/main");
    expect(await repo.branchHead("alias")).toBe(first);
    expect(repo.calls.at(-1)).toEqual(["rev-parse", "--verify", "--quiet", "refs/heads/alias^{commit}"]);
    writeFileSync(join(dir, ".git", "refs", "heads", "broken"), "not an object id\n");
    const files = new RefFiles(repo);
    expect(await files.read("refs/heads/broken")).toBeUndefined();
    expect(await files.read("refs/heads/main")).toBe(first);
  });
});

describe("RefFiles", () => {
  it("never reads files of a repository whose refs are not files (reftable), and asks git for the layout once", async () => {
    const calls: string[][] = [];
    const reftable: RefGit = {
      dir,
      run: async (args) => {
        calls.push([...args]);
        return args[0] === "config" ? { stdout: "reftable\n", code: 0 } : { stdout: ".git\n", code: 0 };
      },
    };
    commit(1);
    const files = new RefFiles(reftable);
    expect(await files.read("refs/heads/main")).toBeUndefined();
    expect(await files.read("refs/heads/main")).toBeUndefined();
    expect(calls).toEqual([["config", "--get", "extensions.refStorage"]]);
    // Negative control: the same repository with the files format is read.
    const plain: RefGit = { dir, run: async (args) => (args[0] === "config" ? { stdout: "", code: 1 } : { stdout: ".git\n", code: 0 }) };
    expect(await new RefFiles(plain).read("refs/heads/main")).toBe(git("rev-parse", "main"));
  });

  it("shares one read among the calls made while it is in flight; a call after it reads again and sees a new commit", async () => {
    const plain: RefGit = { dir, run: async (args) => (args[0] === "config" ? { stdout: "", code: 1 } : { stdout: ".git\n", code: 0 }) };
    const first = commit(1);
    const files = new RefFiles(plain);
    expect(await files.read("refs/heads/main")).toBe(first);
    const before = files.reads;
    const answers = await Promise.all(Array.from({ length: 32 }, () => files.read("refs/heads/main")));
    expect(answers).toEqual(Array.from({ length: 32 }, () => first));
    expect(files.reads - before).toBe(1);
    const second = commit(2);
    expect(await files.read("refs/heads/main")).toBe(second);
    expect(files.reads - before).toBe(2);
  });

  it("asks git for the layout again after a failure", async () => {
    let fail = true;
    const flaky: RefGit = {
      dir,
      run: async (args) => {
        if (fail) throw new Error("git is gone");
        return args[0] === "config" ? { stdout: "", code: 1 } : { stdout: ".git\n", code: 0 };
      },
    };
    const head = commit(1);
    const files = new RefFiles(flaky);
    expect(await files.read("refs/heads/main")).toBeUndefined();
    fail = false;
    expect(await files.read("refs/heads/main")).toBe(head);
  });
});
