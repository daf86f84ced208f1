import { sourceServes } from "./cellMove.ts";
import { envDomain, type Platform } from "./platform.ts";
import {
  cellStackName, databaseSecretName, dedicatedStackName, dedicatedZoneName, pooledHostname,
} from "./naming.ts";
import type { Tenant } from "./schema.ts";

export interface Route {
  tenant: string;
  env: string;
  url: string;
  deployment: "pooled" | "dedicated";
  stack: string;
  region: string;
  lifecycle: Tenant["lifecycle"];
  databaseSecretName: string;
}

/**
 * Where a tenant is served from in an env. During an upgrade the tenant keeps serving from its
 * cell until cutover; from cutover on the dedicated stack serves it. A tenant moving between cells
 * is served by the cell it leaves until the switch, then by the cell it moved to.
 */
/**
 * What these functions read of a fleet (a Fleet of infra/model/fleet.ts fits), spelled out so that
 * the fleet-level checks loadFleet runs (infra/model/fleetLimits.ts) can use them without a cycle.
 */
export interface RoutesFleet {
  platform: Pick<Platform, "domain" | "appName">;
  tenants: ReadonlyMap<string, { tenant: Tenant }>;
}

export function routeOf(fleet: Pick<RoutesFleet, "platform">, t: Tenant, env: string): Route {
  const domain = envDomain(fleet.platform, env);
  const fromCell = t.deployment === "dedicated" ? t.migration?.from[env] : undefined;
  const servingFromCell =
    t.deployment === "pooled" || (fromCell !== undefined && (t.migration?.phase === "provisioning" || t.migration?.phase === "copying"));
  const base = {
    tenant: t.id,
    env,
    region: t.region,
    lifecycle: t.lifecycle,
    databaseSecretName: databaseSecretName(fleet.platform.appName, env, t.id),
  };
  if (servingFromCell) {
    // The connection document keeps its name through an upgrade; its stack and content change at cutover.
    // A cell move: the cell left serves until the switch (infra/model/cellMove.ts).
    const leaving = t.deployment === "pooled" && t.move && sourceServes(t.move.phase) ? t.move.from[env] : undefined;
    const cell = t.deployment === "pooled" ? (leaving ?? t.placement[env]!) : fromCell!;
    return { ...base, url: `https://${pooledHostname(t.id, domain)}`, deployment: "pooled", stack: cellStackName(env, cell) };
  }
  return { ...base, url: `https://${dedicatedZoneName(t.id, domain)}`, deployment: "dedicated", stack: dedicatedStackName(t.id, env) };
}

/** The tenants living in a cell stack: placed there, or migrating or moving away from it (until cleanup ends). */
export function cellResidents(fleet: Pick<RoutesFleet, "tenants">, cell: { env: string; id: string }): Tenant[] {
  const out: Tenant[] = [];
  for (const { tenant } of fleet.tenants.values()) {
    if (tenant.deployment === "pooled" && (tenant.placement[cell.env] === cell.id || tenant.move?.from[cell.env] === cell.id)) out.push(tenant);
    if (tenant.deployment === "dedicated" && tenant.migration?.from[cell.env] === cell.id) out.push(tenant);
  }
  return out;
}

/**
 * cellResidents of every cell at once, in one pass over the tenants (a check that visits every
 * cell would otherwise scan every tenant per cell: cells x tenants). Keyed by `${env}/${cellId}`
 * (residentsKey); each list in the order cellResidents returns it.
 */
export function residentsByCell(fleet: Pick<RoutesFleet, "tenants">): ReadonlyMap<string, readonly Tenant[]> {
  const out = new Map<string, Tenant[]>();
  const add = (key: string, t: Tenant) => {
    const list = out.get(key);
    if (!list) out.set(key, [t]);
    else if (list[list.length - 1] !== t) list.push(t);
  };
  for (const { tenant } of fleet.tenants.values()) {
    if (tenant.deployment === "pooled") {
      for (const [env, cell] of Object.entries(tenant.placement)) if (cell !== undefined) add(residentsKey(env, cell), tenant);
      for (const [env, cell] of Object.entries(tenant.move?.from ?? {})) if (cell !== undefined) add(residentsKey(env, cell), tenant);
    } else {
      for (const [env, cell] of Object.entries(tenant.migration?.from ?? {})) if (cell !== undefined) add(residentsKey(env, cell), tenant);
    }
  }
  return out;
}

export function residentsKey(env: string, cellId: string): string {
  return `${env}/${cellId}`;
}

export function routingTable(fleet: RoutesFleet): Route[] {
  const out: Route[] = [];
  for (const { tenant } of fleet.tenants.values()) {
    for (const env of Object.keys(tenant.environments)) out.push(routeOf(fleet, tenant, env));
  }
  return out;
}
