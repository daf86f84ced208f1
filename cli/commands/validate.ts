import { loadFleet } from "../../infra/model/fleet.ts";
import { placementChanges } from "../../infra/model/placementChanges.ts";
import { formatProblem } from "../../infra/model/problems.ts";
import { EXIT, UsageError, type Io } from "../io.ts";
import { fleetDirs, type DirOptions } from "../options.ts";

export interface ValidateOptions extends DirOptions {
  /** Also compare with the fleet at this git revision: a pooled tenant's placement may not change (infra/model/placementChanges.ts). */
  base?: string;
}

export async function validateCommand(opts: ValidateOptions, io: Io): Promise<number> {
  const dirs = fleetDirs(opts);
  const { fleet, problems } = loadFleet(dirs);
  if (!fleet) {
    for (const p of problems) io.err(formatProblem(p));
    // stderr carries exactly one line per problem (docs/architecture.md) so tools can parse it; the count is for people.
    io.out(`${problems.length} problem${problems.length === 1 ? "" : "s"} found`);
    return EXIT.problems;
  }
  if (opts.base !== undefined) {
    // Loaded only with --base: validate without it starts fast and needs no git.
    const { GitError, resolveCommit } = await import("../affected/git.ts");
    const { withFleetSnapshot } = await import("../affected/worktree.ts");
    let base;
    try {
      base = await withFleetSnapshot(dirs.projectDir, await resolveCommit(dirs.projectDir, opts.base), async (dir) => loadFleet({ projectDir: dir }));
    } catch (err) {
      if (err instanceof GitError) throw new UsageError(err.message);
      throw err;
    }
    if (!base.fleet) {
      io.err(`tenantctl: warning: the fleet at ${opts.base} does not load with this code (${base.problems.length} problems); placements were not compared with it`);
    } else {
      const moved = placementChanges(base.fleet, fleet, opts.base);
      if (moved.length > 0) {
        for (const p of moved) io.err(formatProblem(p));
        io.out(`${moved.length} problem${moved.length === 1 ? "" : "s"} found`);
        return EXIT.problems;
      }
    }
  }
  io.out(`ok: ${fleet.tenants.size} tenants, ${fleet.stacks.size} stacks (${fleet.cells.size} cells)`);
  return EXIT.ok;
}
