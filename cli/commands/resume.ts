import { runOperatorRequest } from "../lifecycle/operator.ts";
import type { Io } from "../io.ts";
import { fleetDirs } from "../options.ts";
import { dbUrl } from "./upgrade.ts";

/** `tenantctl resume ID`: lifecycle active again (also cancels an offboarding still in its grace period). */
export async function resumeCommand(id: string, opts: { project?: string }, io: Io): Promise<number> {
  return runOperatorRequest({ kind: "resume", tenant: id }, { projectDir: fleetDirs(opts).projectDir, ...dbUrl() }, io);
}
