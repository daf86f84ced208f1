/**
 * /api/drift: the latest drift verdict of every stack (or of one stack or one tenant's stacks),
 * with the resources and properties that differ, and a check a person asks for now
 * (docs/drift.md). Drift is never fixed here: remediation is a run (POST /api/stacks/:stack/runs).
 */
import type { FastifyInstance } from "fastify";
import { stacksOfTenant, tenantsOfStack } from "../../../infra/model/fleet.ts";
import type { DriftScheduler } from "../../drift/scheduler.ts";
import { HttpError } from "../errors.ts";
import { tenantIdParam, type RouteContext } from "./context.ts";

export function driftRoutes(ctx: RouteContext) {
  return async (api: FastifyInstance) => {
    const scheduler = (): DriftScheduler => {
      if (!ctx.drift) throw new HttpError(503, "drift detection is off in this control plane (TENANCY_DRIFT_PERIOD_HOURS=0, or its run workers are off)");
      return ctx.drift;
    };

    api.get<{ Querystring: { stack?: string; tenant?: string } }>("/api/drift", async (request, reply) => {
      const { stack, tenant } = request.query;
      const { fleet } = await ctx.fleet.get();
      let stacks: string[] | undefined;
      if (stack !== undefined) stacks = [stack];
      if (tenant !== undefined) {
        const t = fleet?.tenants.get(tenantIdParam(tenant));
        if (!t) throw new HttpError(404, `no tenant ${tenant} on ${ctx.writer.branch}`);
        stacks = stacksOfTenant(t.tenant);
      }
      const rows = await scheduler().list(stacks ? { stacks } : {});
      const withTenants = rows.map((r) => ({ ...r, tenants: fleet ? tenantsOfStack(fleet, r.stack).map((t) => t.id) : [] }));
      return reply.send({ stacks: withTenants });
    });

    api.post<{ Params: { stack: string } }>("/api/drift/:stack/check", async (request, reply) => {
      const { stack } = request.params;
      if (!(await scheduler().checkNow(stack))) {
        const [row] = await scheduler().list({ stacks: [stack] });
        if (!row) throw new HttpError(404, `no stack ${stack} in the drift schedule (the schedule follows the stack files on ${ctx.writer.branch})`);
        throw new HttpError(409, `a drift check of ${stack} is already under way (run ${row.runId})`);
      }
      request.log.info({ stack, by: request.apiKeyName }, "drift check requested");
      return reply.status(202).send({ stack, due: "now" });
    });
  };
}
