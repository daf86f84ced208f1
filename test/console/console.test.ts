/**
 * The operator console in a real Chromium (the Debian package, driven by playwright-core) against
 * a control plane on an embedded PostgreSQL with the Pulumi CLI test double (nothing is deployed):
 * login and logout, a refused key, the fleet map, a run started from a tenant page followed live
 * to its end, the tenant page's cost filled in by itself, a failed lifecycle workflow retried, a
 * halted rollout and why, the CSRF token, and axe-core once on each page type. One browser for the
 * file; after the login test the others run at the same time, each in its own page.
 * Screenshots go to test-results/console/.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_LIFECYCLE_CONFIG } from "../../automation/lifecycle/config.ts";
import { loadFleet, requireFleet } from "../../infra/model/fleet.ts";
import { costOfStack, formatUsd } from "../../plan/cost/cost.ts";
import { costStacksOf, tenantCostOf } from "../../plan/cost/tenant.ts";
import { planStacks } from "../../plan/planStacks.ts";
import { runtimeConfigParameterName } from "../../infra/model/naming.ts";
import { runtimeConfigOf } from "../../infra/model/runtimeConfig.ts";
import { makeFixtureRepo, withoutBakeTime } from "../automation/support/repo.ts";
import { API_KEY, startHarness, waitFor, type Harness } from "../automation/support/harness.ts";
import { startTestPostgres, type TestPostgres } from "../automation/support/postgres.ts";
import { launchChromium, screenshot, seriousViolations } from "./support/browser.ts";

const CANARY = "shared-prod-use1-01";
/** The Runs page test's stack (prod-rest ring: the rollout halts before it): each up waits for a file, then 2 s. */
const HELD = "dedicated-delta-health-prod";
let heldGate: string;
// The stack the tenant page's run test starts: its update waits for this file, so the run page is
// always served before the run ends (a quick run had ended before the page loaded, in CI).
const RUN_FROM_PAGE = "shared-prod-use1-02";
let runGate: string;
let pgServer: TestPostgres;
let h: Harness;
let browser: Browser;
/** A context logged in once (beforeAll): the tests after the first run at the same time, each in a page of its own. */
let context: BrowserContext;
let tmp: string;
let rolloutId: string;
const logLines: string[] = [];

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "tenancy-console-"));
  heldGate = join(tmp, "release-held-stack");
  runGate = join(tmp, "release-run-from-page");
  [pgServer, browser] = await Promise.all([startTestPostgres(), launchChromium()]);
  const repo = withoutBakeTime(makeFixtureRepo());
  // The suspension workflow's database check finds no role on this empty database: it fails, and can be retried.
  const databasesFile = join(tmp, "databases.json");
  const cellUrl = await pgServer.newDatabase();
  // MegaCorp's staging database holds its role and empty schema, as its stack creates them: the
  // rollout's run of that stack brings the schema to the template version. Its prod database is
  // empty (that stack never runs here): no schema to read a version from.
  const megacorpStaging = await pgServer.newDatabase();
  await withClient(megacorpStaging, async (c) => {
    await c.query("CREATE ROLE tenant_megacorp NOLOGIN");
    await c.query("CREATE SCHEMA tenant_megacorp AUTHORIZATION tenant_megacorp");
  });
  const megacorpProd = await pgServer.newDatabase();
  writeFileSync(databasesFile, JSON.stringify({ "shared-prod-use1-01": cellUrl, "shared-staging-use1-01": cellUrl, "dedicated-megacorp-staging": megacorpStaging, "dedicated-megacorp-prod": megacorpProd }));
  h = await startHarness({
    pg: pgServer,
    repo,
    logLines,
    fake: { eventDelayMs: 60, failures: { [CANARY]: "the canary's update failed (injected)" }, holdUntil: { [HELD]: heldGate, [RUN_FROM_PAGE]: runGate }, durationMs: { [HELD]: 2000 } },
    config: { lifecycle: { databasesFile, intervalSeconds: 3600, workflows: { ...DEFAULT_LIFECYCLE_CONFIG, maxAttempts: 1, cutoverTimeoutMs: 5_000 } } },
    start: { runs: true },
  });
  // Started now so it has halted at the failing canary by the time its test looks.
  const started = await h.api("POST", "/api/rollouts", { name: "program change", commit: repo.git("rev-parse", "HEAD").trim() });
  expect(started.status).toBe(201);
  rolloutId = (started.json.rollout as { id: string }).id;
  context = await browser.newContext({ baseURL: h.baseUrl, viewport: { width: 1280, height: 800 } });
  // The machine runs many test files at once (load 30+ seen): a page may take far longer than playwright's default 30 s.
  context.setDefaultTimeout(90_000);
  const first = await context.newPage();
  await logIn(first);
  await first.waitForURL("**/console/fleet");
  await first.close();
}, 120_000);

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await h?.close();
  await pgServer?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function logIn(p: Page, key = API_KEY) {
  await p.goto("/console/login");
  await p.getByLabel("API key").fill(key);
  await p.getByRole("button", { name: "Log in" }).click();
}

