import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { loadConfig, ConfigError, SETTINGS } from "../../automation/config.ts";
import { DEFAULT_LIFECYCLE_CONFIG } from "../../automation/lifecycle/config.ts";
import { newApiKey } from "../../automation/http/apiKeys.ts";
import { createLogger } from "../../automation/log.ts";
import { routeOf } from "../../infra/model/routes.ts";
import { loadFleet } from "../../infra/model/fleet.ts";
import { API_KEY, startHarness, waitFor, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

const PROJECT = resolve(import.meta.dirname, "../..");

let pg: TestPostgres;
let h: Harness;
const lines: Record<string, unknown>[] = [];
beforeAll(async () => {
  pg = await startTestPostgres();
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split("\n")) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  h = await startHarness({ pg, deps: { log: createLogger("info", sink) } });
});
afterAll(async () => {
  await h?.close();
  await pg?.stop();
});

const tenant = (id: string, extra: Record<string, unknown> = {}) => ({
  id, displayName: `${id} Inc.`, tier: "standard", region: "us-east-1", environments: { prod: {} }, ...extra,
});

describe("internal API", () => {
  it("requires an API key from TENANCY_API_KEYS", async () => {
    for (const key of [null, "wrong-key", `${API_KEY}x`]) {
      const res = await h.api("GET", "/api/tenants/acme", undefined, key);
      expect(res.status).toBe(401);
      expect(res.json).toEqual({ error: { message: "missing or unknown API key: send a key from TENANCY_API_KEYS in the x-api-key header" } });
    }
  });

  it("creates a pooled tenant (201, committed, run queued), shows it, and offboards it (202)", async () => {
    const created = await h.api("POST", "/api/tenants", tenant("api-co", { contact: { email: "ops@api-co.example" } }));
    expect(created.status).toBe(201);
    const change = created.json.change as { state: string; commit: string; stacks: string[]; runs: { runId: string; stack: string }[] };
    expect(change.state).toBe("committed");
    expect(change.runs.map((r) => r.stack)).toEqual(change.stacks);
    expect(h.repo.log()[0]!.sha).toBe(change.commit);
    expect(h.repo.log()[0]!.body).toMatch(/Requested-By: api key test\nApi-Request: [0-9a-f-]{36}/);

    const run = await waitFor("the run", async () => {
      const r = await h.api("GET", `/api/runs/${change.runs[0]!.runId}`);
      return (r.json.run as { state: string }).state === "succeeded" ? (r.json.run as Record<string, unknown>) : undefined;
    });
    expect(run).toMatchObject({ stack: change.stacks[0], operation: "up", attempts: 1, commit: change.commit, error: null });

    const shown = await h.api("GET", "/api/tenants/api-co");
    expect(shown.status).toBe(200);
    const { fleet } = loadFleet({ projectDir: h.repo.dir });
    const t = fleet!.tenants.get("api-co")!.tenant;
    expect(shown.json).toMatchObject({
      lifecycle: "active",
      stacks: change.stacks,
      routes: [routeOf(fleet!, t, "prod")],
      tenant: { id: "api-co", tier: "standard", contact: { email: "ops@api-co.example" } },
    });
    expect((shown.json.runs as { id: string }[]).map((r) => r.id)).toContain(change.runs[0]!.runId);
    expect((shown.json.changes as { state: string }[])[0]!.state).toBe("committed");

    const off = await h.api("DELETE", "/api/tenants/api-co?graceDays=45");
    expect(off.status).toBe(202);
    const file = h.repo.show("main", "tenants/api-co.yaml")!;
    expect(file).toContain("lifecycle: offboarding");
    expect(file).toContain("graceDays: 45");
    expect((await h.api("DELETE", "/api/tenants/api-co")).status).toBe(200);
  });

  it("answers every error as JSON a person can act on, never a stack trace", async () => {
    const cases: [string, string, unknown, number, RegExp][] = [
      ["POST", "/api/tenants", tenant("api-co"), 409, /tenant api-co already exists/],
      ["POST", "/api/tenants", { ...tenant("typo-co"), teir: "free" }, 422, /tenants\/typo-co\.yaml:\d+: teir: unknown key/],
      ["POST", "/api/tenants", tenant("Bad_Id"), 400, /is not a tenant id/],
      ["POST", "/api/tenants", [1, 2], 400, /send the tenant as a JSON object/],
      // (No room in a region no longer fails: a cell is opened first, test/automation/cells.test.ts.)
      ["POST", "/api/tenants", tenant("full-co", { region: "eu-west-1", environments: { dev: {} }, placement: { dev: "euw1-09" } }), 422, /placement\.dev: cell euw1-09 has no stack file/],
      ["GET", "/api/tenants/nobody", undefined, 404, /no tenant nobody on main/],
      ["DELETE", "/api/tenants/nobody", undefined, 404, /no tenant nobody on main/],
      ["GET", "/api/runs/00000000-0000-0000-0000-000000000000", undefined, 404, /no run/],
      ["GET", "/api/runs/not-a-uuid", undefined, 404, /no run/],
      ["POST", "/api/stacks/prod-nothing/runs", undefined, 400, /unknown stack name "prod-nothing"/],
      ["POST", "/api/stacks/shared-prod-use1-09/runs", undefined, 404, /no stack file stacks\/Pulumi\.shared-prod-use1-09\.yaml/],
      ["GET", "/api/events/evt_never", undefined, 404, /no Stripe event evt_never/],
      ["POST", "/api/subscriptions/sub_never/reconcile", undefined, 404, /no events recorded for subscription sub_never/],
      // This control plane runs without the lifecycle worker (no TENANCY_LIFECYCLE_* settings).
      ["POST", "/api/workflows/00000000-0000-0000-0000-000000000000/retry", undefined, 503, /the lifecycle workflows are off in this control plane \(TENANCY_LIFECYCLE_WORKER=off\)/],
      ["GET", "/api/workflows/not-a-uuid", undefined, 400, /"not-a-uuid" is not a workflow id/],
      ["GET", "/nowhere", undefined, 404, /no route GET \/nowhere/],
    ];
    for (const [method, path, body, status, message] of cases) {
      const res = await h.api(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(status);
      expect(Object.keys(res.json), `${method} ${path}`).toEqual(["error"]);
      expect((res.json.error as { message: string }).message, `${method} ${path}`).toMatch(message);
      expect(JSON.stringify(res.json)).not.toMatch(/\.ts:\d+|node_modules|at [A-Za-z]+ \(/);
    }
    const bad = await fetch(`${h.baseUrl}/api/tenants`, { method: "POST", headers: { "x-api-key": API_KEY, "content-type": "application/json" }, body: "{not json" });
    expect(bad.status).toBe(400);
    const badJson = (await bad.json()) as { error: { message: string } };
    expect(Object.keys(badJson)).toEqual(["error"]);
    expect(badJson.error.message).toMatch(/JSON/);
  });

  it("logs with the tenant id and run id bound to every line about them", async () => {
    const about = lines.filter((l) => typeof l.msg === "string" && l.msg.includes("api-co"));
    expect(about.length).toBeGreaterThan(0);
    for (const l of about) expect(l.tenantId, String(l.msg)).toBe("api-co");
    const runLines = lines.filter((l) => typeof l.msg === "string" && /^run (started|succeeded)/.test(l.msg));
    expect(runLines.length).toBeGreaterThanOrEqual(2);
    for (const l of runLines) {
      expect(l.runId).toMatch(/^[0-9a-f-]{36}$/);
      expect(l.tenantId).toBe("api-co");
    }
    expect(lines.every((l) => "tenantId" in l && "runId" in l)).toBe(true);
  });

  it("serves /healthz (check names only; details in the log) and /metrics on its own loopback listener", async () => {
    const health = await fetch(`${h.baseUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok", checks: { database: "ok", git: "ok" } });
    // A failing check: named, its error text logged and never answered.
    const gitDir = join(h.repo.dir, ".git");
    const moved = join(h.repo.dir, ".git-away");
    renameSync(gitDir, moved);
    try {
      const failing = await fetch(`${h.baseUrl}/healthz`);
      expect(failing.status).toBe(503);
      const text = await failing.text();
      expect(JSON.parse(text)).toEqual({ status: "failing", checks: { database: "ok", git: "failing" } });
      const logged = lines.find((l) => l.msg === "health check failing: git") as { failed: { git: string } } | undefined;
      expect(logged?.failed.git.length).toBeGreaterThan(0);
      expect(text).not.toContain(logged!.failed.git);
    } finally {
      renameSync(moved, gitDir);
    }
    expect((await fetch(`${h.baseUrl}/metrics`)).status).toBe(404);
    expect(h.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const metrics = await (await fetch(`${h.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/^tenancy_runs\{state="succeeded"\} [1-9]/m);
    expect(metrics).toMatch(/^tenancy_runs\{state="queued"\} \d+/m);
    expect(metrics).toMatch(/^tenancy_queue_depth\{queue="stack-run"\} \d+/m);
    expect(metrics).toMatch(/^tenancy_run_duration_seconds_count\{state="succeeded"\} [1-9]/m);
    expect(metrics).toContain("tenancy_billing_events_received_total");
  });
});

describe("configuration", () => {
  const dir = mkdtempSync(join(tmpdir(), "tenancy-config-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "prices.yaml"), "price_a: standard\nprice_b: dedicated\n");
  writeFileSync(join(dir, "keys.yaml"), `keys:\n${newApiKey("ci").yaml}\n`);

  it("names every missing or malformed setting, all at once", () => {
    let err: unknown;
    try {
      loadConfig({ env: { TENANCY_MAX_PARALLEL_RUNS: "lots", TENANCY_RUNNER: "deployments" }, cwd: dir, projectDir: PROJECT });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const lines = (err as ConfigError).lines;
    expect(lines).toEqual(expect.arrayContaining([
      expect.stringMatching(/^STRIPE_WEBHOOK_SECRET: missing required setting/),
      expect.stringMatching(/^TENANCY_PRICE_TIERS: missing required setting/),
      expect.stringMatching(/^TENANCY_API_KEYS: missing required setting/),
      'TENANCY_MAX_PARALLEL_RUNS: must be an integer from 1 to 64, got "lots"',
      expect.stringMatching(/^TENANCY_DEPLOYMENTS_ORG: missing required setting when TENANCY_RUNNER=deployments/),
      "TENANCY_GIT_REMOTE: missing required setting when TENANCY_RUNNER=deployments (Deployments clones TENANCY_DEPLOYMENTS_REPO_URL, so commits must be pushed there); set it to the working copy's remote for that URL",
    ]));
    // The lifecycle worker starts without a databases file (the quick start's defaults).
    expect(lines.filter((l) => l.startsWith("TENANCY_LIFECYCLE_DATABASES"))).toEqual([]);
  });

  it("TENANCY_WORKER_REGIONS: absent serves every region, a list or none is kept, a region outside the platform is named", () => {
    const base = { STRIPE_WEBHOOK_SECRET: "whsec_x", TENANCY_PRICE_TIERS: "prices.yaml", TENANCY_API_KEYS: "keys.yaml", TENANCY_LIFECYCLE_WORKER: "off" };
    expect(loadConfig({ env: base, cwd: dir, projectDir: PROJECT }).workerRegions).toBeUndefined();
    expect(loadConfig({ env: { ...base, TENANCY_WORKER_REGIONS: "eu-west-1" }, cwd: dir, projectDir: PROJECT }).workerRegions).toEqual(["eu-west-1"]);
    expect(loadConfig({ env: { ...base, TENANCY_WORKER_REGIONS: "none" }, cwd: dir, projectDir: PROJECT }).workerRegions).toEqual([]);
    expect(() => loadConfig({ env: { ...base, TENANCY_WORKER_REGIONS: "eu-west-1,ap-south-1" }, cwd: dir, projectDir: PROJECT })).toThrow(
      "TENANCY_WORKER_REGIONS: ap-south-1 is not a platform region (us-east-1, eu-west-1, or none)",
    );
  });

  it("asks for the lifecycle worker's settings only when it is on, from the file or the environment", () => {
    const base = { STRIPE_WEBHOOK_SECRET: "whsec_x", TENANCY_PRICE_TIERS: "prices.yaml", TENANCY_API_KEYS: "keys.yaml" };
    // Off: no lifecycle settings needed, none loaded.
    const off = loadConfig({ env: { ...base, TENANCY_LIFECYCLE_WORKER: "off" }, cwd: dir, projectDir: PROJECT });
    expect(off.lifecycle).toBeUndefined();
    // No remote unless one is configured: the control plane never pushes by default.
    expect(off.git.remote).toBeUndefined();
    expect(loadConfig({ env: { ...base, TENANCY_LIFECYCLE_WORKER: "off", TENANCY_GIT_REMOTE: "fleet" }, cwd: dir, projectDir: PROJECT }).git.remote).toBe("fleet");
    // On: the databases file is read and checked at start-up; each bad value is named.
    writeFileSync(join(dir, "dbs.json"), JSON.stringify({ "shared-prod-use1-01": "mysql://nope" }));
    mkdirSync(join(dir, "buckets"), { recursive: true });
    let err: unknown;
    try {
      loadConfig({ env: { ...base, TENANCY_LIFECYCLE_DATABASES: "dbs.json", TENANCY_LIFECYCLE_BACKUP_DIR: "no-such-dir", TENANCY_SECRET_RECOVERY_DAYS: "3", TENANCY_LIFECYCLE_WORKER: "maybe" }, cwd: dir, projectDir: PROJECT });
    } catch (e) {
      err = e;
    }
    expect((err as ConfigError).lines).toContain('TENANCY_LIFECYCLE_WORKER: must be on or off, got "maybe"');
    err = undefined;
    try {
      loadConfig({ env: { ...base, TENANCY_LIFECYCLE_DATABASES: "dbs.json", TENANCY_LIFECYCLE_BACKUP_DIR: "no-such-dir", TENANCY_SECRET_RECOVERY_DAYS: "3" }, cwd: dir, projectDir: PROJECT });
    } catch (e) {
      err = e;
    }
    expect((err as ConfigError).lines).toEqual([
      `TENANCY_LIFECYCLE_DATABASES: ${join(dir, "dbs.json")}: shared-prod-use1-01: expected a postgres:// connection string`,
      `TENANCY_LIFECYCLE_BACKUP_DIR: ${join(dir, "no-such-dir")} does not exist; create it or unset the setting`,
      'TENANCY_SECRET_RECOVERY_DAYS: must be an integer from 7 to 30 (the recovery windows Secrets Manager allows), got "3"',
    ]);
    writeFileSync(join(dir, "dbs.json"), JSON.stringify({ "shared-prod-use1-01": "postgres://admin@cell/cell" }));
    writeFileSync(join(dir, "lifecycle.yaml"), "TENANCY_LIFECYCLE_DATABASES: dbs.json\nTENANCY_LIFECYCLE_BACKUP_DIR: buckets\nTENANCY_OFFBOARDING_GRACE_DAYS: 45\nTENANCY_LIFECYCLE_INTERVAL_SECONDS: 5\n");
    const on = loadConfig({ env: { ...base, TENANCY_CONFIG: "lifecycle.yaml", TENANCY_LIFECYCLE_MAX_ATTEMPTS: "3" }, cwd: dir, projectDir: PROJECT });
    expect(on.lifecycle).toEqual({
      databasesFile: join(dir, "dbs.json"),
      backupDir: join(dir, "buckets"),
      intervalSeconds: 5,
      workflows: { ...DEFAULT_LIFECYCLE_CONFIG, graceDays: 45, maxAttempts: 3 },
    });
  });

  it("with TENANCY_LIFECYCLE_AWS on, needs no databases file (connection documents from Secrets Manager) but takes one when given; checks the RDS CA bundle", () => {
    const base = {
      STRIPE_WEBHOOK_SECRET: "whsec_x", TENANCY_PRICE_TIERS: "prices.yaml", TENANCY_API_KEYS: "keys.yaml",
      TENANCY_LIFECYCLE_AWS: "on", TENANCY_LIFECYCLE_BACKUP_KMS_KEY: "alias/tenancy/platform/backups",
    };
    const aws = loadConfig({ env: base, cwd: dir, projectDir: PROJECT });
    expect(aws.lifecycle).toMatchObject({ aws: { backupKmsKey: "alias/tenancy/platform/backups" } });
    expect(aws.lifecycle).not.toHaveProperty("databasesFile");
    expect(aws.lifecycle).not.toHaveProperty("dbCaFile");
    writeFileSync(join(dir, "override.json"), JSON.stringify({ "shared-prod-use1-01": "postgres://admin@cell/cell?sslmode=verify-full" }));
    writeFileSync(join(dir, "rds-ca.pem"), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    const both = loadConfig({ env: { ...base, TENANCY_LIFECYCLE_DATABASES: "override.json", TENANCY_LIFECYCLE_DB_CA_FILE: "rds-ca.pem" }, cwd: dir, projectDir: PROJECT });
    expect(both.lifecycle).toMatchObject({ databasesFile: join(dir, "override.json"), dbCaFile: join(dir, "rds-ca.pem") });
    writeFileSync(join(dir, "not-a-ca.pem"), "hello\n");
    let err: unknown;
    try {
      loadConfig({ env: { ...base, TENANCY_LIFECYCLE_DB_CA_FILE: "no-such.pem" }, cwd: dir, projectDir: PROJECT });
    } catch (e) {
      err = e;
    }
    expect((err as ConfigError).lines).toEqual([
      `TENANCY_LIFECYCLE_DB_CA_FILE: ${join(dir, "no-such.pem")} cannot be read (ENOENT); download the RDS CA bundle (global-bundle.pem) there or unset the setting`,
    ]);
    expect(() => loadConfig({ env: { ...base, TENANCY_LIFECYCLE_DB_CA_FILE: "not-a-ca.pem" }, cwd: dir, projectDir: PROJECT })).toThrow(ConfigError);
    // Off and without the file, the worker still starts (the quick start): no databases known.
    const bare = loadConfig({ env: { ...base, TENANCY_LIFECYCLE_AWS: "off" }, cwd: dir, projectDir: PROJECT });
    expect(bare.lifecycle).toBeDefined();
    expect(bare.lifecycle!.databasesFile).toBeUndefined();
    expect(bare.lifecycle!.aws).toBeUndefined();
  });

  it("reads a config file and lets the environment win", () => {
    writeFileSync(join(dir, "control-plane.yaml"), `STRIPE_WEBHOOK_SECRET: whsec_file\nTENANCY_PRICE_TIERS: prices.yaml\nTENANCY_API_KEYS: keys.yaml\nPORT: 9000\nTENANCY_MAX_PARALLEL_RUNS: 3\nTENANCY_LIFECYCLE_WORKER: off\n`);
    const c = loadConfig({ env: { PORT: "9100" }, cwd: dir, projectDir: PROJECT });
    // Without TENANCY_REPO_DIR: the control plane's own clone of the project, never the project itself.
    expect(c).toMatchObject({
      port: 9100, maxParallelRuns: 3, stripeWebhookSecret: "whsec_file", repoDir: join(dir, ".control-plane", "working-copy"), cloneWorkingCopyFrom: PROJECT,
      dataDir: join(dir, ".control-plane"), runExpireHours: 3,
    });
    const explicit = loadConfig({ env: { PORT: "9100", TENANCY_REPO_DIR: PROJECT }, cwd: dir, projectDir: PROJECT });
    expect(explicit.repoDir).toBe(PROJECT);
    expect(explicit.cloneWorkingCopyFrom).toBeUndefined();
    expect([...c.priceTiers]).toEqual([["price_a", "standard"], ["price_b", "dedicated"]]);
    rmSync(join(dir, "control-plane.yaml"));
  });

  it("documents every setting in docs/control-plane.md", () => {
    const section = readFileSync(join(PROJECT, "docs/control-plane.md"), "utf8");
    const documented = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented).toEqual(SETTINGS.map((s) => s.name));
  });

  it("`npm run control-plane` stops at start-up naming the missing setting", () => {
    const env: Record<string, string> = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root" };
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx/esm")).href;
    const r = spawnSync(process.execPath, ["--import", tsx, join(PROJECT, "automation/main.ts")], { cwd: dir, env, encoding: "utf8", timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^control plane cannot start: STRIPE_WEBHOOK_SECRET: missing required setting.* \(settings: docs\/control-plane.md\)$/m);
    expect(r.stderr).not.toMatch(/\.ts:\d+:\d+/);
  });
});
