/**
 * What an internal API key may do: the scopes a key file grants and the scope each /api route
 * needs (docs/security.md). The table is the one place a route's scope is declared: the server
 * refuses to start with an /api route missing from it, and the tests walk it for every scope.
 */

/** Every scope, with what it allows; `admin` is every scope but `offboard:immediate`. */
export const SCOPES = {
  read: "read tenants (spec, contact, billing ids), runs, rollouts and their event streams, schema migrations and versions, drift verdicts, workflows and Stripe events",
  "tenants:write": "create tenants (POST /api/tenants)",
  offboard: "offboard a tenant (DELETE /api/tenants/:id) with at least the minimum grace period",
  "offboard:immediate": "offboard with a grace period below the minimum (down to 0 days); never implied by admin",
  runs: "queue a stack run or a drift check, and cancel runs",
  workflows: "retry a failed lifecycle workflow, and cancel an open one",
  credentials: "rotate a tenant's database credentials (POST /api/tenants/:id/rotate)",
  moves: "move a pooled tenant to another cell, or roll its move back before the switch (POST /api/tenants/:id/move, .../move/rollback)",
  billing: "re-apply a subscription's recorded state (reconcile)",
  rollouts: "start, pause, resume and abort fleet rollouts",
  "db-migrations": "start, resume and abort tenant schema migrations and one tenant's rollback",
  admin: "every scope above except offboard:immediate",
} as const;

export type Scope = keyof typeof SCOPES;

export const SCOPE_NAMES = Object.keys(SCOPES) as Scope[];

export function isScope(s: string): s is Scope {
  return Object.hasOwn(SCOPES, s);
}

/** The scope that lets a key offboard with a grace period below the minimum. */
export const IMMEDIATE_OFFBOARD_SCOPE: Scope = "offboard:immediate";

/** Whether a key holding `held` may do what `needed` allows. */
export function holdsScope(held: ReadonlySet<Scope>, needed: Scope): boolean {
  if (held.has(needed)) return true;
  return needed !== IMMEDIATE_OFFBOARD_SCOPE && held.has("admin");
}

/**
 * `METHOD url` (fastify's route pattern) -> the scope the route needs. HEAD is answered by the
 * GET route and needs what it needs.
 */
export const ROUTE_SCOPES: Readonly<Record<string, Scope>> = {
  "POST /api/tenants": "tenants:write",
  "GET /api/tenants/:id": "read",
  "GET /api/tenants/:id/cost": "read",
  "DELETE /api/tenants/:id": "offboard",
  "GET /api/fleet": "read",
  "GET /api/runs": "read",
  "GET /api/runs/events": "read",
  "GET /api/runs/:id": "read",
  "GET /api/runs/:id/events": "read",
  "POST /api/runs/:id/cancel": "runs",
  "POST /api/stacks/:stack/runs": "runs",
  "POST /api/subscriptions/:id/reconcile": "billing",
  "GET /api/workflows/:id": "read",
  "POST /api/workflows/:id/retry": "workflows",
  "POST /api/workflows/:id/cancel": "workflows",
  "POST /api/tenants/:id/rotate": "credentials",
  "POST /api/tenants/:id/move": "moves",
  "POST /api/tenants/:id/move/rollback": "moves",
  "GET /api/events/:id": "read",
  "POST /api/rollouts": "rollouts",
  "GET /api/rollouts": "read",
  "GET /api/rollouts/:id": "read",
  "POST /api/rollouts/:id/pause": "rollouts",
  "POST /api/rollouts/:id/resume": "rollouts",
  "POST /api/rollouts/:id/abort": "rollouts",
  "GET /api/rollouts/:id/events": "read",
  "POST /api/db-migrations": "db-migrations",
  "GET /api/db-migrations": "read",
  "GET /api/db-migrations/:id": "read",
  "POST /api/db-migrations/:id/resume": "db-migrations",
  "POST /api/db-migrations/:id/abort": "db-migrations",
  "POST /api/db-migrations/:id/rollback-wave": "db-migrations",
  "GET /api/db-schemas": "read",
  "GET /api/drift": "read",
  // A drift check changes nothing, but it occupies the stack's run queue like a run.
  "POST /api/drift/:stack/check": "runs",
};

