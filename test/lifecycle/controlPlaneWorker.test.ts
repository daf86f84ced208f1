/**
 * The lifecycle worker inside a started control plane: a workflow recorded through the operator
 * path (`tenantctl suspend|offboard` with DATABASE_URL) is picked up by the control plane's
 * LifecycleWorker and run on the control plane's own modules: GitWriter (real git), RunStore and
 * run workers (pg-boss on live PostgreSQL) driving the Automation API with the Pulumi CLI test
 * double, and the databases JSON file pointing at a live PostgreSQL database.
 *
 * What is not real: no Pulumi program runs (the double records commands and answers), so no stack
 * changes any database. The tenant roles the cell stacks would manage are created here by the
 * test, and where a stack update would revoke LOGIN the test does it itself, after showing that
 * the workflow refuses to call the suspension done while the role can still log in.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool } from "../../automation/db/database.ts";
import { DEFAULT_LIFECYCLE_CONFIG } from "../../automation/lifecycle/config.ts";
import type { WorkflowRecord } from "../../automation/lifecycle/engine/engine.ts";
import { bufferIo } from "../../cli/io.ts";
import { main } from "../../cli/main.ts";
import { pgTenantIdent } from "../../infra/model/naming.ts";
import { commandLog } from "../automation/support/fakePulumi.ts";
import { startHarness, waitFor, type Harness } from "../automation/support/harness.ts";
import { startTestPostgres, type TestPostgres } from "../automation/support/postgres.ts";

let pgs: TestPostgres;
let h: Harness;
let tmp: string;
let tenantDb: pg.Client;
const roles = [pgTenantIdent("startup-alpha"), pgTenantIdent("freebie-one")];

async function tenantctl(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const saved = process.env.DATABASE_URL;
  process.env.DATABASE_URL = h.config.databaseUrl!;
  try {
    const io = bufferIo();
    const code = await main([...args, "--project", h.repo.dir], io);
    return { code, out: io.stdout, err: io.stderr };
  } finally {
    if (saved === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = saved;
  }
}

function workflowIdOf(out: string[]): string {
  const m = /^recorded \w+ workflow ([0-9a-f-]{36}) /.exec(out[0] ?? "");
  if (!m) throw new Error(`tenantctl did not record a workflow: ${out.join("\n")}`);
  return m[1]!;
}

async function workflow(id: string): Promise<WorkflowRecord> {
  return (await h.cp.lifecycle!.service.engine.get(id))!;
}

async function canLogin(role: string): Promise<boolean | undefined> {
  const { rows } = await tenantDb.query<{ login: boolean }>("SELECT rolcanlogin AS login FROM pg_roles WHERE rolname = $1", [role]);
  return rows[0]?.login;
}

beforeAll(async () => {
  pgs = await startTestPostgres();
  tmp = mkdtempSync(join(tmpdir(), "tenancy-cp-lifecycle-"));
  // The "cell database" of both use1-01 stacks: a live database the workflow connects to.
  const cellUrl = await pgs.newDatabase();
  tenantDb = new pg.Client({ connectionString: cellUrl });
  await tenantDb.connect();
  for (const role of roles) {
    await tenantDb.query(`DROP SCHEMA IF EXISTS ${role} CASCADE`);
    await tenantDb.query(`DROP ROLE IF EXISTS ${role}`);
    // What the cell stacks create for an active tenant (no Pulumi program runs here).
    await tenantDb.query(`CREATE ROLE ${role} LOGIN`);
  }
  await tenantDb.query(`CREATE SCHEMA ${roles[1]} AUTHORIZATION ${roles[1]}`);
  await tenantDb.query(`CREATE TABLE ${roles[1]}.notes (id int PRIMARY KEY, body text)`);
  await tenantDb.query(`INSERT INTO ${roles[1]}.notes VALUES (1, 'kept until the final dump')`);
  const databasesFile = join(tmp, "databases.json");
  writeFileSync(databasesFile, JSON.stringify({ "shared-prod-use1-01": cellUrl, "shared-staging-use1-01": cellUrl }));
  h = await startHarness({
    pg: pgs,
    // One attempt per step: a failure shows at once as `failed` instead of a retry a minute later.
    config: { lifecycle: { databasesFile, intervalSeconds: 0.2, workflows: { ...DEFAULT_LIFECYCLE_CONFIG, maxAttempts: 1, cutoverTimeoutMs: 5_000 } } },
    start: { runs: true, lifecycle: true },
  });
});

afterAll(async () => {
  await h?.close();
  if (tenantDb) {
    for (const role of roles) {
      await tenantDb.query(`DROP SCHEMA IF EXISTS ${role} CASCADE`).catch(() => undefined);
      await tenantDb.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    }
    await tenantDb.end();
  }
  await pgs?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("the control plane runs the workflows tenantctl records", () => {
  it("suspends a tenant: commit on main, a run of each of its stacks through the CLI double, LOGIN checked in its database", async () => {
    expect(h.cp.lifecycle).toBeDefined();
    const headBefore = h.repo.log("main")[0]!.sha;
    const r = await tenantctl(["suspend", "startup-alpha"]);
    expect(r.code).toBe(0);
    const id = workflowIdOf(r.out);

    // Nothing changed the role (no Pulumi program ran), so the workflow must not call it done.
    const failed = await waitFor("the suspension to stop at the LOGIN check", async () => {
      const wf = await workflow(id);
      return wf.state === "failed" ? wf : undefined;
    });
    expect(failed.currentStep).toBe("suspend.stacks");
    expect(failed.lastError).toBe(`after the update of shared-prod-use1-01, role ${roles[0]} has LOGIN true, expected LOGIN false; check the stack's last run`);

    // The file step went through the control plane's GitWriter: one commit on main citing the workflow.
    const log = h.repo.log("main");
    const commits = log.slice(0, log.findIndex((c) => c.sha === headBefore));
    expect(commits.map((c) => c.subject)).toEqual(["tenants: suspend startup-alpha"]);
    expect(commits[0]!.body).toContain(`Workflow: ${id}`);
    expect(h.repo.show("main", "tenants/startup-alpha.yaml")).toMatch(/^lifecycle: suspended$/m);

    // Each of the tenant's stacks got a run through the run queue, which ran `pulumi up` on the double.
    const runs = await h.cp.runs.list({ stacks: ["shared-prod-use1-01", "shared-staging-use1-01"] });
    const byWorkflow = runs.filter((run) => run.reasons.some((reason) => reason.includes(`lifecycle workflow ${id}`)));
    expect(byWorkflow.map((run) => [run.stack, run.operation, run.state]).sort()).toEqual([
      ["shared-prod-use1-01", "up", "succeeded"],
      ["shared-staging-use1-01", "up", "succeeded"],
    ]);
    const ups = commandLog(h.stateDir).filter((c) => c.args[0] === "up").map((c) => c.args[c.args.indexOf("--stack") + 1]);
    expect(ups).toEqual(expect.arrayContaining(["shared-prod-use1-01", "shared-staging-use1-01"]));

    // What the cell stack's program would do for a suspended tenant, done by hand; then a person
    // retries the workflow and the running worker finishes it.
    await tenantDb.query(`ALTER ROLE ${roles[0]} NOLOGIN`);
    await h.cp.lifecycle!.service.engine.retry(id);
    const finished = await waitFor("the suspension to succeed", async () => {
      const wf = await workflow(id);
      return wf.state === "succeeded" ? wf : undefined;
    });
    expect(finished.lastError).toBeNull();
    const steps = await h.cp.lifecycle!.service.engine.steps(id);
    expect(steps.map((s) => s.step)).toEqual(["suspend.files", "suspend.stacks"]);
    const stackRuns = steps[1]!.output.runs as string[];
    expect(stackRuns).toHaveLength(2);
    for (const runId of stackRuns) expect(await h.cp.runs.get(runId)).toMatchObject({ state: "succeeded", operation: "up" });
    expect(await canLogin(roles[0]!)).toBe(false);
  });

  it("fails an offboarding at its preflight, before any change, naming the missing S3 and Secrets Manager adapters and settings", async () => {
    const headBefore = h.repo.log("main")[0]!.sha;
    const r = await tenantctl(["offboard", "freebie-one", "--grace-days", "0"]);
    expect(r.code).toBe(0);
    const id = workflowIdOf(r.out);
    const failed = await waitFor("the offboarding to fail at its preflight", async () => {
      const wf = await workflow(id);
      return wf.state === "failed" ? wf : undefined;
    });
    expect(failed.currentStep).toBe("offboard.preflight");
    expect(failed.lastError).toMatch(
      /^offboarding of tenant freebie-one cannot go ahead: \(1\) final schema dumps of cell use1-01 \(\w+\) have nowhere to go: the S3 BackupStore adapter is off \(TENANCY_LIFECYCLE_AWS\) and TENANCY_LIFECYCLE_BACKUP_DIR is not set; .*the SecretsManager adapter .* is off \(TENANCY_LIFECYCLE_AWS\); set TENANCY_LIFECYCLE_AWS: on\. Nothing was changed: the tenant keeps its file, its access \(LOGIN\) and its data/,
    );
    // No backup is claimed, nothing is deleted, LOGIN is kept and the file was not touched.
    expect(await h.cp.lifecycle!.service.engine.backups({ workflowId: id })).toEqual([]);
    expect((await tenantDb.query(`SELECT body FROM ${roles[1]}.notes`)).rows).toEqual([{ body: "kept until the final dump" }]);
    expect(await canLogin(roles[1]!)).toBe(true);
    expect(h.repo.log("main")[0]!.sha).toBe(headBefore);
    expect(h.repo.show("main", "tenants/freebie-one.yaml")).not.toMatch(/^lifecycle: offboarding$/m);
    // The other AWS ports of this control plane refuse the same way, saying what is missing.
    const { snapshots, secrets } = h.cp.lifecycle!.ports;
    await expect(snapshots.request("shop-prod-acme", "shop-prod-acme-offboard-1", "us-east-1")).rejects.toThrow(
      /^this step needs RDS \(a final snapshot\), but the DatabaseSnapshots adapter .* is off \(TENANCY_LIFECYCLE_AWS\); no snapshot was requested and nothing was deleted/,
    );
    await expect(secrets.scheduleDeletion("shop/prod/tenants/acme/database", "us-east-1", 30)).rejects.toThrow(
      /^this step schedules the deletion of secret shop\/prod\/tenants\/acme\/database, but the SecretsManager adapter .* is off \(TENANCY_LIFECYCLE_AWS\); no secret was scheduled/,
    );
    // The worker keeps ticking; it does not start the failed offboarding again on its own.
    await new Promise((done) => setTimeout(done, 1_000));
    expect((await h.cp.lifecycle!.service.engine.list("freebie-one")).map((w) => [w.kind, w.state])).toEqual([["offboard", "failed"]]);
  });

  it("stops the lifecycle worker with the control plane", async () => {
    await h.cp.stop(0);
    const r = await tenantctl(["resume", "startup-alpha"]).catch((err: unknown) => err);
    // The control plane's database is still there (DATABASE_URL), but nothing runs the request now.
    expect(r).toMatchObject({ code: 0 });
    const id = workflowIdOf((r as { out: string[] }).out);
    await new Promise((done) => setTimeout(done, 1_000));
    const pool = createPool(h.config.databaseUrl!, 1);
    try {
      const { rows } = await pool.query<{ state: string }>("SELECT state FROM lifecycle_workflows WHERE id = $1", [id]);
      expect(rows).toEqual([{ state: "pending" }]);
    } finally {
      await pool.end();
    }
    // Stopped already: afterAll only removes the directories.
    const { tmp: dir, repo } = h;
    h = { ...h, close: async () => {
      rmSync(dir, { recursive: true, force: true });
      rmSync(repo.dir, { recursive: true, force: true });
    } };
  });
});
