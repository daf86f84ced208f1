/**
 * The Pulumi CLI test double's stack locks follow the DIY backend (support/fakePulumiCli.ts;
 * pkg/backend/diy/lock.go and backend.go CancelCurrentUpdate): a lock file per CLI process, a
 * killed process's file refuses every later update, `pulumi cancel` deletes every file and
 * succeeds without one. The runner's recovery (`stack.cancel()` before a takeover) relies on it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runFakePulumi, stackLocks, stackState } from "./support/fakePulumi.ts";
import { makeFixtureRepo } from "./support/repo.ts";

const STACK = "shared-prod-use1-01";

describe("the CLI double's stack locks", () => {
  let dir: string;
  let stateDir: string;
  let workDir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "tenancy-locks-"));
    stateDir = join(dir, "state");
    workDir = join(dir, "checkout");
    mkdirSync(workDir);
    makeFixtureRepo(workDir);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const cli = (...args: string[]) => runFakePulumi(args, workDir, { stateDir });
  const up = () => cli("up", "--yes", "--stack", STACK, "--message", "m");

  it("an update takes a lock of its own and removes it; a lock left by a killed process refuses the next update until `pulumi cancel`", async () => {
    expect((await cli("stack", "init", STACK)).code).toBe(0);
    expect((await up()).code).toBe(0);
    expect(stackLocks(stateDir, STACK)).toEqual([]);
    expect(stackState(stateDir, STACK)!.updates).toHaveLength(1);

    // What a CLI killed mid-update leaves: its lock file (pid 999999: no such process).
    mkdirSync(join(stateDir, "locks", STACK), { recursive: true });
    writeFileSync(join(stateDir, "locks", STACK, "dead.json"), JSON.stringify({ pid: 999999, username: "u", hostname: "h", timestamp: "2026-01-01T00:00:00Z" }));
    const refused = await up();
    expect(refused.code).toBe(255);
    expect(refused.stderr).toContain("the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete the lock file with `pulumi cancel`.");
    expect(refused.stderr).toContain("@h (pid 999999) at 2026-01-01T00:00:00Z");
    expect(stackState(stateDir, STACK)!.updates).toHaveLength(1);
    // The refused update left no lock of its own.
    expect(stackLocks(stateDir, STACK).map((l) => l.pid)).toEqual([999999]);

    expect(await cli("cancel", "--yes", "--stack", STACK)).toEqual({ stdout: `The currently running update for '${STACK}' has been canceled!\n`, stderr: "", code: 0 });
    expect(stackLocks(stateDir, STACK)).toEqual([]);
    // No lock: cancel still succeeds (CancelCurrentUpdate deletes nothing and returns nil).
    expect((await cli("cancel", "--yes", "--stack", STACK)).code).toBe(0);
    expect((await up()).code).toBe(0);
    expect(stackState(stateDir, STACK)!.updates).toHaveLength(2);
  });
});
