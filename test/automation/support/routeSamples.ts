/**
 * One request per registered route that reaches the route's handler when its caller is allowed,
 * and the status the handler then answers (about the missing tenant, run or setting): the route
 * table tests (scopes.test.ts, routeTable.test.ts) walk these with keys and sessions of every scope.
 */

export const UUID0 = "00000000-0000-0000-0000-000000000000";

/** A request to each route that reaches its handler when allowed (which then answers 4xx/5xx about the missing thing). */
export const API_SAMPLES: Record<string, { path: string; body?: unknown; reached: number }> = {
  "POST /api/tenants": { path: "/api/tenants", body: {}, reached: 400 },
  "GET /api/tenants/:id": { path: "/api/tenants/no-such-co", reached: 404 },
  "GET /api/tenants/:id/cost": { path: "/api/tenants/no-such-co/cost", reached: 404 },
  "DELETE /api/tenants/:id": { path: "/api/tenants/no-such-co", reached: 404 },
  "GET /api/fleet": { path: "/api/fleet", reached: 200 },
  "GET /api/runs": { path: "/api/runs?state=bogus", reached: 400 },
  "GET /api/runs/events": { path: "/api/runs/events?stack=not_a_stack", reached: 400 },
  "GET /api/runs/:id": { path: `/api/runs/${UUID0}`, reached: 404 },
  "GET /api/runs/:id/events": { path: `/api/runs/${UUID0}/events`, reached: 404 },
  "POST /api/runs/:id/cancel": { path: `/api/runs/${UUID0}/cancel`, reached: 404 },
  "POST /api/stacks/:stack/runs": { path: "/api/stacks/shared-prod-use1-09/runs", reached: 404 },
  "POST /api/subscriptions/:id/reconcile": { path: "/api/subscriptions/sub_never/reconcile", reached: 404 },
  "GET /api/workflows/:id": { path: `/api/workflows/${UUID0}`, reached: 503 },
  "POST /api/workflows/:id/retry": { path: `/api/workflows/${UUID0}/retry`, reached: 503 },
  "POST /api/workflows/:id/cancel": { path: `/api/workflows/${UUID0}/cancel`, reached: 503 },
  "POST /api/tenants/:id/rotate": { path: "/api/tenants/no-such-co/rotate", reached: 503 },
  "POST /api/tenants/:id/move": { path: "/api/tenants/no-such-co/move", reached: 503 },
  "POST /api/tenants/:id/move/rollback": { path: "/api/tenants/no-such-co/move/rollback", reached: 503 },
  "GET /api/events/:id": { path: "/api/events/evt_never", reached: 404 },
  "POST /api/rollouts": { path: "/api/rollouts", body: {}, reached: 400 },
  "GET /api/rollouts": { path: "/api/rollouts", reached: 200 },
  "GET /api/rollouts/:id": { path: `/api/rollouts/${UUID0}`, reached: 404 },
  "POST /api/rollouts/:id/pause": { path: `/api/rollouts/${UUID0}/pause`, reached: 404 },
  "POST /api/rollouts/:id/resume": { path: `/api/rollouts/${UUID0}/resume`, reached: 404 },
  "POST /api/rollouts/:id/abort": { path: `/api/rollouts/${UUID0}/abort`, reached: 404 },
  "GET /api/rollouts/:id/events": { path: `/api/rollouts/${UUID0}/events`, reached: 404 },
  // Schema migrations need the tenant databases, which this harness has not: past the key check, 503.
  "POST /api/db-migrations": { path: "/api/db-migrations", body: {}, reached: 503 },
  "GET /api/db-migrations": { path: "/api/db-migrations", reached: 503 },
  "GET /api/db-migrations/:id": { path: `/api/db-migrations/${UUID0}`, reached: 503 },
  "POST /api/db-migrations/:id/resume": { path: `/api/db-migrations/${UUID0}/resume`, reached: 503 },
  "POST /api/db-migrations/:id/abort": { path: `/api/db-migrations/${UUID0}/abort`, reached: 503 },
  "POST /api/db-migrations/:id/rollback-wave": { path: `/api/db-migrations/${UUID0}/rollback-wave`, body: {}, reached: 503 },
  "GET /api/db-schemas": { path: "/api/db-schemas", reached: 503 },
  // Drift detection is off in this harness: past the key check the route answers 503 saying so.
  "GET /api/drift": { path: "/api/drift", reached: 503 },
  "POST /api/drift/:stack/check": { path: "/api/drift/shared-prod-use1-01/check", reached: 503 },
};


