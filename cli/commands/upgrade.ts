import { CutoverTimeError, parseCutoverTime } from "../../automation/index.ts";
import { runOperatorRequest } from "../lifecycle/operator.ts";
import { UsageError, type Io } from "../io.ts";
import { fleetDirs } from "../options.ts";

export interface UpgradeOptions {
  to?: string;
  cutoverAt?: string;
  rollback?: boolean;
  destroyDedicated?: boolean;
  project?: string;
}

/**
 * `tenantctl upgrade ID --to dedicated [--cutover-at ISO]` and `--rollback [--destroy-dedicated]`.
 * With DATABASE_URL: records the workflow for the control plane. Without: prints step 1's change.
 * See cli/lifecycle/operator.ts.
 */
export async function upgradeCommand(id: string, opts: UpgradeOptions, io: Io): Promise<number> {
  const { projectDir } = fleetDirs(opts);
  if (opts.rollback) {
    if (opts.cutoverAt) throw new UsageError("--cutover-at does not go with --rollback");
    return runOperatorRequest({ kind: "rollback", tenant: id, destroyDedicated: opts.destroyDedicated === true }, { projectDir, ...dbUrl() }, io);
  }
  if (opts.destroyDedicated) throw new UsageError("--destroy-dedicated goes with --rollback");
  if (opts.to !== "dedicated") throw new UsageError(`--to ${opts.to ?? "(missing)"}: the only upgrade is --to dedicated`);
  // Read as a move's --not-before is (automation/lifecycle/workflows/cutoverTime.ts): with its offset, not in the past.
  let cutoverNotBefore: Date | undefined;
  try {
    if (opts.cutoverAt !== undefined) cutoverNotBefore = parseCutoverTime(opts.cutoverAt, new Date(), "--cutover-at");
  } catch (err) {
    if (err instanceof CutoverTimeError) throw new UsageError(err.message);
    throw err;
  }
  return runOperatorRequest({ kind: "upgrade", tenant: id, ...(cutoverNotBefore ? { cutoverNotBefore } : {}) }, { projectDir, ...dbUrl() }, io);
}

export function dbUrl(): { databaseUrl?: string } {
  const url = process.env.DATABASE_URL;
  return url ? { databaseUrl: url } : {};
}
