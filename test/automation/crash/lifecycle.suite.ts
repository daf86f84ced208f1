/**
 * Crash injection at the lifecycle steps (`lifecycle.step:<step>`, automation/crashPoints.ts): a
 * suspension recorded the operator's way (`tenantctl suspend` with DATABASE_URL), then the control
 * plane killed with SIGKILL after each step's effects and before the step is recorded, one life
 * per step, started again on the same data directory; a last life finishes the workflow.
 *
 * The tenant's role is real: a live PostgreSQL database stands in for the cell database of the
 * tenant's stacks (TENANCY_LIFECYCLE_DATABASES), its role created LOGIN as the stacks left it
 * while active, and the Pulumi CLI double sets LOGIN from the tenant file on each `up` of those
 * stacks as the stacks' postgresql.Role would (FakePulumiOptions.tenantDatabases). Nothing is
 * deployed; the role, the sessions and the git history are.
 */
import { execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { suspendWorkflow } from "../../../automation/lifecycle/workflows/suspension.ts";
import { pgTenantIdent } from "../../../infra/model/naming.ts";
import { seedControlPlaneDataDir } from "../../support/pgTemplate.ts";
import { overlappingUpdates } from "../support/fakePulumi.ts";
import { startTestPostgres } from "../support/postgres.ts";
import {
  embeddedSql, leftoverTempDirs, makeInstallation, PROJECT, running, startLife, stopLeftoverPostgres, stopLife, waitCliProcessesGone, waitKilledAt, waitReady, type Installation, type Life,
} from "./controlPlaneProcess.ts";

const TENANT = "startup-alpha";
const ROLE = pgTenantIdent(TENANT);
/** The tenant's stacks (tenants/startup-alpha.yaml: prod and staging in use1-01). */
const STACKS = ["shared-prod-use1-01", "shared-staging-use1-01"];
/** A bound against a hang: the step is due at once, its runs take seconds (the CLI double). */
const KILL_BOUND_MS = 240_000;

async function onDb<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  c.on("error", () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * `tenantctl suspend` as an operator runs it against the control plane's database: the bin script
 * (cli/main.ts only exports `main`; run as a script it records nothing and exits 0), from the
 * sources so an older dist/cli build cannot stand in for them.
 */
function tenantctlSuspend(inst: Installation): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(PROJECT, "bin", "tenantctl.mjs"), "suspend", TENANT, "--project", inst.repo.dir], {
      cwd: PROJECT,
      env: { ...process.env, DATABASE_URL: embeddedSql(inst).url(), TENANTCTL_FROM_SOURCE: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (out += b.toString()));
    child.once("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`tenantctl suspend exited ${code}:\n${out}`))));
  });
}

/** The workflow, its steps and the runs, for a failure message. */
async function state(inst: Installation): Promise<string> {
  const sql = embeddedSql(inst);
  const wfs = await sql.query("SELECT id, state, current_step, attempts, wake_at, last_error FROM lifecycle_workflows");
  const steps = await sql.query("SELECT workflow_id, step FROM lifecycle_steps ORDER BY ordinal");
  const runs = await sql.query("SELECT id, stack, state, worker, attempts, heartbeat_at, job_id, error FROM runs ORDER BY created_at");
  const jobs = await sql.query("SELECT id, name, state, started_on, created_on FROM pgboss.job WHERE name LIKE 'stack-run%' ORDER BY created_on");
  return `workflows ${JSON.stringify(wfs)}\nsteps ${JSON.stringify(steps)}\nruns ${JSON.stringify(runs)}\njobs ${JSON.stringify(jobs)}`;
}

/**
 * A life killed at `point`. The first one records the suspension once it is ready, as an
 * operator would; later ones resume the workflow on their own and may die before they are ready.
 */
async function lifeKilledAt(inst: Installation, point: string, first: boolean): Promise<void> {
  const life: Life = await startLife(inst, point);
  try {
    if (first) {
      await waitReady(life);
      expect(await tenantctlSuspend(inst)).toMatch(new RegExp(`^recorded suspend workflow [0-9a-f-]{36} for tenant ${TENANT} \\(state pending\\)$`, "m"));
    }
    await waitKilledAt(life, point, KILL_BOUND_MS, () => state(inst));
  } finally {
    if (running(life)) {
      life.child.kill("SIGKILL");
      await life.exited;
    }
  }
}

