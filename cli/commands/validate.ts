import { loadFleet } from "../../infra/model/fleet.ts";
import { formatProblem } from "../../infra/model/problems.ts";
import { EXIT, type Io } from "../io.ts";
import { fleetDirs, type DirOptions } from "../options.ts";

export function validateCommand(opts: DirOptions, io: Io): number {
  const { fleet, problems } = loadFleet(fleetDirs(opts));
  if (!fleet) {
    for (const p of problems) io.err(formatProblem(p));
    // stderr carries exactly one line per problem (docs/architecture.md) so tools can parse it; the count is for people.
    io.out(`${problems.length} problem${problems.length === 1 ? "" : "s"} found`);
    return EXIT.problems;
  }
  io.out(`ok: ${fleet.tenants.size} tenants, ${fleet.stacks.size} stacks (${fleet.cells.size} cells)`);
  return EXIT.ok;
}
