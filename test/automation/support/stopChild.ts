/**
 * A control plane that starts everything (HTTP, reconciler, run workers, and the lifecycle worker
 * when asked), stops, and then does nothing: the parent checks that the process exits by itself
 * (no pool, socket, timer, listener or server process left). Input (JSON in CHILD_INPUT):
 * databaseUrl (absent: the embedded PostgreSQL under dataDir), repoDir, dataDir, stateDir, lifecycle.
 */
import { ControlPlane } from "../../../automation/controlPlane.ts";
import { DEFAULT_LIFECYCLE_CONFIG } from "../../../automation/lifecycle/config.ts";
import { createLogger } from "../../../automation/log.ts";
import { FakePulumiCommand } from "./fakePulumi.ts";
import { testConfig } from "./harness.ts";

const input = JSON.parse(process.env.CHILD_INPUT ?? "{}") as { databaseUrl?: string; repoDir: string; dataDir: string; stateDir: string; lifecycle?: boolean };
const fake = new FakePulumiCommand({ stateDir: input.stateDir });
const config = testConfig({
  repoDir: input.repoDir,
  dataDir: input.dataDir,
  ...(input.databaseUrl ? { databaseUrl: input.databaseUrl } : {}),
  ...(input.lifecycle ? { lifecycle: { intervalSeconds: 0.2, workflows: DEFAULT_LIFECYCLE_CONFIG } } : {}),
});
const cp = await ControlPlane.create(config, { log: createLogger("silent"), pulumiCommand: fake.asPulumiCommand(), pollingIntervalSeconds: 0.5 });
await cp.start({ http: true, reconciler: true, runs: true, lifecycle: input.lifecycle === true });
// Let the lifecycle worker tick at least once (its loop and timer must end with stop()).
if (input.lifecycle) await new Promise((r) => setTimeout(r, 500));
await cp.stop(0);
process.stdout.write("stopped\n");
