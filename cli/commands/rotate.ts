import { runOperatorRequest } from "../lifecycle/operator.ts";
import type { Io } from "../io.ts";
import { fleetDirs } from "../options.ts";
import { dbUrl } from "./upgrade.ts";

/**
 * `tenantctl rotate ID [--env E ...]`: rotation of the tenant's database password (all its
 * environments unless --env), recorded as a workflow the control plane runs (docs/lifecycle.md,
 * "Credential rotation"). It changes a live password, so it has no local mode.
 */
export async function rotateCommand(id: string, opts: { project?: string; env?: string[] }, io: Io): Promise<number> {
  return runOperatorRequest({ kind: "rotate", tenant: id, envs: opts.env ?? [] }, { projectDir: fleetDirs(opts).projectDir, ...dbUrl() }, io);
}
