/**
 * tenantctl retry (and tenantctl workflows): a failed workflow recorded in a live, migrated
 * PostgreSQL (the lifecycle bench of harness.ts: the fake stack runner, no Pulumi, no AWS) is put
 * back at the step it failed in, then run by the engine as the control plane's worker would, and
 * completes; every refusal names its reason.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bufferIo } from "../../cli/io.ts";
import { main } from "../../cli/main.ts";
import { CELL_STACK, createScenario, gitLog, loginOf, startBench, type Bench, type Scenario } from "./harness.ts";

async function run(args: string[], databaseUrl?: string): Promise<{ code: number; out: string[]; err: string[] }> {
  const saved = process.env.DATABASE_URL;
  if (databaseUrl) process.env.DATABASE_URL = databaseUrl;
  else delete process.env.DATABASE_URL;
  try {
    const io = bufferIo();
    const code = await main(args, io);
    return { code, out: io.stdout, err: io.stderr };
  } finally {
    if (saved === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = saved;
  }
}

const lines = (r: { out: string[] }) => r.out.join("\n").split("\n");

let bench: Bench;
let s: Scenario;
let url: string;

beforeAll(async () => {
  bench = await startBench({ single: true });
  // One attempt per step: a failed stack run fails the workflow at once (no backoff to wait out).
  s = await createScenario(bench, { prefix: "rt" }, { config: { maxAttempts: 1 } });
  const db = (await s.pool.query<{ db: string }>("SELECT current_database() AS db")).rows[0]!.db;
  url = `postgres://${bench.cellAdmin.user}:${encodeURIComponent(bench.cellAdmin.password)}@${bench.cellServer.host}:${bench.cellServer.port}/${db}`;
});

afterAll(async () => {
  await s?.close();
  await bench?.stop();
});

/** A suspension of `tenant` whose stack run fails: the workflow ends failed at suspend.stacks. */
async function failedSuspension(tenant: string) {
  const wf = await s.service.requestSuspend(tenant);
  s.runner.failNext.add(CELL_STACK);
  expect(await s.service.engine.run(wf.id)).toEqual({ id: wf.id, state: "failed", step: "suspend.stacks", error: `run of ${CELL_STACK} failed (injected)` });
  return wf;
}

