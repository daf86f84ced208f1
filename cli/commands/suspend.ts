import { runOperatorRequest } from "../lifecycle/operator.ts";
import type { Io } from "../io.ts";
import { fleetDirs } from "../options.ts";
import { dbUrl } from "./upgrade.ts";

/** `tenantctl suspend ID`: lifecycle suspended (LOGIN revoked and DNS to the suspension page by the stacks; data kept). */
export async function suspendCommand(id: string, opts: { project?: string }, io: Io): Promise<number> {
  return runOperatorRequest({ kind: "suspend", tenant: id }, { projectDir: fleetDirs(opts).projectDir, ...dbUrl() }, io);
}
