/**
 * The control plane's own git working copy when TENANCY_REPO_DIR is not set: a clone of the
 * project under TENANCY_DATA_DIR/working-copy, made on first start (docs/control-plane.md,
 * "Working copy"). Without it the control plane would commit on the branch a person has checked
 * out in the project they started it from. The clone has no `origin`: the project is the remote
 * `project`, and nothing is pulled or pushed unless TENANCY_GIT_REMOTE names a remote.
 */
import { execFile } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The directory under TENANCY_DATA_DIR holding the dedicated clone. */
export const WORKING_COPY_DIR = "working-copy";
/** The clone's name for the project it was made from (never `origin`: nothing pushes there by default). */
export const PROJECT_REMOTE = "project";

export class WorkingCopyError extends Error {}

async function git(cwd: string, ...args: string[]): Promise<string> {
  try {
    return (await run("git", args, { cwd, env: { ...process.env, GIT_TERMINAL_PROMPT: "0" } })).stdout.trim();
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new WorkingCopyError(`git ${args.join(" ")} in ${cwd} failed: ${(e.stderr || e.message).trim().split("\n").slice(-2).join(" / ")}`, { cause: err });
  }
}

/**
 * Makes `dir` a clone of `source`'s checked-out branch unless it already is a working copy.
 * The clone is made beside `dir` and renamed into place, so a crash mid-clone leaves no half
 * working copy. The project's installed packages are linked in (runs resolve the program's and
 * the policy pack's packages from them) and ignored in the clone.
 */
export async function ensureWorkingCopy(source: string, dir: string): Promise<{ created: boolean; branch: string; commit: string }> {
  if (existsSync(join(dir, ".git"))) {
    return { created: false, branch: await git(dir, "symbolic-ref", "--short", "HEAD"), commit: await git(dir, "rev-parse", "HEAD") };
  }
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new WorkingCopyError(`${dir} exists and is not a git working copy; remove it (the control plane clones the project there) or set TENANCY_REPO_DIR`);
  }
  const branch = await git(source, "symbolic-ref", "--quiet", "--short", "HEAD").catch(() => {
    throw new WorkingCopyError(`${source} has a detached HEAD; check out the branch the control plane should start from, or set TENANCY_REPO_DIR to a working copy`);
  });
  mkdirSync(dirname(dir), { recursive: true });
  const partial = `${dir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  await git(dirname(dir), "clone", "--quiet", "--origin", PROJECT_REMOTE, "--branch", branch, source, partial);
  for (const sub of ["node_modules", join("policy", "node_modules")]) {
    const src = join(source, sub);
    if (existsSync(src) && existsSync(join(partial, dirname(sub))) && !existsSync(join(partial, sub))) {
      symlinkSync(src, join(partial, sub), "dir");
      appendFileSync(join(partial, ".git", "info", "exclude"), `/${sub}\n`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  renameSync(partial, dir);
  return { created: true, branch, commit: await git(dir, "rev-parse", "HEAD") };
}
