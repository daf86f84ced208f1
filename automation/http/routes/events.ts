/** GET /api/events/:id: a recorded Stripe event and what the control plane did with it. */
import type { FastifyInstance } from "fastify";
import { HttpError } from "../errors.ts";
import type { RouteContext } from "./context.ts";

export function eventRoutes(ctx: RouteContext) {
  return async (api: FastifyInstance) => {
    api.get<{ Params: { id: string } }>("/api/events/:id", async (request, reply) => {
      const { rows } = await ctx.pool.query<Record<string, unknown>>(
        `SELECT id, type, created, subscription_id AS "subscriptionId", outcome, reason, result, received_at AS "receivedAt", processed_at AS "processedAt"
         FROM billing_events WHERE id = $1`,
        [request.params.id],
      );
      if (!rows[0]) throw new HttpError(404, `no Stripe event ${request.params.id} was recorded`);
      return reply.send({ event: rows[0] });
    });
  };
}
