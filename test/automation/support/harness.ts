/**
 * A control plane on a live PostgreSQL and a throwaway git repository, driving the Automation
 * API with the CLI test double. Everything is real except the Pulumi CLI.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { apiKeyRecord } from "../../../automation/http/apiKeys.ts";
import { DEFAULT_HTTP_SETTINGS } from "../../../automation/http/settings.ts";
import type { ControlPlaneConfig } from "../../../automation/config.ts";
import { ControlPlane, type ControlPlaneDeps, type StartOptions } from "../../../automation/controlPlane.ts";
import { createLogger } from "../../../automation/log.ts";
import type { Tier } from "../../../infra/model/tiers.ts";
import { FakePulumiCommand, type FakePulumiOptions } from "./fakePulumi.ts";
import { makeFixtureRepo, type FixtureRepo } from "./repo.ts";
import { sign, WEBHOOK_SECRET } from "./stripe.ts";
import type { TestPostgres } from "./postgres.ts";

export const API_KEY = "tcp_test_key_for_the_control_plane_tests";

export const PRICE_TIERS: ReadonlyMap<string, Tier> = new Map<string, Tier>([
  ["price_free", "free"],
  ["price_standard_monthly", "standard"],
  ["price_enterprise", "enterprise"],
  ["price_dedicated_annual", "dedicated"],
]);

export interface HarnessOptions {
  pg: TestPostgres;
  fake?: Partial<FakePulumiOptions>;
  config?: Partial<ControlPlaneConfig>;
  start?: StartOptions;
  deps?: Partial<ControlPlaneDeps>;
  repo?: FixtureRepo;
  logLevel?: string;
  /** Collects every log line (JSON text) at logLevel (default info) instead of discarding them. */
  logLines?: string[];
}

export interface Harness {
  cp: ControlPlane;
  repo: FixtureRepo;
  fake: FakePulumiCommand;
  stateDir: string;
  tmp: string;
  config: ControlPlaneConfig;
  baseUrl: string;
  /** The /metrics listener's base URL; undefined when /metrics is on the main port. */
  metricsUrl: string | undefined;
  /** POST a signed event to /webhooks/stripe. */
  post(event: unknown, opts?: { signature?: string; body?: string }): Promise<{ status: number; json: Record<string, unknown> }>;
  api(method: string, path: string, body?: unknown, key?: string | null): Promise<{ status: number; json: Record<string, unknown> }>;
  close(): Promise<void>;
}

export function testConfig(over: Partial<ControlPlaneConfig> & Pick<ControlPlaneConfig, "databaseUrl" | "repoDir" | "dataDir">): ControlPlaneConfig {
  return {
    port: 0,
    host: "127.0.0.1",
    stripeWebhookSecret: WEBHOOK_SECRET,
    priceTiers: PRICE_TIERS,
    apiKeys: [apiKeyRecord({ name: "test", hash: `sha256:${createHash("sha256").update(API_KEY).digest("hex")}`, scopes: ["admin"] })],
    http: { ...DEFAULT_HTTP_SETTINGS, metrics: { host: "127.0.0.1", port: 0 } },
    maxParallelRuns: 2,
    runner: "local",
    git: { remote: "origin", author: { name: "Control Plane Test", email: "control-plane@test.invalid" } },
    unpaidGraceHours: 0,
    runExpireHours: 3,
    heartbeatSeconds: 0.2,
    heartbeatTimeoutSeconds: 1.5,
    updateRetries: 3,
    updateRetryBaseMs: 50,
    shutdownGraceSeconds: 0,
    logLevel: "silent",
    ...over,
  };
}

export async function startHarness(opts: HarnessOptions): Promise<Harness> {
  const tmp = mkdtempSync(join(tmpdir(), "tenancy-cp-"));
  const repo = opts.repo ?? makeFixtureRepo();
  const stateDir = join(tmp, "pulumi-state");
  const fake = new FakePulumiCommand({ stateDir, ...opts.fake });
  const config = testConfig({ databaseUrl: await opts.pg.controlPlaneDatabase(), repoDir: repo.dir, dataDir: join(tmp, "data"), ...opts.config });
  const cp = await ControlPlane.create(config, {
    log: opts.logLines
      ? createLogger(opts.logLevel ?? "info", { write: (line: string) => void opts.logLines!.push(line) })
      : createLogger(opts.logLevel ?? process.env.TEST_LOG_LEVEL ?? "silent"),
    pulumiCommand: fake.asPulumiCommand(),
    pollingIntervalSeconds: 0.5,
    ...opts.deps,
  });
  const start = opts.start ?? { http: true, reconciler: true, runs: true };
  await cp.start({ ...start, http: true });
  const port = (cp.server.server.address() as AddressInfo).port;
  const baseUrl = `http://127.0.0.1:${port}`;
  const metricsAddress = cp.metricsServer?.server.address() as AddressInfo | null | undefined;
  const metricsUrl = metricsAddress ? `http://127.0.0.1:${metricsAddress.port}` : undefined;
  const asJson = async (res: Response) => {
    const text = await res.text();
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      return { text } as Record<string, unknown>;
    }
  };
  return {
    cp,
    repo,
    fake,
    stateDir,
    tmp,
    config,
    baseUrl,
    metricsUrl,
    async post(event, o = {}) {
      const body = o.body ?? JSON.stringify(event);
      const res = await fetch(`${baseUrl}/webhooks/stripe`, {
        method: "POST",
        headers: { "content-type": "application/json", "stripe-signature": o.signature ?? sign(body) },
        body,
      });
      return { status: res.status, json: await asJson(res) };
    },
    async api(method, path, body, key = API_KEY) {
      const res = await fetch(`${baseUrl}${path}`, {
        method,
        headers: { ...(key ? { "x-api-key": key } : {}), ...(body !== undefined ? { "content-type": "application/json" } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      return { status: res.status, json: await asJson(res) };
    },
    async close() {
      await cp.stop(0);
      rmSync(tmp, { recursive: true, force: true });
      rmSync(repo.dir, { recursive: true, force: true });
    },
  };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Counts rows of a query on the harness's database. */
export async function count(h: Harness, sql: string, values: unknown[] = []): Promise<number> {
  const { rows } = await h.cp.db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM (${sql}) q`, values);
  return Number(rows[0]!.n);
}