describe("tenantctl retry", () => {
  it("refuses without DATABASE_URL and rejects what is not a workflow id", async () => {
    expect(await run(["retry", randomUUID()])).toEqual({
      code: 1, out: [], err: ["tenantctl: retrying a workflow needs the control plane's database, where workflows are recorded: set DATABASE_URL"],
    });
    expect(await run(["workflows"])).toMatchObject({ code: 1, err: [expect.stringMatching(/^tenantctl: listing workflows needs the control plane's database/)] });
    for (const bad of ["42", "not-a-uuid", "0b9f6c7e-2f4a-4c1e-9a57-3d1e8b2c4f1"]) {
      const r = await run(["retry", bad], url);
      expect(r.code, bad).toBe(2);
      expect(r.err, bad).toEqual([`tenantctl: "${bad}" is not a workflow id: expected a UUID such as 0b9f6c7e-2f4a-4c1e-9a57-3d1e8b2c4f10 (tenantctl workflows lists them)`]);
    }
    expect((await run(["retry"], url)).code).toBe(2);
    const unknown = randomUUID();
    expect(await run(["retry", unknown], url)).toEqual({
      code: 1, out: [], err: [`tenantctl: no workflow ${unknown} in DATABASE_URL's database; tenantctl workflows lists the recorded ones`],
    });
  });

  it("puts a failed suspension back at the step it failed in; the engine then completes it, running no completed step again", async () => {
    const wf = await failedSuspension(s.tenant);
    const commits = gitLog(s.root);
    expect(commits.filter((c) => c.startsWith("tenants: suspend"))).toHaveLength(1);
    expect(await loginOf(s.cell, s.tenant)).toBe(true);

    // Another workflow of the tenant under way: refused, naming it; it is pending, so it is not retryable either.
    s.clock.advance(60_000);
    const resume = await s.service.requestResume(s.tenant);
    const busy = await run(["retry", wf.id], url);
    expect(busy.code).toBe(1);
    expect(busy.err).toEqual([`tenantctl: tenant ${s.tenant} has another workflow under way: resume ${resume.id} (pending); wait for it to finish or cancel it, then retry ${wf.id}`]);
    expect(await run(["retry", resume.id], url)).toMatchObject({
      code: 1,
      err: [`tenantctl: resume workflow ${resume.id} of tenant ${s.tenant} is pending, not failed: only a failed workflow can be retried; it is still under way; the lifecycle worker retries its steps itself`],
    });
    // Cancelled before its first step, the resume changed nothing: it does not stand in the way.
    await s.service.engine.cancel(resume.id, "requested by mistake");

    const r = await run(["retry", wf.id.toUpperCase()], url);
    expect(r).toEqual({
      code: 0,
      err: [],
      out: [
        `retried suspend workflow ${wf.id} of tenant ${s.tenant}: it resumes at step suspend.stacks, state running`,
        `its last error: run of ${CELL_STACK} failed (injected)`,
        "the control plane's lifecycle worker runs it, not tenantctl: no step has run again yet",
      ],
    });
    expect(await s.service.engine.get(wf.id)).toMatchObject({
      state: "running", currentStep: "suspend.stacks", attempts: 0, wakeAt: null, finishedAt: null,
      lastError: `run of ${CELL_STACK} failed (injected)`,
    });
    expect((await s.service.engine.get(wf.id))!.note).toMatch(/^retried by tenantctl \(.*\) after: run of shared-prod-use1-01 failed \(injected\)$/);
    // tenantctl ran nothing: no stack run, no commit.
    expect(s.runner.ups()).toEqual([CELL_STACK]);
    expect(gitLog(s.root)).toEqual(commits);
    // Now it is running, not failed: a second retry is refused.
    expect((await run(["retry", wf.id], url)).err).toEqual([
      `tenantctl: suspend workflow ${wf.id} of tenant ${s.tenant} is running, not failed: only a failed workflow can be retried; ` +
        `it is still under way (at suspend.stacks, last error: run of ${CELL_STACK} failed (injected)); the lifecycle worker retries its steps itself`,
    ]);

    // The worker's query picks it up at once, and it completes from suspend.stacks.
    const before = await s.service.engine.steps(wf.id);
    expect(before.map((x) => x.step)).toEqual(["suspend.files"]);
    expect(await s.service.engine.runDue()).toEqual([{ id: wf.id, state: "succeeded", step: null }]);
    const steps = await s.service.engine.steps(wf.id);
    expect(steps.map((x) => x.step)).toEqual(["suspend.files", "suspend.stacks"]);
    expect(steps[0]).toEqual(before[0]);
    expect(s.runner.ups()).toEqual([CELL_STACK, CELL_STACK]);
    expect(gitLog(s.root)).toEqual(commits);
    expect(await loginOf(s.cell, s.tenant)).toBe(false);
    expect(await s.service.engine.get(wf.id)).toMatchObject({ state: "succeeded", lastError: null, currentStep: null });

    // Succeeded: nothing to retry.
    expect(await run(["retry", wf.id], url)).toMatchObject({
      code: 1,
      err: [`tenantctl: suspend workflow ${wf.id} of tenant ${s.tenant} is succeeded, not failed: only a failed workflow can be retried; it has finished; there is nothing to retry`],
    });

    // tenantctl workflows lists them, newest first, and filters.
    const listed = await run(["workflows", "--tenant", s.tenant], url);
    expect(listed.code).toBe(0);
    expect(lines(listed)[0]).toMatch(/^ID +KIND +TENANT +STATE +STEP +WAKES +UPDATED +LAST ERROR$/);
    expect(lines(listed).slice(1).map((l) => l.split(/ +/).slice(0, 4))).toEqual([[resume.id, "resume", s.tenant, "cancelled"], [wf.id, "suspend", s.tenant, "succeeded"]]);
    const json = await run(["workflows", "--tenant", s.tenant, "--state", "succeeded", "--json"], url);
    expect(JSON.parse(json.out.join("\n"))).toEqual([
      { id: wf.id, kind: "suspend", tenant: s.tenant, state: "succeeded", step: null, lastError: null, wakeAt: null, note: null, cancelRequestedAt: null, updatedAt: expect.any(String) },
    ]);
    expect((await run(["workflows", "--state", "failed", "--tenant", s.tenant], url)).out).toEqual(["no workflows match"]);
    expect((await run(["workflows", "--state", "broken"], url)).code).toBe(2);
    expect((await run(["workflows", "--tenant", "Not_A_Tenant"], url)).code).toBe(2);
  });

  it("refuses a failed workflow when a later workflow of the tenant has run since (it would act on a state it no longer knows)", async () => {
    // The bystander: suspended (failed at its stacks), then resumed by a later workflow that succeeded.
    const wf = await failedSuspension(s.bystander);
    s.clock.advance(60_000);
    const resume = await s.service.requestResume(s.bystander);
    expect(await s.service.engine.run(resume.id)).toMatchObject({ state: "succeeded" });
    const r = await run(["retry", wf.id], url);
    expect(r.code).toBe(1);
    expect(r.err).toEqual([
      `tenantctl: tenant ${s.bystander} has had a later workflow since suspend workflow ${wf.id} of tenant ${s.bystander} failed: ` +
        `resume ${resume.id} (succeeded, requested ${s.clock.now().toISOString()}); retrying would carry on from a tenant state this workflow no longer knows: request a new suspend instead`,
    ]);
    expect(await s.service.engine.get(wf.id)).toMatchObject({ state: "failed", attempts: 1 });
    expect(lines(await run(["workflows", "--state", "failed"], url)).slice(1).map((l) => l.split(/ +/)[0])).toEqual([wf.id]);
  });
});
