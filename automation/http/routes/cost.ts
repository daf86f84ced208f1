/**
 * GET /api/tenants/:id/cost: the tenant's monthly cost from the dated price table (docs/cost.md),
 * as `tenantctl cost` computes it, for the console's tenant page. 200 with the figure; 202
 * `{ state: "computing", stacks }` while its stacks are being rendered and priced (seconds, in a
 * worker process; ask again); 404 for a tenant not on the branch.
 */
import type { FastifyInstance } from "fastify";
import { formatProblem } from "../../../infra/model/problems.ts";
import { HttpError } from "../errors.ts";
import { tenantIdParam, type RouteContext } from "./context.ts";

export function costRoutes(ctx: RouteContext) {
  return async (api: FastifyInstance) => {
    api.get<{ Params: { id: string } }>("/api/tenants/:id/cost", async (request, reply) => {
      const id = tenantIdParam(request.params.id);
      const { fleet, problems } = await ctx.fleet.get();
      if (!fleet) throw new HttpError(500, `the fleet on ${ctx.writer.branch} does not load; fix it: ${problems.slice(0, 5).map(formatProblem).join("; ")}`);
      if (!fleet.tenants.has(id)) throw new HttpError(404, `no tenant ${id} on ${ctx.writer.branch}`);
      const answer = ctx.costs.get(fleet, id);
      if (answer.state === "computing") return reply.status(202).send(answer);
      if (answer.state === "failed") throw new HttpError(503, `${answer.message}; ask again to retry`);
      return reply.send(answer.cost);
    });
  };
}
