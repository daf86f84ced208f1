/**
 * A control-plane process that only runs stack updates, for the crash tests: the parent kills it
 * with SIGKILL in the middle of an update. Input (JSON in CHILD_INPUT): the config fields, and
 * either the CLI test double's options (run in this process: the "CLI" dies with it) or
 * `pulumiRoot`, an executable double (installFakePulumiBinary: a CLI process of its own, which
 * outlives this one), with `leftoverCli` for a takeover's wait. Prints `ready <worker id>`.
 */
import { ControlPlane } from "../../../automation/controlPlane.ts";
import { createLogger } from "../../../automation/log.ts";
import type { LeftoverCliOptions } from "../../../automation/runs/cliProcess.ts";
import { FakePulumiCommand, type FakePulumiOptions } from "./fakePulumi.ts";
import { testConfig } from "./harness.ts";

const input = JSON.parse(process.env.CHILD_INPUT ?? "{}") as {
  config: { databaseUrl: string; repoDir: string; dataDir: string; heartbeatSeconds: number; heartbeatTimeoutSeconds: number; pulumiRoot?: string; maxParallelRuns?: number };
  fake?: FakePulumiOptions;
  leftoverCli?: LeftoverCliOptions;
};
const cp = await ControlPlane.create(testConfig(input.config), {
  log: createLogger(process.env.TEST_LOG_LEVEL ?? "silent"),
  ...(input.fake ? { pulumiCommand: new FakePulumiCommand(input.fake).asPulumiCommand() } : {}),
  ...(input.leftoverCli ? { leftoverCli: input.leftoverCli } : {}),
  pollingIntervalSeconds: 0.5,
});
await cp.start({ runs: true });
process.stdout.write(`ready ${cp.runWorker.workerId}\n`);
