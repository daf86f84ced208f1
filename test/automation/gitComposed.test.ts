/**
 * Composed run commits (automation/git/composed.ts): the program of a pinned commit with the fleet
 * files of another, one ref per program commit chaining every composition of it, compositions found
 * again by another process and by a takeover, and the refs dropped for programs no longer used.
 * Real git in a throwaway repository.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ComposedCommits, LEGACY_COMPOSED_REFS, PROGRAM_BRANCHES, PROGRAM_REFS } from "../../automation/git/composed.ts";
import { GitRepo, type GitRunOptions } from "../../automation/git/repo.ts";

let dir: string;
const env = { ...process.env, GIT_AUTHOR_NAME: "T", GIT_AUTHOR_EMAIL: "t@test.invalid", GIT_COMMITTER_NAME: "T", GIT_COMMITTER_EMAIL: "t@test.invalid" };
const git = (...args: string[]) => execFileSync("git", args, { cwd: dir, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
const write = (path: string, text: string) => {
  mkdirSync(join(dir, path, ".."), { recursive: true });
  writeFileSync(join(dir, path), text);
};
const commit = (files: Record<string, string>, message: string) => {
  for (const [p, t] of Object.entries(files)) write(p, t);
  git("add", "--all");
  git("commit", "--quiet", "-m", message);
  return git("rev-parse", "HEAD");
};
const show = (rev: string, path: string) => git("show", `${rev}:${path}`);
const exists = (sha: string) => {
  try {
    return git("cat-file", "-t", sha) === "commit";
  } catch {
    return false;
  }
};

/** A GitRepo that counts the git processes it starts. */
class CountingRepo extends GitRepo {
  calls = 0;
  override run(args: readonly string[], opts?: GitRunOptions) {
    this.calls++;
    return super.run(args, opts);
  }
}
const composer = (repo = new CountingRepo(dir, { name: "T", email: "t@test.invalid" })) =>
  ({ repo, c: new ComposedCommits({ repo, repoDir: dir, branch: () => "main", head: async () => git("rev-parse", "main") }) });

