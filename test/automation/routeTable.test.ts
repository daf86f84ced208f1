/**
 * The whole server's route table on a running control plane (docs/security.md): every route fastify
 * registered is public, an /api route with a scope, or a console route with a scope, and each is
 * walked: public routes answer without a key, /api routes refuse a request without one, console
 * routes send a request without a session to the login page and allow exactly the sessions whose
 * key holds the route's scope (403 naming it otherwise). Per-scope walks of /api: scopes.test.ts.
 */
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiKeyRecord, newApiKey } from "../../automation/http/apiKeys.ts";
import { DEFAULT_HTTP_SETTINGS } from "../../automation/http/settings.ts";
import { ACTIONS } from "../../automation/console/actions.ts";
import { CONSOLE_ROUTE_SCOPES, holdsScope, PUBLIC_ROUTES, ROUTE_SCOPES, routeAccess, SCOPE_NAMES, SCOPES, type Scope } from "../../automation/http/scopes.ts";
import { requireRouteAccess } from "../../automation/http/server.ts";
import { escapeHtml } from "../../automation/console/html.ts";
import { startHarness, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { API_SAMPLES, CONSOLE_SAMPLES, PUBLIC_SAMPLES } from "./support/routeSamples.ts";

const perScope = new Map(SCOPE_NAMES.map((s) => [s, newApiKey(`k-${s}`, [s])]));

let pg: TestPostgres;
let h: Harness;
beforeAll(async () => {
  pg = await startTestPostgres();
  h = await startHarness({
    pg,
    start: { runs: false },
    config: {
      // Every route is walked without a key from one address: no failed-attempt limit in the way here (scopes.test.ts tests it).
      http: { ...DEFAULT_HTTP_SETTINGS, metrics: { host: "127.0.0.1", port: 0 }, authFailuresPerMinute: 100_000 }, apiKeys: [...perScope.entries()].map(([s, k]) => apiKeyRecord({ name: `k-${s}`, id: k.id, hash: k.hash, scopes: [s] })) },
  });
}, 60_000);
afterAll(async () => {
  await h?.close();
  await pg?.stop();
});

/** The registered routes, HEAD (answered by GET) left out. */
const routes = () => [...new Set(h.cp.server.registeredRoutes.filter((r) => !r.startsWith("HEAD ")))].sort();

async function send(method: string, path: string, headers: Record<string, string> = {}, body?: string) {
  const res = await fetch(`${h.baseUrl}${path}`, { method, headers, redirect: "manual", ...(body !== undefined ? { body } : {}) });
  return { status: res.status, location: res.headers.get("location"), text: await res.text() };
}

/** A console session of `key`, logged in through the login form as a browser does. */
async function session(key: string): Promise<{ cookie: string; csrf: string }> {
  const form = await fetch(`${h.baseUrl}/console/login`);
  const formCookie = form.headers.getSetCookie().find((c) => c.startsWith("tenancy_console_login="))!.split(";")[0]!;
  const token = /name="_csrf" value="([^"]+)"/.exec(await form.text())![1]!;
  const res = await fetch(`${h.baseUrl}/console/login`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie: formCookie },
    body: new URLSearchParams({ key, _csrf: token }),
  });
  expect(res.status).toBe(303);
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith("tenancy_console="))!.split(";")[0]!;
  // Every page of a session, a refusal included, carries its CSRF token in the logout form.
  const page = await send("GET", "/console/runs", { cookie });
  return { cookie, csrf: /name="_csrf" value="([^"]+)"/.exec(page.text)![1]! };
}

