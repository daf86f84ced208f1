/**
 * Temporary checkouts of another revision: a fleet-only snapshot (tenant and stack files plus
 * Pulumi.yaml, enough to load the fleet) for `affected`, or a full `git worktree` for
 * `plan --base`, which runs that revision's own code. Both are removed whatever happens.
 */
import { existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { git, materialize, repoInfo } from "./git.ts";

/** What a fleet is made of; a snapshot of these is enough to load it at any revision. */
export const FLEET_PATHS = ["Pulumi.yaml", "tenants", "stacks"] as const;

/** Runs `fn` on a directory holding the fleet files of `commit`; the directory is removed afterwards. */
export async function withFleetSnapshot<T>(projectDir: string, commit: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "tenantctl-fleet-"));
  try {
    await materialize(projectDir, commit, FLEET_PATHS, dir);
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs `fn` on a detached `git worktree` of `commit` (the project directory inside it), with
 * this checkout's node_modules linked in so that revision's code runs without an install. The
 * worktree is removed and pruned afterwards, also when `fn` throws.
 */
export async function withWorktree<T>(projectDir: string, commit: string, fn: (projectDirAtCommit: string) => Promise<T>): Promise<T> {
  const { prefix } = await repoInfo(projectDir);
  const root = mkdtempSync(join(tmpdir(), "tenantctl-worktree-"));
  const tree = join(root, "tree");
  let added = false;
  try {
    await git(projectDir, ["worktree", "add", "--detach", "--quiet", tree, commit]);
    added = true;
    const project = join(tree, prefix);
    const modules = join(projectDir, "node_modules");
    if (existsSync(modules) && !existsSync(join(project, "node_modules"))) symlinkSync(modules, join(project, "node_modules"), "dir");
    return await fn(project);
  } finally {
    if (added) await git(projectDir, ["worktree", "remove", "--force", tree]).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
    await git(projectDir, ["worktree", "prune"]).catch(() => undefined);
  }
}
