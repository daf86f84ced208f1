/** POST /api/subscriptions/:id/reconcile: re-apply a subscription's recorded billing state now. */
import type { FastifyInstance } from "fastify";
import { HttpError } from "../errors.ts";
import type { RouteContext } from "./context.ts";

export function subscriptionRoutes(ctx: RouteContext) {
  return async (api: FastifyInstance) => {
    api.post<{ Params: { id: string } }>("/api/subscriptions/:id/reconcile", async (request, reply) => {
      const { rowCount } = await ctx.pool.query("SELECT 1 FROM subscriptions WHERE id = $1 AND last_event_created >= 0", [request.params.id]);
      if (!rowCount) throw new HttpError(404, `no events recorded for subscription ${request.params.id}`);
      const [outcome] = await ctx.reconciler.reconcile([request.params.id]);
      return reply.send({ outcome });
    });
  };
}
