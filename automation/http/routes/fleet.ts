/**
 * GET /api/fleet: the fleet as committed on the control plane's branch, for people and dashboards
 * (the operator console's fleet map, docs/console.md): regions -> environments -> cells with their
 * residents and capacity, and the dedicated stacks beside them. Names, tiers and lifecycle only:
 * nothing secret is in a tenant file, and nothing of the file beyond that is listed here.
 */
import type { FastifyInstance } from "fastify";
import { cellResidents, type Fleet } from "../../../infra/model/fleet.ts";
import { dedicatedStackName } from "../../../infra/model/naming.ts";
import { formatProblem } from "../../../infra/model/problems.ts";
import type { Tenant } from "../../../infra/model/schema.ts";
import { HttpError } from "../errors.ts";
import type { RouteContext } from "./context.ts";

export interface FleetTenant {
  id: string;
  displayName: string;
  tier: string;
  lifecycle: string;
  /** A pooled -> dedicated upgrade or a cell move is under way. */
  migrating: boolean;
}

export interface FleetCell {
  id: string;
  stack: string;
  capacity: number;
  /** Opened by tenantctl new at the reserve; no tenant is placed in it until its first successful up (docs/cells.md). */
  opening: boolean;
  residents: FleetTenant[];
}

export interface FleetDedicated extends FleetTenant {
  stack: string;
}

export interface FleetView {
  branch: string;
  regions: { region: string; envs: { env: string; cells: FleetCell[]; dedicated: FleetDedicated[] }[] }[];
}

function brief(t: Tenant): FleetTenant {
  return { id: t.id, displayName: t.displayName, tier: t.tier, lifecycle: t.lifecycle, migrating: "migration" in t && t.migration !== undefined };
}

/** The fleet grouped for display: every platform region and environment, cells and dedicated stacks sorted by name. */
export function fleetView(fleet: Fleet, branch: string): FleetView {
  const regions = fleet.platform.regions.map((region) => ({
    region,
    envs: fleet.platform.environments.map((env) => {
      const cells = [...fleet.cells.values()]
        .filter((c) => c.region === region && c.env === env)
        .map((c) => ({ id: c.id, stack: c.stack, capacity: c.capacity, opening: c.config.opening === true, residents: cellResidents(fleet, c).map(brief) }))
        .sort((a, b) => a.stack.localeCompare(b.stack));
      const dedicated: FleetDedicated[] = [];
      for (const { tenant } of fleet.tenants.values()) {
        if (tenant.deployment !== "dedicated" || tenant.region !== region || !(env in tenant.environments)) continue;
        dedicated.push({ ...brief(tenant), stack: dedicatedStackName(tenant.id, env) });
      }
      dedicated.sort((a, b) => a.stack.localeCompare(b.stack));
      return { env, cells, dedicated };
    }),
  }));
  return { branch, regions };
}

export function fleetRoutes(ctx: RouteContext) {
  return async (api: FastifyInstance) => {
    api.get("/api/fleet", async (_request, reply) => {
      // Loaded once per commit of the working copy (automation/git/fleetCache.ts).
      const { fleet, problems } = await ctx.fleet.get();
      if (!fleet) {
        throw new HttpError(500, `the fleet on ${ctx.writer.branch} does not load; fix it: ${problems.slice(0, 5).map(formatProblem).join("; ")}`);
      }
      return reply.send(fleetView(fleet, ctx.writer.branch));
    });
  };
}
