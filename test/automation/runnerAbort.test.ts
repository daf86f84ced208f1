/**
 * What an aborted update does to the stack (automation/runs/runner.ts, withRetries): a cancelled
 * run also runs `pulumi cancel`, a run taken over by another worker (RunTakenOverError) stops only
 * its own CLI command, since `pulumi cancel` would cancel, or unlock, the new attempt's update.
 * LocalAutomationRunner against the Pulumi CLI test double, in process; nothing is deployed.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../../automation/log.ts";
import { LocalAutomationRunner, RunCancelledError, RunTakenOverError, type RunContext } from "../../automation/runs/runner.ts";
import { commandLog, FakePulumiCommand } from "./support/fakePulumi.ts";
import { makeFixtureRepo } from "./support/repo.ts";

const STACK = "shared-prod-use1-01";

describe("an aborted update", () => {
  let dir: string;
  let stateDir: string;
  let workDir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "tenancy-abort-"));
    stateDir = join(dir, "state");
    workDir = join(dir, "checkout");
    mkdirSync(workDir);
    makeFixtureRepo(workDir);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function abortMidUpdate(reason: Error): Promise<string[]> {
    const fake = new FakePulumiCommand({ stateDir, hangAfterEvents: 2 });
    const runner = new LocalAutomationRunner({ retries: 0, baseMs: 10, pulumiCommand: fake.asPulumiCommand() });
    const controller = new AbortController();
    let events = 0;
    const ctx: RunContext = {
      runId: "00000000-0000-4000-8000-0000000000ab", stack: STACK, workDir, commit: "0123456789abcdef0123456789abcdef01234567", attempt: 1,
      recovering: false, signal: controller.signal, onOutput: () => undefined, log: createLogger("silent"),
      onEvent: () => {
        if (++events === 2) controller.abort(reason);
      },
    };
    await expect(runner.up(ctx)).rejects.toBeInstanceOf(RunCancelledError);
    // stack.cancel() runs detached from the abort listener: let it reach the CLI.
    await new Promise((r) => setTimeout(r, 200));
    return commandLog(stateDir).map((c) => c.args[0]!);
  }

  it("taken over by another worker: stops its own command, runs no `pulumi cancel`", async () => {
    expect(await abortMidUpdate(new RunTakenOverError("run taken over by another worker"))).not.toContain("cancel");
  });

  it("negative control: cancelled by request, it also runs `pulumi cancel`", async () => {
    expect(await abortMidUpdate(new Error("cancelled by request"))).toContain("cancel");
  });
});
