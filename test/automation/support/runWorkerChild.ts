/**
 * A control-plane process that only runs stack updates, for the crash test: the parent kills it
 * with SIGKILL in the middle of an update. Input (JSON in CHILD_INPUT): the config fields and the
 * CLI test double's options.
 */
import { ControlPlane } from "../../../automation/controlPlane.ts";
import { createLogger } from "../../../automation/log.ts";
import { FakePulumiCommand, type FakePulumiOptions } from "./fakePulumi.ts";
import { testConfig } from "./harness.ts";

const input = JSON.parse(process.env.CHILD_INPUT ?? "{}") as {
  config: { databaseUrl: string; repoDir: string; dataDir: string; heartbeatSeconds: number; heartbeatTimeoutSeconds: number };
  fake: FakePulumiOptions;
};
const fake = new FakePulumiCommand(input.fake);
const cp = await ControlPlane.create(testConfig(input.config), {
  log: createLogger(process.env.TEST_LOG_LEVEL ?? "silent"),
  pulumiCommand: fake.asPulumiCommand(),
  pollingIntervalSeconds: 0.5,
});
await cp.start({ runs: true });
process.stdout.write(`ready ${cp.runWorker.workerId}\n`);
