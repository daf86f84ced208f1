/**
 * A control plane that starts everything (HTTP, reconciler, run workers), stops, and then
 * does nothing: the parent checks that the process exits by itself (no pool, socket, timer or
 * listener left open). Input (JSON in CHILD_INPUT): databaseUrl, repoDir, dataDir.
 */
import { ControlPlane } from "../../../automation/controlPlane.ts";
import { createLogger } from "../../../automation/log.ts";
import { FakePulumiCommand } from "./fakePulumi.ts";
import { testConfig } from "./harness.ts";

const input = JSON.parse(process.env.CHILD_INPUT ?? "{}") as { databaseUrl: string; repoDir: string; dataDir: string; stateDir: string };
const fake = new FakePulumiCommand({ stateDir: input.stateDir });
const cp = await ControlPlane.create(testConfig(input), { log: createLogger("silent"), pulumiCommand: fake.asPulumiCommand(), pollingIntervalSeconds: 0.5 });
await cp.start({ http: true, reconciler: true, runs: true });
await cp.stop(0);
process.stdout.write("stopped\n");
