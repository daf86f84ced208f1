/**
 * Start-up failures of `npm run control-plane` as an operator meets them: the control plane runs
 * as a child process (automation/main.ts under tsx, test/automation/crash/controlPlaneProcess.ts)
 * and must stop with exit code 2, a message naming the problem and the fix, and no stack trace.
 * (A server orphaned by `kill -9` is not a failure: the next start stops it and comes up, which
 * the crash suite checks after every kill, test/automation/crash/.)
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedControlPlaneDataDir } from "../support/pgTemplate.ts";
import { healthz, leftoverTempDirs, makeInstallation, START_BOUND_MS, startLife, stopLeftoverPostgres, stopLife, waitReady, type Installation, type Life } from "./crash/controlPlaneProcess.ts";

let inst: Installation;
beforeAll(async () => {
  inst = makeInstallation();
  // Its embedded PostgreSQL from the run's template: these tests are about refusals, not the first start's initdb.
  await seedControlPlaneDataDir(inst.dataDir);
});
afterAll(async () => {
  if (!inst) return;
  await stopLeftoverPostgres(inst);
  inst.dispose();
});

/** Exit code and stderr of a life that must stop by itself within the timeout. */
async function failedStart(life: Life, timeoutMs = 120_000): Promise<{ code: number | null; lines: string[] }> {
  const timer = setTimeout(() => life.child.kill("SIGKILL"), timeoutMs);
  const { code } = await life.exited;
  clearTimeout(timer);
  return { code, lines: life.stderr().split("\n").filter((l) => l.trim() !== "") };
}

const STACK_FRAME = /^\s+at |\.ts:\d+:\d+/m;

describe("start-up failures: exit code 2, the problem and the fix, no stack trace", () => {
  it("a bad setting: one line naming the setting, the value, what it must be and where settings are documented", async () => {
    const r = await failedStart(await startLife(inst, undefined, { TENANCY_HEARTBEAT_TIMEOUT_SECONDS: "soon" }));
    expect(r.code).toBe(2);
    expect(r.lines).toEqual(['control plane cannot start: TENANCY_HEARTBEAT_TIMEOUT_SECONDS: must be a number >= 0.1, got "soon" (settings: docs/control-plane.md)']);
  }, 180_000);

  it("two bad settings: one whole line each", async () => {
    const r = await failedStart(await startLife(inst, undefined, { TENANCY_HEARTBEAT_TIMEOUT_SECONDS: "soon", TENANCY_UNPAID_GRACE_HOURS: "-1" }));
    expect(r.code).toBe(2);
    expect(r.lines).toEqual([
      'control plane cannot start: TENANCY_HEARTBEAT_TIMEOUT_SECONDS: must be a number >= 0.1, got "soon" (settings: docs/control-plane.md)',
      'control plane cannot start: TENANCY_UNPAID_GRACE_HOURS: must be a number >= 0, got "-1" (settings: docs/control-plane.md)',
    ]);
    expect(r.lines.join("\n")).not.toMatch(STACK_FRAME);
  }, 180_000);

  it("a data directory that is not a directory: one line naming it", async () => {
    const file = join(inst.tmp, "not-a-directory");
    writeFileSync(file, "x");
    const r = await failedStart(await startLife(inst, undefined, { TENANCY_DATA_DIR: join(file, "data") }));
    expect(r.code).toBe(2);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(/^control plane cannot start: /);
    expect(r.lines[0]).toContain(file);
    expect(r.lines[0]).not.toMatch(STACK_FRAME);
  }, 180_000);

  it("a data directory in use by a running control plane: one line naming the owner and the fix; the running one is untouched", async () => {
    const first = await startLife(inst);
    try {
      await waitReady(first);
      const r = await failedStart(await startLife(inst));
      expect(r.code).toBe(2);
      expect(r.lines).toHaveLength(1);
      expect(r.lines[0]).toMatch(
        new RegExp(`^control plane cannot start: embedded PostgreSQL: .* is in use by the server \\(pid \\d+\\) of a running process \\(pid ${first.child.pid}\\); stop that process first, or give this one another TENANCY_DATA_DIR$`),
      );
      // Negative control: the first one still answers.
      expect((await healthz(first)).ok).toBe(true);
    } finally {
      expect(await stopLife(first)).toBe(0);
    }
    // The running one removed its temporary directory at its stop; the refused one made none.
    expect(leftoverTempDirs(inst)).toEqual([]);
  }, START_BOUND_MS + 180_000);
});
