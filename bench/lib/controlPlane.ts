/**
 * Shared set-up of the control-plane benchmarks (bench/sections/controlPlane.ts): a throwaway git
 * working copy of the example fleet, a ControlPlaneConfig with the documented defaults, signed
 * Stripe events, a logger that does the production logging work but writes to /dev/null.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import Stripe from "stripe";
import {
  DEFAULT_HEARTBEAT_SECONDS,
  DEFAULT_HEARTBEAT_TIMEOUT_SECONDS,
  DEFAULT_MAX_PARALLEL_RUNS,
  DEFAULT_RUN_EXPIRE_HOURS,
  DEFAULT_SHUTDOWN_GRACE_SECONDS,
  DEFAULT_UNPAID_GRACE_HOURS,
  DEFAULT_UPDATE_RETRIES,
  DEFAULT_UPDATE_RETRY_BASE_MS,
  type ControlPlaneConfig,
} from "../../automation/config.ts";
import { apiKeyRecord } from "../../automation/http/apiKeys.ts";
import { DEFAULT_HTTP_SETTINGS } from "../../automation/http/settings.ts";
import { createLogger, type Logger } from "../../automation/log.ts";
import type { Tier } from "../../infra/model/tiers.ts";
import { PROJECT_DIR } from "./fleetGen.ts";
import { subscriptionEvent } from "../../test/automation/support/stripe.ts";

export const BENCH_WEBHOOK_SECRET = "whsec_bench_control_plane_0123456789";
export const BENCH_PRICE = "price_standard_monthly";

/** A git repository holding the example fleet as committed (Pulumi.yaml, tenants/, stacks/, policy), on main. */
export function makeBenchRepo(): string {
  const root = mkdtempSync(join(tmpdir(), "tenancy-bench-repo-"));
  chmodSync(root, 0o755);
  const tar = execFileSync("git", ["archive", "--format=tar", "HEAD", "Pulumi.yaml", "tenants", "stacks", "policy/PulumiPolicy.yaml"], { cwd: PROJECT_DIR, maxBuffer: 64 << 20 });
  execFileSync("tar", ["-x", "-C", root], { input: tar });
  const env = { ...process.env, GIT_AUTHOR_NAME: "Bench", GIT_AUTHOR_EMAIL: "bench@bench.invalid", GIT_COMMITTER_NAME: "Bench", GIT_COMMITTER_EMAIL: "bench@bench.invalid" };
  for (const args of [["init", "--quiet", "--initial-branch=main"], ["add", "--all"], ["commit", "--quiet", "-m", "example fleet"]]) {
    execFileSync("git", args, { cwd: root, env, stdio: ["ignore", "ignore", "pipe"] });
  }
  return root;
}

/** The documented defaults (automation/config.ts), on a given database, repository and data directory. */
export function benchConfig(over: Pick<ControlPlaneConfig, "databaseUrl" | "repoDir" | "dataDir"> & Partial<ControlPlaneConfig>): ControlPlaneConfig {
  return {
    port: 0,
    host: "127.0.0.1",
    stripeWebhookSecret: BENCH_WEBHOOK_SECRET,
    priceTiers: new Map<string, Tier>([[BENCH_PRICE, "standard"]]),
    apiKeys: [apiKeyRecord({ name: "bench", hash: `sha256:${createHash("sha256").update("bench-key").digest("hex")}`, scopes: ["admin"] })],
    http: { ...DEFAULT_HTTP_SETTINGS, metrics: null },
    maxParallelRuns: DEFAULT_MAX_PARALLEL_RUNS,
    runner: "local",
    git: { remote: "origin", author: { name: "Bench", email: "bench@bench.invalid" } },
    unpaidGraceHours: DEFAULT_UNPAID_GRACE_HOURS,
    runExpireHours: DEFAULT_RUN_EXPIRE_HOURS,
    heartbeatSeconds: DEFAULT_HEARTBEAT_SECONDS,
    heartbeatTimeoutSeconds: DEFAULT_HEARTBEAT_TIMEOUT_SECONDS,
    updateRetries: DEFAULT_UPDATE_RETRIES,
    updateRetryBaseMs: DEFAULT_UPDATE_RETRY_BASE_MS,
    shutdownGraceSeconds: DEFAULT_SHUTDOWN_GRACE_SECONDS,
    logLevel: "info",
    ...over,
  };
}

/** The production log level (info), formatted as in production, written synchronously to /dev/null. */
export function devNullLogger(): Logger {
  return createLogger("info", pino.destination({ dest: "/dev/null", sync: true }));
}

/** A new subscription's `customer.subscription.created`, shaped as the control-plane tests send it. */
export function subscriptionCreated(eventId: string, subscriptionId: string, tenantId: string, created: number): string {
  return JSON.stringify(
    subscriptionEvent(eventId, "customer.subscription.created", created, {
      id: subscriptionId,
      status: "active",
      price: BENCH_PRICE,
      metadata: { tenant_id: tenantId, region: "us-east-1" },
    }),
  );
}

export interface SignedDelivery {
  body: string;
  signature: string;
}

/**
 * `n` distinct signed deliveries (distinct event, subscription and tenant ids: every one is a
 * durable write), signed with the official library's test helper. `tag` keeps batches apart.
 */
export function signedDeliveries(n: number, tag: string): SignedDelivery[] {
  const created = Math.floor(Date.now() / 1000) - 5;
  const out = new Array<SignedDelivery>(n);
  for (let i = 0; i < n; i++) {
    const id = `${tag}${i.toString(36)}`;
    const body = subscriptionCreated(`evt_${id}`, `sub_${id}`, `b-${id}`, created);
    out[i] = { body, signature: Stripe.webhooks.generateTestHeaderString({ payload: body, secret: BENCH_WEBHOOK_SECRET }) };
  }
  return out;
}
