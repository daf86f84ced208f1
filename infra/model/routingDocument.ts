/**
 * The routing document of an env and region (docs/runtime-config.md, "Routing document"): which
 * endpoint serves each tenant, for a request router. Pure (no Pulumi).
 *
 * It is not one parameter: every stack that serves tenants of the env and region writes its own
 * share under `/<app>/<env>/routing/<region>/`, and the router reads the path with
 * GetParametersByPath and merges the shares (`mergeRouting`). So adding a tenant updates only the
 * stack that gets the tenant, and no two stacks ever write one parameter.
 *
 * - a cell stack: pages `cells/<cell>/<nn>` listing the residents it serves (`routes`, each to the
 *   cell's ingress), and `forwards` for residents that another stack serves already but that the
 *   cell still renders (an upgrade from cutover to cleanup, a cell move from its switch on); a
 *   forward keeps the tenant routable between the cell's update and the new owner's.
 * - a dedicated stack: `dedicated/<tenant>`, from the moment it serves the tenant (cutover on).
 *
 * Each page stays an SSM Standard parameter (at most 4,096 bytes: pages are filled by size).
 */
import { dedicatedZoneName, routingCellPageName, routingDedicatedName } from "./naming.ts";
import { envDomain, type Platform } from "./platform.ts";
import { routeOf } from "./routes.ts";
import { SSM_STANDARD_MAX_BYTES } from "./runtimeConfig.ts";
import type { Tenant } from "./schema.ts";

export const ROUTING_SCHEMA_VERSION = 1;

export interface RoutingShare {
  schemaVersion: typeof ROUTING_SCHEMA_VERSION;
  env: string;
  region: string;
  /** The stack writing this share, and its kind (a dedicated stack's claim outranks a cell's). */
  source: string;
  kind: "cell" | "dedicated";
  /** Tenant id -> endpoint host: tenants this stack serves. */
  routes: Record<string, string>;
  /** Tenant id -> endpoint host: tenants this stack still renders but another stack serves. */
  forwards: Record<string, string>;
}

/** Every key of a share; the policy pack refuses any other (`routing-own-env-region`). */
export const ROUTING_KEYS = ["schemaVersion", "env", "region", "source", "kind", "routes", "forwards"] as const satisfies readonly (keyof RoutingShare)[];

export interface RoutingParameter {
  name: string;
  value: string;
  document: RoutingShare;
}

/**
 * What the routing functions read of a fleet (a Fleet of infra/model/fleet.ts fits); spelled out,
 * not imported, so the quota check loadFleet runs can count the pages (infra/model/fleetLimits.ts).
 */
export interface RoutingFleet {
  platform: Platform;
  /** By stack name. */
  cells: ReadonlyMap<string, { config: { ingressHostname: string } }>;
}
type FleetView = RoutingFleet;
/** The cell a share belongs to. */
export interface RoutingCell {
  id: string;
  env: string;
  region: string;
  stack: string;
}

/** The endpoint host of the stack serving `t` in `env`: a cell's ingress, or the dedicated zone. */
export function endpointOf(fleet: FleetView, t: Tenant, env: string): { stack: string; endpoint: string } {
  const route = routeOf(fleet, t, env);
  if (route.deployment === "dedicated") return { stack: route.stack, endpoint: dedicatedZoneName(t.id, envDomain(fleet.platform, env)) };
  const cell = fleet.cells.get(route.stack);
  if (!cell) throw new Error(`tenant ${t.id} (${env}) is served by ${route.stack}, which has no stack file`);
  return { stack: route.stack, endpoint: cell.config.ingressHostname };
}

function text(share: RoutingShare): string {
  return JSON.stringify(share);
}

