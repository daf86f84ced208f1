/**
 * `plan --base` loads the fleet once: the base revision is the working tree's fleet plus the files
 * git says differ, so only those are parsed again (cli/affected/affected.ts, baseFromWorkingTree).
 * The counts of parsed and reused files are asserted, so a change that parses the whole base fleet
 * again fails here, not only in the bench. A repository holding only the example fleet.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { affectedWithFleets } from "../../cli/affected/affected.ts";
import { planAgainstBase, type FleetPlanner, type RevisionPlanner } from "../../cli/affected/planBase.ts";
import { parsedFiles, requireFleet } from "../../infra/model/fleet.ts";
import { NEWCO } from "./affected-fixture/scenarios.ts";
import { PROJECT } from "./affected-fixture/repo.ts";

let dir: string;
const git = (...args: string[]) =>
  execFileSync("git", ["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false", ...args], { cwd: dir, encoding: "utf8" });
const fleetFiles = () => readdirSync(join(dir, "tenants")).filter((n) => n.endsWith(".yaml")).length + readdirSync(join(dir, "stacks")).length;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "tenantctl-reuse-"));
  for (const p of ["Pulumi.yaml", "tenants", "stacks"]) cpSync(join(PROJECT, p), join(dir, p), { recursive: true });
  writeFileSync(join(dir, ".gitignore"), "tenants/scratch.yaml\n");
  git("init", "--quiet", "-b", "main");
  git("add", "-A");
  git("commit", "--quiet", "-m", "fleet");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A tenant added (untracked), one modified, one ignored file: what the base must and must not see. */
function change(): void {
  writeFileSync(join(dir, "tenants", "newco.yaml"), NEWCO);
  const bigcorp = readFileSync(join(dir, "tenants", "bigcorp.yaml"), "utf8");
  const renamed = bigcorp.replace(/^displayName: .*$/m, "displayName: Bigcorp Renamed");
  expect(renamed).not.toBe(bigcorp);
  writeFileSync(join(dir, "tenants", "bigcorp.yaml"), renamed);
  writeFileSync(join(dir, "tenants", "scratch.yaml"), NEWCO.replaceAll("newco", "scratch").replace("NewCo", "Scratch"));
}

describe("plan --base: the base fleet reuses the working tree's parsed files", () => {
  it("parses only the file that differs; the added and the ignored tenant are not at the base", async () => {
    const n = fleetFiles();
    change();
    const cache = parsedFiles();
    const head = requireFleet({ projectDir: dir }, cache);
    expect(cache.counts).toEqual({ parsed: n + 2, reused: 0 });
    const { base, result } = await affectedWithFleets(dir, "HEAD", undefined, { head, cache });
    // The base lists the n committed files: bigcorp's read from git and parsed, the other n - 1 reused.
    expect(cache.counts).toEqual({ parsed: n + 3, reused: n - 1 });
    expect([...base!.tenants.keys()].filter((id) => ["newco", "scratch"].includes(id))).toEqual([]);
    expect(base!.tenants.get("bigcorp")!.tenant.displayName).not.toBe("Bigcorp Renamed");
    expect(head.tenants.get("bigcorp")!.tenant.displayName).toBe("Bigcorp Renamed");
    expect(base!.tenants.size).toBe(head.tenants.size - 2);
    expect(result.stacks).toEqual([...new Set(["shared-prod-use1-02", ...result.details.filter((d) => d.reasons.includes("tenants/bigcorp.yaml modified")).map((d) => d.name)])].sort());
  });

  it("a changed Pulumi.yaml (it decides what every file means) loads the base from git in full: nothing reused", async () => {
    change();
    writeFileSync(join(dir, "Pulumi.yaml"), `${readFileSync(join(dir, "Pulumi.yaml"), "utf8")}\n# a comment\n`);
    const cache = parsedFiles();
    const head = requireFleet({ projectDir: dir }, cache);
    const parsedByHead = cache.counts.parsed;
    const { base, result } = await affectedWithFleets(dir, "HEAD", undefined, { head, cache });
    expect(cache.counts).toEqual({ parsed: parsedByHead, reused: 0 });
    expect(result.programPaths).toEqual(["Pulumi.yaml"]);
    expect(base!.tenants.has("newco")).toBe(false);
    expect(base!.tenants.has("scratch")).toBe(false);
  });

  it("planAgainstBase renders the base in process from that fleet, with no worktree and no base CLI", async () => {
    change();
    const cache = parsedFiles();
    const head = requireFleet({ projectDir: dir }, cache);
    const calls: { tenants: boolean; names: readonly string[]; inProcess: boolean }[] = [];
    const plan: FleetPlanner = async (fleet, names, o) => {
      calls.push({ tenants: fleet.tenants.has("newco"), names, inProcess: o?.inMemory === true });
      return { stacks: [] };
    };
    const planBase: RevisionPlanner = async () => {
      throw new Error("the base revision's CLI must not run when the program did not change");
    };
    await planAgainstBase({ projectDir: dir, headFleet: head, baseRef: "HEAD", plan, planBase, cache, names: ["shared-prod-use1-02"] });
    expect(calls).toEqual([
      { tenants: false, names: ["shared-prod-use1-02"], inProcess: true },
      { tenants: true, names: ["shared-prod-use1-02"], inProcess: false },
    ]);
    expect(git("worktree", "list").trim().split("\n")).toHaveLength(1);
  });

  it("planAgainstBase asks git seven times, whatever the fleet's size: the base resolved once, the diff, untracked files, the repository's prefix once, one cat-file, one ls-tree, HEAD", async () => {
    change();
    const cache = parsedFiles();
    const head = requireFleet({ projectDir: dir }, cache);
    // A `git` first on PATH that logs its subcommand and runs the real one.
    const shim = mkdtempSync(join(tmpdir(), "tenantctl-gitlog-"));
    const log = join(shim, "calls.log");
    const realGit = execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim();
    writeFileSync(join(shim, "git"), `#!/bin/sh\necho "$1" >> '${log}'\nexec '${realGit}' "$@"\n`, { mode: 0o755 });
    const path = process.env.PATH;
    process.env.PATH = `${shim}:${path ?? ""}`;
    try {
      const plan: FleetPlanner = async () => ({ stacks: [] });
      await planAgainstBase({ projectDir: dir, headFleet: head, baseRef: "HEAD", plan, cache, names: ["shared-prod-use1-02"] });
      expect(readFileSync(log, "utf8").trim().split("\n")).toEqual(["rev-parse", "diff", "ls-files", "rev-parse", "cat-file", "ls-tree", "rev-parse"]);
    } finally {
      process.env.PATH = path;
      rmSync(shim, { recursive: true, force: true });
    }
  });

  it("negative control: a program change plans the base with the base revision's own code", async () => {
    change();
    writeFileSync(join(dir, "Pulumi.yaml"), `${readFileSync(join(dir, "Pulumi.yaml"), "utf8")}\n# a comment\n`);
    const head = requireFleet({ projectDir: dir });
    const revisions: string[][] = [];
    const plan: FleetPlanner = async () => ({ stacks: [] });
    const planBase: RevisionPlanner = async (_dir, names) => {
      revisions.push([...names]);
      return { stacks: [] };
    };
    await planAgainstBase({ projectDir: dir, headFleet: head, baseRef: "HEAD", plan, planBase, names: ["shared-prod-use1-02"] });
    expect(revisions).toEqual([["shared-prod-use1-02"]]);
  });
});
