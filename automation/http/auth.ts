/**
 * The internal API's door (docs/security.md): every /api route declares a scope in ROUTE_SCOPES
 * (a route without one stops the server from starting); a request needs a key, found by the id it
 * carries, unexpired, holding that scope. Failed attempts are counted per client address with
 * @fastify/rate-limit and, past the limit, answered 429 before any key is hashed.
 * A request without a key may carry an operator console session cookie instead (sessions.ts): it
 * stands for the key it was made with, and whatever it asks that changes something must carry the
 * session's CSRF token in the x-csrf-token header.
 */
import rateLimit from "@fastify/rate-limit";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ApiKeyRing } from "./keyRing.ts";
import { API_KEY_HEADER, type ApiKeyRecord } from "./apiKeys.ts";
import { HttpError } from "./errors.ts";
import { holdsScope, routeScope, SCOPES, type Scope } from "./scopes.ts";
import { CSRF_HEADER, csrfMatches, SESSION_COOKIE, sessionKey, type ConsoleSession, type ConsoleSessions } from "./sessions.ts";

/** Methods that change nothing: a console session needs no CSRF token for them. */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export interface AuthenticatedKey {
  name: string;
  id: string | null;
  scopes: ReadonlySet<Scope>;
}

declare module "fastify" {
  interface FastifyRequest {
    apiKey?: AuthenticatedKey;
    /** Set when the request came with an operator console session instead of a key. */
    consoleSession?: ConsoleSession;
  }
}

/** The key a handler runs for (the auth hook ran: always set on /api routes). */
export function keyOf(request: FastifyRequest): AuthenticatedKey {
  if (!request.apiKey) throw new Error(`${request.method} ${request.url} ran without an authenticated key`);
  return request.apiKey;
}

/** Counts a failed key attempt of a request's client (or, with increment false, reads the count): @fastify/rate-limit's limiter. */
export type FailureLimiter = ReturnType<FastifyInstance["createRateLimit"]>;

/**
 * Adds the key check to `api` (an encapsulated scope holding the /api routes). Call before
 * registering them. Returns the per-client failure limiter, which the console's login form shares
 * (one budget of failed keys per client, whichever door they are tried at).
 */
export async function registerAuth(api: FastifyInstance, keys: ApiKeyRing, failuresPerMinute: number, sessions?: ConsoleSessions): Promise<FailureLimiter> {
  api.addHook("onRoute", (route) => {
    for (const method of [route.method].flat()) {
      if (!routeScope(method, route.url)) {
        throw new Error(`route ${method} ${route.url} declares no scope: add it to ROUTE_SCOPES in automation/http/scopes.ts`);
      }
    }
  });
  await api.register(rateLimit, { global: false });
  const failures = api.createRateLimit({ max: failuresPerMinute, timeWindow: 60_000, keyGenerator: (req) => req.ip });

  const refuse = async (request: FastifyRequest, reply: FastifyReply, reason: string, message: string): Promise<never> => {
    const limit = await failures(request);
    request.log.warn({ client: request.ip, reason, failuresLeft: limit.isAllowed ? null : limit.remaining }, "API key refused");
    if (!limit.isAllowed && limit.isExceeded) {
      void reply.header("retry-after", String(limit.ttlInSeconds));
      throw new HttpError(429, `too many failed API key attempts from ${request.ip}; try again in ${limit.ttlInSeconds} s`);
    }
    throw new HttpError(401, message);
  };

  api.addHook("onRequest", async (request, reply) => {
    const peek = await failures(request, { increment: false });
    if (!peek.isAllowed && peek.remaining === 0) {
      request.log.warn({ client: request.ip }, "client over the failed API key attempt limit; key not checked");
      void reply.header("retry-after", String(peek.ttlInSeconds));
      throw new HttpError(429, `too many failed API key attempts from ${request.ip}; try again in ${peek.ttlInSeconds} s`);
    }
    const header = request.headers[API_KEY_HEADER];
    const cookie = header === undefined && sessions ? request.cookies[SESSION_COOKIE] : undefined;
    let found: ApiKeyRecord | undefined;
    let session: ConsoleSession | undefined;
    if (cookie !== undefined && sessions) {
      session = await sessions.find(cookie);
      if (!session) return refuse(request, reply, "unknown or expired console session", "console session unknown or expired; log in again at /console/login");
      found = sessionKey(keys.current, session);
      if (!found) {
        return refuse(request, reply, `key ${session.keyName} of a console session is no longer in force`, `API key ${session.keyName} of this console session is no longer in TENANCY_API_KEYS; log in again with a current key`);
      }
      if (!SAFE_METHODS.has(request.method) && !csrfMatches(session, request.headers[CSRF_HEADER])) {
        request.log.warn({ client: request.ip, apiKey: session.keyName, session: session.ref }, "console session request without its CSRF token refused");
        throw new HttpError(403, `${request.method} with a console session needs the session's CSRF token in the ${CSRF_HEADER} header; reload the console page and try again`);
      }
    } else {
      const verified = await keys.current.verify(typeof header === "string" ? header : undefined);
      if (verified === "busy") {
        void reply.header("retry-after", "1");
        throw new HttpError(503, "too many API key checks at once; retry in a second");
      }
      found = verified;
    }
    const unknown = `missing or unknown API key: send a key from TENANCY_API_KEYS in the ${API_KEY_HEADER} header`;
    if (!found) return refuse(request, reply, header === undefined ? "no key" : "unknown key", unknown);
    if (found.expiresAt && found.expiresAt.getTime() <= Date.now()) {
      return refuse(request, reply, `key ${found.name} expired`, `API key ${found.name} expired at ${found.expiresAt.toISOString()}; ask for a new one`);
    }
    const key = authenticated(found);
    request.apiKey = key;
    // Who took an action, in the records it leaves (run reasons, commits, workflow retries).
    request.apiKeyName = session ? `${key.name} (console session ${session.ref})` : key.name;
    if (session) request.consoleSession = session;
    // Every later line of this request names the key (and the console session).
    request.log = request.log.child({ apiKey: key.name, apiKeyId: key.id, ...(session ? { consoleSession: session.ref } : {}) });
    reply.log = request.log;
    const needed = routeScope(request.method, request.routeOptions.url ?? "");
    if (!needed) throw new HttpError(403, `${request.method} ${request.routeOptions.url} declares no scope; nothing is allowed on it`);
    if (!holdsScope(key.scopes, needed)) {
      request.log.warn({ client: request.ip, needed, held: [...key.scopes] }, "API key lacks the route's scope");
      throw new HttpError(403, `API key ${key.name} lacks scope ${needed} (${SCOPES[needed]}), which ${request.method} ${request.routeOptions.url} needs; it holds ${[...key.scopes].join(", ")}`, {
        missingScope: needed,
      });
    }
  });
  return failures;
}

function authenticated(r: ApiKeyRecord): AuthenticatedKey {
  return { name: r.name, id: r.id ?? null, scopes: r.scopes };
}
