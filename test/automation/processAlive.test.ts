/** isProcessAlive (automation/processAlive.ts): the signal-0 check every pid sweep of the control plane uses. */
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
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

  it.runIf(process.platform === "linux")("is false for a process that has exited and was not reaped (a zombie), which signal 0 alone still finds (negative control)", async () => {
    // A shell starts a subshell, then becomes `sleep`, which never waits for a child. The subshell
    // exits only once its parent is `sleep`: had it exited earlier, the shell could have reaped it
    // before its exec (it did, once, in a CI run), and there would be no zombie to look at. So it
    // stays a zombie for as long as the sleep runs.
    const script = 'p=$$; (while [ "$(cat /proc/$p/comm)" != sleep ]; do sleep 0.01; done) & echo $!; exec sleep 30';
    const parent = spawn("sh", ["-c", script], { stdio: ["ignore", "pipe", "ignore"] });
    try {
      const zombie = await new Promise<number>((resolve, reject) => {
        parent.stdout.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
        parent.once("error", reject);
      });
      const state = () => readFileSync(`/proc/${zombie}/stat`, "utf8").replace(/^.*\) /s, "")[0];
      await expect.poll(state, { timeout: 10_000 }).toBe("Z");
      expect(() => process.kill(zombie, 0)).not.toThrow();
      expect(isProcessAlive(zombie)).toBe(false);
      // Its parent, a live process that is not a zombie, is alive.
      expect(isProcessAlive(parent.pid!)).toBe(true);
    } finally {
      parent.kill("SIGKILL");
    }
  });
});