describe("kill -9 at each step of a lifecycle workflow, start again", () => {
  it("a suspension killed after each step's effects completes once: each step recorded once, one commit, LOGIN revoked in the tenant's database, no two updates of a stack at once", { timeout: 900_000 }, async () => {
    const tenantPg = await startTestPostgres();
    const tenantDb = await tenantPg.newDatabase();
    // What the stacks left for the active tenant (no Pulumi program runs here).
    await onDb(tenantDb, (c) => c.query(`CREATE ROLE ${ROLE} LOGIN`));
    const inst = makeInstallation(
      { eventDelayMs: 40, tenantDatabases: Object.fromEntries(STACKS.map((s) => [s, tenantDb])) },
      { TENANCY_LIFECYCLE_WORKER: "on", TENANCY_LIFECYCLE_INTERVAL_SECONDS: "0.2" },
    );
    const databasesFile = join(inst.tmp, "databases.json");
    writeFileSync(databasesFile, JSON.stringify(Object.fromEntries(STACKS.map((s) => [s, tenantDb]))));
    inst.env.TENANCY_LIFECYCLE_DATABASES = databasesFile;
    const sql = embeddedSql(inst);
    const git = (...args: string[]) => execFileSync("git", args, { cwd: inst.repo.dir, encoding: "utf8" }).trim();
    try {
      // Its embedded PostgreSQL from the run's template: the kills are the subject, not the first start's initdb.
      await seedControlPlaneDataDir(inst.dataDir);
      const steps = suspendWorkflow.steps.map((s) => s.name);
      expect(steps).toEqual(["suspend.files", "suspend.stacks"]);
      for (const [i, step] of steps.entries()) await lifeKilledAt(inst, `lifecycle.step:${step}`, i === 0);
      // A killed life leaves its temporary directory (automation/tempDir.ts); the next start removes
      // it: the second life removed the first one's, and the last one must remove the second's.
      const left = leftoverTempDirs(inst);
      expect(left.map((d) => basename(d))).toEqual([expect.stringMatching(/^p\d+-[0-9a-f]{8}$/)]);

      const life = await startLife(inst);
      try {
        await waitReady(life);
        expect(((await life.logged("removed the temporary directories of earlier control plane processes that are gone")).removed as string[]).sort()).toEqual([...left].sort());
        const wf = await (async () => {
          const deadline = Date.now() + 180_000;
          for (;;) {
            const [row] = await sql.query<{ id: string; state: string; last_error: string | null }>("SELECT id, state, last_error FROM lifecycle_workflows WHERE tenant_id = $1", [TENANT]);
            if (row && row.state !== "pending" && row.state !== "running") return row;
            if (Date.now() > deadline) throw new Error(`workflow not finished: ${await state(inst)}\n${life.output().slice(-6000)}`);
            await new Promise((r) => setTimeout(r, 200));
          }
        })();
        expect(wf.state, wf.last_error ?? "").toBe("succeeded");
        // Each step recorded exactly once, in order.
        const recorded = await sql.query<{ step: string }>("SELECT step FROM lifecycle_steps WHERE workflow_id = $1 ORDER BY ordinal", [wf.id]);
        expect(recorded.map((r) => r.step)).toEqual(steps);
        // The file step ran twice (killed before it was recorded) and committed once: its rerun found the file suspended.
        expect(git("log", "main", "--format=%s", "--", `tenants/${TENANT}.yaml`).split("\n").filter((s) => s.includes(`suspend ${TENANT}`))).toHaveLength(1);
        expect(git("show", `main:tenants/${TENANT}.yaml`)).toMatch(/^lifecycle: suspended$/m);
        expect(git("status", "--porcelain")).toBe("");
        expect(execFileSync("git", ["rev-parse", "main"], { cwd: inst.remote, encoding: "utf8" }).trim()).toBe(git("rev-parse", "main"));
        // The role in the tenant's database lost LOGIN through the stacks' updates.
        const login = await onDb(tenantDb, (c) => c.query<{ l: boolean }>("SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = $1", [ROLE]));
        expect(login.rows).toEqual([{ l: false }]);
        // The stacks step ran twice (killed after its updates, before it was recorded): its rerun
        // queued its updates again. Every run succeeded and applied the suspension commit, so the
        // second `up` of each stack applied the same program and files as the first (no change).
        const head = git("rev-parse", "main");
        const runs = await sql.query<{ stack: string; state: string; commit: string | null }>("SELECT stack, state, output->>'commit' AS commit FROM runs ORDER BY created_at");
        expect(runs.filter((r) => r.state !== "succeeded" || r.commit !== head)).toEqual([]);
        for (const stack of STACKS) expect(runs.filter((r) => r.stack === stack).length, `runs of ${stack}`).toBeGreaterThanOrEqual(2);
        expect(overlappingUpdates(inst.stateDir)).toEqual([]);
      } finally {
        expect(await stopLife(life)).toBe(0);
      }
      expect(leftoverTempDirs(inst)).toEqual([]);
    } finally {
      await stopLeftoverPostgres(inst);
      await waitCliProcessesGone(inst).catch(() => undefined);
      inst.dispose();
      await tenantPg.stop();
    }
  });
});
