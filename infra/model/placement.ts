import { allocate, formatCidr, parseCidr, type Cidr } from "./cidr.ts";
import { cellResidents, type Cell, type Fleet } from "./fleet.ts";

/** Dedicated VPCs are /16s: room for 3 AZs of private and public subnets with growth. */
export const DEDICATED_VPC_PREFIX = 16;

export class PlacementError extends Error {}

/** No open cell has room, but a cell of the env and region is opening: the tenant waits for it (docs/cells.md). */
export class CellOpeningError extends PlacementError {
  constructor(
    readonly cell: Cell,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The least-loaded cell with room in an env and region; ties go to the lowest cell id so the
 * choice is deterministic. Only used when a tenant is created: placement is then written to the
 * tenant file and never recomputed (a move between cells is a data migration).
 */
export function chooseCell(fleet: Fleet, env: string, region: string): Cell {
  const candidates = [...fleet.cells.values()]
    // A cell still opening (no successful first up yet) takes no tenant (docs/cells.md).
    // A draining cell is being emptied: it takes no new tenant either.
    .filter((c) => c.env === env && c.region === region && c.config.opening !== true && c.config.draining !== true)
    .map((c) => ({ cell: c, load: cellResidents(fleet, c).length }))
    .filter((c) => c.load < c.cell.capacity)
    .sort((a, b) => a.load / a.cell.capacity - b.load / b.cell.capacity || a.cell.id.localeCompare(b.cell.id));
  const best = candidates[0];
  if (!best) {
    const opening = [...fleet.cells.values()].find((c) => c.env === env && c.region === region && c.config.opening === true);
    if (opening) {
      throw new CellOpeningError(
        opening,
        `no open cell with room in ${env}/${region}: cell ${opening.id} is opening; place the tenant after the first successful ` +
          `\`pulumi up\` of ${opening.stack} (then remove opening: true from ${opening.file})`,
      );
    }
    throw new PlacementError(
      `no cell with room in ${env}/${region}: add a cell stack file (stacks/Pulumi.shared-${env}-<cell>.yaml) ` +
        `or raise a cell's capacity`,
    );
  }
  return best.cell;
}

/** Every CIDR the fleet already uses: the hubs (the first is the control plane's region's), cells, dedicated tenants. */
export function takenCidrs(fleet: Fleet): Cidr[] {
  const cp = fleet.platform.controlPlane.region;
  const hubs = Object.entries(fleet.platform.hubs).sort(([a], [b]) => (a === cp ? -1 : b === cp ? 1 : a.localeCompare(b)));
  const out = hubs.map(([, hub]) => parseCidr(hub.cidr));
  for (const c of fleet.cells.values()) out.push(parseCidr(c.config.cidr));
  for (const { tenant } of fleet.tenants.values()) {
    if (tenant.deployment !== "dedicated") continue;
    for (const net of Object.values(tenant.dedicated)) if (net) out.push(parseCidr(net.cidr));
  }
  return out;
}

/** Allocates `count` fresh /16s for a dedicated tenant's environments. */
export function allocateDedicatedCidrs(fleet: Fleet, count: number): string[] {
  const taken = takenCidrs(fleet);
  const supernet = parseCidr(fleet.platform.dedicatedSupernet);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const block = allocate(supernet, DEDICATED_VPC_PREFIX, taken);
    if (!block) throw new PlacementError(`the dedicated supernet ${fleet.platform.dedicatedSupernet} has no free /${DEDICATED_VPC_PREFIX} left`);
    taken.push(block);
    out.push(formatCidr(block));
  }
  return out;
}
