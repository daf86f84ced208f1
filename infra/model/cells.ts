/**
 * Cells that never fill up (docs/cells.md): capacity, residents and headroom per env and region,
 * the reserve that opens a new cell before the last one fills, and the new cell's stack file
 * (next cell id, next free CIDR, the region's AZs). Pure model code: who writes the file and when
 * it may be used for placement is the writers' business (tenantctl new, the control plane).
 */
import { Document, isSeq, parseDocument } from "yaml";
import { allocate, formatCidr, parseCidr, type Cidr } from "./cidr.ts";
import { cellResidents, type Cell, type Fleet } from "./fleet.ts";
import { cellStackName, regionCode } from "./naming.ts";
import { PlacementError, takenCidrs } from "./placement.ts";
import { regionAzs } from "./regions.ts";
import { CELL_KEY, type CellConfig } from "./stackFile.ts";
import { defaultDeployment, TIERS, type Tier } from "./tiers.ts";

/**
 * Where new cell VPCs get their /16: the RFC 1918 10/8, minus every hub, cell, dedicated VPC,
 * customer VPC and the whole dedicated supernet (a cell there would take a tenant's future /16).
 */
export const CELL_SUPERNET = "10.0.0.0/8";
/** Cell VPCs are /16s, like the example cells. */
export const CELL_VPC_PREFIX = 16;

export interface CellUsage {
  cell: Cell;
  /** Tenant ids living in the cell (placed, or migrating away). */
  residents: string[];
  headroom: number;
  /** Opened but not deployed yet: counts towards capacity, takes no tenant (docs/cells.md). */
  opening: boolean;
}

export interface PoolUsage {
  env: string;
  region: string;
  cells: CellUsage[];
  /** Sum of the cells' capacities, opening cells included. */
  capacity: number;
  residents: number;
  headroom: number;
  /** Headroom in percent of capacity (0 when there is no capacity). */
  headroomPercent: number;
  reservePercent: number;
  /** Whether the headroom is already below the reserve. */
  belowReserve: boolean;
}

/** Whether `headroom` free places out of `capacity` is less than the reserve. Integer arithmetic. */
function belowReserve(headroom: number, capacity: number, reservePercent: number): boolean {
  return headroom <= 0 || headroom * 100 < capacity * reservePercent;
}

/** Usage of one env and region's cells. */
export function poolUsage(fleet: Fleet, env: string, region: string): PoolUsage {
  const cells = [...fleet.cells.values()]
    .filter((c) => c.env === env && c.region === region)
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((cell) => {
      const residents = cellResidents(fleet, cell).map((t) => t.id).sort();
      return { cell, residents, headroom: Math.max(0, cell.capacity - residents.length), opening: cell.config.opening === true };
    });
  const capacity = cells.reduce((n, c) => n + c.cell.capacity, 0);
  const residents = cells.reduce((n, c) => n + c.residents.length, 0);
  const headroom = cells.reduce((n, c) => n + c.headroom, 0);
  const reservePercent = fleet.platform.cellDefaults.reservePercent;
  return {
    env, region, cells, capacity, residents, headroom, reservePercent,
    headroomPercent: capacity === 0 ? 0 : Math.floor((headroom * 100) / capacity),
    belowReserve: belowReserve(headroom, capacity, reservePercent),
  };
}

/** Every env and region of the platform (with or without cells), env-major in the platform's order. */
export function fleetUsage(fleet: Fleet): PoolUsage[] {
  return fleet.platform.environments.flatMap((env) => fleet.platform.regions.map((region) => poolUsage(fleet, env, region)));
}

/**
 * Whether placing `adding` more tenants in env/region would leave less headroom than the reserve,
 * counting cells still opening (their capacity is on its way). Only one cell opens at a time per
 * env and region: while one is opening, no second is asked for (two creations at once never open
 * two cells for one need).
 */
export function needsNewCell(fleet: Fleet, env: string, region: string, adding = 1): boolean {
  const u = poolUsage(fleet, env, region);
  if (u.cells.some((c) => c.opening)) return false;
  return belowReserve(u.headroom - adding, u.capacity, u.reservePercent);
}

/** The cell of env/region that is opening, if any. */
export function openingCell(fleet: Fleet, env: string, region: string): Cell | undefined {
  return [...fleet.cells.values()].find((c) => c.env === env && c.region === region && c.config.opening === true);
}

/** Every block a new cell must not overlap: takenCidrs, the customers' peered VPCs and the dedicated supernet. */
export function cellTakenCidrs(fleet: Fleet): Cidr[] {
  const out = takenCidrs(fleet);
  for (const { tenant } of fleet.tenants.values()) {
    if (tenant.deployment !== "dedicated") continue;
    for (const net of Object.values(tenant.dedicated)) if (net?.customerVpc) out.push(parseCidr(net.customerVpc.cidr));
  }
  out.push(parseCidr(fleet.platform.dedicatedSupernet));
  return out;
}

/** The lowest free /16 of CELL_SUPERNET for a new cell; PlacementError when there is none. */
export function allocateCellCidr(fleet: Fleet): string {
  const block = allocate(parseCidr(CELL_SUPERNET), CELL_VPC_PREFIX, cellTakenCidrs(fleet));
  if (!block) throw new PlacementError(`${CELL_SUPERNET} has no /${CELL_VPC_PREFIX} left for a new cell that overlaps no hub, cell, tenant or customer VPC`);
  return formatCidr(block);
}

