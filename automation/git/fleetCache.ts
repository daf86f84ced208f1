/**
 * The fleet of the control plane's working copy, loaded once per commit and state of its files
 * (docs/console.md, "Fast on a large fleet"). Loading and validating every tenant and stack file
 * costs 1-2 s at 1,100 tenants, and GET /api/fleet, GET /api/drift and the console's pages read
 * the fleet on every request. Before each answer the cache checks, without starting a process:
 *  - the commit HEAD is at (read from the repository's HEAD, loose ref or packed-refs, as git
 *    resolves it; `git rev-parse` when the layout is one this reader does not know);
 *  - every file loadFleet reads (Pulumi.yaml, tenants/*, stacks/*): name, size, inode, mtime and
 *    ctime in nanoseconds. An edit not committed yet, a new or a deleted file is a new state.
 * The same commit and the same files answer the fleet loaded before; anything else loads again.
 * (`git status` was the first choice: at 1,300 files it took 90-480 ms per request on the
 * 2-core bench machine, half of what the cache saves.)
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { loadFleet } from "../../infra/model/fleet.ts";

export type FleetLoad = ReturnType<typeof loadFleet>;

export interface FleetSnapshot extends FleetLoad {
  /** The commit HEAD is at; undefined on a branch without commits. */
  commit: string | undefined;
}

const SHA = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;

export class FleetCache {
  private kept?: { key: string; commit: string | undefined; load: FleetLoad };
  /** How many times the files were loaded (an answer from the cache loads nothing). */
  loads = 0;

  constructor(
    readonly projectDir: string,
    private readonly load: (projectDir: string) => FleetLoad = (projectDir) => loadFleet({ projectDir }),
  ) {}

  async get(): Promise<FleetSnapshot> {
    const commit = headCommit(this.projectDir);
    const key = `${commit ?? "no commit"}\n${filesState(this.projectDir)}`;
    if (this.kept?.key === key) return { ...this.kept.load, commit };
    const load = this.load(this.projectDir);
    this.loads++;
    this.kept = { key, commit, load };
    return { ...load, commit };
  }
}

/** Name, size, inode, mtime and ctime (ns) of Pulumi.yaml and of every entry of tenants/ and stacks/. */
export function filesState(projectDir: string): string {
  const parts: string[] = [];
  const add = (path: string) => {
    const st = statSync(path, { bigint: true, throwIfNoEntry: false });
    parts.push(st ? `${path} ${st.size} ${st.ino} ${st.mtimeNs} ${st.ctimeNs}` : `${path} -`);
  };
  add(join(projectDir, "Pulumi.yaml"));
  for (const dir of ["tenants", "stacks"]) {
    const path = join(projectDir, dir);
    add(path);
    let names: string[] = [];
    try {
      names = readdirSync(path).sort();
    } catch {
      // Missing or not a directory: its line above says so, and loadFleet reports it.
    }
    for (const name of names) add(join(path, name));
  }
  return parts.join("\n");
}

/** The commit HEAD of the working copy at `dir` resolves to, read from the repository's files. */
export function headCommit(dir: string): string | undefined {
  const gitDir = findGitDir(dir);
  const read = gitDir ? readHead(gitDir) : null;
  if (read !== null) return read;
  // A layout this reader does not know (reftable, a symbolic ref chain): ask git.
  try {
    const out = execFileSync("git", ["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    return SHA.test(out) ? out : undefined;
  } catch {
    return undefined;
  }
}

/** `dir/.git`, or the directory a `.git` file (a linked worktree, a submodule) points to; searched upwards. */
function findGitDir(start: string): string | undefined {
  for (let dir = resolve(start); ; dir = resolve(dir, "..")) {
    const dotGit = join(dir, ".git");
    const st = statSync(dotGit, { throwIfNoEntry: false });
    if (st?.isDirectory()) return dotGit;
    if (st?.isFile()) {
      const m = /^gitdir: (.+)$/m.exec(readFileSync(dotGit, "utf8"));
      if (m) return isAbsolute(m[1]!.trim()) ? m[1]!.trim() : resolve(dir, m[1]!.trim());
    }
    if (resolve(dir, "..") === dir) return undefined;
  }
}

/** HEAD's commit; undefined for an unborn branch; null when the files do not say. */
function readHead(gitDir: string): string | undefined | null {
  let head: string;
  try {
    head = readFileSync(join(gitDir, "HEAD"), "utf8").trim();
  } catch {
    return null;
  }
  if (SHA.test(head)) return head;
  const ref = /^ref: (refs\/\S+)$/.exec(head)?.[1];
  if (!ref) return null;
  // A linked worktree keeps HEAD in its own directory and the refs in the common one.
  const common = existsSync(join(gitDir, "commondir")) ? resolve(gitDir, readFileSync(join(gitDir, "commondir"), "utf8").trim()) : gitDir;
  if (existsSync(join(common, "reftable"))) return null;
  for (const base of new Set([gitDir, common])) {
    const loose = join(base, ref);
    if (existsSync(loose)) {
      const sha = readFileSync(loose, "utf8").trim();
      return SHA.test(sha) ? sha : null;
    }
  }
  const packed = join(common, "packed-refs");
  if (existsSync(packed)) {
    for (const line of readFileSync(packed, "utf8").split("\n")) {
      const [sha, name] = line.split(" ");
      if (name === ref && sha && SHA.test(sha)) return sha;
    }
  }
  // No such ref anywhere: a branch without commits yet.
  return undefined;
}
