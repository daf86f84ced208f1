/**
 * The control plane's own working copy (automation/git/workingCopy.ts): without TENANCY_REPO_DIR
 * it clones the project under the data directory once and commits there, never on the branch
 * checked out in the project, and has no remote it would push to by default.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ensureWorkingCopy, WorkingCopyError } from "../../automation/git/workingCopy.ts";
import { makeFixtureRepo } from "./support/repo.ts";

const tmp = mkdtempSync(join(tmpdir(), "tenancy-wc-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const git = (cwd: string, ...args: string[]) => execFileSync("git", args, { cwd, encoding: "utf8" }).trim();

describe("the control plane's own working copy", () => {
  it("clones the project's branch once, links its packages, commits there and leaves the project alone", async () => {
    mkdirSync(join(tmp, "project"));
    const project = makeFixtureRepo(join(tmp, "project"));
    mkdirSync(join(project.dir, "node_modules", "left-pad"), { recursive: true });
    writeFileSync(join(project.dir, "node_modules", "left-pad", "index.js"), "");
    const before = git(project.dir, "rev-parse", "main");
    const dir = join(tmp, "data", "working-copy");

    const first = await ensureWorkingCopy(project.dir, dir);
    expect(first).toEqual({ created: true, branch: "main", commit: before });
    expect(git(dir, "remote")).toBe("project");
    expect(readlinkSync(join(dir, "node_modules"))).toBe(join(project.dir, "node_modules"));
    expect(git(dir, "status", "--porcelain")).toBe("");

    // A commit in the clone (what the writer does) never reaches the project's branch.
    writeFileSync(join(dir, "tenants", "extra.yaml"), "id: extra\n");
    git(dir, "add", "tenants/extra.yaml");
    git(dir, "-c", "user.name=t", "-c", "user.email=t@test.invalid", "commit", "--quiet", "-m", "extra");
    expect(git(project.dir, "rev-parse", "main")).toBe(before);
    expect(git(project.dir, "status", "--porcelain")).toBe("?? node_modules/");

    // The next start finds it and keeps what it committed.
    const again = await ensureWorkingCopy(project.dir, dir);
    expect(again).toEqual({ created: false, branch: "main", commit: git(dir, "rev-parse", "HEAD") });
    expect(again.commit).not.toBe(before);
  });

  it("refuses a non-empty directory that is not a working copy, and a project with a detached HEAD", async () => {
    mkdirSync(join(tmp, "project2"));
    const project = makeFixtureRepo(join(tmp, "project2"));
    const taken = join(tmp, "taken");
    mkdirSync(taken);
    writeFileSync(join(taken, "notes.txt"), "mine\n");
    await expect(ensureWorkingCopy(project.dir, taken)).rejects.toThrow(
      new WorkingCopyError(`${taken} exists and is not a git working copy; remove it (the control plane clones the project there) or set TENANCY_REPO_DIR`),
    );
    git(project.dir, "checkout", "--quiet", "--detach");
    await expect(ensureWorkingCopy(project.dir, join(tmp, "wc2"))).rejects.toThrow(
      new WorkingCopyError(`${project.dir} has a detached HEAD; check out the branch the control plane should start from, or set TENANCY_REPO_DIR to a working copy`),
    );
  });
});
