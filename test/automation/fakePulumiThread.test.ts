/**
 * The CLI test double on a worker thread (support/fakePulumiThread.ts), which the rollout bench
 * uses so that it measures the control plane rather than the double: the same answers as the
 * in-process double, errors as the Automation API's own classes, an abort that reaches the thread,
 * and nothing left behind.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { SDK_VERSION, stackState } from "./support/fakePulumi.ts";
import { FakePulumiThread } from "./support/fakePulumiThread.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "tenancy-fake-thread-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

it("answers as the double does, throws the Automation API's errors, and stops an update when aborted", { timeout: 60_000 }, async () => {
  const stateDir = join(dir, "state");
  const double = new FakePulumiThread({ stateDir, durationMs: { slow: 60_000 } });
  const bundle = (double as unknown as { bundle: string }).bundle;
  try {
    expect((await double.run(["version"], dir, {})).stdout).toBe(`v${SDK_VERSION}\n`);
    await expect(double.run(["stack", "select", "--stack", "slow"], dir, {})).rejects.toThrow(/no stack named 'slow' found/);
    await double.run(["stack", "init", "slow"], dir, {});
    expect(stackState(stateDir, "slow")).toEqual({ name: "slow", updates: [] });
    const controller = new AbortController();
    const outputs: string[] = [];
    const up = double.run(["up", "--stack", "slow", "--remote"], dir, {}, (d) => outputs.push(d), undefined, controller.signal);
    setTimeout(() => controller.abort(), 300);
    const started = Date.now();
    await expect(up).rejects.toThrow(/update canceled/);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(stackState(stateDir, "slow")!.updates).toEqual([]);
    expect(outputs).toEqual([]);
  } finally {
    await double.dispose();
  }
  expect(existsSync(bundle)).toBe(false);
  await expect(double.run(["version"], dir, {})).rejects.toThrow("the CLI double's thread was stopped (dispose)");
});