/** The next cell id of env/region: `<region code>-<nn>`, one above the highest of that code in env. */
export function nextCellId(fleet: Fleet, env: string, region: string): string {
  const code = regionCode(region);
  let highest = 0;
  for (const c of fleet.cells.values()) {
    const m = new RegExp(`^${code}-(\\d{2})$`).exec(c.id);
    if (c.env === env && m) highest = Math.max(highest, Number(m[1]));
  }
  // Broken or unparsed stack files of the env count too: their names are taken.
  for (const name of fleet.stacks.keys()) {
    const m = new RegExp(`^shared-${env}-${code}-(\\d{2})$`).exec(name);
    if (m) highest = Math.max(highest, Number(m[1]));
  }
  if (highest >= 99) throw new PlacementError(`${env}/${region} has cells up to ${code}-99; cell ids have two digits: raise capacities instead`);
  return `${code}-${String(highest + 1).padStart(2, "0")}`;
}

const OPENING_COMMENT = "# opening: true -> no tenant is placed here until the stack's first `pulumi up` has succeeded; then remove that line.";

export interface NewCell {
  id: string;
  env: string;
  region: string;
  stack: string;
  config: CellConfig;
  /** The stack file's text (comment, aws:region, saas-tenancy:cell with opening: true). */
  text: string;
}

/**
 * The stack file of env/region's next cell: the next id, the next free CIDR, the first
 * cellDefaults.azCount AZs of the region (infra/model/regions.ts), sized like its newest sibling
 * (capacity and database overrides copied) and marked `opening: true`.
 */
export function planNewCell(fleet: Fleet, env: string, region: string): NewCell {
  const azs = regionAzs(region);
  if (!azs) throw new PlacementError(`region ${region} is not in the AZ table (infra/model/regions.ts); add it before opening a cell there`);
  const count = Math.min(fleet.platform.cellDefaults.azCount, azs.length);
  const id = nextCellId(fleet, env, region);
  const stack = cellStackName(env, id);
  const sibling = [...fleet.cells.values()].filter((c) => c.env === env && c.region === region).sort((a, b) => b.id.localeCompare(a.id))[0];
  const copied: Partial<CellConfig> = {};
  for (const key of ["capacity", "dbInstanceClass", "dbEngineVersion", "dbAllocatedStorageGb"] as const) {
    const v = sibling?.config[key];
    if (v !== undefined) Object.assign(copied, { [key]: v });
  }
  const config: CellConfig = {
    cidr: allocateCellCidr(fleet),
    azs: azs.slice(0, count),
    ingressHostname: `ingress.${stack}.${fleet.platform.domain}`,
    ...copied,
    opening: true,
  };
  const reserve = fleet.platform.cellDefaults.reservePercent;
  const doc = new Document({ config: { "aws:region": region, [CELL_KEY]: config } });
  const azsNode = doc.getIn(["config", CELL_KEY, "azs"], true);
  if (isSeq(azsNode)) azsNode.flow = true;
  const text =
    `# Pooled cell ${stack}, opened because ${env}/${region} would fall below its ${reserve}% reserve (docs/cells.md).\n` +
    `${OPENING_COMMENT}\n` +
    doc.toString({ flowCollectionPadding: false });
  return { id, env, region, stack, config, text };
}

/** The stack file text with `opening` removed (the cell's first up succeeded); other comments kept. */
export function openedCellText(text: string): string {
  const doc = parseDocument(text);
  doc.deleteIn(["config", CELL_KEY, "opening"]);
  // No padding inside flow collections: `azs: [a, b]` stays as written, so the commit removes the marker and nothing else.
  return doc.toString({ flowCollectionPadding: false }).split("\n").filter((l) => l !== OPENING_COMMENT).join("\n");
}

/** The fleet with a planned cell added (as its stack file would load), for planning what comes after it. */
export function withCell(fleet: Fleet, cell: NewCell): Fleet {
  const cells = new Map(fleet.cells);
  cells.set(cell.stack, {
    id: cell.id, env: cell.env, region: cell.region, stack: cell.stack, config: cell.config,
    file: `stacks/Pulumi.${cell.stack}.yaml`, capacity: cell.config.capacity ?? fleet.platform.cellDefaults.capacity,
  });
  return { ...fleet, cells };
}

/**
 * The cells to open before a new tenant document is placed: for a pooled tenant whose placement
 * is left to us, one per env whose region would fall below the reserve with it (none while one
 * is already opening there). Each planned against the fleet with the earlier ones added, so two
 * envs never get one CIDR.
 */
export function cellsToOpen(fleet: Fleet, doc: Readonly<Record<string, unknown>>): NewCell[] {
  const region = typeof doc.region === "string" ? doc.region : undefined;
  const envs = doc.environments && typeof doc.environments === "object" && !Array.isArray(doc.environments) ? Object.keys(doc.environments) : [];
  const tier = typeof doc.tier === "string" && (TIERS as readonly string[]).includes(doc.tier) ? (doc.tier as Tier) : undefined;
  const deployment = doc.deployment ?? (tier ? defaultDeployment(tier) : undefined);
  if (deployment !== "pooled" || doc.placement !== undefined || !region || !fleet.platform.regions.includes(region)) return [];
  const out: NewCell[] = [];
  let current = fleet;
  for (const env of envs) {
    if (!fleet.platform.environments.includes(env) || !needsNewCell(current, env, region)) continue;
    const cell = planNewCell(current, env, region);
    out.push(cell);
    current = withCell(current, cell);
  }
  return out;
}
