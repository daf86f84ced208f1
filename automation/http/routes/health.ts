/** GET /healthz (database and git reachable) and GET /metrics (Prometheus): unauthenticated. */
import type { FastifyInstance } from "fastify";
import type { RouteContext } from "./context.ts";

export function healthRoutes(ctx: RouteContext) {
  return async (app: FastifyInstance) => {
    app.get("/healthz", async (_request, reply) => {
      const checks: Record<string, string> = {};
      await ctx.pool.query("SELECT 1").then(() => (checks.database = "ok"), (e: Error) => (checks.database = e.message));
      await ctx.writer.head().then(() => (checks.git = "ok"), (e: Error) => (checks.git = e.message));
      const ok = Object.values(checks).every((v) => v === "ok");
      return reply.status(ok ? 200 : 503).send({ status: ok ? "ok" : "unavailable", checks });
    });

    app.get("/metrics", async (_request, reply) => {
      const body = await ctx.metrics.registry.metrics();
      return reply.header("content-type", ctx.metrics.registry.contentType).send(body);
    });
  };
}
