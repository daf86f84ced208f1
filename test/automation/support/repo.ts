/**
 * A throwaway git repository holding the example fleet as committed (Pulumi.yaml, tenants/,
 * stacks/ and the policy pack's PulumiPolicy.yaml), on branch main.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parse, stringify } from "yaml";

const PROJECT = resolve(import.meta.dirname, "../../..");

export interface FixtureRepo {
  dir: string;
  git(...args: string[]): string;
  /** Commits on a ref, newest first: sha, subject and full message. */
  log(ref?: string): { sha: string; subject: string; body: string }[];
  show(ref: string, path: string): string | undefined;
}

export function makeFixtureRepo(root = mkdtempSync(join(tmpdir(), "tenancy-repo-"))): FixtureRepo {
  chmodSync(root, 0o755);
  const tar = execFileSync("git", ["archive", "--format=tar", "HEAD", "Pulumi.yaml", "tenants", "stacks", "tenant-migrations", "policy/PulumiPolicy.yaml"], { cwd: PROJECT, maxBuffer: 64 << 20 });
  execFileSync("tar", ["-x", "-C", root], { input: tar });
  const git = (...args: string[]) =>
    execFileSync("git", args, {
      cwd: root,
      encoding: "utf8",
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, GIT_AUTHOR_NAME: "Fixture", GIT_AUTHOR_EMAIL: "fixture@test.invalid", GIT_COMMITTER_NAME: "Fixture", GIT_COMMITTER_EMAIL: "fixture@test.invalid" },
    });
  git("init", "--quiet", "--initial-branch=main");
  git("add", "--all");
  git("commit", "--quiet", "-m", "example fleet");
  return {
    dir: root,
    git,
    log(ref = "main") {
      const out = git("log", "--format=%H%x1f%s%x1f%B%x1e", ref);
      return out
        .split("\x1e")
        .map((r) => r.trim())
        .filter(Boolean)
        .map((r) => {
          const [sha, subject, body] = r.split("\x1f") as [string, string, string];
          return { sha, subject, body };
        });
    },
    show(ref, path) {
      try {
        return git("show", `${ref}:${path}`);
      } catch {
        return undefined;
      }
    },
  };
}

/** Commits Pulumi.yaml with every rollout ring's bake time set to 0, so a rollout's waves follow each other at once. */
export function withoutBakeTime(repo: FixtureRepo): FixtureRepo {
  const file = join(repo.dir, "Pulumi.yaml");
  const doc = parse(readFileSync(file, "utf8")) as { config: Record<string, { value: { rings: { bakeMinutes: number }[] } }> };
  for (const r of doc.config["saas-tenancy:rollouts"]!.value.rings) r.bakeMinutes = 0;
  writeFileSync(file, stringify(doc));
  repo.git("commit", "--quiet", "-am", "rings without bake time (test)");
  return repo;
}
