import { runOperatorRequest } from "../lifecycle/operator.ts";
import type { Io } from "../io.ts";
import { fleetDirs } from "../options.ts";
import { dbUrl } from "./upgrade.ts";

/**
 * `tenantctl move ID --to CELL [--env E]`: a pooled tenant's environment moves to another cell,
 * recorded as a workflow the control plane runs (docs/lifecycle.md, "Cell moves"). It copies live
 * data, so it has no local mode.
 */
export async function moveCommand(id: string, opts: { project?: string; to: string; env?: string }, io: Io): Promise<number> {
  return runOperatorRequest({ kind: "move", tenant: id, to: opts.to, ...(opts.env ? { env: opts.env } : {}) }, { projectDir: fleetDirs(opts).projectDir, ...dbUrl() }, io);
}
