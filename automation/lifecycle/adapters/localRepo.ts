/**
 * FleetRepo over a directory on this machine: tenantctl without a control plane, and the tests.
 * Validates the fleet with the change applied (validateWithChanges: the fleet loader with the
 * change laid over the files in memory), then writes each file atomically and, with `git: true`, commits exactly
 * those paths (real git; the workflow id cited in the message). The control plane uses its own
 * GitWriter instead (adapters/controlPlane.ts).
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { resolve, sep } from "node:path";
import { promisify } from "node:util";
import { validateWithChanges, writeAtomic } from "../../../infra/model/fleetFiles/index.ts";
import { InvalidChangeError, type FleetChange, type FleetRepo } from "../ports.ts";

const run = promisify(execFile);

export interface LocalRepoOptions {
  /** Commit each change (the directory must be a git working copy). */
  git: boolean;
}

export class LocalFleetRepo implements FleetRepo {
  readonly root: string;
  constructor(root: string, private readonly opts: LocalRepoOptions) {
    this.root = resolve(root);
  }

  private abs(path: string): string {
    const abs = resolve(this.root, path);
    if (!abs.startsWith(this.root + sep)) throw new Error(`${path} is outside the repository ${this.root}`);
    return abs;
  }

  async read(path: string): Promise<string | undefined> {
    const abs = this.abs(path);
    return existsSync(abs) ? readFileSync(abs, "utf8") : undefined;
  }

  /** The problems of the fleet with `files` applied, one line each (empty: valid). */
  validate(files: Readonly<Record<string, string | null>>): string[] {
    return validateWithChanges({ projectDir: this.root }, [files]).problems;
  }

  async commit(change: FleetChange): Promise<string | undefined> {
    const paths = Object.keys(change.files);
    for (const p of paths) this.abs(p);
    const unchanged = await Promise.all(paths.map(async (p) => ((await this.read(p)) ?? null) === change.files[p]));
    if (unchanged.every(Boolean)) return undefined;
    const problems = this.validate(change.files);
    if (problems.length > 0) throw new InvalidChangeError(problems);
    for (const [p, content] of Object.entries(change.files)) {
      if (content === null) rmSync(this.abs(p), { force: true });
      else writeAtomic(this.abs(p), content);
    }
    if (!this.opts.git) return "uncommitted";
    const git = (args: string[]) => run("git", ["-C", this.root, ...args], { maxBuffer: 16 * 1024 * 1024 });
    const tracked = (await git(["ls-files", "--", ...paths])).stdout.split("\n").filter(Boolean);
    const present = paths.filter((p) => existsSync(this.abs(p)) || tracked.includes(p));
    await git(["add", "-A", "--", ...present]);
    const message = `tenants: ${change.summary}\n\nWorkflow: ${change.workflowId}\nTenant: ${change.tenantId}\n`;
    await git(["commit", "-q", "-m", message, "--", ...present]);
    return (await git(["rev-parse", "HEAD"])).stdout.trim();
  }
}
