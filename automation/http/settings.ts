/**
 * The HTTP server's own settings (docs/control-plane.md, docs/security.md): what the API lets a
 * key do without a special scope, how failed key attempts are limited, how long and how many
 * connections and event streams may stay open, where /metrics is served, and which proxy's
 * X-Forwarded-For is believed. config.ts composes them with the rest.
 */
import { DEFAULT_GRACE_DAYS } from "../lifecycle/config.ts";
import { SettingError, SettingsReader, type SettingSource } from "../settings/read.ts";

export interface HttpSettings {
  /** DELETE /api/tenants/:id refuses a shorter graceDays unless the key holds offboard:immediate. @default the offboarding grace days */
  minOffboardGraceDays: number;
  /** Failed key attempts per client address per minute before it is answered 429. @default DEFAULT_AUTH_FAILURES_PER_MINUTE */
  authFailuresPerMinute: number;
  /** fastify's trustProxy: false, a hop count, or addresses/CIDRs of the load balancer. @default false (clients connect directly) */
  trustProxy: boolean | number | string[];
  /** A request (headers and body) must arrive within this time. @default DEFAULT_REQUEST_TIMEOUT_MS */
  requestTimeoutMs: number;
  /** Open connections at most; more are closed at once. @default DEFAULT_MAX_CONNECTIONS */
  maxConnections: number;
  /** Open run event streams per API key. @default DEFAULT_SSE_PER_KEY */
  ssePerKey: number;
  /** Open run event streams in all. @default DEFAULT_SSE_TOTAL */
  sseTotal: number;
  /** /metrics listener; null serves it on the main port (behind a load balancer that blocks it). @default loopback:9464 */
  metrics: { host: string; port: number } | null;
}

export const DEFAULT_AUTH_FAILURES_PER_MINUTE = 20;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_CONNECTIONS = 1_000;
export const DEFAULT_SSE_PER_KEY = 10;
export const DEFAULT_SSE_TOTAL = 200;
export const DEFAULT_METRICS_HOST = "127.0.0.1";
export const DEFAULT_METRICS_PORT = 9464;

export const DEFAULT_HTTP_SETTINGS: Readonly<HttpSettings> = {
  minOffboardGraceDays: DEFAULT_GRACE_DAYS,
  authFailuresPerMinute: DEFAULT_AUTH_FAILURES_PER_MINUTE,
  trustProxy: false,
  requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  ssePerKey: DEFAULT_SSE_PER_KEY,
  sseTotal: DEFAULT_SSE_TOTAL,
  metrics: { host: DEFAULT_METRICS_HOST, port: DEFAULT_METRICS_PORT },
};

export const HTTP_SETTING_DOCS = [
  { name: "TENANCY_API_MIN_GRACE_DAYS", required: false, default: "TENANCY_OFFBOARDING_GRACE_DAYS", meaning: "Shortest `graceDays` DELETE /api/tenants/:id accepts from a key without the `offboard:immediate` scope." },
  { name: "TENANCY_AUTH_FAILURES_PER_MINUTE", required: false, default: String(DEFAULT_AUTH_FAILURES_PER_MINUTE), meaning: "Failed API key attempts per client address per minute; further requests from it are answered 429 without checking the key." },
  { name: "TENANCY_TRUST_PROXY", required: false, default: "off", meaning: "Whose X-Forwarded-For names the client: `off`, a hop count, or comma-separated addresses/CIDRs of the load balancer (the VPC's CIDR on ECS)." },
  { name: "TENANCY_REQUEST_TIMEOUT_SECONDS", required: false, default: String(DEFAULT_REQUEST_TIMEOUT_MS / 1000), meaning: "A request's headers and body must arrive within this time; slower ones get 408 and are closed." },
  { name: "TENANCY_MAX_CONNECTIONS", required: false, default: String(DEFAULT_MAX_CONNECTIONS), meaning: "Open connections at most; further ones are closed at once." },
  { name: "TENANCY_SSE_PER_KEY", required: false, default: String(DEFAULT_SSE_PER_KEY), meaning: "Open run event streams per API key (429 beyond)." },
  { name: "TENANCY_SSE_TOTAL", required: false, default: String(DEFAULT_SSE_TOTAL), meaning: "Open run event streams in all (503 beyond)." },
  { name: "TENANCY_METRICS_HOST", required: false, default: DEFAULT_METRICS_HOST, meaning: "Address of the separate /metrics listener (loopback: a sidecar scraper in the task reaches it, the load balancer does not)." },
  { name: "TENANCY_METRICS_PORT", required: false, default: String(DEFAULT_METRICS_PORT), meaning: "Port of the /metrics listener; `main` serves /metrics on PORT instead (then the load balancer must not forward it)." },
] as const;

/**
 * Reads the settings above; each problem is pushed to `lines` naming the setting. `graceDays` is
 * the offboarding grace as the lifecycle settings read it (TENANCY_OFFBOARDING_GRACE_DAYS,
 * lifecycle/config.ts): the minimum defaults to it and may not exceed it.
 */
export function httpSettingsFrom(get: SettingSource, lines: string[], graceDays: number = DEFAULT_GRACE_DAYS): HttpSettings {
  const read = new SettingsReader(get, lines);
  const minOffboardGraceDays = read.int("TENANCY_API_MIN_GRACE_DAYS", graceDays, 0, 3650);
  if (minOffboardGraceDays > graceDays) {
    lines.push(
      `TENANCY_API_MIN_GRACE_DAYS: ${minOffboardGraceDays} is more than TENANCY_OFFBOARDING_GRACE_DAYS (${graceDays}), which an offboarding without graceDays gets; ` +
        `raise TENANCY_OFFBOARDING_GRACE_DAYS or lower the minimum`,
    );
  }

  let trustProxy: HttpSettings["trustProxy"] = false;
  const tp = get("TENANCY_TRUST_PROXY");
  if (tp !== undefined && tp !== "off") {
    if (/^\d+$/.test(tp)) trustProxy = Number(tp);
    else {
      const parts = tp.split(",").map((s) => s.trim()).filter(Boolean);
      const bad = parts.filter((p) => !/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(p));
      if (bad.length > 0 || parts.length === 0) lines.push(new SettingError("TENANCY_TRUST_PROXY", tp, "off, a hop count, or comma-separated addresses/CIDRs (10.0.0.0/16)").message);
      else trustProxy = parts;
    }
  }

  const metricsPort = get("TENANCY_METRICS_PORT");
  const metrics =
    metricsPort === "main"
      ? null
      : { host: get("TENANCY_METRICS_HOST") ?? DEFAULT_METRICS_HOST, port: read.int("TENANCY_METRICS_PORT", DEFAULT_METRICS_PORT, 0, 65535) };

  return {
    minOffboardGraceDays,
    authFailuresPerMinute: read.int("TENANCY_AUTH_FAILURES_PER_MINUTE", DEFAULT_AUTH_FAILURES_PER_MINUTE, 1, 100_000),
    trustProxy,
    requestTimeoutMs: read.duration("TENANCY_REQUEST_TIMEOUT_SECONDS", DEFAULT_REQUEST_TIMEOUT_MS, { unit: "seconds", min: 1, max: 3600, whole: true }),
    maxConnections: read.int("TENANCY_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS, 1, 1_000_000),
    ssePerKey: read.int("TENANCY_SSE_PER_KEY", DEFAULT_SSE_PER_KEY, 1, 10_000),
    sseTotal: read.int("TENANCY_SSE_TOTAL", DEFAULT_SSE_TOTAL, 1, 100_000),
    metrics,
  };
}