async function expectAccessible(p: Page, name: string) {
  await screenshot(p, name);
  expect(await seriousViolations(p), `axe-core on ${name}`).toEqual([]);
}

/** The session cookie of a context (the login form's own CSRF cookie is another one). */
const sessionCookies = async (c: BrowserContext) => (await c.cookies()).filter((k) => k.name === "tenancy_console");

/** The console's log lines (login, logout, actions) from the `from`-th log line on. */
const actions = (from = 0) =>
  logLines
    .slice(from)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => typeof l.msg === "string" && l.msg.startsWith("console "));

/**
 * A page of the shared, logged-in context for one test, closed after it. The tests after the first
 * run at the same time (it.concurrent): most of their time is waiting (a run's events, a rollout
 * halting, a cost being priced, a workflow failing), which they spend side by side.
 */
async function withPage(run: (p: Page) => Promise<void>): Promise<void> {
  const p = await context.newPage();
  try {
    await run(p);
  } finally {
    await p.close();
  }
}

/** Concurrent tests do a lot at once on a loaded machine: a generous limit each. */
const CONCURRENT_TIMEOUT_MS = 240_000;

describe("operator console in Chromium", () => {
  it("refuses a wrong key, logs in with a good one into a Secure, HTTP-only, SameSite=Strict session cookie with an expiry, and logs out", async () => {
    // A context of its own: its logout must not end the session the other tests share.
    const own = await browser.newContext({ baseURL: h.baseUrl, viewport: { width: 1280, height: 800 } });
    const page = await own.newPage();
    const from = logLines.length;
    await logIn(page, "tcp_not_a_key_of_this_control_plane");
    await expect.poll(() => page.getByRole("alert").textContent(), { timeout: 20_000 }).toContain("That API key was refused");
    expect(await sessionCookies(own)).toEqual([]);
    await expectAccessible(page, "login-refused");

    await logIn(page);
    await page.waitForURL("**/console/fleet");
    const [cookie] = await sessionCookies(own);
    expect(cookie).toMatchObject({ name: "tenancy_console", httpOnly: true, secure: true, sameSite: "Strict", path: "/" });
    const hours = (cookie!.expires * 1000 - Date.now()) / 3_600_000;
    expect(hours).toBeGreaterThan(7.9);
    expect(hours).toBeLessThanOrEqual(8);
    // The key is in no URL and in no storage the page can read.
    expect(page.url()).not.toContain(API_KEY);
    expect(await page.evaluate("JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie")).toBe("{}{}");

    await page.getByRole("button", { name: "Log out" }).click();
    await page.waitForURL("**/console/login");
    expect(await sessionCookies(own)).toEqual([]);
    // The session is gone on the server too: the old page redirects to the login page.
    await page.goto("/console/fleet");
    expect(new URL(page.url()).pathname).toBe("/console/login");
    expect(actions(from).map((l) => [l.msg, l.by ?? l.reason])).toEqual([
      ["console login refused", "unknown key"],
      ["console login", "test"],
      ["console logout", "test"],
    ]);
    await own.close();
  });

  it.concurrent("shows every example tenant in its cell or as a dedicated stack on the fleet map, and finds one by id", ({ expect }) => withPage(async (page) => {
    await page.goto("/console/fleet");
    const fleet = loadFleet({ projectDir: h.repo.dir }).fleet!;
    let placements = 0;
    for (const { tenant } of fleet.tenants.values()) {
      for (const env of Object.keys(tenant.environments)) {
        placements++;
        const where = tenant.deployment === "pooled" ? `section.cell[data-stack="shared-${env}-${tenant.placement[env]}"]` : `section.dedicated[data-region="${tenant.region}"][data-env="${env}"]`;
        const chip = page.locator(`${where} ul.t-${tenant.tier} a[href="tenants/${tenant.id}"]`);
        expect(await chip.count(), `${tenant.id} in ${env}`).toBe(1);
      }
    }
    expect(placements).toBeGreaterThan(9);
    expect(await page.locator("ul.r a").count()).toBe(placements);
    // One click to a tenant: its link on the map opens its page.
    await page.locator('section.cell a[href="tenants/acme"], section.dedicated a[href="tenants/acme"]').first().click();
    await page.waitForURL("**/console/tenants/acme");
    await page.goBack();
    await expectAccessible(page, "fleet");

    await page.getByLabel("Find a tenant by id or name").fill("acme");
    await page.getByRole("button", { name: "Search" }).click();
    await page.waitForURL("**/console/fleet?q=acme");
    expect(await page.locator("ul.r a").count()).toBe(1);
    expect(await page.locator("ul.r a").getAttribute("href")).toBe("tenants/acme");
  }), CONCURRENT_TIMEOUT_MS);

  it.concurrent("starts a run of one stack from the tenant page, behind a confirmation, and follows its engine events on the run page until it ends; the tenant page fills in its cost by itself", ({ expect }) => withPage(async (page) => {
    // The tenant page in a tab of its own, opened first: its cost is not priced yet, and the page fills it in by itself.
    const tenantTab = await context.newPage();
    await tenantTab.goto("/console/tenants/company-beta");
    expect(await tenantTab.locator("#cost-section").getAttribute("data-cost-state")).toBe("computing");
    expect(await tenantTab.locator("#cost-section").textContent()).toContain("The figure appears here by itself when it is ready");
    await tenantTab.evaluate("window.notReloaded = true");
    // What plan/cost computes for company-beta from the same commit, here in the test (its stacks rendered in a worker process).
    const fleet = requireFleet({ projectDir: h.repo.dir });
    const expected = planStacks(fleet, costStacksOf(fleet, "company-beta"), { fork: true, parallel: 1 }).then((plan) =>
      tenantCostOf(fleet, "company-beta", plan.stacks.map((st) => costOfStack(st, fleet.stacks.get(st.name)!.region))),
    );

    // A stack of the prod-rest ring: the rollout started above halts before it, so no rollout run joins this one.
    await page.goto("/console/tenants/company-beta");
    expect(await page.locator('pre[aria-label="tenants/company-beta.yaml as committed"]').textContent()).toContain("displayName: Company Beta GmbH");
    // Its runtime config document, as infra/model/runtimeConfig.ts computes it for the stack to publish.
    const beta = fleet.tenants.get("company-beta")!.tenant;
    expect(await page.locator('pre[data-env="prod"]').textContent()).toBe(JSON.stringify(runtimeConfigOf(fleet.platform, beta, "prod"), null, 2));
    expect(await page.locator("main").textContent()).toContain(runtimeConfigParameterName(fleet.platform.appName, "prod", "company-beta"));
    await page.getByRole("link", { name: "Run shared-prod-use1-02" }).click();
    await expect.poll(() => page.locator("main").textContent(), { timeout: 20_000 }).toContain("This queues pulumi up of stack shared-prod-use1-02");
    await expectAccessible(page, "confirm-run");
    await page.getByRole("button", { name: "Yes, run a stack" }).click();
    await page.waitForURL("**/console/runs/*");
    // The page was served before the run ended (its update waits for the gate): what follows comes over the event stream.
    expect(["queued", "running"]).toContain((await page.locator("#run-state").textContent())?.trim());
    writeFileSync(runGate, "");
    await page.waitForSelector('body[data-run-ended="succeeded"]', { timeout: 30_000 });
    expect((await page.locator("#run-state").textContent())?.trim()).toBe("succeeded");
    expect(await page.getByRole("link", { name: "Cancel this run" }).count()).toBe(0);
    expect(await page.locator("#resources tr").count()).toBeGreaterThan(0);
    expect(await page.locator("#resources tr td:last-child").allTextContents()).not.toContain("in progress");
    expect(await page.locator("#stream-state").textContent()).toMatch(/^The run ended: succeeded \(\d+ engine event\(s\)\)\.$/);
    await expectAccessible(page, "run");
    const runId = new URL(page.url()).pathname.split("/").pop()!;
    const run = (await h.api("GET", `/api/runs/${runId}`)).json.run as { stack: string; apiKeys: string[]; reasons: string[] };
    expect(run.stack).toBe("shared-prod-use1-02");
    expect(run.apiKeys).toEqual(["test"]);
    expect(run.reasons[0]).toMatch(/^requested via the API \(api key test \(console session [0-9a-f]{12}\)\)$/);
    expect(actions().filter((l) => l.action === "run-stack")).toMatchObject([{ msg: "console action run-stack done", by: "test", action: "run-stack", target: { stack: "shared-prod-use1-02" }, status: 202 }]);
    await page.goto("/console/runs");
    expect(await page.locator(`tr[data-run="${runId}"]`).count()).toBe(1);

    // Meanwhile the tenant tab got its cost per month without a reload: the figure plan/cost gives.
    await tenantTab.waitForSelector('#cost-section[data-cost-state="ready"]', { timeout: 120_000 });
    const want = await expected;
    expect(want.monthlyUsd).toBeGreaterThan(0);
    expect(await tenantTab.evaluate("window.notReloaded")).toBe(true);
    expect(await tenantTab.locator("#cost-section").getAttribute("aria-busy")).toBeNull();
    expect(await tenantTab.locator("#cost-section p.cost strong").textContent()).toBe(formatUsd(want.monthlyUsd));
    expect(await tenantTab.locator("#cost-section tbody tr td:first-child").allTextContents()).toEqual(want.stacks.map((st) => st.stack));
    expect(await tenantTab.locator("#cost-section tbody tr td:last-child").allTextContents()).toEqual(want.stacks.map((st) => formatUsd(st.ownUsd + st.shareUsd)));
    await expectAccessible(tenantTab, "tenant");
    await tenantTab.close();
  }), CONCURRENT_TIMEOUT_MS);

  it.concurrent("updates the Runs page live: a run queued behind a held one appears, starts and finishes, without a reload; a Refresh link, and a refresh without scripts", ({ expect }) => withPage(async (page) => {
    await page.goto("/console/runs");
    // Every state each run's row shows, in order, as the page changes (installed once: a reload would lose it).
    await page.evaluate(`window.notReloaded = true; window.seen = {};
      new MutationObserver(() => {
        for (const tr of document.querySelectorAll("#runs-live tr[data-run]")) {
          const states = (window.seen[tr.dataset.run] ??= []);
          const state = tr.querySelector(".badge").textContent;
          if (states.at(-1) !== state) states.push(state);
        }
      }).observe(document.getElementById("runs-live"), { childList: true, subtree: true });`);
    // The page opened its stream and read the tables once.
    await page.waitForSelector("body[data-runs-refreshed]");
    const enqueue = async () => ((await h.api("POST", `/api/stacks/${HELD}/runs`)).json.run as { id: string }).id;
    const first = await enqueue();
    // The state a table of the page shows for a run now (null: not in that table).
    const stateIn = (table: "queue" | "recent", id: string) =>
      page.evaluate<string | null>(`document.querySelector('section[aria-labelledby="${table}"] tr[data-run="${id}"] .badge')?.textContent ?? null`);
    // The other tests' runs may hold the run workers a while: generous bounds.
    await expect.poll(() => stateIn("queue", first), { timeout: 120_000 }).toBe("running");
    // Queued behind the first, which waits for the test.
    const second = await enqueue();
    await expect.poll(() => stateIn("queue", second), { timeout: 120_000 }).toBe("queued");
    await expectAccessible(page, "runs");
    writeFileSync(heldGate, "");
    await expect.poll(() => stateIn("recent", second), { timeout: 120_000 }).toBe("succeeded");
    expect(await stateIn("recent", first)).toBe("succeeded");
    expect([await stateIn("queue", first), await stateIn("queue", second)]).toEqual([null, null]);
    // The second run's row went through every state, the page never reloaded.
    expect(await page.evaluate(`window.seen[${JSON.stringify(second)}]`)).toEqual(["queued", "running", "succeeded"]);
    expect(await page.evaluate("window.notReloaded")).toBe(true);
    expect(await page.locator("#runs-stream").textContent()).toMatch(/^Following the queue live: updated \d\d:\d\d:\d\d UTC, \d+ run change\(s\) since the page opened\.$/);
    // Without scripts: a Refresh link, and the page reloads itself.
    expect(await page.getByRole("link", { name: "Refresh" }).getAttribute("href")).toBe("/console/runs");
    expect(await page.content()).toContain('<noscript><meta http-equiv="refresh" content="10"></noscript>');
  }), CONCURRENT_TIMEOUT_MS);

  it.concurrent("shows on the tenant page its schemas' migration versions and a migration failed for one of them, and the backups its lifecycle workflows recorded", ({ expect }) => withPage(async (page) => {
    // A cancelled offboarding of MegaCorp that had recorded its final backups (written as the engine writes them).
    const wf = "0c0ffee0-0000-4000-8000-000000000001";
    await h.cp.db.pool.query(
      `INSERT INTO lifecycle_workflows (id, kind, tenant_id, state, note, requested_by, created_at, updated_at, finished_at)
       VALUES ($1, 'offboard', 'megacorp', 'cancelled', 'superseded by a resume (test fixture)', 'console.test', now() - interval '2 hours', now() - interval '1 hour', now() - interval '1 hour')`,
      [wf],
    );
    await h.cp.db.pool.query(
      `INSERT INTO lifecycle_backups (workflow_id, tenant_id, env, kind, location, bytes, sha256, recorded_at) VALUES
         ($1, 'megacorp', 'staging', 'object-copy', 's3://tenancy-staging-use1/backups/tenants/megacorp/0c0ffee0/objects/', 1536, 'ab', '2026-12-01T10:00:00Z'),
         ($1, 'megacorp', 'prod', 'rds-snapshot', 'rds:us-east-1:snapshot:tenancy-megacorp-prod-final', NULL, NULL, '2026-12-01T10:05:00Z')`,
      [wf],
    );
    const backups = (await h.api("GET", "/api/tenants/megacorp")).json.backups as { kind: string; env: string; bytes: number | null; workflowId: string }[];
    expect(backups.map((b) => [b.kind, b.env, b.bytes, b.workflowId])).toEqual([["rds-snapshot", "prod", null, wf], ["object-copy", "staging", 1536, wf]]);

    // The rollout's run of dedicated-megacorp-staging brought the schema to the template version (3).
    // A rollback to 2 of MegaCorp's schemas then takes staging back (its ring goes first) and fails at
    // prod, whose database has no schema yet (its stack never ran), and halts.
    await waitFor("the staging schema at the template version", async () => {
      const st = (await h.api("GET", "/api/db-schemas?tenant=megacorp")).json as { schemas: { stack: string; version: number | null }[] };
      return st.schemas.find((x) => x.stack === "dedicated-megacorp-staging")?.version === 3;
    }, 120_000);
    const started = await h.api("POST", "/api/db-migrations", { action: "rollback", tenant: "megacorp", to: 2 });
    expect(started.status).toBe(201);
    const migrationId = (started.json.migration as { id: string }).id;
    type View = { migration: { state: string; haltReason: string }; waves: { schemas: { stack: string; state: string; error: string | null }[] }[] };
    const halted = await waitFor("the rollback to halt", async () => {
      const v = (await h.api("GET", `/api/db-migrations/${migrationId}`)).json as unknown as View;
      return v.migration.state === "halted" ? v : undefined;
    }, 120_000);
    const record = (stack: string) => halted.waves.flatMap((w) => w.schemas).find((x) => x.stack === stack)!;
    expect(record("dedicated-megacorp-prod")).toMatchObject({ state: "failed", error: expect.stringContaining("schema tenant_megacorp does not exist") });
    expect(record("dedicated-megacorp-staging")).toMatchObject({ state: "succeeded", error: null });

    await page.goto("/console/tenants/megacorp");
    const row = (stack: string) => page.locator(`section[aria-labelledby="schemas"] tr[data-schema-stack="${stack}"] td`);
    const id8 = migrationId.slice(0, 8);
    expect(await row("dedicated-megacorp-staging").allTextContents()).toEqual([
      "dedicated-megacorp-staging",
      "tenant_megacorp",
      "2 behind the template version 3",
      `rollback to 2 halted ${id8}: this schema succeeded (halted: ${halted.migration.haltReason})`,
    ]);
    expect(await row("dedicated-megacorp-prod").allTextContents()).toEqual([
      "dedicated-megacorp-prod",
      "tenant_megacorp",
      "not read: schema tenant_megacorp does not exist yet (its stack has not run)",
      `rollback to 2 halted ${id8}: this schema failed ${record("dedicated-megacorp-prod").error}`,
    ]);
    const shown = page.locator('section[aria-labelledby="backups"] tbody tr');
    expect(await shown.nth(0).locator("td").allTextContents()).toEqual(["RDS snapshot", "prod", "2026-12-01 10:05:00 UTC", "rds:us-east-1:snapshot:tenancy-megacorp-prod-final", "not recorded", "offboard 0c0ffee0"]);
    expect(await shown.nth(1).locator("td").allTextContents()).toEqual(["object copy", "staging", "2026-12-01 10:00:00 UTC", "s3://tenancy-staging-use1/backups/tenants/megacorp/0c0ffee0/objects/", "1.5 KiB (1,536 bytes)", "offboard 0c0ffee0"]);
    expect(await shown.nth(0).getByRole("link").getAttribute("href")).toBe(`/console/workflows/${wf}`);
    // The data sections (schemas, workflows, backups) at the top of the viewport.
    await page.evaluate('document.getElementById("schemas").scrollIntoView()');
    await screenshot(page, "tenant-data");
    // The tenant page type's axe check is the other tenant test's; these sections are checked here.
    expect(await seriousViolations(page), "axe-core on the tenant page with schemas and backups").toEqual([]);
  }), CONCURRENT_TIMEOUT_MS);

  it.concurrent("retries a failed lifecycle workflow from its page", ({ expect }) => withPage(async (page) => {
    const service = h.cp.lifecycle!.service;
    const wf = await service.requestSuspend("startup-alpha", { requestedBy: "console.test" });
    expect(await service.engine.run(wf.id)).toMatchObject({ id: wf.id, state: "failed" });
    await page.goto("/console/tenants/startup-alpha");
    await page.locator(`[data-workflow="${wf.id}"]`).getByRole("link", { name: "Retry this workflow" }).click();
    await expect.poll(() => page.locator("main").textContent(), { timeout: 20_000 }).toContain("Retrying it starts it again at that step");
    await page.getByRole("button", { name: "Yes, retry a workflow" }).click();
    await page.waitForURL(`**/console/workflows/${wf.id}`);
    const shown = (await h.api("GET", `/api/workflows/${wf.id}`)).json.workflow as { state: string; retriedByApiKey: string };
    expect(shown.state).not.toBe("failed");
    expect(shown.retriedByApiKey).toBe("test");
    expect(await page.locator("main").textContent()).toContain("last retried by key test");
    await expectAccessible(page, "workflow");
    expect(actions().filter((l) => l.action === "retry-workflow")).toMatchObject([{ msg: "console action retry-workflow done", by: "test", target: { id: wf.id } }]);
  }), CONCURRENT_TIMEOUT_MS);

  it.concurrent("shows a halted rollout and why, and pauses nothing without confirmation", ({ expect }) => withPage(async (page) => {
    const id = rolloutId;
    await waitFor("the rollout to halt", async () => ((await h.api("GET", `/api/rollouts/${id}`)).json.rollout as { state: string }).state === "halted", 60_000);
    await page.goto("/console/rollouts");
    await page.getByRole("link", { name: "program change" }).click();
    const why = await page.locator("section.halted").textContent();
    expect(why).toContain(`${CANARY}: `);
    expect(why).toContain("the canary's update failed (injected)");
    await expectAccessible(page, "rollout");
    await page.getByRole("link", { name: "Abort" }).click();
    await expect.poll(() => page.locator("main").textContent(), { timeout: 20_000 }).toContain("Aborting ends it for good");
    await page.getByRole("button", { name: "Yes, abort a rollout" }).click();
    await page.waitForURL(`**/console/rollouts/${id}`);
    expect(((await h.api("GET", `/api/rollouts/${id}`)).json.rollout as { state: string }).state).toBe("aborted");
    await page.goto("/console/drift");
    await expectAccessible(page, "drift");
  }), CONCURRENT_TIMEOUT_MS);

  it.concurrent("fits a phone's screen and can be used with the keyboard", ({ expect }) => withPage(async (page) => {
    const phone = await browser.newContext({ baseURL: h.baseUrl, viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    try {
      const p = await phone.newPage();
      await logIn(p);
      await p.waitForURL("**/console/fleet");
      expect(await p.evaluate("document.documentElement.scrollWidth <= window.innerWidth")).toBe(true);
      // axe-core checked the fleet page already (one check per page type); the phone's is its layout.
      await screenshot(p, "fleet-phone");
    } finally {
      await phone.close();
    }
    // Keyboard: the first Tab reaches the skip link, which moves focus to the page's content.
    await page.goto("/console/runs");
    await page.keyboard.press("Tab");
    expect(await page.evaluate("document.activeElement.textContent")).toBe("Skip to content");
    await page.keyboard.press("Enter");
    expect(await page.evaluate("document.activeElement.id")).toBe("main");
  }), CONCURRENT_TIMEOUT_MS);

  it.concurrent("refuses a login form posted from another site, even with a valid key and a token of the attacker's own", async ({ expect }) => {
    // The attacker's site (localhost is another site than 127.0.0.1) got a token of its own from the login page.
    const own = await fetch(`${h.baseUrl}/console/login`);
    const token = /name="_csrf" value="([^"]+)"/.exec(await own.text())![1]!;
    const attacker = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" }).end(
        `<!doctype html><title>a prize</title><form method="post" action="${h.baseUrl}/console/login"><input name="key" value="${API_KEY}"><input name="_csrf" value="${token}"></form><script>document.forms[0].submit()</script>`,
      );
    });
    await new Promise<void>((r) => attacker.listen(0, "localhost", r));
    const fresh = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const p = await fresh.newPage();
      // The victim had the login page open (it holds a login cookie of its own).
      await p.goto(`${h.baseUrl}/console/login`);
      const posted = p.waitForResponse((r) => r.url() === `${h.baseUrl}/console/login` && r.request().method() === "POST");
      await p.goto(`http://localhost:${(attacker.address() as AddressInfo).port}/`);
      const res = await posted;
      expect(res.status()).toBe(403);
      await p.waitForURL(`${h.baseUrl}/console/login`);
      expect(await p.getByRole("alert").textContent()).toContain("This login did not come from this console's login form");
      expect((await fresh.cookies()).filter((c) => c.name === "tenancy_console")).toEqual([]);
      expect(logLines.some((l) => l.includes("console login without the login form's CSRF token refused"))).toBe(true);
    } finally {
      await fresh.close();
      await new Promise<void>((r) => attacker.close(() => r()));
    }
  }, CONCURRENT_TIMEOUT_MS);

  it.concurrent("refuses an action without the session's CSRF token, in the console and in the API", ({ expect }) => withPage(async (page) => {
    // Runs of this stack only: the other tests start runs at the same time.
    const acmeRuns = async () => ((await h.api("GET", "/api/runs?limit=500")).json.runs as { stack: string }[]).filter((r) => r.stack === "dedicated-acme-prod").length;
    const count = await acmeRuns();
    const form = await page.request.post("/console/stacks/dedicated-acme-prod/run", { form: { _csrf: "not-the-token" } });
    expect(form.status()).toBe(403);
    expect(await form.text()).toContain("did not carry the session's CSRF token");
    const api = await page.request.post("/api/stacks/dedicated-acme-prod/runs");
    expect(api.status()).toBe(403);
    expect(((await api.json()) as { error: { message: string } }).error.message).toMatch(/needs the session's CSRF token in the x-csrf-token header/);
    // Reads need none; the cookie alone authenticates them.
    expect((await page.request.get("/api/fleet")).status()).toBe(200);
    expect(await acmeRuns()).toBe(count);
  }), CONCURRENT_TIMEOUT_MS);
});
