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
  let cutoverNotBefore: Date | undefined;
  if (opts.cutoverAt !== undefined) {
    cutoverNotBefore = new Date(opts.cutoverAt);
    if (!/^\d{4}-\d{2}-\d{2}T/.test(opts.cutoverAt) || Number.isNaN(cutoverNotBefore.getTime())) {
      throw new UsageError(`--cutover-at ${opts.cutoverAt}: expected an ISO 8601 time such as 2026-04-01T22:00:00Z`);
    }
  }
  return runOperatorRequest({ kind: "upgrade", tenant: id, ...(cutoverNotBefore ? { cutoverNotBefore } : {}) }, { projectDir, ...dbUrl() }, io);
}

export function dbUrl(): { databaseUrl?: string } {
  const url = process.env.DATABASE_URL;
  return url ? { databaseUrl: url } : {};
}
