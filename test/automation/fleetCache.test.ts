/**
 * The fleet loaded once per commit (automation/git/fleetCache.ts): loads are counted, never timed.
 * A second read at the same commit and files loads nothing; a new commit, and a working copy that
 * differs from its commit (edited, untracked, deleted file), are seen on the next read.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FleetCache, headCommit } from "../../automation/git/fleetCache.ts";
import { makeFixtureRepo, type FixtureRepo } from "./support/repo.ts";

let repo: FixtureRepo;
beforeEach(() => {
  repo = makeFixtureRepo();
});
afterEach(() => rmSync(repo.dir, { recursive: true, force: true }));

const displayName = async (cache: FleetCache, id: string) => (await cache.get()).fleet?.tenants.get(id)?.tenant.displayName;
const head = () => repo.git("rev-parse", "HEAD").trim();

describe("FleetCache", () => {
  it("loads once per commit, and a new commit on the branch is seen on the next read", async () => {
    const cache = new FleetCache(repo.dir);
    const first = await cache.get();
    expect(first.problems).toEqual([]);
    expect(first.fleet?.tenants.size).toBe(9);
    expect({ commit: first.commit, loads: cache.loads }).toEqual({ commit: head(), loads: 1 });

    const second = await cache.get();
    expect(cache.loads).toBe(1);
    expect(second.fleet).toBe(first.fleet);

    const file = join(repo.dir, "tenants", "freebie-one.yaml");
    writeFileSync(file, readFileSync(file, "utf8").replace("displayName: Freebie One", "displayName: Freebie Renamed"));
    repo.git("commit", "--quiet", "-am", "rename freebie-one");
    expect(await displayName(cache, "freebie-one")).toBe("Freebie Renamed");
    expect(cache.loads).toBe(2);
    expect((await cache.get()).commit).toBe(head());
    expect(cache.loads).toBe(2);
  });

  it("a new commit that changes no fleet file loads again too (the commit is part of the key)", async () => {
    const cache = new FleetCache(repo.dir);
    await cache.get();
    writeFileSync(join(repo.dir, "notes.txt"), "not part of the fleet\n");
    await cache.get();
    expect(cache.loads).toBe(1);
    repo.git("add", "notes.txt");
    repo.git("commit", "--quiet", "-m", "notes");
    expect((await cache.get()).commit).toBe(head());
    expect(cache.loads).toBe(2);
  });

  it("a change in the working copy not committed yet (edited, same size, untracked, deleted file) is seen on the next read", async () => {
    const cache = new FleetCache(repo.dir);
    expect(await displayName(cache, "freebie-two")).toBe("Freebie Two");
    expect(cache.loads).toBe(1);

    // Edited, the same number of bytes: seen at once, then kept for that state.
    const file = join(repo.dir, "tenants", "freebie-two.yaml");
    const text = readFileSync(file, "utf8");
    writeFileSync(file, text.replace("displayName: Freebie Two", "displayName: Freebie Tw0"));
    expect(readFileSync(file).length).toBe(Buffer.byteLength(text));
    expect(await displayName(cache, "freebie-two")).toBe("Freebie Tw0");
    expect(await displayName(cache, "freebie-two")).toBe("Freebie Tw0");
    expect(cache.loads).toBe(2);

    // An untracked tenant file: its problems are answered.
    writeFileSync(join(repo.dir, "tenants", "stray.yaml"), "id: stray\n");
    const stray = await cache.get();
    expect(stray.fleet).toBeUndefined();
    expect(stray.problems.some((p) => p.file.endsWith(join("tenants", "stray.yaml")))).toBe(true);
    expect(cache.loads).toBe(3);
    unlinkSync(join(repo.dir, "tenants", "stray.yaml"));

    // Deleted (a stack file this time), then the deletion put back by git.
    repo.git("rm", "--quiet", "stacks/Pulumi.dedicated-acme-prod.yaml");
    const deleted = await cache.get();
    expect(deleted.fleet).toBeUndefined();
    expect(deleted.problems.map((p) => p.message).join("\n")).toContain("dedicated-acme-prod");
    repo.git("checkout", "HEAD", "--", "stacks/Pulumi.dedicated-acme-prod.yaml");
    writeFileSync(file, text);
    const back = await cache.get();
    expect({ problems: back.problems, name: back.fleet?.tenants.get("freebie-two")?.tenant.displayName, loads: cache.loads }).toEqual({ problems: [], name: "Freebie Two", loads: 5 });
  });

  it("reads HEAD from a linked worktree and from packed refs as git resolves it", () => {
    repo.git("pack-refs", "--all");
    expect(headCommit(repo.dir)).toBe(head());
    const wt = `${repo.dir}-wt`;
    try {
      repo.git("worktree", "add", "--quiet", "-b", "other", wt);
      expect(headCommit(wt)).toBe(head());
      // A commit in the worktree moves its HEAD, not the main one's.
      writeFileSync(join(wt, "notes.txt"), "x\n");
      execFileSync("git", ["-c", "user.name=T", "-c", "user.email=t@t.invalid", "add", "notes.txt"], { cwd: wt });
      execFileSync("git", ["-c", "user.name=T", "-c", "user.email=t@t.invalid", "commit", "--quiet", "-m", "in the worktree"], { cwd: wt });
      expect(headCommit(wt)).toBe(execFileSync("git", ["rev-parse", "HEAD"], { cwd: wt, encoding: "utf8" }).trim());
      expect(headCommit(wt)).not.toBe(head());
      expect(headCommit(repo.dir)).toBe(head());
    } finally {
      rmSync(wt, { recursive: true, force: true });
      repo.git("worktree", "prune");
    }
  });
});
