/**
 * The operator console under /console (docs/console.md): server-rendered pages over the internal
 * API. Log in with an API key (exchanged for a session cookie), look at the fleet, tenants, runs,
 * rollouts and drift, and act on them. Every page reads, and every action changes, through the
 * /api routes themselves (fastify's inject, carrying the session): the same handlers, scopes,
 * validation and errors as any API client. Actions are confirmed on a page of their own that
 * names the consequence, and carry the session's CSRF token.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import formbody from "@fastify/formbody";
import type { FastifyInstance, FastifyReply, FastifyRequest, InjectOptions } from "fastify";
import type { FailureLimiter } from "../http/auth.ts";
import type { ApiKeyRing } from "../http/keyRing.ts";
import { holdsScope, routeAccess, SCOPES, type Scope } from "../http/scopes.ts";
import { CSRF_FIELD, CSRF_HEADER, csrfMatches, SESSION_COOKIE, sessionKey, type ConsoleSessions } from "../http/sessions.ts";
import { ACTIONS, confirmPage, type ActionName } from "./actions.ts";
import type { Signed } from "./api.ts";
import { html, layout } from "./html.ts";
import { driftPage, fleetPage } from "./pages/fleet.ts";
import { rolloutPage, rolloutsPage, runPage, runsFragment, runsPage } from "./pages/runs.ts";
import { costFragment, tenantPage, workflowPage } from "./pages/tenant.ts";

export interface ConsoleDeps {
  sessions: ConsoleSessions;
  keys: ApiKeyRing;
  /** The /api door's per-client failure limiter: failed logins and failed API keys count in one budget. */
  failures: FailureLimiter;
  /** The server's own inject: how the console calls the API. */
  inject: (opts: InjectOptions) => Promise<{ statusCode: number; body: string }>;
}

/**
 * The login form's CSRF token, double-submitted: GET /console/login sets this cookie (HttpOnly,
 * Secure, SameSite=Strict, only for /console/login, 1 hour) and puts the same random value in the
 * form; POST /console/login does nothing unless both arrive and match. A page on another site can
 * neither read the value nor make the browser send the cookie with its post, so it cannot log a
 * browser in with a key of its choosing (login CSRF).
 */
export const LOGIN_CSRF_COOKIE = "tenancy_console_login";
const LOGIN_CSRF_TTL_S = 60 * 60;

