/**
 * `tenantctl cells [--json]`: every cell's residents, capacity and headroom per env and region,
 * with the reserve that opens a new cell (docs/cells.md). Offline: reads the files only, so a cell
 * marked `opening` is shown as such whatever its stack's state in AWS.
 */
import { requireFleet } from "../../infra/model/fleet.ts";
import { fleetUsage, needsNewCell, type PoolUsage } from "../../infra/model/cells.ts";
import { EXIT, type Io } from "../io.ts";
import { fleetDirs, type DirOptions } from "../options.ts";
import { table } from "../table.ts";

/** The `--json` shape: one entry per env and region of the platform. */
export interface CellsJson {
  env: string;
  region: string;
  capacity: number;
  residents: number;
  headroom: number;
  headroomPercent: number;
  reservePercent: number;
  belowReserve: boolean;
  /** Whether the next tenant placed here opens a new cell first. */
  nextOpensCell: boolean;
  cells: { id: string; stack: string; state: "open" | "opening"; cidr: string; azs: string[]; capacity: number; headroom: number; residents: string[] }[];
}

export function cellsJson(fleet: Parameters<typeof fleetUsage>[0]): CellsJson[] {
  return fleetUsage(fleet).map((u: PoolUsage) => ({
    env: u.env, region: u.region, capacity: u.capacity, residents: u.residents, headroom: u.headroom,
    headroomPercent: u.headroomPercent, reservePercent: u.reservePercent, belowReserve: u.belowReserve,
    nextOpensCell: needsNewCell(fleet, u.env, u.region),
    cells: u.cells.map((c) => ({
      id: c.cell.id, stack: c.cell.stack, state: c.opening ? ("opening" as const) : ("open" as const), cidr: c.cell.config.cidr,
      azs: [...c.cell.config.azs], capacity: c.cell.capacity, headroom: c.headroom, residents: c.residents,
    })),
  }));
}

export function cellsCommand(opts: DirOptions & { json?: boolean }, io: Io): number {
  const usage = cellsJson(requireFleet(fleetDirs(opts)));
  if (opts.json) {
    io.out(JSON.stringify(usage, null, 2));
    return EXIT.ok;
  }
  const rows: string[][] = [];
  for (const u of usage) {
    for (const c of u.cells) rows.push([u.env, u.region, c.id, c.state, String(c.residents.length), String(c.capacity), String(c.headroom)]);
    const note = u.cells.length === 0 ? "no cells: the next tenant opens one" : `${u.headroomPercent}%, reserve ${u.reservePercent}%${u.nextOpensCell ? "; the next tenant opens a cell" : ""}`;
    rows.push([u.env, u.region, "total", "", String(u.residents), String(u.capacity), `${u.headroom} (${note})`]);
  }
  io.out(table(["ENV", "REGION", "CELL", "STATE", "RESIDENTS", "CAPACITY", "HEADROOM"], rows));
  return EXIT.ok;
}