function bytes(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/**
 * A cell's pages: residents sorted by id, filled into pages of at most 4,096 bytes, at least one
 * page (an empty cell says so). Adding a tenant may move the tenants after it to the next page:
 * updates of this stack's own parameters, never another stack's.
 */
export function cellRoutingParameters(fleet: FleetView, cell: RoutingCell, residents: readonly Tenant[]): RoutingParameter[] {
  const app = fleet.platform.appName;
  const empty = (): RoutingShare => ({ schemaVersion: ROUTING_SCHEMA_VERSION, env: cell.env, region: cell.region, source: cell.stack, kind: "cell", routes: {}, forwards: {} });
  const pages: RoutingShare[] = [empty()];
  // The size of text(page) kept up to date as entries are added, instead of serializing the page
  // again per tenant (which made a cell's pages quadratic in its residents): JSON.stringify of an
  // object is its entries' `"key":value` joined by commas, so an entry adds exactly its own bytes
  // plus a comma when the object had entries already (test/infra/routingDocument.test.ts checks
  // every page against text() itself).
  const emptyBytes = bytes(text(empty()));
  let size = emptyBytes;
  const counts = { routes: 0, forwards: 0 };
  for (const t of [...residents].sort((a, b) => a.id.localeCompare(b.id))) {
    const { stack, endpoint } = endpointOf(fleet, t, cell.env);
    const kind = stack === cell.stack ? "routes" : "forwards";
    const entry = bytes(JSON.stringify(t.id)) + 1 + bytes(JSON.stringify(endpoint));
    let page = pages[pages.length - 1]!;
    if (size + entry + (counts[kind] > 0 ? 1 : 0) > SSM_STANDARD_MAX_BYTES) {
      page = empty();
      pages.push(page);
      size = emptyBytes;
      counts.routes = 0;
      counts.forwards = 0;
    }
    size += entry + (counts[kind] > 0 ? 1 : 0);
    counts[kind]++;
    page[kind][t.id] = endpoint;
  }
  return pages.map((document, i) => ({ name: routingCellPageName(app, cell.env, cell.region, cell.id, i), value: text(document), document }));
}

/** A dedicated tenant's share in `env`, or undefined while a cell still serves it (before cutover). */
export function dedicatedRoutingParameter(fleet: FleetView, t: Tenant, env: string): RoutingParameter | undefined {
  if (routeOf(fleet, t, env).deployment !== "dedicated") return undefined;
  const { stack, endpoint } = endpointOf(fleet, t, env);
  const document: RoutingShare = { schemaVersion: ROUTING_SCHEMA_VERSION, env, region: t.region, source: stack, kind: "dedicated", routes: { [t.id]: endpoint }, forwards: {} };
  return { name: routingDedicatedName(fleet.platform.appName, env, t.region, t.id), value: text(document), document };
}

export interface MergedRouting {
  /** Tenant id -> endpoint host. */
  routes: Record<string, string>;
  /** Tenants whose shares disagree (an update of two stacks half done); the router keeps its last route for them. */
  conflicts: string[];
}

/**
 * What a router makes of the shares it read under one env and region. A tenant's route is, in
 * this order: the claim of a dedicated stack (it claims only once it serves the tenant, and no
 * workflow hands a tenant back after cutover), the claim of a cell, a cell's forward. A claim
 * left behind by a cell not yet updated after an upgrade's cutover thus never hides the dedicated
 * stack's. Two disagreeing claims of one rank (two cells during a cell move whose cell left was
 * not updated first) are a conflict: the router keeps its previous route for that tenant.
 * Shares of another env or region, or of an unknown schema version, are refused.
 */
export function mergeRouting(env: string, region: string, shares: readonly RoutingShare[]): MergedRouting {
  const dedicated = new Map<string, Set<string>>();
  const served = new Map<string, Set<string>>();
  const forwarded = new Map<string, Set<string>>();
  for (const s of shares) {
    // Read from a parameter the type cannot vouch for: compared as a number, not as the literal.
    const version: number = s.schemaVersion;
    if (version !== ROUTING_SCHEMA_VERSION) throw new Error(`routing share of ${s.source} has schema version ${version}; this reader knows ${ROUTING_SCHEMA_VERSION}`);
    if (s.env !== env || s.region !== region) throw new Error(`routing share of ${s.source} is for ${s.env}/${s.region}, read as ${env}/${region}`);
    for (const [map, into] of [[s.routes, s.kind === "dedicated" ? dedicated : served], [s.forwards, forwarded]] as const) {
      for (const [id, endpoint] of Object.entries(map)) into.set(id, (into.get(id) ?? new Set()).add(endpoint));
    }
  }
  const routes: Record<string, string> = {};
  const conflicts: string[] = [];
  for (const id of [...new Set([...dedicated.keys(), ...served.keys(), ...forwarded.keys()])].sort()) {
    const candidates = dedicated.get(id) ?? served.get(id) ?? forwarded.get(id)!;
    if (candidates.size === 1) routes[id] = [...candidates][0]!;
    else conflicts.push(id);
  }
  return { routes, conflicts };
}