/** Routes that answer without a key or session, and what they answer to a caller with neither. */
export const PUBLIC_SAMPLES: Record<string, { path: string; body?: string; contentType?: string; answers: number }> = {
  "GET /healthz": { path: "/healthz", answers: 200 },
  // Unsigned: refused by the signature check, the only door it has.
  "POST /webhooks/stripe": { path: "/webhooks/stripe", body: "{}", contentType: "application/json", answers: 400 },
  "GET /console": { path: "/console", answers: 303 },
  "GET /console/login": { path: "/console/login", answers: 200 },
  // Without the login form's CSRF token nothing is looked at.
  "POST /console/login": { path: "/console/login", body: "key=x", contentType: "application/x-www-form-urlencoded", answers: 403 },
  "GET /console/assets/:name": { path: "/console/assets/console.css", answers: 200 },
};

/**
 * Console routes: a request reaching each when the session's key holds the route's scope, and its
 * status then. An action's confirmation reads its target from the API, which needs `read`: a key
 * holding the action's scope alone gets the API's refusal of that read (reachedWithoutRead).
 */
export const CONSOLE_SAMPLES: Record<string, { path: string; reached: number; reachedWithoutRead?: number }> = {
  "POST /console/logout": { path: "/console/logout", reached: 303 },
  "GET /console/fleet": { path: "/console/fleet", reached: 200 },
  "GET /console/drift": { path: "/console/drift", reached: 503 },
  "GET /console/tenants/:id": { path: "/console/tenants/no-such-co", reached: 404 },
  "GET /console/tenants/:id/cost": { path: "/console/tenants/no-such-co/cost", reached: 404 },
  "GET /console/workflows/:id": { path: `/console/workflows/${UUID0}`, reached: 503 },
  "GET /console/runs": { path: "/console/runs", reached: 200 },
  "GET /console/runs/tables": { path: "/console/runs/tables", reached: 200 },
  "GET /console/runs/:id": { path: `/console/runs/${UUID0}`, reached: 404 },
  "GET /console/rollouts": { path: "/console/rollouts", reached: 200 },
  "GET /console/rollouts/:id": { path: `/console/rollouts/${UUID0}`, reached: 404 },
  "GET /console/stacks/:stack/run": { path: "/console/stacks/shared-prod-use1-09/run", reached: 200 },
  "POST /console/stacks/:stack/run": { path: "/console/stacks/shared-prod-use1-09/run", reached: 404 },
  "GET /console/runs/:id/cancel": { path: `/console/runs/${UUID0}/cancel`, reached: 404, reachedWithoutRead: 403 },
  "POST /console/runs/:id/cancel": { path: `/console/runs/${UUID0}/cancel`, reached: 404 },
  "GET /console/workflows/:id/retry": { path: `/console/workflows/${UUID0}/retry`, reached: 503, reachedWithoutRead: 403 },
  "POST /console/workflows/:id/retry": { path: `/console/workflows/${UUID0}/retry`, reached: 503 },
  "GET /console/workflows/:id/cancel": { path: `/console/workflows/${UUID0}/cancel`, reached: 503, reachedWithoutRead: 403 },
  "POST /console/workflows/:id/cancel": { path: `/console/workflows/${UUID0}/cancel`, reached: 503 },
  "GET /console/rollouts/:id/pause": { path: `/console/rollouts/${UUID0}/pause`, reached: 404, reachedWithoutRead: 403 },
  "POST /console/rollouts/:id/pause": { path: `/console/rollouts/${UUID0}/pause`, reached: 404 },
  "GET /console/rollouts/:id/resume": { path: `/console/rollouts/${UUID0}/resume`, reached: 404, reachedWithoutRead: 403 },
  "POST /console/rollouts/:id/resume": { path: `/console/rollouts/${UUID0}/resume`, reached: 404 },
  "GET /console/rollouts/:id/abort": { path: `/console/rollouts/${UUID0}/abort`, reached: 404, reachedWithoutRead: 403 },
  "POST /console/rollouts/:id/abort": { path: `/console/rollouts/${UUID0}/abort`, reached: 404 },
};
