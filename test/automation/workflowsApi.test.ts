/**
 * GET /api/workflows/:id, POST /api/workflows/:id/retry and .../cancel (and `tenantctl cancel`) on a started control plane (live
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
import { tenantLockKey } from "../../automation/lifecycle/engine/engine.ts";
import { bufferIo } from "../../cli/io.ts";
import { main } from "../../cli/main.ts";
import { pgTenantIdent } from "../../infra/model/naming.ts";
import { API_KEY, startHarness, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

const TENANT = "startup-alpha";
const ROLE = pgTenantIdent(TENANT);

let pgs: TestPostgres;
let h: Harness;
let tmp: string;
let cellDb: pg.Client;
let databasesFile: string;

beforeAll(async () => {
  pgs = await startTestPostgres();
  tmp = mkdtempSync(join(tmpdir(), "tenancy-workflows-api-"));
  const cellUrl = await pgs.newDatabase();
  cellDb = new pg.Client({ connectionString: cellUrl });
  await cellDb.connect();
  await cellDb.query(`DROP ROLE IF EXISTS ${ROLE}`);
  // What the cell stacks create for an active tenant (no Pulumi program runs here).
  await cellDb.query(`CREATE ROLE ${ROLE} LOGIN`);
  databasesFile = join(tmp, "databases.json");
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
    for (const [method, path] of [["GET", `/api/workflows/${randomUUID()}`], ["POST", `/api/workflows/${randomUUID()}/retry`], ["POST", `/api/workflows/${randomUUID()}/cancel`]] as const) {
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
      ["POST", `/api/workflows/${unknown}/cancel`, 404, `no workflow ${unknown}`],
      ["POST", "/api/workflows/not-a-uuid/cancel", 400, '"not-a-uuid" is not a workflow id (a UUID, as tenantctl prints it when it records a workflow)'],
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

  it("POST /api/tenants/:id/move records a cell move (202, env found from the cell, switch scheduled), and answers a refused one 409, a bad body 400, an unknown tenant 404", async () => {
    const res = await h.api("POST", "/api/tenants/company-beta/move", { to: "use1-01", cutoverNotBefore: "2030-01-01T22:00:00+01:00" });
    expect(res.status).toBe(202);
    const wf = res.json.workflow as { id: string };
    expect(res.json.workflow).toMatchObject({
      kind: "move", tenantId: "company-beta", params: { env: "prod", from: "use1-02", to: "use1-01", cutoverNotBefore: "2030-01-01T21:00:00.000Z" }, state: "pending", requestedBy: "api key test",
    });
    const again = await h.api("POST", "/api/tenants/company-beta/move", { to: "use1-01", env: "prod" });
    expect(again.status).toBe(409);
    expect(message(again.json)).toMatch(new RegExp(`^tenant company-beta already has a workflow under way: move ${wf.id} \\(pending\\)`));
    const cases: [string, unknown, number, string][] = [
      ["/api/tenants/freebie-one/move", {}, 400, "to must name the cell to move to (e.g. {\"to\": \"use1-02\"}); got undefined"],
      ["/api/tenants/freebie-one/move", { to: "use1-02", env: 3 }, 400, "env must be an environment name (e.g. \"prod\"), or left out; got 3"],
      ["/api/tenants/freebie-one/move", { to: "use1-02", cutoverNotBefore: "2030-01-01T22:00" }, 400,
        'cutoverNotBefore "2030-01-01T22:00" is not a time with its UTC offset (a time without one depends on the zone of the machine reading it); e.g. 2026-04-01T22:00:00Z or 2026-04-02T00:00:00+02:00'],
      ["/api/tenants/freebie-one/move", { to: "use1-02", cutoverNotBefore: 1893535200 }, 400, "cutoverNotBefore must be a string; got 1893535200"],
      ["/api/tenants/freebie-one/move", { to: "use1-01" }, 409, "move of freebie-one to use1-01 refused: tenant freebie-one is already in cell use1-01 in prod"],
      ["/api/tenants/freebie-one/move", { to: "euw1-01" }, 409, "move of freebie-one to euw1-01 refused: cell euw1-01 is in eu-west-1 but tenant freebie-one lives in us-east-1; data never leaves its region"],
      ["/api/tenants/no-such-co/move", { to: "use1-01" }, 404, "tenant no-such-co has no file tenants/no-such-co.yaml"],
    ];
    for (const [path, body, status, text] of cases) {
      const r = await h.api("POST", path, body);
      expect(r.status, `${path} ${JSON.stringify(body)}`).toBe(status);
      expect(message(r.json), path).toBe(text);
    }
    const past = await h.api("POST", "/api/tenants/freebie-one/move", { to: "use1-02", cutoverNotBefore: "2020-01-01T00:00:00Z" });
    expect(past.status).toBe(400);
    expect(message(past.json)).toMatch(/^cutoverNotBefore 2020-01-01T00:00:00\.000Z is in the past \(it is \d{4}-.+\); leave it out to switch as soon as the copy has caught up$/);
    // "In the past" by the lifecycle's clock (the one the engine waits by), not this host's: a clock
    // set in 2040 refuses 2035, one set in 2019 accepts June 2020 (each the other's negative control).
    const ports = h.cp.lifecycle!.ports;
    const hostClock = ports.clock;
    try {
      ports.clock = { now: () => new Date("2040-01-01T00:00:00Z") };
      const ahead = await h.api("POST", "/api/tenants/freebie-one/move", { to: "use1-02", cutoverNotBefore: "2035-01-01T00:00:00Z" });
      expect([ahead.status, message(ahead.json)]).toEqual([
        400, "cutoverNotBefore 2035-01-01T00:00:00.000Z is in the past (it is 2040-01-01T00:00:00.000Z); leave it out to switch as soon as the copy has caught up",
      ]);
      ports.clock = { now: () => new Date("2019-01-01T00:00:00Z") };
      const behind = await h.api("POST", "/api/tenants/freebie-one/move", { to: "use1-02", cutoverNotBefore: "2020-06-01T00:00:00Z" });
      expect(behind.status).toBe(202);
      expect(behind.json.workflow).toMatchObject({ params: { cutoverNotBefore: "2020-06-01T00:00:00.000Z" } });
      await h.cp.lifecycle!.service.engine.cancel((behind.json.workflow as { id: string }).id, "test over");
    } finally {
      ports.clock = hostClock;
    }
    // tenantctl move --not-before: the same reading, a usage error (exit 2) before anything is asked.
    expect(await tenantctl(["move", "freebie-one", "--to", "use1-02", "--not-before", "22:00"])).toEqual({
      code: 2, out: [], err: ['tenantctl: --not-before "22:00" is not an ISO 8601 date and time; e.g. 2026-04-01T22:00:00Z or 2026-04-02T00:00:00+02:00'],
    });
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

/** `tenantctl ARGS` against this control plane (TENANCY_URL and TENANCY_API_KEY set for the call). */
async function tenantctl(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const saved = { url: process.env.TENANCY_URL, key: process.env.TENANCY_API_KEY };
  process.env.TENANCY_URL = h.baseUrl;
  process.env.TENANCY_API_KEY = API_KEY;
  try {
    const io = bufferIo();
    const code = await main(args, io);
    return { code, out: io.stdout, err: io.stderr };
  } finally {
    for (const [k, v] of [["TENANCY_URL", saved.url], ["TENANCY_API_KEY", saved.key]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe("POST /api/workflows/:id/cancel and tenantctl cancel", () => {
  it("cancels a queued upgrade with the caller and note recorded; a second cancel is refused 409 with its state", async () => {
    const service = h.cp.lifecycle!.service;
    const up = await service.requestUpgrade("freebie-one", { cutoverNotBefore: new Date("2026-12-24T22:00:00Z"), requestedBy: "workflowsApi.test" });
    const res = await h.api("POST", `/api/workflows/${up.id}/cancel`, { note: "  the customer asked to wait  " });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      workflow: expect.objectContaining({ id: up.id, kind: "upgrade", tenantId: "freebie-one", state: "cancelled", currentStep: null, wakeAt: null, note: "cancelled by api key test: the customer asked to wait" }),
      next: "it had completed no step: nothing of tenant freebie-one changed",
    });
    const finishedAt = (await service.engine.get(up.id))!.finishedAt!.toISOString();
    expect((res.json.workflow as { finishedAt: string }).finishedAt).toBe(finishedAt);
    const shown = await h.api("GET", `/api/workflows/${up.id}`);
    expect(shown.json).toMatchObject({ workflow: { state: "cancelled" }, steps: [], resumesAt: null });
    // The worker does not pick it up again.
    expect(await service.engine.runDue()).toEqual([]);

    const again = await h.api("POST", `/api/workflows/${up.id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.json).toEqual({
      error: {
        message: `upgrade workflow ${up.id} of tenant freebie-one is already cancelled (since ${finishedAt}): only a pending, running or waiting workflow can be cancelled; ` +
          "it was cancelled before (cancelled by api key test: the customer asked to wait)",
        state: "cancelled",
        finishedAt,
      },
    });
    const badNote = await h.api("POST", `/api/workflows/${up.id}/cancel`, { note: 7 });
    expect(badNote.status).toBe(400);
    expect(message(badNote.json)).toBe('note must be a short text saying why (at most 500 characters, e.g. {"note": "customer asked to wait"}), or left out; got 7');
  });

  it("refuses a finished workflow 409 naming its state, and records the cancel of a workflow whose step is running (202), which its worker then ends", async () => {
    const engine = h.cp.lifecycle!.service.engine;
    // The suspension the retry test above ran to its end.
    const suspended = (await engine.list(TENANT)).find((w) => w.kind === "suspend" && w.state === "succeeded")!;
    const finished = await h.api("POST", `/api/workflows/${suspended.id}/cancel`);
    expect(finished.status).toBe(409);
    expect(finished.json).toEqual({
      error: {
        message: `suspend workflow ${suspended.id} of tenant ${TENANT} is already succeeded (since ${suspended.finishedAt!.toISOString()}): ` +
          "only a pending, running or waiting workflow can be cancelled; it did everything it was asked to; nothing is left to cancel",
        state: "succeeded",
        finishedAt: suspended.finishedAt!.toISOString(),
      },
    });

    // A worker running a step holds the tenant's lock (here: a session of the test holds it).
    const rotate = await h.cp.lifecycle!.service.requestRotate("freebie-one");
    const holder = new pg.Client({ connectionString: h.config.databaseUrl });
    await holder.connect();
    try {
      await holder.query("SELECT pg_advisory_lock($1)", [tenantLockKey("freebie-one")]);
      const busy = await h.api("POST", `/api/workflows/${rotate.id}/cancel`, { note: "wrong tenant" });
      expect(busy.status).toBe(202);
      expect(busy.json).toEqual({
        workflow: expect.objectContaining({ id: rotate.id, state: "pending", currentStep: null, cancelRequestedAt: expect.any(String), finishedAt: null }),
        cancelling: { step: null, interrupting: false },
        next: "a worker is taking it up; then the workflow's clean-up runs and it ends cancelled before any further step. " +
          `GET /api/workflows/${rotate.id} (tenantctl workflows --tenant freebie-one) shows when it has`,
      });
      // Asked again (tenantctl): the same request, recorded once.
      expect(await tenantctl(["cancel", rotate.id])).toEqual({
        code: 0,
        out: [`cancelling rotate workflow ${rotate.id} of tenant freebie-one: a worker is taking it up`, `next: ${(busy.json as { next: string }).next}`],
        err: [],
      });
      expect((await engine.get(rotate.id))!).toMatchObject({ state: "pending", cancelRequestedAt: new Date((busy.json.workflow as { cancelRequestedAt: string }).cancelRequestedAt) });
      // The worker's lock is freed; its next run ends the workflow with the first request's note instead of running it.
      await holder.query("SELECT pg_advisory_unlock($1)", [tenantLockKey("freebie-one")]);
      expect(await engine.run(rotate.id)).toEqual({ id: rotate.id, state: "cancelled", step: null });
      expect(await engine.get(rotate.id)).toMatchObject({ state: "cancelled", note: "cancelled by api key test: wrong tenant" });
      expect(await engine.steps(rotate.id)).toEqual([]);
    } finally {
      await holder.end();
    }
  });

  it("refuses 409 with the cause when the clean-up fails (the cell database unreachable), leaving the workflow as it was; cancels once it can", async () => {
    const engine = h.cp.lifecycle!.service.engine;
    const move = await h.cp.lifecycle!.service.requestMove("company-beta", { to: "use1-01" });
    // What a control plane killed during copy.data leaves: running at that step. Its clean-up drops the
    // capture slot on the cell left (use1-02), which this control plane's databases file does not name.
    await h.cp.db.pool.query("UPDATE lifecycle_workflows SET state = 'running', current_step = 'copy.data' WHERE id = $1", [move.id]);
    // While a process runs that copy.data (it holds the tenant's lock): the cancel is recorded, 202, and the copy is to be stopped.
    const holder = new pg.Client({ connectionString: h.config.databaseUrl });
    await holder.connect();
    try {
      await holder.query("SELECT pg_advisory_lock($1)", [tenantLockKey("company-beta")]);
      // Running its switch instead: refused, nothing recorded (the switch is not interrupted, and after it a cancel is refused).
      await h.cp.db.pool.query("UPDATE lifecycle_workflows SET current_step = 'cutover.switch' WHERE id = $1", [move.id]);
      const atSwitch = await h.api("POST", `/api/workflows/${move.id}/cancel`);
      expect([atSwitch.status, atSwitch.json]).toEqual([409, {
        error: {
          message: `move workflow ${move.id} of tenant company-beta is running cutover.switch right now: that step is not interrupted, ` +
            "and once it has completed the tenant serves from its new place and a cancel is refused; should it fail, cancel then",
          state: "running",
          step: "cutover.switch",
        },
      }]);
      expect((await engine.get(move.id))!.cancelRequestedAt).toBeNull();
      await h.cp.db.pool.query("UPDATE lifecycle_workflows SET current_step = 'copy.data' WHERE id = $1", [move.id]);
      const asked = await h.api("POST", `/api/workflows/${move.id}/cancel`, { note: "wrong cell" });
      expect([asked.status, asked.json.cancelling, asked.json.next]).toEqual([
        202, { step: "copy.data", interrupting: true },
        "step copy.data is being stopped (its database sessions are ended, what it had copied is rolled back); then the workflow's clean-up runs and it ends cancelled " +
          `before any further step. GET /api/workflows/${move.id} (tenantctl workflows --tenant company-beta) shows when it has`,
      ]);
      expect(await tenantctl(["cancel", move.id])).toMatchObject({ code: 0, out: [`cancelling move workflow ${move.id} of tenant company-beta: stopping its running step copy.data`, expect.any(String)] });
    } finally {
      await holder.end();
    }
    // That process died (its lock went with it): a cancel now runs the clean-up itself.
    const cause = `${databasesFile} has no connection string for stack shared-prod-use1-02; add "shared-prod-use1-02": "postgres://..."`;
    const refused = await h.api("POST", `/api/workflows/${move.id}/cancel`);
    expect(refused.status).toBe(409);
    expect(refused.json).toEqual({
      error: {
        message: `cancel of move workflow ${move.id} refused: its clean-up failed (${cause}); the workflow is left running at copy.data ` +
          "(its next attempt undoes a write window left open first); fix the cause and cancel again",
        state: "running",
        step: "copy.data",
        cause,
      },
    });
    expect(await engine.get(move.id)).toMatchObject({ state: "running", currentStep: "copy.data", finishedAt: null });

    // tenantctl says the same, exit 1; a malformed id is a usage error (exit 2) before any request.
    const cli = await tenantctl(["cancel", move.id]);
    expect(cli).toEqual({ code: 1, out: [], err: [`control plane answered 409 to POST /api/workflows/${move.id}/cancel: ${(refused.json.error as { message: string }).message}`] });
    expect(await tenantctl(["cancel", "12345"])).toEqual({
      code: 2, out: [], err: ['tenantctl: "12345" is not a workflow id: expected a UUID such as 0b9f6c7e-2f4a-4c1e-9a57-3d1e8b2c4f10 (tenantctl workflows lists them)'],
    });

    // Before its copy a move has nothing of the databases to release: the cancel goes through, from tenantctl.
    await h.cp.db.pool.query("UPDATE lifecycle_workflows SET current_step = NULL WHERE id = $1", [move.id]);
    const ok = await tenantctl(["cancel", move.id.toUpperCase(), "--note", "wrong cell"]);
    expect(ok).toEqual({
      code: 0,
      out: [`cancelled move workflow ${move.id} of tenant company-beta: cancelled by api key test: wrong cell`, "next: it had completed no step: nothing of tenant company-beta changed"],
      err: [],
    });
    expect((await engine.get(move.id))!.state).toBe("cancelled");
  });

  it("the console's cancel: the workflow page links it, the confirmation says what it does, the form cancels through the API", async () => {
    const rotate = await h.cp.lifecycle!.service.requestRotate("freebie-one");
    // A console session as a browser gets it: the login form's token and cookie, then the session cookie.
    const form = await fetch(`${h.baseUrl}/console/login`);
    const loginCookie = form.headers.getSetCookie().find((c) => c.startsWith("tenancy_console_login="))!.split(";")[0]!;
    const loginToken = /name="_csrf" value="([^"]+)"/.exec(await form.text())![1]!;
    const loggedIn = await fetch(`${h.baseUrl}/console/login`, {
      method: "POST", redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: loginCookie },
      body: new URLSearchParams({ key: API_KEY, _csrf: loginToken }),
    });
    const cookie = loggedIn.headers.getSetCookie().find((c) => c.startsWith("tenancy_console="))!.split(";")[0]!;
    const page = async (path: string) => {
      const res = await fetch(`${h.baseUrl}${path}`, { headers: { cookie } });
      return { status: res.status, text: await res.text() };
    };

    expect((await page(`/console/workflows/${rotate.id}`)).text).toContain(`<a class="button" href="/console/workflows/${rotate.id}/cancel">Cancel this workflow</a>`);
    const confirm = await page(`/console/workflows/${rotate.id}/cancel`);
    expect(confirm.status).toBe(200);
    expect(confirm.text).toContain("The <strong>rotate</strong> workflow of tenant <strong>freebie-one</strong> is <strong>pending</strong>.\nCancelling it stops it for good");
    const csrf = /name="_csrf" value="([^"]+)"/.exec(confirm.text)![1]!;
    const done = await fetch(`${h.baseUrl}/console/workflows/${rotate.id}/cancel`, {
      method: "POST", redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie },
      body: new URLSearchParams({ _csrf: csrf }),
    });
    expect([done.status, done.headers.get("location")]).toEqual([303, `/console/workflows/${rotate.id}`]);
    expect(await h.cp.lifecycle!.service.engine.get(rotate.id)).toMatchObject({ state: "cancelled", note: expect.stringMatching(/^cancelled by api key test \(console session [0-9a-f]+\)$/) });
    // Ended: no link, and the confirmation refuses.
    expect((await page(`/console/workflows/${rotate.id}`)).text).not.toContain("Cancel this workflow");
    const again = await page(`/console/workflows/${rotate.id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.text).toContain("The rotate workflow of tenant freebie-one is already cancelled: there is nothing to cancel.");

    // A waiting workflow says when it wakes and why.
    const second = await h.cp.lifecycle!.service.requestRotate("freebie-one");
    await h.cp.db.pool.query("UPDATE lifecycle_workflows SET state = 'waiting', wake_at = '2030-01-01T00:15:00Z', note = 'cutover not before 2030-01-01T01:00:00.000Z' WHERE id = $1", [second.id]);
    expect((await page(`/console/workflows/${second.id}`)).text).toContain('<p class="wakes">Wakes 2030-01-01 00:15:00 UTC: cutover not before 2030-01-01T01:00:00.000Z</p>');
    // Its worker holds the tenant's lock (a step runs): the console's cancel is recorded and the page says it is cancelling.
    const holder = new pg.Client({ connectionString: h.config.databaseUrl });
    await holder.connect();
    try {
      await holder.query("SELECT pg_advisory_lock($1)", [tenantLockKey("freebie-one")]);
      const confirm2 = await page(`/console/workflows/${second.id}/cancel`);
      const posted = await fetch(`${h.baseUrl}/console/workflows/${second.id}/cancel`, {
        method: "POST", redirect: "manual",
        headers: { "content-type": "application/x-www-form-urlencoded", cookie },
        body: new URLSearchParams({ _csrf: /name="_csrf" value="([^"]+)"/.exec(confirm2.text)![1]! }),
      });
      expect([posted.status, posted.headers.get("location")]).toEqual([303, `/console/workflows/${second.id}`]);
      const shown = (await page(`/console/workflows/${second.id}`)).text;
      expect(shown).toMatch(/<p class="cancelling">Cancelling: asked \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; it ends cancelled once its worker takes it up\.<\/p>/);
      expect(shown).not.toContain("Cancel this workflow");
      expect(shown).not.toContain('class="wakes"');
      await holder.query("SELECT pg_advisory_unlock($1)", [tenantLockKey("freebie-one")]);
      expect(await h.cp.lifecycle!.service.engine.run(second.id)).toEqual({ id: second.id, state: "cancelled", step: null });
      expect(await h.cp.lifecycle!.service.engine.get(second.id)).toMatchObject({ note: expect.stringMatching(/^cancelled by api key test \(console session [0-9a-f]+\)$/) });
    } finally {
      await holder.end();
    }
  });
});
