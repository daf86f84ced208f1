/**
 * The tenant schema status (GET /api/db-schemas, the console's tenant page) reads the fleet from
 * the control plane's fleet cache (automation/git/fleetCache.ts), not from disk per request: at
 * 1,100 tenants a load costs 1-2 s. Loads are counted, never timed: every call of the model's
 * loadFleet / requireFleet in this process (the cache's own loads included) goes through a counter.
 * After a commit the page shows the fleet as HEAD has it, with exactly one load.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DEFAULT_LIFECYCLE_CONFIG } from "../../automation/lifecycle/config.ts";
import { API_KEY, startHarness, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { makeFixtureRepo } from "./support/repo.ts";

const diskLoads = vi.hoisted(() => ({ n: 0 }));
vi.mock("../../infra/model/fleet.ts", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../infra/model/fleet.ts")>();
  return {
    ...real,
    loadFleet: (...a: Parameters<typeof real.loadFleet>) => {
      diskLoads.n++;
      return real.loadFleet(...a);
    },
    requireFleet: (...a: Parameters<typeof real.requireFleet>) => {
      diskLoads.n++;
      return real.requireFleet(...a);
    },
  };
});

let pg: TestPostgres;
let h: Harness;
let tmp: string;

beforeAll(async () => {
  pg = await startTestPostgres();
  const repo = makeFixtureRepo();
  // MegaCorp's databases, empty (their stacks never ran here): each row says its schema does not exist yet.
  tmp = mkdtempSync(join(tmpdir(), "tenancy-schema-status-"));
  const databasesFile = join(tmp, "databases.json");
  writeFileSync(databasesFile, JSON.stringify({ "dedicated-megacorp-prod": await pg.newDatabase(), "dedicated-megacorp-staging": await pg.newDatabase() }));
  h = await startHarness({
    pg,
    repo,
    config: { lifecycle: { databasesFile, intervalSeconds: 3600, workflows: DEFAULT_LIFECYCLE_CONFIG } },
    start: { runs: false },
  });
}, 60_000);

afterAll(async () => {
  await h?.close();
  await pg?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A console session (the login form's token and cookie, then the session cookie). */
async function session(): Promise<string> {
  const form = await fetch(`${h.baseUrl}/console/login`);
  const cookie = form.headers.getSetCookie().find((c) => c.startsWith("tenancy_console_login="))!.split(";")[0]!;
  const token = /name="_csrf" value="([^"]+)"/.exec(await form.text())![1]!;
  const res = await fetch(`${h.baseUrl}/console/login`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie },
    body: new URLSearchParams({ key: API_KEY, _csrf: token }),
  });
  expect(res.status).toBe(303);
  return res.headers.getSetCookie().find((c) => c.startsWith("tenancy_console="))!.split(";")[0]!;
}

/** The tenant page's schema rows: the stack of each. */
async function schemaRows(cookie: string, tenant: string): Promise<string[]> {
  const res = await fetch(`${h.baseUrl}/console/tenants/${tenant}`, { headers: { cookie } });
  expect(res.status).toBe(200);
  const page = await res.text();
  const section = /<section aria-labelledby="schemas">[\s\S]*?<\/section>/.exec(page)![0];
  return [...section.matchAll(/<tr data-schema-stack="([^"]+)">/g)].map((m) => m[1]!);
}

describe("the tenant page's schema status", () => {
  it("loads no fleet per page once the cache holds HEAD's; after a commit it shows HEAD's fleet, loaded once", async () => {
    const cookie = await session();
    expect(await schemaRows(cookie, "megacorp")).toEqual(["dedicated-megacorp-prod", "dedicated-megacorp-staging"]);
    const [disk, cache] = [diskLoads.n, h.cp.fleet.loads];
    expect(await schemaRows(cookie, "megacorp")).toEqual(["dedicated-megacorp-prod", "dedicated-megacorp-staging"]);
    const status = await h.api("GET", "/api/db-schemas?tenant=megacorp");
    expect((status.json.schemas as { stack: string; error?: string }[]).map((s) => [s.stack, s.error])).toEqual([
      ["dedicated-megacorp-prod", "schema tenant_megacorp does not exist yet (its stack has not run)"],
      ["dedicated-megacorp-staging", "schema tenant_megacorp does not exist yet (its stack has not run)"],
    ]);
    expect({ disk: diskLoads.n - disk, cache: h.cp.fleet.loads - cache }).toEqual({ disk: 0, cache: 0 });

    // MegaCorp leaves staging: its tenant file and the stack file, in one commit.
    const file = join(h.repo.dir, "tenants/megacorp.yaml");
    const text = readFileSync(file, "utf8");
    const without = text.replace("  staging: {}\n", "").replace(/\n {2}staging:\n {4}cidr: 10\.65\.0\.0\/16\n {4}customerVpc: [^\n]+\n/, "\n");
    expect(without).not.toContain("staging");
    writeFileSync(file, without);
    h.repo.git("rm", "--quiet", "stacks/Pulumi.dedicated-megacorp-staging.yaml");
    h.repo.git("commit", "--quiet", "-am", "megacorp leaves staging (test)");
    expect(await schemaRows(cookie, "megacorp")).toEqual(["dedicated-megacorp-prod"]);
    expect({ disk: diskLoads.n - disk, cache: h.cp.fleet.loads - cache }).toEqual({ disk: 1, cache: 1 });
    expect(await schemaRows(cookie, "megacorp")).toEqual(["dedicated-megacorp-prod"]);
    expect({ disk: diskLoads.n - disk, cache: h.cp.fleet.loads - cache }).toEqual({ disk: 1, cache: 1 });
  });
});
