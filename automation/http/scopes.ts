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
  workflows: "retry a failed lifecycle workflow",
  credentials: "rotate a tenant's database credentials (POST /api/tenants/:id/rotate)",
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
  "GET /api/runs/:id": "read",
  "GET /api/runs/:id/events": "read",
  "POST /api/runs/:id/cancel": "runs",
  "POST /api/stacks/:stack/runs": "runs",
  "POST /api/subscriptions/:id/reconcile": "billing",
  "GET /api/workflows/:id": "read",
  "POST /api/workflows/:id/retry": "workflows",
  "POST /api/tenants/:id/rotate": "credentials",
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
