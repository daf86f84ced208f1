import { CutoverTimeError, parseCutoverTime } from "../../automation/index.ts";
import { runOperatorRequest } from "../lifecycle/operator.ts";
import { UsageError, type Io } from "../io.ts";
import { fleetDirs } from "../options.ts";
import { dbUrl } from "./upgrade.ts";

/**
 * `tenantctl move ID --to CELL [--env E] [--not-before TIME]`: a pooled tenant's environment moves
 * to another cell, recorded as a workflow the control plane runs (docs/lifecycle.md, "Cell moves");
 * with --not-before its switch waits for that time (the copy runs at once). It copies live data,
 * so it has no local mode. `tenantctl move ID --rollback`: the move under way is rolled back (only
 * before its switch).
 */
export async function moveCommand(id: string, opts: { project?: string; to?: string; env?: string; notBefore?: string; rollback?: boolean }, io: Io): Promise<number> {
  const projectDir = fleetDirs(opts).projectDir;
  if (opts.rollback) {
    if (opts.to || opts.env || opts.notBefore) throw new UsageError("--to, --env and --not-before do not go with --rollback (the rollback undoes the tenant's move under way, whatever its cells)");
    return runOperatorRequest({ kind: "move-rollback", tenant: id }, { projectDir, ...dbUrl() }, io);
  }
  if (!opts.to) throw new UsageError("--to <cell> is required (or --rollback to roll back the move under way)");
  let cutoverNotBefore: Date | undefined;
  try {
    if (opts.notBefore !== undefined) cutoverNotBefore = parseCutoverTime(opts.notBefore, new Date(), "--not-before");
  } catch (err) {
    if (err instanceof CutoverTimeError) throw new UsageError(err.message);
    throw err;
  }
  return runOperatorRequest({ kind: "move", tenant: id, to: opts.to, ...(opts.env ? { env: opts.env } : {}), ...(cutoverNotBefore ? { cutoverNotBefore } : {}) }, { projectDir, ...dbUrl() }, io);
}
