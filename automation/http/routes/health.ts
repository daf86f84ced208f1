/**
 * GET /healthz (database and git reachable), unauthenticated: `ok` or `failing` per check by
 * name only; what failed is logged, never answered (docs/security.md). GET /metrics (Prometheus)
 * is served here only when TENANCY_METRICS_PORT is `main`; otherwise on its own listener.
 */
import type { FastifyInstance } from "fastify";
import type { Metrics } from "../../metrics.ts";
import type { RouteContext } from "./context.ts";

export function healthRoutes(ctx: RouteContext) {
  return async (app: FastifyInstance) => {
    app.get("/healthz", async (request, reply) => {
      const checks: Record<string, "ok" | "failing"> = {};
      const failed: Record<string, string> = {};
      const check = (name: string, p: Promise<unknown>) =>
        p.then(
          () => void (checks[name] = "ok"),
          (e: Error) => {
            checks[name] = "failing";
            failed[name] = e.message;
          },
        );
      await check("database", ctx.pool.query("SELECT 1"));
      await check("git", ctx.writer.head());
      const ok = Object.keys(failed).length === 0;
      if (!ok) request.log.error({ failed }, `health check failing: ${Object.keys(failed).join(", ")}`);
      return reply.status(ok ? 200 : 503).send({ status: ok ? "ok" : "failing", checks });
    });

    if (ctx.http.metrics === null) app.register(metricsRoutes(ctx.metrics));
  };
}

export function metricsRoutes(metrics: Metrics) {
  return async (app: FastifyInstance) => {
    app.get("/metrics", async (_request, reply) => {
      const body = await metrics.registry.metrics();
      return reply.header("content-type", metrics.registry.contentType).send(body);
    });
  };
}
