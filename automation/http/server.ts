/**
 * The control plane's HTTP API (fastify): the server, its error handling, and one plugin per
 * resource under routes/. Every error is JSON `{ error: { message } }` with a message that says
 * what to do; a stack trace never leaves the process (it is logged instead).
 */
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import cookie from "@fastify/cookie";
import type { IncomingMessage, ServerResponse } from "node:http";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type RawServerDefault } from "fastify";
import { loadPlatform, type Platform } from "../../infra/model/platform.ts";
import { DirtyWorkingCopyError, InvalidMainError } from "../git/writer.ts";
import { consoleRoutes } from "../console/routes.ts";
import { registerAuth, type FailureLimiter } from "./auth.ts";
import { errorBody, HttpError } from "./errors.ts";
import { limitJsonDepth } from "./jsonDepth.ts";
import { ConsoleSessions } from "./sessions.ts";
import { routeAccess } from "./scopes.ts";
import { StreamLimits } from "./streams.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { RouteContext, ServerDeps } from "./routes/context.ts";
import { eventRoutes } from "./routes/events.ts";
import { healthRoutes, metricsRoutes } from "./routes/health.ts";
import { dbMigrationRoutes } from "./routes/dbMigrations.ts";
import { costRoutes } from "./routes/cost.ts";
import { driftRoutes } from "./routes/drift.ts";
import { fleetRoutes } from "./routes/fleet.ts";
import { rolloutRoutes } from "./routes/rollouts.ts";
import { runRoutes } from "./routes/runs.ts";
import { stackRoutes } from "./routes/stacks.ts";
import { stripeRoutes } from "./routes/stripe.ts";
import { subscriptionRoutes } from "./routes/subscriptions.ts";
import { tenantRoutes } from "./routes/tenants.ts";
import { workflowRoutes } from "./routes/workflows.ts";

export type { ServerDeps } from "./routes/context.ts";

declare module "fastify" {
  interface FastifyInstance {
    /** Every route registered, `METHOD url` as fastify's pattern (HEAD included): what the route table test walks. */
    registeredRoutes: readonly string[];
  }
}

export function buildServer(deps: ServerDeps) {
  const { requestTimeoutMs, maxConnections } = deps.http;
  const app = Fastify({
    loggerInstance: deps.log,
    // Node's own limits: a request (headers and body) that has not arrived within requestTimeoutMs
    // gets 408 and its connection is closed (checked every connectionsCheckingInterval); more
    // than maxConnections open connections and new ones are closed at once.
    serverFactory: (handler) => {
      const server = createServer(
        { requestTimeout: requestTimeoutMs, headersTimeout: Math.min(requestTimeoutMs, 60_000), connectionsCheckingInterval: Math.min(5_000, Math.max(100, requestTimeoutMs / 4)) },
        handler,
      );
      server.maxConnections = maxConnections;
      return server;
    },
    genReqId: () => randomUUID(),
    bodyLimit: 1024 * 1024,
    // request.ip is the client the load balancer saw only when the load balancer is trusted.
    // A hop count as fastify itself compiles it (its types accept no number).
    trustProxy: typeof deps.http.trustProxy === "number" ? hops(deps.http.trustProxy) : deps.http.trustProxy,
  });
  requireRouteAccess(app);
  let platform: Platform | undefined;
  const ctx: RouteContext = { ...deps, platform: () => (platform ??= loadPlatform(deps.repoDir)), streams: new StreamLimits(deps.http.ssePerKey, deps.http.sseTotal) };

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (err instanceof HttpError) return reply.status(err.status).send(errorBody(err.message, err.details));
    if (err instanceof DirtyWorkingCopyError || err instanceof InvalidMainError) {
      // The repository needs a person; the message says what to do.
      request.log.error({ err: { message: err.message } }, "tenant files cannot be changed");
      return reply.status(503).send(errorBody(err.message));
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // fastify's own client errors (bad JSON, wrong content type, body too large): their messages are safe and specific.
      return reply.status(status).send(errorBody(`${err.message}${err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE" ? "; send application/json" : ""}`));
    }
    request.log.error({ err: { message: err.message, stack: err.stack } }, "request failed");
    return reply.status(500).send(errorBody(`internal error while handling ${request.method} ${request.url} (request ${request.id}); the control plane's log has the details`));
  });
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send(errorBody(`no route ${request.method} ${request.url}; see docs/control-plane.md for the endpoints`));
  });

  // Cookies carry operator console sessions (docs/console.md); the /api door accepts one instead of a key.
  app.register(cookie);
  const sessions = new ConsoleSessions(deps.pool);
  app.register(healthRoutes(ctx));
  app.register(stripeRoutes(ctx));

  // The internal API: every route below needs a key from TENANCY_API_KEYS holding the route's scope.
  // One budget of failed keys per client for the /api door and the console's login form.
  let failures: FailureLimiter | undefined;
  app.register(async (api: FastifyInstance) => {
    failures = await registerAuth(api, deps.keys, deps.http.authFailuresPerMinute, sessions);
    limitJsonDepth(api);
    await api.register(tenantRoutes(ctx));
    await api.register(fleetRoutes(ctx));
    await api.register(costRoutes(ctx));
    await api.register(runRoutes(ctx));
    await api.register(rolloutRoutes(ctx));
    await api.register(driftRoutes(ctx));
    await api.register(dbMigrationRoutes(ctx));
    await api.register(stackRoutes(ctx));
    await api.register(subscriptionRoutes(ctx));
    await api.register(workflowRoutes(ctx));
    await api.register(eventRoutes(ctx));
  });

  // The operator console: pages over the API above, called through inject with the session.
  app.register(
    consoleRoutes({
      sessions,
      keys: deps.keys,
      // Set when the /api plugin above loaded, which is before any request is served.
      failures: (request, opts) => {
        if (!failures) throw new Error("the /api door's failure limiter is not set up yet");
        return failures(request, opts);
      },
      inject: (opts) => app.inject(opts),
    }),
  );

  return app;
}

/**
 * Every route added to `app` (and its plugins) must declare who may call it in
 * automation/http/scopes.ts, or the server does not start; the routes are listed in
 * `app.registeredRoutes`. Call before registering any route.
 */
export function requireRouteAccess<L extends FastifyBaseLogger>(app: FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, L>): void {
  const registered: string[] = [];
  app.decorate("registeredRoutes", registered);
  app.addHook("onRoute", (route) => {
    for (const method of [route.method].flat()) {
      if (!routeAccess(method, route.url)) {
        throw new Error(`route ${method} ${route.url} declares no access: add it to PUBLIC_ROUTES, ROUTE_SCOPES or CONSOLE_ROUTE_SCOPES in automation/http/scopes.ts`);
      }
      registered.push(`${method} ${route.url}`);
    }
  });
}

/**
 * The separate /metrics listener (TENANCY_METRICS_HOST/PORT, loopback by default): Node
 * version, run counts and event types are for the scraper in the task, not for the load balancer.
 */
export function buildMetricsServer(metrics: Metrics, log: Logger) {
  // Scrapes are not worth a line each: only warnings and errors of this listener are logged.
  const app = Fastify({ loggerInstance: log.child({ listener: "metrics" }, { level: "warn" }), requestTimeout: 10_000 });
  app.register(metricsRoutes(metrics));
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send(errorBody(`no route ${request.method} ${request.url}; this listener serves GET /metrics only`));
  });
  return app;
}

function hops(n: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < n;
}
