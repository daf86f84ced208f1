/**
 * Tenant schema migrations end to end on a live PostgreSQL: a control plane (harness: real
 * database, queues, git writer, run workers, HTTP server; only the Pulumi CLI is the test double)
 * whose tenant databases are one database per cell and dedicated stack of the example fleet, each
 * tenant's role and empty schema provisioned as its stack would. A stack run brings its new
 * tenant schemas to the template version; the real tenantctl binary (a child process) migrates
 * the fleet through the HTTP API to a new version and reads the status back.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_LIFECYCLE_CONFIG } from "../../automation/lifecycle/config.ts";
import { requireFleet, tenantsOfStack } from "../../infra/model/fleet.ts";
import { pgTenantIdent } from "../../infra/model/naming.ts";
import { API_KEY, startHarness, waitFor, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { makeFixtureRepo, withoutBakeTime, type FixtureRepo } from "./support/repo.ts";

const ROOT = join(import.meta.dirname, "..", "..");
let pgs: TestPostgres;
let h: Harness;
let repo: FixtureRepo;
let tmp: string;
/** stack -> connection string of its database (the server's superuser: the test reads every schema). */
const urls = new Map<string, string>();
const roles = new Set<string>();

async function withDb<T>(stack: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: urls.get(stack)! });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function versionOf(stack: string, tenant: string): Promise<number> {
  return withDb(stack, async (c) => {
    const s = pgTenantIdent(tenant);
    const exists = (await c.query("SELECT to_regclass($1) AS r", [`${s}.schema_migrations`])).rows[0]!.r !== null;
    if (!exists) return 0;
    return Number((await c.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${s}.schema_migrations`)).rows[0]!.v ?? 0);
  });
}

/** tenantctl as a user runs it: the repository's bin/tenantctl.mjs in its own node process. */
function tenantctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, "bin", "tenantctl.mjs"), ...args],
      { cwd: tmp, env: { ...process.env, TENANCY_URL: h.baseUrl, TENANCY_API_KEY: API_KEY, TENANTCTL_FROM_SOURCE: "1", NO_COLOR: "1" }, timeout: 120_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

async function runStack(stack: string): Promise<{ state: string; error: string | null; output: Record<string, unknown> | null }> {
  const queued = await h.api("POST", `/api/stacks/${stack}/runs`);
  expect(queued.status).toBe(202);
  const id = (queued.json.run as { id: string }).id;
  return waitFor(`run of ${stack}`, async () => {
    const r = (await h.api("GET", `/api/runs/${id}`)).json.run as { state: string; error: string | null; output: Record<string, unknown> | null };
    return r.state === "succeeded" || r.state === "failed" ? r : undefined;
  }, 60_000);
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "tenancy-schema-e2e-"));
  pgs = await startTestPostgres();
  repo = withoutBakeTime(makeFixtureRepo());
  const fleet = requireFleet({ projectDir: repo.dir });
  for (const [stack, f] of fleet.stacks) {
    if (f.ref.kind === "platform") continue;
    urls.set(stack, await pgs.newDatabase());
    await withDb(stack, async (c) => {
      for (const t of tenantsOfStack(fleet, stack)) {
        const ident = pgTenantIdent(t.id);
        if (!roles.has(ident)) {
          await c.query(`DROP ROLE IF EXISTS ${ident}`);
          await c.query(`CREATE ROLE ${ident} NOLOGIN`);
          roles.add(ident);
        }
        // What the stack creates: the tenant's empty schema, owned by its role.
        await c.query(`CREATE SCHEMA ${ident} AUTHORIZATION ${ident}`);
      }
    });
  }
  const databasesFile = join(tmp, "databases.json");
  writeFileSync(databasesFile, JSON.stringify(Object.fromEntries(urls)));
  h = await startHarness({
    pg: pgs,
    repo,
    config: { lifecycle: { databasesFile, intervalSeconds: 3600, workflows: { ...DEFAULT_LIFECYCLE_CONFIG, maxAttempts: 1 } } },
    start: { runs: true },
  });
}, 120_000);

afterAll(async () => {
  await h?.close();
  for (const stack of urls.keys()) {
    await withDb(stack, async (c) => {
      for (const ident of roles) await c.query(`DROP SCHEMA IF EXISTS ${ident} CASCADE`);
    }).catch(() => undefined);
  }
  if (urls.size > 0) {
    await withDb([...urls.keys()][0]!, async (c) => {
      for (const ident of roles) await c.query(`DROP ROLE IF EXISTS ${ident}`);
    }).catch(() => undefined);
  }
  await pgs?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("a stack's run brings its new tenant schemas to the template version", () => {
  it("once: the run's output lists them, the next run finds them done", async () => {
    const first = await runStack("shared-prod-use1-01");
    expect([first.state, first.error]).toEqual(["succeeded", null]);
    expect(first.output!.schemas).toEqual({
      templateVersion: 3,
      alreadyDone: 0,
      inMotion: [],
      schemas: [
        { tenant: "freebie-one", schema: "tenant_freebie_one", state: "succeeded", outcome: "migrated", from: 0, to: 3, versions: [1, 2, 3] },
        { tenant: "startup-alpha", schema: "tenant_startup_alpha", state: "succeeded", outcome: "migrated", from: 0, to: 3, versions: [1, 2, 3] },
      ],
    });
    expect(await versionOf("shared-prod-use1-01", "freebie-one")).toBe(3);
    expect(await versionOf("shared-prod-use1-01", "startup-alpha")).toBe(3);
    // A stack nobody ran yet is still at 0 (negative control).
    expect(await versionOf("shared-prod-euw1-01", "bigcorp")).toBe(0);
    const second = await runStack("shared-prod-use1-01");
    expect([second.state, second.output!.schemas]).toEqual(["succeeded", { templateVersion: 3, alreadyDone: 2, inMotion: [], schemas: [] }]);
  });

  it("a schema it cannot migrate fails the run naming it, and the next run after the fix does it", async () => {
    await withDb("shared-prod-use1-02", (c) => c.query("ALTER SCHEMA tenant_company_beta OWNER TO CURRENT_USER"));
    const failed = await runStack("shared-prod-use1-02");
    expect(failed.state).toBe("failed");
    expect(failed.error).toMatch(/^the stack is up, but 1 new tenant schema\(s\) could not be brought to version 3: tenant_company_beta: schema tenant_company_beta is owned by \w+, not by the tenant's role tenant_company_beta/);
    expect(await versionOf("shared-prod-use1-02", "gamma-labs")).toBe(3);
    await withDb("shared-prod-use1-02", (c) => c.query("ALTER SCHEMA tenant_company_beta OWNER TO tenant_company_beta"));
    const fixed = await runStack("shared-prod-use1-02");
    expect(fixed.state).toBe("succeeded");
    expect((fixed.output!.schemas as { alreadyDone: number; schemas: { tenant: string; outcome: string }[] }).schemas.map((s) => [s.tenant, s.outcome])).toEqual([["company-beta", "migrated"]]);
    const { rows } = await h.cp.db.pool.query<{ tenant: string; state: string; attempts: number }>(
      "SELECT tenant, state, attempts FROM tenant_schema_inits WHERE stack = 'shared-prod-use1-02' ORDER BY tenant",
    );
    expect(rows).toEqual([
      { tenant: "company-beta", state: "succeeded", attempts: 2 },
      { tenant: "gamma-labs", state: "succeeded", attempts: 1 },
    ]);
  });
});

describe("tenantctl db migrate -> HTTP API -> control plane -> tenant databases", () => {
  it("moves every schema of the fleet through the rings to the template version, then to a new migration, and reports each", async () => {
    const before = await tenantctl(["db", "status", "--json"]);
    const status0 = JSON.parse(before.stdout) as { schemas: { stack: string; tenant: string; version: number; outdated: boolean }[] };
    expect(status0.schemas.filter((s) => s.outdated).map((s) => `${s.stack}/${s.tenant}`).sort()).toEqual(
      [...urls.keys()].flatMap((stack) => tenantsOfStack(requireFleet({ projectDir: repo.dir }), stack).map((t) => `${stack}/${t.id}`)).filter((k) => !k.startsWith("shared-prod-use1-0")).sort(),
    );

    const dry = await tenantctl(["db", "migrate", "--dry-run"]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("dry run: migrate to 3; nothing was changed");
    expect(dry.stdout).toMatch(/dedicated-acme-prod\s+acme\s+0\s+1, 2, 3/);
    expect(await versionOf("dedicated-acme-prod", "acme")).toBe(0);

    const migrated = await tenantctl(["db", "migrate", "--follow"]);
    expect([migrated.code, migrated.stderr.includes("Error")]).toEqual([0, false]);
    expect(migrated.stdout).toMatch(/schema migration [0-9a-f-]{36} \(migrate to 3\): succeeded/);
    for (const stack of urls.keys()) {
      for (const t of tenantsOfStack(requireFleet({ projectDir: repo.dir }), stack)) expect([stack, t.id, await versionOf(stack, t.id)]).toEqual([stack, t.id, 3]);
    }

    // A release: migration 0004 and the template version raised, merged into the fleet repository.
    writeFileSync(join(repo.dir, "tenant-migrations/0004_add_account_locale.up.sql"), "-- Adds a locale to accounts.\nALTER TABLE accounts ADD COLUMN locale text NOT NULL DEFAULT 'en';\n");
    writeFileSync(join(repo.dir, "tenant-migrations/0004_add_account_locale.down.sql"), "-- Undoes 0004.\nALTER TABLE accounts DROP COLUMN locale;\n");
    writeFileSync(join(repo.dir, "Pulumi.yaml"), readFileSync(join(repo.dir, "Pulumi.yaml"), "utf8").replace("templateVersion: 3", "templateVersion: 4"));
    repo.git("add", "--all");
    repo.git("commit", "--quiet", "-m", "migration 0004");
    const release = await tenantctl(["db", "migrate", "--follow"]);
    expect(release.code).toBe(0);
    expect(release.stdout).toMatch(/\(migrate to 4\): succeeded/);
    const status = JSON.parse((await tenantctl(["db", "status", "--json"])).stdout) as { templateVersion: number; schemas: { version: number; outdated: boolean; lastError: string | null }[] };
    expect(status.templateVersion).toBe(4);
    expect(status.schemas.map((s) => [s.version, s.outdated, s.lastError])).toEqual(status.schemas.map(() => [4, false, null]));
    expect(await withDb("dedicated-acme-prod", async (c) => (await c.query("SELECT column_name FROM information_schema.columns WHERE table_schema = 'tenant_acme' AND table_name = 'accounts' AND column_name = 'locale'")).rowCount)).toBe(1);

    const text = await tenantctl(["db", "status"]);
    expect([text.code, text.stdout.trim().split("\n").at(-1)]).toEqual([0, `${status.schemas.length} schemas: 0 outdated, 0 failed or unreadable`]);
  });
});
