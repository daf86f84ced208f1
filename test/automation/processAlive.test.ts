/** isProcessAlive (automation/processAlive.ts): the signal-0 check every pid sweep of the control plane uses. */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { isProcessAlive } from "../../automation/processAlive.ts";

describe("isProcessAlive", () => {
  it("is true for a running process and false once the process has exited and been reaped", () => {
    expect(isProcessAlive(process.pid)).toBe(true);
    // spawnSync returns after the child has exited and been waited for: its pid names no process
    // (unless the kernel reused it within these microseconds).
    const child = spawnSync(process.execPath, ["-e", ""]);
    expect(child.status).toBe(0);
    expect(isProcessAlive(child.pid)).toBe(false);
  });
});
