/**
 * The control plane's HTTP intake alone (no billing reconciler, no run workers), in its own
 * process so the load generator does not share its event loop. Started by the webhook-intake
 * section: argv = databaseUrl repoDir dataDir. Sends `{ port }` over IPC when listening, stops
 * (closing its pool) on `"stop"`; answers `"cpu"` with its process.cpuUsage().
 */
import type { AddressInfo } from "node:net";
import { ControlPlane } from "../../automation/controlPlane.ts";
import type { Runner } from "../../automation/runs/runner.ts";
import { benchConfig, devNullLogger } from "../lib/controlPlane.ts";

const [databaseUrl, repoDir, dataDir] = process.argv.slice(2);
if (!databaseUrl || !repoDir || !dataDir) throw new Error("usage: webhookServer.ts DATABASE_URL REPO_DIR DATA_DIR");

// Intake never runs a stack; a runner that refuses makes sure of it.
const refuse = async (): Promise<never> => {
  throw new Error("the intake benchmark runs no stacks");
};
const runner: Runner = { kind: "local", up: refuse, destroy: refuse, moveState: refuse, preview: refuse };

const cp = await ControlPlane.create(benchConfig({ databaseUrl, repoDir, dataDir }), { log: devNullLogger(), runner });
await cp.start({ http: true, reconciler: false, runs: false });
const port = (cp.server.server.address() as AddressInfo).port;
process.on("message", (m) => {
  if (m === "cpu") process.send!({ cpu: process.cpuUsage() });
  if (m === "stop") {
    cp.stop(0).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  }
});
process.on("disconnect", () => void cp.stop(0).finally(() => process.exit(0)));
process.send!({ port });
