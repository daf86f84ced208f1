/**
 * A temporary git repository holding a copy of this project (code, example fleet, Pulumi.yaml)
 * with the fixture program as infra/program.ts, for tests that need real commits.
 */
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

export const PROJECT = resolve(import.meta.dirname, "../../..");

/** What a revision needs to load the fleet and run `tenantctl plan` (node_modules is linked, not copied). */
const COPIED = ["Pulumi.yaml", "package.json", "tsconfig.json", "bin", "cli", "infra", "plan", "policy", "tenants", "stacks"];

export interface TempRepo {
  dir: string;
  git(...args: string[]): string;
  write(path: string, text: string): void;
  read(path: string): string;
  remove(path: string): void;
  commit(message: string): string;
  cleanup(): void;
}

export function fixtureProgramText(): string {
  return readFileSync(join(import.meta.dirname, "program.ts"), "utf8").replaceAll("../../../infra/", "./");
}

export function createTempRepo(): TempRepo {
  const dir = mkdtempSync(join(tmpdir(), "tenantctl-repo-"));
  for (const p of COPIED) {
    if (existsSync(join(PROJECT, p))) {
      cpSync(join(PROJECT, p), join(dir, p), { recursive: true, filter: (src) => !src.includes("node_modules") });
    }
  }
  writeFileSync(join(dir, "infra", "program.ts"), fixtureProgramText());
  symlinkSync(join(PROJECT, "node_modules"), join(dir, "node_modules"), "dir");
  writeFileSync(join(dir, ".gitignore"), "node_modules\n");
  const git = (...args: string[]) =>
    execFileSync("git", ["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false", ...args], {
      cwd: dir,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  git("init", "--quiet", "-b", "main");
  const repo: TempRepo = {
    dir,
    git,
    write: (path, text) => {
      const target = join(dir, path);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, text);
    },
    read: (path) => readFileSync(join(dir, path), "utf8"),
    remove: (path) => unlinkSync(join(dir, path)),
    commit: (message) => {
      git("add", "-A");
      git("commit", "--quiet", "-m", message);
      return git("rev-parse", "HEAD").trim();
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
  repo.commit("the example fleet");
  return repo;
}
