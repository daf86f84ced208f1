/**
 * The few git operations `affected` and `plan --base` need, run as real git processes through
 * execFile/spawn (never a shell: refs and paths come from users and CI variables).
 * Every path here is relative to the project directory (the one holding Pulumi.yaml), which
 * may be a subdirectory of the repository.
 */
import { execFile, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** git failed for a reason the user must fix (not a repository, unknown ref): a usage error. */
export class GitError extends Error {}

const MAX_OUTPUT = 256 * 1024 * 1024;

/** Runs git in `cwd`; resolves with stdout, rejects with GitError carrying git's own message. */
export function git(cwd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("git", [...args], { cwd, maxBuffer: MAX_OUTPUT, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err) {
        const detail = (stderr || err.message).trim().split("\n").filter(Boolean).pop() ?? err.message;
        reject(new GitError(`git ${args[0]}: ${detail}`));
      } else resolve(stdout);
    });
  });
}

export interface RepoInfo {
  /** Top of the working tree. */
  top: string;
  /** The project directory's path inside the repository, "" or ending in "/". */
  prefix: string;
}

export async function repoInfo(projectDir: string): Promise<RepoInfo> {
  let out: string;
  try {
    // One git process for both: the top on the first line, the prefix (maybe empty) on the second.
    out = await git(projectDir, ["rev-parse", "--show-toplevel", "--show-prefix"]);
  } catch {
    throw new GitError(`${projectDir} is not inside a git repository; affected and plan --base compare git revisions`);
  }
  const [top = "", prefix = ""] = out.split("\n");
  return { top: top.trim(), prefix: prefix.trim() };
}

/** The commit a ref names, or a GitError that says what to do (CI checkouts are often shallow). */
export async function resolveCommit(projectDir: string, ref: string): Promise<string> {
  if (ref.startsWith("-")) throw new GitError(`bad ref "${ref}": a ref cannot start with "-"`);
  try {
    return (await git(projectDir, ["rev-parse", "--verify", "--quiet", "--end-of-options", `${ref}^{commit}`])).trim();
  } catch {
    throw new GitError(
      `unknown git ref "${ref}": no such branch, tag or commit in this repository` +
        ` (in CI, check out with full history, e.g. actions/checkout fetch-depth: 0, and fetch the base branch)`,
    );
  }
}

export type ChangeStatus = "added" | "modified" | "deleted";

export interface ChangedFile {
  /** Project-relative path with forward slashes. */
  path: string;
  status: ChangeStatus;
}

const STATUS: Readonly<Record<string, ChangeStatus>> = { A: "added", M: "modified", D: "deleted", T: "modified" };

/**
 * Files that differ between `base` and `head` (a commit), or between `base` and the working tree
 * (tracked changes plus untracked files) when head is undefined. Renames are reported as a
 * deletion plus an addition: both paths matter (a renamed tenant file is two tenants).
 */
export async function changedFiles(projectDir: string, base: string, head?: string): Promise<ChangedFile[]> {
  const args = ["diff", "--name-status", "-z", "--no-renames", "--relative", base, ...(head ? [head] : []), "--"];
  const fields = (await git(projectDir, args)).split("\0").filter((f) => f !== "");
  const out = new Map<string, ChangedFile>();
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const code = fields[i]!.charAt(0);
    const path = fields[i + 1]!;
    out.set(path, { path, status: STATUS[code] ?? "modified" });
  }
  if (!head) {
    const untracked = (await git(projectDir, ["ls-files", "--others", "--exclude-standard", "-z", "--", "."])).split("\0");
    for (const path of untracked) if (path && !out.has(path)) out.set(path, { path, status: "added" });
  }
  return [...out.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Project-relative paths of the files under `paths` at `commit`. `info`: repoInfo(projectDir), if the caller has it. */
export async function filesAt(projectDir: string, commit: string, paths: readonly string[], info?: RepoInfo): Promise<string[]> {
  const { prefix } = info ?? (await repoInfo(projectDir));
  const full = paths.map((p) => `${prefix}${p}`);
  const listed = await git(projectDir, ["ls-tree", "-r", "-z", "--name-only", "--full-tree", commit, "--", ...full]);
  return listed
    .split("\0")
    .filter((p) => p !== "" && p.startsWith(prefix))
    .map((p) => p.slice(prefix.length));
}

/**
 * Writes the files under `paths` as they are at `commit` into `dest` (same relative layout), in
 * one `git cat-file --batch` process however many files there are.
 */
export async function materialize(projectDir: string, commit: string, paths: readonly string[], dest: string): Promise<string[]> {
  const { prefix } = await repoInfo(projectDir);
  const files = await filesAt(projectDir, commit, paths);
  if (files.length === 0) return files;
  const blobs = await catFiles(projectDir, files.map((f) => `${commit}:${prefix}${f}`));
  files.forEach((f, i) => {
    const target = join(dest, f);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, blobs[i]!);
  });
  return files;
}

/** The contents of project-relative `paths` at `commit`, in one `git cat-file --batch` process. `info` as for filesAt. */
export async function contentsAt(projectDir: string, commit: string, paths: readonly string[], info?: RepoInfo): Promise<string[]> {
  if (paths.length === 0) return [];
  const { prefix } = info ?? (await repoInfo(projectDir));
  return (await catFiles(projectDir, paths.map((p) => `${commit}:${prefix}${p}`))).map((b) => b.toString("utf8"));
}

/** Contents of `<rev>:<path>` objects through one `git cat-file --batch`. */
function catFiles(cwd: string, specs: readonly string[]): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", ["cat-file", "--batch"], { cwd, stdio: ["pipe", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => chunks.push(c));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", (err) => reject(new GitError(`git cat-file: ${err.message}`)));
    child.on("close", (code) => {
      if (code !== 0) return reject(new GitError(`git cat-file: ${stderr.trim() || `exit ${code}`}`));
      const all = Buffer.concat(chunks);
      const out: Buffer[] = [];
      let at = 0;
      for (const spec of specs) {
        const nl = all.indexOf(0x0a, at);
        const header = all.subarray(at, nl).toString();
        const m = /^[0-9a-f]+ blob (\d+)$/.exec(header);
        if (!m) return reject(new GitError(`git cat-file: ${spec}: ${header}`));
        const size = Number(m[1]);
        out.push(all.subarray(nl + 1, nl + 1 + size));
        at = nl + 1 + size + 1;
      }
      resolve(out);
    });
    child.stdin.end(specs.map((s) => `${s}\n`).join(""));
  });
}
