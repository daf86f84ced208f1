/**
 * A control-plane process that only runs stack updates, for the crash tests: the parent kills it
 * with SIGKILL in the middle of an update. Input (JSON in CHILD_INPUT): the config fields, and
 * either the CLI test double's options (run in this process: the "CLI" dies with it) or
 * `pulumiRoot`, an executable double (installFakePulumiBinary: a CLI process of its own, which
 * outlives this one), with `leftoverCli` for a takeover's wait. Prints `ready <worker id>`.
 *
 * Its temporary directory is its own under the data directory, as automation/main.ts makes it for
 * a control plane (automation/tempDir.ts): the parent kills it mid-update, and what the Automation
 * API had put there (the update's event-log directory `automation-logs-up-*`, removed only when
 * the command ends in this process) goes with the harness's data directory, not left in the test
 * run's TMPDIR.
 */
import { ControlPlane } from "../../../automation/controlPlane.ts";
import { createLogger } from "../../../automation/log.ts";
import type { LeftoverCliOptions } from "../../../automation/runs/cliProcess.ts";
import { claimTempDir } from "../../../automation/tempDir.ts";
import { FakePulumiCommand, type FakePulumiOptions } from "./fakePulumi.ts";
import { testConfig } from "./harness.ts";

const input = JSON.parse(process.env.CHILD_INPUT ?? "{}") as {
  config: { databaseUrl: string; repoDir: string; dataDir: string; heartbeatSeconds: number; heartbeatTimeoutSeconds: number; pulumiRoot?: string; maxParallelRuns?: number };
  fake?: FakePulumiOptions;
  leftoverCli?: LeftoverCliOptions;
};
process.env.TMPDIR = claimTempDir(input.config.dataDir).dir;
const cp = await ControlPlane.create(testConfig(input.config), {
  log: createLogger(process.env.TEST_LOG_LEVEL ?? "silent"),
  ...(input.fake ? { pulumiCommand: new FakePulumiCommand(input.fake).asPulumiCommand() } : {}),
  ...(input.leftoverCli ? { leftoverCli: input.leftoverCli } : {}),
  pollingIntervalSeconds: 0.5,
});
await cp.start({ runs: true });
process.stdout.write(`ready ${cp.runWorker.workerId}\n`);
