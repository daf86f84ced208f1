import { runOperatorRequest } from "../lifecycle/operator.ts";
import { UsageError, type Io } from "../io.ts";
import { fleetDirs } from "../options.ts";
import { dbUrl } from "./upgrade.ts";

/**
 * `tenantctl offboard ID [--grace-days N]`: lifecycle offboarding with the request time. Data is
 * deleted only by the control plane's workflow, after the grace period and a recorded backup.
 */
export async function offboardCommand(id: string, opts: { project?: string; graceDays?: string }, io: Io): Promise<number> {
  let graceDays: number | undefined;
  if (opts.graceDays !== undefined) {
    graceDays = Number(opts.graceDays);
    if (!/^\d+$/.test(opts.graceDays) || !Number.isSafeInteger(graceDays)) throw new UsageError(`--grace-days ${opts.graceDays}: expected a whole number of days (0 or more)`);
  }
  return runOperatorRequest({ kind: "offboard", tenant: id, ...(graceDays !== undefined ? { graceDays } : {}) }, { projectDir: fleetDirs(opts).projectDir, ...dbUrl() }, io);
}