let p: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "tenancy-composed-"));
  git("init", "--quiet", "--initial-branch=main");
  p = commit({ "Pulumi.yaml": "program: P\n", "tenants/a.yaml": "id: a\n", "stacks/s.yaml": "cell: 1\n" }, "program P");
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("composed run commits", () => {
  it("a head whose program is the pinned one is applied as it is, without a composition or a ref", async () => {
    const h = commit({ "tenants/b.yaml": "id: b\n" }, "tenant b");
    const { repo, c } = composer();
    expect(await c.compose("run-1", p)).toBe(h);
    // One git process (diff-tree): no throwaway index, no commit; none at all for the same pair again.
    expect(repo.calls).toBe(1);
    expect(await c.compose("run-2", p)).toBe(h);
    expect(repo.calls).toBe(1);
    expect(git("for-each-ref", PROGRAM_REFS)).toBe("");
  });

  it("composes the program of the pin with the fleet files of the head, on no branch, kept by one ref per program", async () => {
    const y = commit({ "Pulumi.yaml": "program: Y\n", "tenants/b.yaml": "id: b\n" }, "program Y and tenant b");
    const { c } = composer();
    const composed = await c.compose("run-1", p);
    expect(composed).not.toBe(y);
    expect(show(composed, "Pulumi.yaml")).toBe("program: P");
    expect(show(composed, "tenants/b.yaml")).toBe("id: b");
    expect(git("rev-parse", `${composed}^1`)).toBe(y);
    expect(git("branch", "--contains", composed)).toBe("");
    expect(git("for-each-ref", "--format=%(refname) %(objectname)", PROGRAM_REFS)).toBe(`${PROGRAM_REFS}${p} ${composed}`);

    // Another process (a new instance, no cache) composing the same pair finds the same commit;
    // composing the composed commit again (a takeover with the recorded commit) returns it.
    const other = composer().c;
    expect(await other.compose("run-2", p, y)).toBe(composed);
    expect(await other.compose("run-3", p, composed)).toBe(composed);
    expect(await other.compose("run-4", p)).toBe(composed);
  });

  it("chains a program's compositions under its one ref, so git gc keeps every one; dropping the ref releases them all", async () => {
    commit({ "Pulumi.yaml": "program: Y\n" }, "program Y");
    const { c } = composer();
    const first = await c.compose("run-1", p);
    const z = commit({ "tenants/c.yaml": "id: c\n" }, "tenant c");
    const second = await c.compose("run-2", p);
    expect(second).not.toBe(first);
    expect(git("rev-parse", `${second}^1`, `${second}^2`)).toBe(`${z}\n${first}`);
    expect(git("for-each-ref", "--format=%(objectname)", PROGRAM_REFS)).toBe(second);
    git("gc", "--quiet", "--prune=now");
    expect([exists(first), exists(second)]).toEqual([true, true]);

    // Still in use: kept.
    expect(await c.release(new Set([p]))).toEqual([]);
    git("gc", "--quiet", "--prune=now");
    expect([exists(first), exists(second)]).toEqual([true, true]);
    // No longer in use: the one ref goes, and gc prunes every composition.
    expect(await c.release(new Set())).toEqual([`${PROGRAM_REFS}${p}`]);
    git("gc", "--quiet", "--prune=now");
    expect([exists(first), exists(second)]).toEqual([false, false]);
    // A later run of the program composes again (the cache forgot the released pair).
    const again = await c.compose("run-3", p);
    expect(exists(again)).toBe(true);
    expect(git("rev-parse", `${again}^1`)).toBe(z);
  });

  it("two processes composing one program at different heads at once both keep their commit under the ref", async () => {
    const y = commit({ "Pulumi.yaml": "program: Y\n" }, "program Y");
    const z1 = commit({ "tenants/c.yaml": "id: c\n" }, "tenant c");
    git("checkout", "--quiet", "-b", "side", y);
    const z2 = commit({ "tenants/d.yaml": "id: d\n" }, "tenant d");
    git("checkout", "--quiet", "main");
    const [a, b] = await Promise.all([composer().c.compose("run-a", p, z1), composer().c.compose("run-b", p, z2)]);
    expect(a).not.toBe(b);
    git("branch", "--quiet", "-D", "side");
    git("gc", "--quiet", "--prune=now");
    expect([exists(a), exists(b)]).toEqual([true, true]);
    const tip = git("for-each-ref", "--format=%(objectname)", PROGRAM_REFS);
    expect([a, b]).toContain(tip);
    expect(git("rev-parse", `${tip}^2`)).toBe(tip === a ? b : a);
  });

  it("drops the per-commit refs of earlier versions of programs no longer used, keeps those still used", async () => {
    const y = commit({ "Pulumi.yaml": "program: Y\n" }, "program Y");
    git("update-ref", `${LEGACY_COMPOSED_REFS}${p}/${y}`, y);
    git("update-ref", `${LEGACY_COMPOSED_REFS}${y}/${p}`, p);
    const { c } = composer();
    expect(await c.release(new Set([y]))).toEqual([`${LEGACY_COMPOSED_REFS}${p}/${y}`]);
    expect(git("for-each-ref", "--format=%(refname)", LEGACY_COMPOSED_REFS)).toBe(`${LEGACY_COMPOSED_REFS}${y}/${p}`);
  });

  it("names a pinned program that is not in the working copy", async () => {
    await expect(composer().c.compose("run-9", "0123456789abcdef0123456789abcdef01234567")).rejects.toThrow(
      `run-9: the program commit 0123456789abcdef0123456789abcdef01234567 is not in the working copy ${dir}; a program a run is pinned to must be a commit of the main branch the control plane commits to`,
    );
  });

  it("pushes a program's compositions to the remote as a branch, so a plain clone (what a cloning runner does) checks each one out; released with the program", async () => {
    const remote = join(dir, "..", `${dir.split("/").at(-1)}-remote.git`);
    const clone = join(dir, "..", `${dir.split("/").at(-1)}-clone`);
    const gitIn = (cwd: string, ...args: string[]) => execFileSync("git", args, { cwd, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
    try {
      execFileSync("git", ["init", "--quiet", "--bare", "--initial-branch=main", remote]);
      git("push", "--quiet", remote, "main");
      commit({ "Pulumi.yaml": "program: Y\n" }, "program Y");
      git("push", "--quiet", remote, "main");
      const { c } = composer();
      const first = await c.compose("run-1", p);
      // Negative control: pushed under refs/tenancy/ only, a plain clone (through the transport, as
      // from GitHub: --no-local) has no such commit.
      git("push", "--quiet", remote, `${PROGRAM_REFS}${p}:${PROGRAM_REFS}${p}`);
      execFileSync("git", ["clone", "--quiet", "--no-local", remote, clone]);
      expect(() => gitIn(clone, "checkout", "--quiet", first)).toThrow();
      rmSync(clone, { recursive: true, force: true });

      expect(await c.publish(p, first, remote)).toBe(`${PROGRAM_BRANCHES}${p}`);
      commit({ "tenants/c.yaml": "id: c\n" }, "tenant c");
      const second = await c.compose("run-2", p);
      await c.publish(p, second, remote);
      execFileSync("git", ["clone", "--quiet", "--no-local", remote, clone]);
      // Both: a run taken over still applies the first composition.
      for (const sha of [first, second]) {
        gitIn(clone, "checkout", "--quiet", sha);
        expect(readFileSync(join(clone, "Pulumi.yaml"), "utf8")).toBe("program: P\n");
      }
      expect(readFileSync(join(clone, "tenants", "c.yaml"), "utf8")).toBe("id: c\n");
      // The second push was a fast-forward (the first is its second parent).
      expect(gitIn(remote, "rev-parse", `${PROGRAM_BRANCHES}${p}`)).toBe(second);
      // A commit not kept by the program's ref is refused, naming it.
      const stray = git("commit-tree", `${p}^{tree}`, "-m", "stray");
      await expect(c.publish(p, stray, remote)).rejects.toThrow(`the composed commit ${stray.slice(0, 12)} is not kept by ${PROGRAM_REFS}${p}`);

      // Released: the local ref and the remote branch go.
      expect(await c.release(new Set(), remote)).toEqual(expect.arrayContaining([`${PROGRAM_REFS}${p}`, `${remote}:${PROGRAM_BRANCHES}${p}`]));
      expect(gitIn(remote, "for-each-ref", PROGRAM_BRANCHES)).toBe("");
    } finally {
      rmSync(remote, { recursive: true, force: true });
      rmSync(clone, { recursive: true, force: true });
    }
  });
});
