/**
 * The lifecycle ports on the control plane's own modules: GitWriterFleetRepo on the real
 * GitWriter (real git, validation by the model, the changes table), RunStoreStackRunner on the
 * real RunStore and run workers (pg-boss on live PostgreSQL) driving the Automation API with the
 * control plane's Pulumi CLI test double: no real Pulumi runs here, the double records commands
 * (and emulates `stack export` / `state move` over the resources a test seeds).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renameStackInUrn } from "../../infra/model/handover.ts";
import { GitWriterFleetRepo, RunConflictGaveUpError, RunStoreStackRunner, type RunQueue } from "../../automation/lifecycle/adapters/controlPlane.ts";
import { InvalidChangeError, type ProtectionRelease } from "../../automation/lifecycle/ports.ts";
import { RunConflictError, type RunRecord } from "../../automation/runs/store.ts";
import { editTenantText } from "../../infra/model/fleetFiles/index.ts";
import { commandLog, seedResources, stackState } from "../automation/support/fakePulumi.ts";
import { startHarness, type Harness } from "../automation/support/harness.ts";
import { startTestPostgres, type TestPostgres } from "../automation/support/postgres.ts";

let pg: TestPostgres;
let h: Harness;
beforeAll(async () => {
  pg = await startTestPostgres();
  h = await startHarness({ pg, start: { runs: true } });
});
afterAll(async () => {
  await h?.close();
  await pg?.stop();
});

const ctx = { workflowId: "7d2c4f0e-0000-4000-8000-000000000001", tenant: "acme", reason: "lifecycle adapter test" };

describe("GitWriterFleetRepo", () => {
  it("commits a workflow's change on the main branch citing the workflow, once, and refuses an invalid fleet", async () => {
    const repo = new GitWriterFleetRepo(h.cp.writer);
    const text = (await repo.read("tenants/startup-alpha.yaml"))!;
    const suspended = editTenantText(text, [[["lifecycle"], "suspended"]]);
    const sha = await repo.commit({ tenantId: "startup-alpha", workflowId: ctx.workflowId, summary: "suspend startup-alpha", files: { "tenants/startup-alpha.yaml": suspended } });
    const [head] = h.repo.log("main");
    expect(head!.sha).toBe(sha);
    expect(head!.subject).toBe("tenants: suspend startup-alpha");
    expect(head!.body).toContain(`Workflow: ${ctx.workflowId}`);
    expect(await repo.read("tenants/startup-alpha.yaml")).toBe(suspended);
    // The same change again: nothing to commit.
    expect(await repo.commit({ tenantId: "startup-alpha", workflowId: ctx.workflowId, summary: "suspend startup-alpha", files: { "tenants/startup-alpha.yaml": suspended } })).toBeUndefined();
    // A change that leaves the fleet invalid is refused with the model's reason; nothing is committed.
    const bad = editTenantText(text, [[["placement", "prod"], "use1-09"]]);
    const err = await repo.commit({ tenantId: "startup-alpha", workflowId: ctx.workflowId, summary: "bad", files: { "tenants/startup-alpha.yaml": bad } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidChangeError);
    expect((err as InvalidChangeError).problems.join("\n")).toMatch(/cell use1-09 has no stack file/);
    expect(h.repo.log("main")[0]!.sha).toBe(sha);
  });
});

describe("RunStoreStackRunner", () => {
  it("runs `up` through the per-stack queue and resolves when the run has succeeded", async () => {
    const runner = new RunStoreStackRunner(h.cp.runs, { pollMs: 100, timeoutMs: 60_000 });
    const { runId } = await runner.up("dedicated-acme-prod", ctx);
    const run = await h.cp.runs.get(runId);
    expect(run).toMatchObject({ stack: "dedicated-acme-prod", operation: "up", state: "succeeded" });
    expect(run!.reasons.join(" ")).toContain(`lifecycle workflow ${ctx.workflowId}`);
  });

  it("destroys a protected stack only with a release, which lifts protection first and is kept with the run", async () => {
    const runner = new RunStoreStackRunner(h.cp.runs, { pollMs: 100, timeoutMs: 60_000 });
    await expect(runner.destroy("dedicated-acme-prod", ctx)).rejects.toThrow(/destroy of dedicated-acme-prod failed .*is protected/s);
    expect(stackState(h.stateDir, "dedicated-acme-prod")!.destroyed).not.toBe(true);
    // Only the offboarding workflow makes releases (by a cast, after its checks); the test does the same.
    const release = { kind: "offboarding", stack: "dedicated-acme-prod", workflowId: ctx.workflowId, backupId: "42", gracePeriodEndedAt: "2026-04-01T09:00:00.000Z" } as unknown as ProtectionRelease;
    await expect(runner.destroy("dedicated-megacorp-prod", ctx, release)).rejects.toThrow(/does not cover dedicated-megacorp-prod/);
    const { runId } = await runner.destroy("dedicated-acme-prod", ctx, release);
    const run = await h.cp.runs.get(runId);
    expect(run).toMatchObject({ operation: "destroy", state: "succeeded", options: { unprotect: true, release: { kind: "offboarding", backupId: "42", workflowId: ctx.workflowId } } });
    const log = commandLog(h.stateDir).filter((c) => c.args.includes("dedicated-acme-prod"));
    const unprotect = log.findIndex((c) => c.args[0] === "state" && c.args[1] === "unprotect");
    expect(unprotect).toBeGreaterThanOrEqual(0);
    expect(log.slice(unprotect).some((c) => c.args[0] === "destroy")).toBe(true);
    expect(stackState(h.stateDir, "dedicated-acme-prod")!.destroyed).toBe(true);
  });
});

describe("RunStoreStackRunner when the stack already has a queued run of the other operation", () => {
  // Its own control plane, with the run workers started only when the test says so.
  let h2: Harness;
  beforeAll(async () => {
    h2 = await startHarness({ pg, start: {} });
  });
  afterAll(async () => {
    await h2?.close();
  });
  const releaseFor = (stack: string) =>
    ({ kind: "offboarding", stack, workflowId: ctx.workflowId, backupId: "7", gracePeriodEndedAt: "2026-04-01T09:00:00.000Z" }) as unknown as ProtectionRelease;

  it("waits for the stack's runs to end, then queues the destroy, which runs after the up; gives up, saying why, when they do not end", async () => {
    const stack = "dedicated-acme-prod";
    // What a commit on the main branch does by itself: an `up` of the stack, queued.
    const [up] = await h2.cp.runs.enqueueAll([stack], { reason: "change committed on main" });
    // The queue refuses a destroy next to a queued up.
    await expect(h2.cp.runs.enqueueAll([stack], { reason: "direct", operation: "destroy" })).rejects.toBeInstanceOf(RunConflictError);

    // No worker runs yet, so the up never ends: a runner with a short wait gives up with a clear error.
    const impatient = new RunStoreStackRunner(h2.cp.runs, { pollMs: 50, timeoutMs: 300 });
    const err = await impatient.destroy(stack, ctx, releaseFor(stack)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunConflictGaveUpError);
    expect((err as Error).message).toMatch(new RegExp(`^destroy of ${stack} could not be queued: it conflicts with the stack's queued up run ${up!.runId}, which did not end in time`));
    expect((await h2.cp.runs.list({ stacks: [stack] })).map((r) => r.id)).toEqual([up!.runId]);

    // A patient runner waits; once the workers start, the up runs, then the destroy is queued and runs.
    const runner = new RunStoreStackRunner(h2.cp.runs, { pollMs: 50, timeoutMs: 60_000 });
    const destroyed = runner.destroy(stack, ctx, releaseFor(stack));
    await new Promise((r) => setTimeout(r, 300));
    expect((await h2.cp.runs.list({ stacks: [stack] })).map((r) => r.id)).toEqual([up!.runId]);
    await h2.cp.start({ runs: true });
    const { runId } = await destroyed;
    const upRun = (await h2.cp.runs.get(up!.runId))!;
    const destroyRun = (await h2.cp.runs.get(runId))!;
    expect(upRun).toMatchObject({ operation: "up", state: "succeeded" });
    expect(destroyRun).toMatchObject({ operation: "destroy", state: "succeeded", options: { unprotect: true, release: { backupId: "7" } } });
    expect(Date.parse(destroyRun.createdAt)).toBeGreaterThanOrEqual(Date.parse(upRun.finishedAt!));
    const commands = commandLog(h2.stateDir).filter((c) => c.args.includes(stack)).map((c) => c.args[0]);
    expect(commands.indexOf("up")).toBeGreaterThanOrEqual(0);
    expect(commands.indexOf("destroy")).toBeGreaterThan(commands.indexOf("up"));
    expect(stackState(h2.stateDir, stack)!.destroyed).toBe(true);
  });

  it("asks again a bounded number of times when every wait ends in another conflict", async () => {
    let enqueues = 0;
    const waited: string[] = [];
    const inFlight = { id: "00000000-0000-4000-8000-000000000009", state: "queued", operation: "up" } as RunRecord;
    const queue: RunQueue = {
      enqueueAll: async () => {
        enqueues++;
        throw new RunConflictError("stack dedicated-acme-staging already has a queued up run with other options; retry once it has started");
      },
      list: async () => [inFlight],
      // Holds play no part here (this test never holds a stack).
      hold: async () => [],
      release: async () => [],
      holdsOn: async () => [],
      waitFor: async (id) => {
        waited.push(id);
        return { ...inFlight, state: "succeeded" };
      },
    };
    const err = await new RunStoreStackRunner(queue, { conflictRetries: 3 }).destroy("dedicated-acme-staging", ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunConflictGaveUpError);
    expect((err as Error).message).toBe(
      `destroy of dedicated-acme-staging could not be queued: after waiting 3 time(s) for the stack's other runs (${[inFlight.id, inFlight.id, inFlight.id].join(", ")}), ` +
        "it still conflicts: stack dedicated-acme-staging already has a queued up run with other options; retry once it has started. " +
        "Let the stack's runs finish (GET /api/tenants/:id lists them) and the workflow retries this step",
    );
    expect(enqueues).toBe(4);
    expect(waited).toHaveLength(3);
  });
});

describe("RunStoreStackRunner.moveState", () => {
  // Its own control plane, with the run workers started only when the test says so. The stacks'
  // resources are seeded into the CLI test double's state: nothing was deployed.
  let h3: Harness;
  beforeAll(async () => {
    h3 = await startHarness({ pg, start: {} });
  });
  afterAll(async () => {
    await h3?.close();
  });
  const SRC = "shared-prod-use1-01";
  const DEST = "dedicated-acme-prod";
  const C = "saas-tenancy:components";
  const urn = (stack: string, type: string, name: string) => `urn:pulumi:${stack}::saas-tenancy::${type}::${name}`;
  const root = (stack: string) => urn(stack, "pulumi:pulumi:Stack", `saas-tenancy-${stack}`);
  const role = urn(SRC, `${C}:PooledTenant$${C}:TenantRole`, "tenant-acme-role");
  const key = urn(SRC, `${C}:PooledTenant$${C}:EncryptionKey`, "tenant-acme-key");
  const inDest = (u: string) => u.replace(`urn:pulumi:${SRC}::`, `urn:pulumi:${DEST}::`);

  it("refuses a move without URNs or within one stack, queueing nothing", async () => {
    const runner = new RunStoreStackRunner(h3.cp.runs, { pollMs: 50, timeoutMs: 1_000 });
    await expect(runner.moveState({ source: SRC, dest: DEST, urns: [] }, ctx)).rejects.toThrow(`state move from ${SRC} to ${DEST}: no URNs given`);
    await expect(runner.moveState({ source: DEST, dest: DEST, urns: [role] }, ctx)).rejects.toThrow(`state move from ${DEST} to ${DEST}: the source and destination are the same stack`);
    await expect(runner.moveState({ source: SRC, dest: DEST, urns: [" "] }, ctx)).rejects.toThrow(/1 of the URNs given are empty/);
    expect(await h3.cp.runs.list({ stacks: [SRC, DEST] })).toEqual([]);
  });

  it("waits for the source stack's in-flight run, then moves on the destination's queue and returns the run's outcome", async () => {
    seedResources(h3.stateDir, SRC, [
      { urn: root(SRC), type: "pulumi:pulumi:Stack" },
      { urn: urn(SRC, `${C}:PooledTenant`, "tenant-acme"), type: `${C}:PooledTenant`, parent: root(SRC) },
      { urn: role, type: `${C}:TenantRole`, parent: urn(SRC, `${C}:PooledTenant`, "tenant-acme") },
    ]);
    seedResources(h3.stateDir, DEST, [{ urn: root(DEST), type: "pulumi:pulumi:Stack" }]);
    // What a commit on the main branch does by itself: an `up` of the cell, queued; no worker runs yet.
    const [up] = await h3.cp.runs.enqueueAll([SRC], { reason: "change committed on main" });

    // A runner with a short wait gives up, naming the source's run, and queues nothing.
    const impatient = new RunStoreStackRunner(h3.cp.runs, { pollMs: 50, timeoutMs: 300 });
    const err = await impatient.moveState({ source: SRC, dest: DEST, urns: [role] }, ctx).then(() => undefined, (e: unknown) => e as Error);
    expect(err).toBeInstanceOf(RunConflictGaveUpError);
    expect(err!.message).toMatch(new RegExp(`^state move from ${SRC} to ${DEST} could not start: the source stack ${SRC}'s queued up run ${up!.runId} did not end in time`));
    expect(await h3.cp.runs.list({ stacks: [DEST] })).toEqual([]);

    // A patient runner queues nothing while the source's run is in flight...
    const runner = new RunStoreStackRunner(h3.cp.runs, { pollMs: 50, timeoutMs: 60_000 });
    const moving = runner.moveState({ source: SRC, dest: DEST, urns: [role, key] }, ctx);
    await new Promise((r) => setTimeout(r, 300));
    expect(await h3.cp.runs.list({ stacks: [DEST] })).toEqual([]);
    // ...and moves once it has ended.
    await h3.cp.start({ runs: true });
    const outcome = await moving;
    expect(outcome).toMatchObject({ moved: [role], alreadyMoved: [], missing: [key] });
    const upRun = (await h3.cp.runs.get(up!.runId))!;
    const moveRun = (await h3.cp.runs.get(outcome.runId))!;
    expect(upRun).toMatchObject({ stack: SRC, operation: "up", state: "succeeded" });
    expect(moveRun).toMatchObject({ stack: DEST, operation: "move", state: "succeeded", options: { source: SRC, urns: [role, key] } });
    expect(moveRun.reasons.join(" ")).toContain(`lifecycle workflow ${ctx.workflowId}`);
    expect(Date.parse(moveRun.createdAt)).toBeGreaterThanOrEqual(Date.parse(upRun.finishedAt!));
    const commands = commandLog(h3.stateDir).map((c) => c.args.slice(0, 2).join(" "));
    expect(commands.indexOf("state move")).toBeGreaterThan(commands.indexOf("up"));
    expect(stackState(h3.stateDir, DEST)!.resources!.map((r) => r.urn)).toContain(inDest(role));
    expect(stackState(h3.stateDir, SRC)!.resources!.map((r) => r.urn)).not.toContain(role);

    // Asked again (a retried workflow step): a new run, nothing left to move, the CLI not called again.
    const again = await runner.moveState({ source: SRC, dest: DEST, urns: [role, key] }, ctx);
    expect(again.runId).not.toBe(outcome.runId);
    expect(again).toMatchObject({ moved: [], alreadyMoved: [role], missing: [key] });
    expect(commandLog(h3.stateDir).filter((c) => c.args[0] === "state" && c.args[1] === "move")).toHaveLength(1);
  });

  it("fails with the run's error when the move run fails", async () => {
    const runner = new RunStoreStackRunner(h3.cp.runs, { pollMs: 50, timeoutMs: 60_000 });
    const gone = "shared-prod-gone-01";
    await expect(runner.moveState({ source: gone, dest: "dedicated-megacorp-prod", urns: [renameStackInUrn(key, gone)] }, ctx)).rejects.toThrow(
      /^state move from shared-prod-gone-01 to dedicated-megacorp-prod failed \(run [0-9a-f-]{36}\): .*no stack named 'shared-prod-gone-01' found/s,
    );
  });
});