const ASSETS_DIR = join(import.meta.dirname, "assets");
const ASSET_TYPES: Record<string, string> = { "console.css": "text/css; charset=utf-8", "run.js": "text/javascript; charset=utf-8", "runs.js": "text/javascript; charset=utf-8", "cost.js": "text/javascript; charset=utf-8" };
/** Pages may load the console's own files and talk to its own origin, nothing else. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export function consoleRoutes(deps: ConsoleDeps) {
  return async (app: FastifyInstance) => {
    await app.register(formbody);
    const assets = new Map(Object.keys(ASSET_TYPES).map((name) => [name, readFileSync(join(ASSETS_DIR, name))]));
    const failures = deps.failures;

    app.addHook("onSend", async (request, reply) => {
      if (request.url.startsWith("/console/assets/")) return;
      void reply.header("content-security-policy", CSP);
      void reply.header("x-content-type-options", "nosniff");
      void reply.header("referrer-policy", "no-referrer");
      void reply.header("cache-control", "no-store");
    });

    const page = (reply: FastifyReply, status: number, body: string) => reply.status(status).type("text/html; charset=utf-8").send(body);

    const signedIn = async (request: FastifyRequest): Promise<(Signed & { scopes: ReadonlySet<Scope> }) | undefined> => {
      const token = request.cookies[SESSION_COOKIE];
      const session = await deps.sessions.find(token);
      if (!token || !session) return undefined;
      const key = sessionKey(deps.keys.current, session);
      if (!key || (key.expiresAt && key.expiresAt.getTime() <= Date.now())) return undefined;
      return {
        session,
        scopes: key.scopes,
        user: { keyName: session.keyName, csrf: session.csrf },
        api: async (method, url, body) => {
          const res = await deps.inject({
            method,
            url,
            remoteAddress: request.ip,
            headers: {
              cookie: `${SESSION_COOKIE}=${token}`,
              ...(method === "POST" ? { [CSRF_HEADER]: session.csrf } : {}),
              ...(body !== undefined ? { "content-type": "application/json" } : {}),
            },
            ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
          });
          let json: Record<string, unknown>;
          try {
            json = JSON.parse(res.body) as Record<string, unknown>;
          } catch {
            json = { error: { message: res.body } };
          }
          return { status: res.statusCode, json };
        },
      };
    };

    /**
     * The session's key lacks the scope CONSOLE_ROUTE_SCOPES gives this route: a 403 page naming it
     * (sent), else undefined. The /api routes a page or action calls check their own scopes again.
     */
    const refuseScope = (request: FastifyRequest, reply: FastifyReply, s: Signed & { scopes: ReadonlySet<Scope> }) => {
      const route = `${request.method} ${request.routeOptions.url ?? ""}`;
      const access = routeAccess(request.method, request.routeOptions.url ?? "");
      if (access?.kind !== "console") throw new Error(`${route} is not a console route of automation/http/scopes.ts`);
      if (access.scope === "session" || holdsScope(s.scopes, access.scope)) return undefined;
      const held = [...s.scopes].join(", ");
      request.log.warn({ by: s.session.keyName, consoleSession: s.session.ref, client: request.ip, needed: access.scope, held: [...s.scopes] }, "console session's key lacks the route's scope");
      const message = `API key ${s.session.keyName} lacks scope ${access.scope} (${SCOPES[access.scope]}), which ${route} needs; it holds ${held}`;
      return page(reply, 403, layout({ title: "Not allowed", user: s.user, body: html`<p role="alert" class="error">${message}</p>` }));
    };

    /** A page handler: the login page for a request without a session, else the page. */
    const get = (url: string, render: (s: Signed, params: Record<string, string>, query: Record<string, string | undefined>) => Promise<{ status?: number; body: string }>) => {
      app.get<{ Params: Record<string, string>; Querystring: Record<string, string | undefined> }>(url, async (request, reply) => {
        const s = await signedIn(request);
        if (!s) return reply.redirect("/console/login", 303);
        const refused = refuseScope(request, reply, s);
        if (refused) return refused;
        const out = await render(s, request.params, request.query);
        return page(reply, out.status ?? 200, out.body);
      });
    };

    app.get<{ Params: { name: string } }>("/console/assets/:name", async (request, reply) => {
      const body = assets.get(request.params.name);
      if (!body) return reply.status(404).type("text/plain").send(`no console asset ${request.params.name}`);
      return reply.type(ASSET_TYPES[request.params.name]!).header("cache-control", "public, max-age=300").send(body);
    });

    app.get("/console", async (_request, reply) => reply.redirect("/console/fleet", 303));

    /** The login page with a fresh double-submit token (cookie and form field). */
    const loginForm = (reply: FastifyReply, status: number, error?: string) => {
      const token = randomBytes(32).toString("base64url");
      void reply.setCookie(LOGIN_CSRF_COOKIE, token, { httpOnly: true, secure: true, sameSite: "strict", path: "/console/login", maxAge: LOGIN_CSRF_TTL_S });
      return page(reply, status, loginPage(token, error));
    };

    app.get("/console/login", async (request, reply) => {
      if (await signedIn(request)) return reply.redirect("/console/fleet", 303);
      return loginForm(reply, 200);
    });

    app.post<{ Body: { key?: unknown; [CSRF_FIELD]?: unknown } }>("/console/login", async (request, reply) => {
      const expected = request.cookies[LOGIN_CSRF_COOKIE];
      if (!expected || !csrfMatches({ csrf: expected }, request.body?.[CSRF_FIELD])) {
        request.log.warn({ client: request.ip, origin: request.headers.origin ?? null, referer: request.headers.referer ?? null }, "console login without the login form's CSRF token refused");
        return loginForm(reply, 403, "This login did not come from this console's login form (its CSRF token was missing or did not match), so nothing was done. Log in with the form below.");
      }
      const peek = await failures(request, { increment: false });
      if (!peek.isAllowed && peek.remaining === 0) {
        void reply.header("retry-after", String(peek.ttlInSeconds));
        return loginForm(reply, 429, `Too many refused keys from ${request.ip}; try again in ${peek.ttlInSeconds} s.`);
      }
      const presented = typeof request.body?.key === "string" ? request.body.key.trim() : "";
      const found = presented === "" ? undefined : await deps.keys.current.verify(presented);
      if (found === "busy") return loginForm(reply, 503, "Too many key checks at once; try again in a second.");
      const expired = found?.expiresAt && found.expiresAt.getTime() <= Date.now();
      if (!found || expired) {
        await failures(request);
        request.log.warn({ client: request.ip, reason: found ? `key ${found.name} expired` : presented === "" ? "no key" : "unknown key" }, "console login refused");
        const why = expired ? `API key ${found.name} expired at ${found.expiresAt!.toISOString()}; ask for a new one.` : "That API key was refused: it is not one of the keys in TENANCY_API_KEYS.";
        return loginForm(reply, 401, why);
      }
      const { token, session } = await deps.sessions.create(found, request.ip);
      void reply.clearCookie(LOGIN_CSRF_COOKIE, { httpOnly: true, secure: true, sameSite: "strict", path: "/console/login" });
      void reply.setCookie(SESSION_COOKIE, token, { httpOnly: true, secure: true, sameSite: "strict", path: "/", expires: session.expiresAt });
      request.log.info({ by: found.name, consoleSession: session.ref, client: request.ip, expiresAt: session.expiresAt.toISOString() }, "console login");
      return reply.redirect("/console/fleet", 303);
    });

    app.post<{ Body: Record<string, unknown> }>("/console/logout", async (request, reply) => {
      const s = await signedIn(request);
      if (!s) return reply.redirect("/console/login", 303);
      if (!csrfMatches(s.session, request.body?.[CSRF_FIELD])) return refuseCsrf(request, reply, s);
      await deps.sessions.end(request.cookies[SESSION_COOKIE]!);
      void reply.clearCookie(SESSION_COOKIE, { httpOnly: true, secure: true, sameSite: "strict", path: "/" });
      request.log.info({ by: s.session.keyName, consoleSession: s.session.ref }, "console logout");
      return reply.redirect("/console/login", 303);
    });

    const refuseCsrf = (request: FastifyRequest, reply: FastifyReply, s: Signed) => {
      request.log.warn({ by: s.session.keyName, consoleSession: s.session.ref, url: request.url }, "console action without its CSRF token refused");
      return page(
        reply,
        403,
        layout({ title: "Action refused", user: s.user, body: html`<p role="alert">This form did not carry the session's CSRF token, so nothing was done. Reload the page you came from and try again.</p>` }),
      );
    };

    get("/console/fleet", (s, _p, q) => fleetPage(s, q.q ?? ""));
    get("/console/drift", (s) => driftPage(s));
    get("/console/tenants/:id", (s, p) => tenantPage(s, p.id!));
    // The tenant page's cost section alone (a fragment, with the API's status): cost.js asks it again while it is 202.
    get("/console/tenants/:id/cost", (s, p) => costFragment(s, p.id!));
    get("/console/workflows/:id", (s, p) => workflowPage(s, p.id!));
    get("/console/runs", (s) => runsPage(s));
    // The Runs page's tables alone (a fragment): runs.js asks it again when the queue's event stream says something changed.
    get("/console/runs/tables", (s) => runsFragment(s));
    get("/console/runs/:id", (s, p) => runPage(s, p.id!));
    get("/console/rollouts", (s) => rolloutsPage(s));
    get("/console/rollouts/:id", (s, p) => rolloutPage(s, p.id!));

    // Each action: GET shows the confirmation naming the consequence; POST (with the CSRF token) does it through the API.
    for (const [name, action] of Object.entries(ACTIONS) as [ActionName, (typeof ACTIONS)[ActionName]][]) {
      get(action.path, (s, p) => confirmPage(s, name, p));
      app.post<{ Params: Record<string, string>; Body: Record<string, unknown> }>(action.path, async (request, reply) => {
        const s = await signedIn(request);
        if (!s) return reply.redirect("/console/login", 303);
        if (!csrfMatches(s.session, request.body?.[CSRF_FIELD])) return refuseCsrf(request, reply, s);
        const refused = refuseScope(request, reply, s);
        if (refused) return refused;
        const res = await s.api("POST", action.api(request.params));
        request.log.info(
          { by: s.session.keyName, consoleSession: s.session.ref, action: name, target: request.params, status: res.status },
          res.status < 300 ? `console action ${name} done` : `console action ${name} refused by the API`,
        );
        if (res.status >= 300) {
          const message = (res.json.error as { message?: string } | undefined)?.message ?? `the API answered ${res.status}`;
          return page(reply, res.status, layout({ title: `${action.title} refused`, user: s.user, body: html`<p role="alert">${message}</p><p><a href="${action.back(request.params)}">Back</a></p>` }));
        }
        return reply.redirect(action.after(request.params, res.json), 303);
      });
    }
  };
}

function loginPage(csrf: string, error?: string): string {
  return layout({
    title: "Log in",
    body: html`${error ? html`<p role="alert" class="error">${error}</p>` : ""}
<form method="post" action="/console/login" class="login">
<input type="hidden" name="${CSRF_FIELD}" value="${csrf}">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="off" required spellcheck="false">
<p class="hint">A key from TENANCY_API_KEYS. It is exchanged for a session cookie and kept nowhere else; the console can do what the key's scopes allow.</p>
<button type="submit">Log in</button>
</form>`,
  });
}