/** The scope a request to `method url` needs, or undefined when the table does not list the route. */
export function routeScope(method: string, url: string): Scope | undefined {
  return ROUTE_SCOPES[`${method === "HEAD" ? "GET" : method} ${url}`];
}

/**
 * Routes outside /api that answer without a key, each with why that is safe. Everything the
 * server registers is in exactly one of PUBLIC_ROUTES, ROUTE_SCOPES and CONSOLE_ROUTE_SCOPES:
 * buildServer refuses to start with a route in none (routeAccess).
 */
export const PUBLIC_ROUTES: Readonly<Record<string, string>> = {
  "GET /healthz": "the load balancer's health check: ok or failing per check name, never an error text",
  "GET /metrics": "only when TENANCY_METRICS_PORT is main; the load balancer forwards /webhooks/stripe alone",
  "POST /webhooks/stripe": "Stripe's deliveries: refused unless signed with the endpoint's secret",
  "GET /console": "a redirect to /console/fleet",
  "GET /console/login": "the login form",
  "POST /console/login": "exchanges a key for a session; needs the form's CSRF token; failures limited per client",
  "GET /console/assets/:name": "the console's stylesheet and script",
};

/**
 * Operator console routes (automation/console/routes.ts) -> the scope the session's key needs.
 * Pages read, so they need `read`; an action's confirmation and the action itself need the scope
 * of the /api route the action calls (the API checks it again). Logout needs only a session.
 */
export const CONSOLE_ROUTE_SCOPES: Readonly<Record<string, Scope | "session">> = {
  "POST /console/logout": "session",
  "GET /console/fleet": "read",
  "GET /console/drift": "read",
  "GET /console/tenants/:id": "read",
  "GET /console/tenants/:id/cost": "read",
  "GET /console/workflows/:id": "read",
  "GET /console/runs": "read",
  "GET /console/runs/tables": "read",
  "GET /console/runs/:id": "read",
  "GET /console/rollouts": "read",
  "GET /console/rollouts/:id": "read",
  "GET /console/stacks/:stack/run": "runs",
  "POST /console/stacks/:stack/run": "runs",
  "GET /console/runs/:id/cancel": "runs",
  "POST /console/runs/:id/cancel": "runs",
  "GET /console/workflows/:id/retry": "workflows",
  "POST /console/workflows/:id/retry": "workflows",
  "GET /console/workflows/:id/cancel": "workflows",
  "POST /console/workflows/:id/cancel": "workflows",
  "GET /console/rollouts/:id/pause": "rollouts",
  "POST /console/rollouts/:id/pause": "rollouts",
  "GET /console/rollouts/:id/resume": "rollouts",
  "POST /console/rollouts/:id/resume": "rollouts",
  "GET /console/rollouts/:id/abort": "rollouts",
  "POST /console/rollouts/:id/abort": "rollouts",
};

/** Who may call a registered route: anyone, a key (or session) with a scope, or a console session with a scope. */
export type RouteAccess = { kind: "public"; why: string } | { kind: "api"; scope: Scope } | { kind: "console"; scope: Scope | "session" };

/** The access rule of `method url` (fastify's pattern), or undefined when no table lists it. */
export function routeAccess(method: string, url: string): RouteAccess | undefined {
  const route = `${method === "HEAD" ? "GET" : method} ${url}`;
  const scope = ROUTE_SCOPES[route];
  if (scope) return { kind: "api", scope };
  const console = CONSOLE_ROUTE_SCOPES[route];
  if (console) return { kind: "console", scope: console };
  const why = PUBLIC_ROUTES[route];
  return why ? { kind: "public", why } : undefined;
}
