/**
 * tenantctl upgrade | suspend | resume | offboard: the local mode (file edits only, on a copy of
 * the example fleet) and the control-plane mode (DATABASE_URL: a workflow recorded in a live,
 * migrated PostgreSQL, nothing run by tenantctl).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool } from "../../automation/db/database.ts";
import { migrate } from "../../automation/db/migrate.ts";
import { bufferIo } from "../../cli/io.ts";
import { main } from "../../cli/main.ts";
import { requireFleet } from "../../infra/model/fleet.ts";
import { startPostgres, type PgServer } from "../support/postgres.ts";

const PROJECT = join(import.meta.dirname, "..", "..");

function fleetCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), "tenantctl-lifecycle-"));
  cpSync(join(PROJECT, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
  cpSync(join(PROJECT, "tenants"), join(dir, "tenants"), { recursive: true });
  cpSync(join(PROJECT, "stacks"), join(dir, "stacks"), { recursive: true });
  return dir;
}

async function run(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const io = bufferIo();
  const code = await main(args, io);
  return { code, out: io.stdout, err: io.stderr };
}

describe("without DATABASE_URL: the file part only", () => {
  let dir: string;
  let saved: string | undefined;
  beforeAll(() => {
    saved = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    dir = fleetCopy();
  });
  afterAll(() => {
    if (saved !== undefined) process.env.DATABASE_URL = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it("suspend writes the tenant file, validated, and lists the stacks to update without claiming any update", async () => {
    const r = await run(["suspend", "startup-alpha", "--project", dir]);
    expect(r).toEqual({
      code: 0,
      err: [],
      out: [
        "wrote tenants/startup-alpha.yaml (not committed)",
        "stacks to update (tenantctl updated none): shared-prod-use1-01, shared-staging-use1-01",
        "  pulumi up --stack shared-prod-use1-01",
        "  pulumi up --stack shared-staging-use1-01",
      ],
    });
    expect(requireFleet({ projectDir: dir }).tenants.get("startup-alpha")!.tenant.lifecycle).toBe("suspended");
    // Again: nothing to write.
    expect((await run(["suspend", "startup-alpha", "--project", dir])).out[0]).toBe("tenants/startup-alpha.yaml already says suspended; nothing to write");
    expect((await run(["resume", "startup-alpha", "--project", dir])).code).toBe(0);
    expect(requireFleet({ projectDir: dir }).tenants.get("startup-alpha")!.tenant.lifecycle).toBe("active");
  });

  it("offboard records the request and deletes nothing", async () => {
    const before = readFileSync(join(dir, "tenants", "freebie-one.yaml"), "utf8");
    const r = await run(["offboard", "freebie-one", "--grace-days", "45", "--project", dir]);
    expect(r.code).toBe(0);
    const t = requireFleet({ projectDir: dir }).tenants.get("freebie-one")!.tenant;
    expect(t.lifecycle).toBe("offboarding");
    expect(t.offboarding?.graceDays).toBe(45);
    expect(r.out.at(-1)).toMatch(/^nothing is deleted by this command; the control plane's offboarding workflow deletes the data after the grace period \(.*\) once a final backup is recorded$/);
    expect(readFileSync(join(dir, "tenants", "freebie-one.yaml"), "utf8")).toContain(before.split("\n")[0]!);
    expect((await run(["suspend", "freebie-one", "--project", dir]))).toMatchObject({ code: 1, err: ["tenantctl: tenant freebie-one is offboarding; suspension does not apply"] });
  });

  it("upgrade prints step 1's change and writes nothing", async () => {
    const before = readFileSync(join(dir, "tenants", "company-beta.yaml"), "utf8");
    const r = await run(["upgrade", "company-beta", "--to", "dedicated", "--project", dir]);
    expect(r.code).toBe(0);
    expect(r.out.join("\n")).toContain("--- tenants/company-beta.yaml");
    expect(r.out.join("\n")).toContain("migration:\n  phase: provisioning\n  from:\n    prod: use1-02");
    expect(r.out.join("\n")).toContain("--- stacks/Pulumi.dedicated-company-beta-prod.yaml");
    expect(r.out).toContain("stacks step 1 updates: dedicated-company-beta-prod");
    expect(r.out.at(-1)).toMatch(/^nothing was written/);
    expect(readFileSync(join(dir, "tenants", "company-beta.yaml"), "utf8")).toBe(before);
  });

  it("refuses what cannot be done, with the reason, and rejects bad usage", async () => {
    expect(await run(["upgrade", "acme", "--to", "dedicated", "--project", dir])).toMatchObject({ code: 1, err: ["tenantctl: tenant acme is already dedicated"] });
    expect(await run(["upgrade", "acme", "--rollback", "--project", dir])).toMatchObject({ code: 1, err: ["tenantctl: a rollback undoes a workflow: it needs the control plane (set DATABASE_URL)"] });
    expect(await run(["move", "acme", "--rollback", "--project", dir])).toMatchObject({ code: 1, err: ["tenantctl: rolling back a cell move undoes a workflow: it needs the control plane (set DATABASE_URL)"] });
    expect((await run(["move", "acme", "--rollback", "--to", "use1-02", "--project", dir])).code).toBe(2);
    expect((await run(["move", "acme", "--project", dir])).code).toBe(2);
    expect(await run(["upgrade", "nobody", "--to", "dedicated", "--project", dir])).toMatchObject({ code: 1, err: ["tenantctl: tenant nobody does not exist (no tenants/nobody.yaml)"] });
    expect((await run(["upgrade", "company-beta", "--to", "pooled", "--project", dir])).code).toBe(2);
    expect((await run(["upgrade", "company-beta", "--project", dir])).code).toBe(2);
    expect(await run(["offboard", "company-beta", "--grace-days", "soon", "--project", dir])).toMatchObject({ code: 2 });
    expect(await run(["rotate", "company-beta", "--project", dir])).toMatchObject({
      code: 1,
      err: ["tenantctl: a rotation changes a live database password in steps that must resume after a crash: it needs the control plane (set DATABASE_URL)"],
    });
  });
});

describe("with DATABASE_URL: a workflow for the control plane", () => {
  let server: PgServer;
  let url: string;
  let dir: string;
  let pool: pg.Pool;
  beforeAll(async () => {
    server = await startPostgres();
    const admin = await server.createRdsLikeAdmin();
    const db = await server.createDatabase("control", admin);
    url = `postgres://${admin.user}:${encodeURIComponent(admin.password)}@${server.host}:${server.port}/${db}`;
    pool = createPool(url, 2);
    dir = fleetCopy();
  });
  afterAll(async () => {
    delete process.env.DATABASE_URL;
    await pool?.end();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("says so when the control plane has not migrated its database", async () => {
    process.env.DATABASE_URL = url;
    expect(await run(["suspend", "gamma-labs", "--project", dir])).toMatchObject({ code: 1, err: [expect.stringMatching(/has no lifecycle tables; start the control plane once/)] });
  });

  it("records the request, runs nothing, and refuses a second one for the same tenant", async () => {
    await migrate(pool);
    process.env.DATABASE_URL = url;
    const before = readFileSync(join(dir, "tenants", "startup-alpha.yaml"), "utf8");
    // A time without its offset is refused before anything is recorded (exit 2), as a move's --not-before.
    expect(await run(["upgrade", "startup-alpha", "--to", "dedicated", "--cutover-at", "2030-04-01T22:00", "--project", dir])).toMatchObject({
      code: 2,
      err: ['tenantctl: --cutover-at "2030-04-01T22:00" is not a time with its UTC offset (a time without one depends on the zone of the machine reading it); e.g. 2026-04-01T22:00:00Z or 2026-04-02T00:00:00+02:00'],
    });
    const r = await run(["upgrade", "startup-alpha", "--to", "dedicated", "--cutover-at", "2030-04-01T22:00:00Z", "--project", dir]);
    expect(r.code).toBe(0);
    const { rows } = await pool.query<{ id: string; kind: string; state: string; params: unknown }>("SELECT id, kind, state, params FROM lifecycle_workflows");
    expect(rows).toEqual([{
      id: expect.any(String), kind: "upgrade", state: "pending",
      params: { to: "dedicated", previous: { tier: "standard", placement: { prod: "use1-01", staging: "use1-01" } }, cutoverNotBefore: "2030-04-01T22:00:00.000Z" },
    }]);
    expect(r.out).toEqual([
      `recorded upgrade workflow ${rows[0]!.id} for tenant startup-alpha (state pending)`,
      "it runs in the control plane's lifecycle worker, not in tenantctl: no stack has been updated and no data touched yet",
    ]);
    expect(readFileSync(join(dir, "tenants", "startup-alpha.yaml"), "utf8")).toBe(before);
    expect((await pool.query("SELECT 1 FROM lifecycle_steps")).rowCount).toBe(0);

    const again = await run(["suspend", "startup-alpha", "--project", dir]);
    expect(again.code).toBe(1);
    expect(again.err[0]).toMatch(/^tenantctl: tenant startup-alpha already has a workflow under way: upgrade /);
    // A rollback supersedes the upgrade that has not started.
    const rb = await run(["upgrade", "startup-alpha", "--rollback", "--project", dir]);
    expect(rb.code).toBe(0);
    const states = (await pool.query<{ kind: string; state: string }>("SELECT kind, state FROM lifecycle_workflows ORDER BY created_at, kind DESC")).rows;
    expect(states).toEqual([{ kind: "upgrade", state: "cancelled" }, { kind: "rollback", state: "pending" }]);
  });

  it("rotate records a rotation of the environments asked for (all by default), and refuses one the tenant lacks", async () => {
    process.env.DATABASE_URL = url;
    const one = await run(["rotate", "megacorp", "--env", "staging", "--project", dir]);
    expect(one.code).toBe(0);
    const all = await run(["rotate", "company-beta", "--project", dir]);
    expect(all.code).toBe(0);
    const { rows } = await pool.query<{ tenant_id: string; params: unknown; state: string }>("SELECT tenant_id, params, state FROM lifecycle_workflows WHERE kind = 'rotate' ORDER BY tenant_id");
    expect(rows).toEqual([
      { tenant_id: "company-beta", params: { envs: ["prod"] }, state: "pending" },
      { tenant_id: "megacorp", params: { envs: ["staging"] }, state: "pending" },
    ]);
    expect(one.out[0]).toMatch(/^recorded rotate workflow [0-9a-f-]{36} for tenant megacorp \(state pending\)$/);
    expect(await run(["rotate", "gamma-labs", "--project", dir])).toMatchObject({
      code: 1,
      err: ["tenantctl: tenant gamma-labs is suspended: its role has no LOGIN, so a new password could not be verified; resume it first"],
    });
    expect(await run(["rotate", "freebie-two", "--env", "dev", "--project", dir])).toMatchObject({ code: 1, err: ["tenantctl: tenant freebie-two has no environment dev (it has prod)"] });
  });
});