describe("route table", () => {
  it("every registered route is in exactly one table, every table route is registered, and each has a sample", () => {
    const registered = routes();
    for (const r of registered) {
      const [method, url] = r.split(" ") as [string, string];
      expect(routeAccess(method, url), r).toBeDefined();
    }
    const tables = [...Object.keys(PUBLIC_ROUTES), ...Object.keys(ROUTE_SCOPES), ...Object.keys(CONSOLE_ROUTE_SCOPES)];
    expect(new Set(tables).size).toBe(tables.length);
    // /metrics is on its own listener here (TENANCY_METRICS_PORT not `main`), so not on this server.
    expect(tables.filter((r) => r !== "GET /metrics").sort()).toEqual(registered);
    expect([...Object.keys(PUBLIC_SAMPLES), ...Object.keys(API_SAMPLES), ...Object.keys(CONSOLE_SAMPLES)].sort()).toEqual(registered);
  });

  it("a server with a route in no table does not start", async () => {
    const app = Fastify();
    requireRouteAccess(app);
    app.get("/healthz", async () => ({}));
    app.register(async (child) => {
      child.get("/console/secrets", async () => ({}));
    });
    await expect(app.ready()).rejects.toThrow(
      "route GET /console/secrets declares no access: add it to PUBLIC_ROUTES, ROUTE_SCOPES or CONSOLE_ROUTE_SCOPES in automation/http/scopes.ts",
    );
    await app.close();
  });

  it("each console action needs the scope of the /api route it calls", () => {
    for (const [name, action] of Object.entries(ACTIONS)) {
      const called = action.api({ id: "x1", stack: "s1" });
      const apiRoute = Object.keys(ROUTE_SCOPES).find((r) => r.startsWith("POST ") && new RegExp(`^${r.slice(5).replace(/:[a-z]+/g, "[^/]+")}$`).test(called));
      expect(apiRoute, name).toBeDefined();
      expect(CONSOLE_ROUTE_SCOPES[`POST ${action.path}`], name).toBe(ROUTE_SCOPES[apiRoute!]);
      expect(CONSOLE_ROUTE_SCOPES[`GET ${action.path}`], name).toBe(ROUTE_SCOPES[apiRoute!]);
    }
  });

  it("public routes answer a caller with no key and no session", async () => {
    for (const [route, s] of Object.entries(PUBLIC_SAMPLES)) {
      const res = await send(route.split(" ")[0]!, s.path, s.contentType ? { "content-type": s.contentType } : {}, s.body);
      expect(res.status, route).toBe(s.answers);
    }
  });

  it("every /api route refuses a request without a key (401), so none is outside the key check", async () => {
    for (const [route, s] of Object.entries(API_SAMPLES)) {
      const res = await send(route.split(" ")[0]!, s.path, s.body !== undefined ? { "content-type": "application/json" } : {}, s.body !== undefined ? JSON.stringify(s.body) : undefined);
      expect(res.status, route).toBe(401);
    }
  });

  it("every console route sends a request without a session to the login page", async () => {
    for (const [route, s] of Object.entries(CONSOLE_SAMPLES)) {
      const res = await send(route.split(" ")[0]!, s.path, { "content-type": "application/x-www-form-urlencoded" }, route.startsWith("POST ") ? "" : undefined);
      expect([res.status, res.location], route).toEqual([303, "/console/login"]);
    }
  });

  it("allows each console route exactly the sessions whose key holds its scope; refusals are 403 naming it", async () => {
    let allowed = 0;
    const unexpected: string[] = [];
    for (const scope of SCOPE_NAMES) {
      const s = await session(perScope.get(scope)!.key);
      // Logout last: it ends the session.
      const walk = Object.entries(CONSOLE_SAMPLES).sort(([a], [b]) => Number(a === "POST /console/logout") - Number(b === "POST /console/logout"));
      for (const [route, sample] of walk) {
        const method = route.split(" ")[0]!;
        const res = await send(method, sample.path, { cookie: s.cookie, "content-type": "application/x-www-form-urlencoded" }, method === "POST" ? new URLSearchParams({ _csrf: s.csrf }).toString() : undefined);
        const needed = CONSOLE_ROUTE_SCOPES[route]!;
        if (needed === "session" || holdsScope(new Set<Scope>([scope]), needed)) {
          allowed++;
          const reads = holdsScope(new Set<Scope>([scope]), "read");
          const expected = reads ? sample.reached : (sample.reachedWithoutRead ?? sample.reached);
          if (res.status !== expected) unexpected.push(`${route} with ${scope}: ${res.status}, expected ${expected}`);
          if (!reads && sample.reachedWithoutRead !== undefined) expect(res.text).toContain(`API key k-${scope} lacks scope read`);
          expect(res.text, `${route} with ${scope}`).not.toContain(`which ${route} needs`);
        } else {
          expect(res.status, `${route} with ${scope}`).toBe(403);
          expect(res.text, `${route} with ${scope}`).toContain(escapeHtml(`API key k-${scope} lacks scope ${needed} (${SCOPES[needed]}), which ${route} needs; it holds ${scope}`));
        }
      }
    }
    expect(unexpected).toEqual([]);
    // Each route: its own scope and admin; logout: every session.
    const scoped = Object.values(CONSOLE_ROUTE_SCOPES).filter((x) => x !== "session").length;
    expect(allowed).toBe(scoped * 2 + SCOPE_NAMES.length);
  });
});

