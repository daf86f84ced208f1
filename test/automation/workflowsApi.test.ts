/**
 * GET /api/workflows/:id and POST /api/workflows/:id/retry on a started control plane (live
 * PostgreSQL, real git, run workers driving the Automation API with the Pulumi CLI test double).
 * The lifecycle worker is not started: the test runs the engine itself, as the worker would, so
 * every state the endpoints answer about is known.
 *
 * What is not real: no Pulumi program runs, so no stack update changes a database. The role the
 * cell stacks would manage is created here, and the LOGIN revocation a suspension's stack update
 * would make is done by the test (after the workflow has failed on it), as in
 * test/lifecycle/controlPlaneWorker.test.ts.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_LIFECYCLE_CONFIG } from "../../automation/lifecycle/config.ts";
import { pgTenantIdent } from "../../infra/model/naming.ts";
import { startHarness, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

const TENANT = "startup-alpha";
const ROLE = pgTenantIdent(TENANT);

let pgs: TestPostgres;
let h: Harness;
let tmp: string;
let cellDb: pg.Client;

beforeAll(async () => {
  pgs = await startTestPostgres();
  tmp = mkdtempSync(join(tmpdir(), "tenancy-workflows-api-"));
  const cellUrl = await pgs.newDatabase();
  cellDb = new pg.Client({ connectionString: cellUrl });
  await cellDb.connect();
  await cellDb.query(`DROP ROLE IF EXISTS ${ROLE}`);
  // What the cell stacks create for an active tenant (no Pulumi program runs here).
  await cellDb.query(`CREATE ROLE ${ROLE} LOGIN`);
  const databasesFile = join(tmp, "databases.json");
  writeFileSync(databasesFile, JSON.stringify({ "shared-prod-use1-01": cellUrl, "shared-staging-use1-01": cellUrl }));
  h = await startHarness({
    pg: pgs,
    // One attempt per step: a failure shows at once as `failed`.
    config: { lifecycle: { databasesFile, intervalSeconds: 3600, workflows: { ...DEFAULT_LIFECYCLE_CONFIG, maxAttempts: 1, cutoverTimeoutMs: 5_000 } } },
    start: { runs: true },
  });
});

afterAll(async () => {
  await h?.close();
  if (cellDb) {
    await cellDb.query(`DROP ROLE IF EXISTS ${ROLE}`).catch(() => undefined);
    await cellDb.end();
  }
  await pgs?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const message = (json: Record<string, unknown>) => {
  expect(Object.keys(json)).toEqual(["error"]);
  return (json.error as { message: string }).message;
};

describe("lifecycle workflows over the internal API", () => {
  it("requires an API key", async () => {
    for (const [method, path] of [["GET", `/api/workflows/${randomUUID()}`], ["POST", `/api/workflows/${randomUUID()}/retry`]] as const) {
      const res = await h.api(method, path, undefined, null);
      expect(res.status, `${method} ${path}`).toBe(401);
    }
  });

  it("retries a failed suspension at the step it failed in, refuses while it cannot, and the engine then completes it", async () => {
    const service = h.cp.lifecycle!.service;
    const wf = await service.requestSuspend(TENANT, { requestedBy: "workflowsApi.test" });
    const headBefore = h.repo.log("main")[0]!.sha;
    const loginError = `after the update of shared-prod-use1-01, role ${ROLE} has LOGIN true, expected LOGIN false; check the stack's last run`;
    expect(await service.engine.run(wf.id)).toEqual({ id: wf.id, state: "failed", step: "suspend.stacks", error: loginError });

    const shown = await h.api("GET", `/api/workflows/${wf.id}`);
    expect(shown.status).toBe(200);
    expect(shown.json).toMatchObject({
      workflow: { id: wf.id, kind: "suspend", tenantId: TENANT, state: "failed", currentStep: "suspend.stacks", attempts: 1, lastError: loginError, requestedBy: "workflowsApi.test" },
      steps: [{ step: "suspend.files", ordinal: 0 }],
      backups: [],
      resumesAt: "suspend.stacks",
    });
    const filesStep = (shown.json.steps as Record<string, unknown>[])[0];
    // The tenant's record lists its workflows, newest first.
    const tenant = await h.api("GET", `/api/tenants/${TENANT}`);
    expect((tenant.json.workflows as { id: string; state: string }[]).map((w) => [w.id, w.state])).toEqual([[wf.id, "failed"]]);

    // Another workflow of the tenant under way: 409 naming it; that one is pending, not failed: 409 too.
    const resume = await service.requestResume(TENANT);
    const busy = await h.api("POST", `/api/workflows/${wf.id}/retry`);
    expect(busy.status).toBe(409);
    expect(message(busy.json)).toBe(`tenant ${TENANT} has another workflow under way: resume ${resume.id} (pending); wait for it to finish or cancel it, then retry ${wf.id}`);
    const pending = await h.api("POST", `/api/workflows/${resume.id}/retry`);
    expect(pending.status).toBe(409);
    expect(message(pending.json)).toMatch(new RegExp(`^resume workflow ${resume.id} of tenant ${TENANT} is pending, not failed: only a failed workflow can be retried`));
    await service.engine.cancel(resume.id, "requested by mistake");

    const retried = await h.api("POST", `/api/workflows/${wf.id}/retry`);
    expect(retried.status).toBe(200);
    expect(retried.json).toEqual({
      workflow: expect.objectContaining({
        id: wf.id, kind: "suspend", tenantId: TENANT, state: "running", currentStep: "suspend.stacks", attempts: 0, wakeAt: null, finishedAt: null,
        lastError: loginError, note: `retried by api key test after: ${loginError}`, retriedByApiKey: "test",
      }),
      resumesAt: "suspend.stacks",
    });
    const again = await h.api("POST", `/api/workflows/${wf.id}/retry`);
    expect(again.status).toBe(409);
    expect(message(again.json)).toMatch(/is running, not failed: only a failed workflow can be retried; it is still under way \(at suspend\.stacks, last error: after the update/);

    // The cause fixed (what the cell stack's program would do), the worker's query picks it up and it completes.
    await cellDb.query(`ALTER ROLE ${ROLE} NOLOGIN`);
    expect(await service.engine.runDue()).toEqual([{ id: wf.id, state: "succeeded", step: null }]);
    const done = await h.api("GET", `/api/workflows/${wf.id}`);
    expect(done.json).toMatchObject({ workflow: { state: "succeeded", currentStep: null, lastError: null }, resumesAt: null });
    const steps = done.json.steps as Record<string, unknown>[];
    expect(steps.map((s) => s.step)).toEqual(["suspend.files", "suspend.stacks"]);
    // suspend.files ran once: the same record, one commit.
    expect(steps[0]).toEqual(filesStep);
    const log = h.repo.log("main");
    expect(log.slice(0, log.findIndex((c) => c.sha === headBefore)).map((c) => c.subject)).toEqual([`tenants: suspend ${TENANT}`]);

    const finished = await h.api("POST", `/api/workflows/${wf.id}/retry`);
    expect(finished.status).toBe(409);
    expect(message(finished.json)).toBe(`suspend workflow ${wf.id} of tenant ${TENANT} is succeeded, not failed: only a failed workflow can be retried; it has finished; there is nothing to retry`);
  });

  it("answers an unknown id 404 and a malformed one 400, as JSON without a stack trace", async () => {
    const unknown = randomUUID();
    const cases: [string, string, number, string][] = [
      ["GET", `/api/workflows/${unknown}`, 404, `no workflow ${unknown}`],
      ["POST", `/api/workflows/${unknown}/retry`, 404, `no workflow ${unknown}`],
      ["GET", "/api/workflows/not-a-uuid", 400, '"not-a-uuid" is not a workflow id (a UUID, as tenantctl prints it when it records a workflow)'],
      ["POST", "/api/workflows/12345/retry", 400, '"12345" is not a workflow id (a UUID, as tenantctl prints it when it records a workflow)'],
    ];
    for (const [method, path, status, text] of cases) {
      const res = await h.api(method, path);
      expect(res.status, `${method} ${path}`).toBe(status);
      expect(message(res.json), `${method} ${path}`).toBe(text);
    }
  });

  it("POST /api/tenants/:id/rotate records a rotation (202), and answers a refused one 409, a bad body 400, an unknown tenant 404", async () => {
    const res = await h.api("POST", "/api/tenants/freebie-one/rotate", {});
    expect(res.status).toBe(202);
    const wf = res.json.workflow as { id: string; kind: string; tenantId: string; params: unknown; state: string; requestedBy: string };
    expect(wf).toMatchObject({ kind: "rotate", tenantId: "freebie-one", params: { envs: ["prod"] }, state: "pending", requestedBy: "api key test" });
    const again = await h.api("POST", "/api/tenants/freebie-one/rotate", { envs: ["prod"] });
    expect(again.status).toBe(409);
    expect(message(again.json)).toMatch(new RegExp(`^tenant freebie-one already has a workflow under way: rotate ${wf.id} \\(pending\\)`));
    const cases: [string, unknown, number, string][] = [
      ["/api/tenants/company-beta/rotate", { envs: "prod" }, 400, 'envs must be a list of environment names (e.g. ["prod"]), or left out for all of the tenant\'s; got "prod"'],
      ["/api/tenants/company-beta/rotate", { envs: ["staging"] }, 409, "tenant company-beta has no environment staging (it has prod)"],
      ["/api/tenants/no-such-co/rotate", {}, 404, "tenant no-such-co has no file tenants/no-such-co.yaml"],
    ];
    for (const [path, body, status, text] of cases) {
      const r = await h.api("POST", path, body);
      expect(r.status, path).toBe(status);
      expect(message(r.json), path).toBe(text);
    }
    await h.cp.lifecycle!.service.engine.cancel(wf.id, "test over");
  });

  it("POST /api/tenants/:id/move records a cell move (202, env found from the cell), and answers a refused one 409, a bad body 400, an unknown tenant 404", async () => {
    const res = await h.api("POST", "/api/tenants/company-beta/move", { to: "use1-01" });
    expect(res.status).toBe(202);
    const wf = res.json.workflow as { id: string };
    expect(res.json.workflow).toMatchObject({ kind: "move", tenantId: "company-beta", params: { env: "prod", from: "use1-02", to: "use1-01" }, state: "pending", requestedBy: "api key test" });
    const again = await h.api("POST", "/api/tenants/company-beta/move", { to: "use1-01", env: "prod" });
    expect(again.status).toBe(409);
    expect(message(again.json)).toMatch(new RegExp(`^tenant company-beta already has a workflow under way: move ${wf.id} \\(pending\\)`));
    const cases: [string, unknown, number, string][] = [
      ["/api/tenants/freebie-one/move", {}, 400, "to must name the cell to move to (e.g. {\"to\": \"use1-02\"}); got undefined"],
      ["/api/tenants/freebie-one/move", { to: "use1-02", env: 3 }, 400, "env must be an environment name (e.g. \"prod\"), or left out; got 3"],
      ["/api/tenants/freebie-one/move", { to: "use1-01" }, 409, "move of freebie-one to use1-01 refused: tenant freebie-one is already in cell use1-01 in prod"],
      ["/api/tenants/freebie-one/move", { to: "euw1-01" }, 409, "move of freebie-one to euw1-01 refused: cell euw1-01 is in eu-west-1 but tenant freebie-one lives in us-east-1; data never leaves its region"],
      ["/api/tenants/no-such-co/move", { to: "use1-01" }, 404, "tenant no-such-co has no file tenants/no-such-co.yaml"],
    ];
    for (const [path, body, status, text] of cases) {
      const r = await h.api("POST", path, body);
      expect(r.status, `${path} ${JSON.stringify(body)}`).toBe(status);
      expect(message(r.json), path).toBe(text);
    }
    await h.cp.lifecycle!.service.engine.cancel(wf.id, "test over");
  });

  it("POST /api/tenants/:id/move/rollback refuses without a move in the tenant's file (409), an unknown tenant (404)", async () => {
    // The move above was cancelled before its first step: the file has no move block, so nothing to roll back.
    const cases: [string, number, string][] = [
      ["/api/tenants/company-beta/move/rollback", 409, "tenant company-beta has no cell move under way; nothing to roll back"],
      ["/api/tenants/no-such-co/move/rollback", 404, "tenant no-such-co has no file tenants/no-such-co.yaml"],
    ];
    for (const [path, status, text] of cases) {
      const r = await h.api("POST", path);
      expect(r.status, path).toBe(status);
      expect(message(r.json), path).toBe(text);
    }
  });
});
