/**
 * Structured logs (pino). The tenant id and run id ride in an AsyncLocalStorage context that a
 * pino mixin adds to every line: code that works for a tenant or a run wraps itself in
 * withLogContext and every line it (or anything it calls) writes carries both keys, null when
 * the line is about neither.
 *
 * Nothing secret reaches a line (docs/security.md): headers and fields that carry keys,
 * signatures, passwords and connection strings are redacted by path (pino `redact`), request URLs
 * are logged without their query string, and any string that still looks like an API key, a
 * Stripe secret or a URL with a password has that part masked.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

export interface LogContext {
  tenantId?: string;
  runId?: string;
  /** Billing event or API request that caused the work. */
  eventId?: string;
}

const storage = new AsyncLocalStorage<LogContext>();

export function withLogContext<T>(ctx: LogContext, fn: () => T): T {
  return storage.run({ ...storage.getStore(), ...ctx }, fn);
}

export function logContext(): LogContext {
  return storage.getStore() ?? {};
}

/** Field paths whose values are replaced by "[redacted]" wherever a line carries them. */
export const REDACT_PATHS = [
  'req.headers["x-api-key"]', "req.headers.authorization", "req.headers.cookie", 'req.headers["stripe-signature"]',
  'headers["x-api-key"]', "headers.authorization", "headers.cookie", 'headers["stripe-signature"]',
  "password", "*.password", "secret", "*.secret", "token", "*.token", "signature", "*.signature",
  "connectionString", "*.connectionString", "databaseUrl", "*.databaseUrl", "DATABASE_URL", "*.DATABASE_URL",
  "stripeWebhookSecret", "*.stripeWebhookSecret", "GITHUB_TOKEN", "*.GITHUB_TOKEN",
];

const SECRET_PATTERNS: [RegExp, string][] = [
  // An internal API key: its id may be logged, never its secret.
  [/\b(tcp_[0-9a-f]{12}_)[^\s"',;&]+/g, "$1[redacted]"],
  [/\btcp_[A-Za-z0-9_-]{20,}/g, "tcp_[redacted]"],
  [/\b(whsec|sk_live|sk_test|rk_live|rk_test)_[A-Za-z0-9]+/g, "$1_[redacted]"],
  [/\b(gh[pousr]_)[A-Za-z0-9]{20,}/g, "$1[redacted]"],
  // user:password@ in any URL (postgres://, https://).
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)[^\s@/]+@/gi, "$1[redacted]@"],
  // password=... in a libpq keyword string or query string.
  [/\b(password|sslpassword)=[^\s&]+/gi, "$1=[redacted]"],
];

/** The string with anything that looks like a secret masked. */
export function maskSecrets(text: string): string {
  let out = text;
  for (const [re, to] of SECRET_PATTERNS) out = out.replace(re, to);
  return out;
}

function maskDeep(value: unknown, depth: number): unknown {
  if (typeof value === "string") return maskSecrets(value);
  if (depth <= 0 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, depth - 1));
  if (value instanceof Error) return { type: value.name, message: maskSecrets(value.message), ...(value.stack ? { stack: maskSecrets(value.stack) } : {}) };
  // Only plain data: requests, replies and other instances are left to their serializers.
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = maskDeep(v, depth - 1);
  return out;
}

/** A URL path without its query string: keys sent as ?api_key=... never reach a line. */
export function pathOnly(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const q = url.indexOf("?");
  return q === -1 ? url : `${url.slice(0, q)}?[query omitted]`;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: "tenancy-control-plane" },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    serializers: {
      // fastify's request serializer, minus the query string.
      req: (req: { method?: string; url?: string; host?: string; ip?: string; socket?: { remotePort?: number } }) => ({
        method: req.method,
        url: pathOnly(req.url),
        host: req.host,
        remoteAddress: req.ip,
        remotePort: req.socket?.remotePort,
      }),
    },
    formatters: { log: (obj: Record<string, unknown>) => maskDeep(obj, 5) as Record<string, unknown> },
    hooks: {
      logMethod(this: Logger, args: Parameters<Logger["info"]>, method: (...a: unknown[]) => void) {
        method.apply(this, args.map((a) => (typeof a === "string" ? maskSecrets(a) : a)));
      },
    },
    mixin: () => {
      const ctx = storage.getStore();
      return { tenantId: ctx?.tenantId ?? null, runId: ctx?.runId ?? null, ...(ctx?.eventId ? { eventId: ctx.eventId } : {}) };
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
