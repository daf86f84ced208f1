/**
 * State moves (`pulumi state move`) of the control plane: the runners' moveState against the Pulumi
 * CLI test double (support/fakePulumiCli.ts: `stack export` and `state move` emulated over
 * deployments kept in its state directory; no real Pulumi runs and nothing is deployed), the
 * migration that lets a run be a move (live PostgreSQL), and the run worker dispatching a move run.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createPool } from "../../automation/db/database.ts";
import { loadMigrations, migrate } from "../../automation/db/migrate.ts";
import { createLogger } from "../../automation/log.ts";
import { DeploymentsRunner, LocalAutomationRunner, type RunContext } from "../../automation/runs/runner.ts";
import { stateMoveSummaryOf } from "../../automation/runs/store.ts";
import {
  commandLog,
  FakePulumiCommand,
  installFakePulumiBinary,
  seedResources,
  stackState,
  type FakePulumiOptions,
  type FakeResource,
} from "./support/fakePulumi.ts";
import { startHarness, waitFor, type Harness } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";

const SRC = "shared-prod-use1-01";
const DEST = "dedicated-acme-prod";
const PROJECT = "saas-tenancy";
const C = "saas-tenancy:components";

const rootUrn = (stack: string) => `urn:pulumi:${stack}::${PROJECT}::pulumi:pulumi:Stack::${PROJECT}-${stack}`;
const urnIn = (stack: string, type: string, name: string) => `urn:pulumi:${stack}::${PROJECT}::${type}::${name}`;
const rename = (urn: string, stack: string) => urn.replace(/^urn:pulumi:[^:]+::/, `urn:pulumi:${stack}::`);

// The cell's resources of tenant acme, in the shape the CLI double's `stack export` prints.
const provider = urnIn(SRC, "pulumi:providers:aws", "default_7_0_0");
const tenant = urnIn(SRC, `${C}:PooledTenant`, "tenant-acme");
const role = urnIn(SRC, `${C}:PooledTenant$${C}:TenantRole`, "tenant-acme-role");
const roleChild = urnIn(SRC, `${C}:PooledTenant$${C}:TenantRole$aws:iam/role:Role`, "tenant-acme-role");
const database = urnIn(SRC, `${C}:PooledTenant$${C}:ConnectionSecret`, "tenant-acme-database");
const secrets = urnIn(SRC, `${C}:PooledTenant$${C}:TenantSecrets`, "tenant-acme-secrets");
const key = urnIn(SRC, `${C}:PooledTenant$${C}:EncryptionKey`, "tenant-acme-key");

function sourceResources(stack = SRC): FakeResource[] {
  const u = (urn: string) => rename(urn, stack);
  return [
    { urn: rootUrn(stack), type: "pulumi:pulumi:Stack", custom: false },
    { urn: u(provider), type: "pulumi:providers:aws", custom: true, id: "p-1", parent: rootUrn(stack) },
    { urn: u(tenant), type: `${C}:PooledTenant`, custom: false, parent: rootUrn(stack) },
    { urn: u(role), type: `${C}:TenantRole`, custom: false, parent: u(tenant) },
    { urn: u(roleChild), type: "aws:iam/role:Role", custom: true, id: "tenant-acme-prod", parent: u(role), provider: `${u(provider)}::p-1` },
    { urn: u(secrets), type: `${C}:TenantSecrets`, custom: false, parent: u(tenant) },
  ];
}
/** The destination already holds the connection secret (an earlier move). */
function destResources(stack = DEST, from = SRC): FakeResource[] {
  return [
    { urn: rootUrn(stack), type: "pulumi:pulumi:Stack", custom: false },
    { urn: rename(rename(database, from), stack), type: `${C}:ConnectionSecret`, custom: false, parent: rootUrn(stack) },
  ];
}
const urnsOf = (stateDir: string, stack: string) => (stackState(stateDir, stack)?.resources ?? []).map((r) => r.urn);
const moves = (stateDir: string) => commandLog(stateDir).filter((c) => c.args[0] === "state" && c.args[1] === "move");

function runContext(workDir: string, stack = DEST): RunContext {
  return {
    runId: "00000000-0000-4000-8000-0000000000aa", stack, workDir, commit: "0123456789abcdef0123456789abcdef01234567", attempt: 1,
    recovering: false, signal: new AbortController().signal, onEvent: () => undefined, onOutput: () => undefined, log: createLogger("silent"),
  };
}

describe("LocalAutomationRunner.moveState (CLI test double in process)", () => {
  let dir: string;
  let stateDir: string;
  let workDir: string;
  const runner = (fake: Partial<FakePulumiOptions> = {}) =>
    new LocalAutomationRunner({ retries: 2, baseMs: 10, pulumiCommand: new FakePulumiCommand({ stateDir, ...fake }).asPulumiCommand() });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "tenancy-move-"));
    stateDir = join(dir, "state");
    workDir = join(dir, "checkout");
    seedResources(stateDir, SRC, sourceResources());
    seedResources(stateDir, DEST, destResources());
    // The checkout only has to exist: the double runs no program.
    mkdirSync(workDir);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("sorts the URNs, moves only those in the source with `pulumi state move` in the checkout, and checks the result", async () => {
    const outcome = await runner().moveState(runContext(workDir), { source: SRC, urns: [role, database, key] });
    expect(outcome.summary).toEqual({ kind: "state-move", source: SRC, dest: DEST, moved: [role], alreadyMoved: [database], missing: [key], children: [roleChild] });
    expect(outcome.outputs).toEqual({});
    expect(outcome.stdoutTail).toContain(`Planning to move the following resources from ${SRC} to ${DEST}`);

    const log = commandLog(stateDir);
    expect(log.map((c) => c.args.slice(0, 2).join(" "))).toEqual(["stack select", "stack export", "stack export", "state move", "stack export", "stack export"]);
    const [move] = moves(stateDir);
    expect(move!.args).toEqual(["state", "move", "--source", SRC, "--dest", DEST, "--yes", role]);
    expect(move!.cwd).toBe(workDir);
    expect(log.filter((c) => c.args[1] === "export").map((c) => c.args.slice(2))).toEqual([
      ["--show-secrets", "--stack", SRC], ["--show-secrets", "--stack", DEST], ["--show-secrets", "--stack", SRC], ["--show-secrets", "--stack", DEST],
    ]);

    // The role and its child left the cell; in the destination under renamed URNs, re-parented.
    expect(urnsOf(stateDir, SRC)).toEqual([rootUrn(SRC), provider, tenant, secrets]);
    const dest = stackState(stateDir, DEST)!.resources!;
    expect(dest.find((r) => r.urn === rename(role, DEST))!.parent).toBe(rootUrn(DEST));
    expect(dest.find((r) => r.urn === rename(roleChild, DEST))!.parent).toBe(rename(role, DEST));
  });

  it("creates a destination that does not exist yet (a dedicated stack before its first update) and moves into it", async () => {
    const fresh = "dedicated-newco-prod";
    expect(stackState(stateDir, fresh)).toBeUndefined();
    const outcome = await runner().moveState(runContext(workDir, fresh), { source: SRC, urns: [role] });
    expect(outcome.summary).toMatchObject({ moved: [role], alreadyMoved: [], missing: [] });
    expect(commandLog(stateDir).slice(0, 2).map((c) => c.args)).toEqual([["stack", "select", "--stack", fresh], ["stack", "init", fresh]]);
    expect(urnsOf(stateDir, fresh)).toEqual(expect.arrayContaining([rename(role, fresh), rename(roleChild, fresh)]));
  });

  it("does not run the CLI when nothing is left to move (a retried step), and says what it found", async () => {
    await runner().moveState(runContext(workDir), { source: SRC, urns: [role] });
    const before = commandLog(stateDir).length;
    const again = await runner().moveState(runContext(workDir), { source: SRC, urns: [role, database, key, role] });
    expect(again.summary).toEqual({ kind: "state-move", source: SRC, dest: DEST, moved: [], alreadyMoved: [role, database], missing: [key] });
    expect(again.concurrentUpdateRetries).toBe(0);
    const after = commandLog(stateDir).slice(before);
    expect(after.map((c) => c.args.slice(0, 2).join(" "))).toEqual(["stack select", "stack export", "stack export"]);
    expect(moves(stateDir)).toHaveLength(1);
    // All missing: still no CLI call (it would fail with "no resources found to move").
    const none = await runner().moveState(runContext(workDir), { source: SRC, urns: [key] });
    expect(none.summary.missing).toEqual([key]);
    expect(moves(stateDir)).toHaveLength(1);
  });

  it("fails, naming the URNs and both stacks, when the CLI reports success but the states do not show the move", async () => {
    const err = await runner({ stateMoveSavesNothing: true })
      .moveState(runContext(workDir), { source: SRC, urns: [role] })
      .then(() => new Error("the move did not fail"), (e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain(`state move of run 00000000-0000-4000-8000-0000000000aa from ${SRC} to ${DEST}: the CLI reported success but 2 resource(s) are not where the move puts them`);
    expect(err.message).toContain(`${role} (still in ${SRC}, not in ${DEST} as ${rename(role, DEST)})`);
    expect(err.message).toContain(`${roleChild} (still in ${SRC}, not in ${DEST} as ${rename(roleChild, DEST)})`);
    expect(moves(stateDir)).toHaveLength(1);
  });

  it("refuses, before running the CLI, a provider, a URN in both stacks, a URN of another stack, and a missing stack", async () => {
    const ctx = runContext(workDir);
    await expect(runner().moveState(ctx, { source: SRC, urns: [provider] })).rejects.toThrow(/providers and the root stack resource cannot be listed .*pulumi:providers:aws::default_7_0_0/);
    await expect(runner().moveState(ctx, { source: SRC, urns: [rootUrn(SRC)] })).rejects.toThrow(/providers and the root stack resource cannot be listed/);
    await expect(runner().moveState(ctx, { source: SRC, urns: [rename(role, "shared-prod-use1-02")] })).rejects.toThrow(
      new RegExp(`not URNs of the source stack \\(urn:pulumi:${SRC}::<project>::<type>::<name>\\): urn:pulumi:shared-prod-use1-02::`),
    );
    await expect(runner().moveState(ctx, { source: SRC, urns: ["tenant-acme-role"] })).rejects.toThrow(/not URNs of the source stack/);
    await expect(runner().moveState(ctx, { source: SRC, urns: [] })).rejects.toThrow(/no URNs given/);
    await expect(runner().moveState(ctx, { source: DEST, urns: [rename(role, DEST)] })).rejects.toThrow(/the source and destination are the same stack/);
    // The secrets component in both stacks: a move that saved the destination but not the source.
    seedResources(stateDir, DEST, [...destResources(), { urn: rename(secrets, DEST), type: `${C}:TenantSecrets`, parent: rootUrn(DEST) }]);
    await expect(runner().moveState(ctx, { source: SRC, urns: [role, secrets] })).rejects.toThrow(
      new RegExp(`1 resource\\(s\\) are in both stacks .*: ${secrets.replace(/[$]/g, "\\$")}\\. .*pulumi state delete --stack ${SRC} <urn>`),
    );
    await expect(runner().moveState(runContext(workDir), { source: "shared-prod-nowhere-99", urns: [rename(role, "shared-prod-nowhere-99")] })).rejects.toThrow(
      /reading the state of stack shared-prod-nowhere-99 failed: error: no stack named 'shared-prod-nowhere-99' found; the stack must exist/,
    );
    expect(moves(stateDir)).toHaveLength(0);
    expect(urnsOf(stateDir, SRC)).toContain(role);
  });
});

describe("DeploymentsRunner.moveState (CLI test double on PATH)", () => {
  it("moves through the CLI on PATH with fully qualified stack names, URNs keeping the short name", async () => {
    const root = mkdtempSync(join(tmpdir(), "tenancy-move-remote-"));
    const stateDir = join(root, "state");
    const fake = installFakePulumiBinary(root, { stateDir });
    const path = process.env.PATH;
    process.env.PATH = `${join(root, "bin")}${delimiter}${path}`;
    try {
      const q = (stack: string) => `acme-platform/saas-tenancy/${stack}`;
      seedResources(stateDir, q(SRC), sourceResources());
      seedResources(stateDir, q(DEST), destResources());
      const runner = new DeploymentsRunner({ retries: 0, baseMs: 10, settings: { org: "acme-platform", project: "saas-tenancy", repoUrl: "https://github.com/example/fleet.git" } });
      const outcome = await runner.moveState(runContext(root), { source: SRC, urns: [role, database] });
      expect(outcome.summary).toMatchObject({ moved: [role], alreadyMoved: [database], missing: [] });
      const [move] = moves(stateDir);
      expect(move!.args).toEqual(["state", "move", "--source", q(SRC), "--dest", q(DEST), "--yes", role]);
      expect(move!.cwd).toBe(root);
      expect(move!.pid).not.toBe(process.pid);
      expect(urnsOf(stateDir, q(DEST))).toContain(rename(role, DEST));
      expect(urnsOf(stateDir, q(SRC))).not.toContain(role);
    } finally {
      process.env.PATH = path;
      fake.dispose();
      rmSync(root, { recursive: true, force: true });
    }
  });
});

let pgServer: TestPostgres;
beforeAll(async () => {
  pgServer = await startTestPostgres();
});
afterAll(async () => {
  await pgServer?.stop();
});

describe("migration 002 (live PostgreSQL)", () => {
  it("lets a database created before it hold move runs, and only with a source and URNs", async () => {
    const pool = createPool(await pgServer.newDatabase());
    try {
      const all = loadMigrations();
      expect(all.map((m) => `${m.version}_${m.name}`)).toContain("2_move_runs");
      await migrate(pool, all.filter((m) => m.version < 2));
      const insert = (operation: string, options: unknown, stack = DEST) =>
        pool.query("INSERT INTO runs (stack, operation, options, state) VALUES ($1, $2, $3::jsonb, 'succeeded') RETURNING id", [stack, operation, JSON.stringify(options)]);
      await insert("up", {});
      await insert("destroy", { unprotect: true });
      await expect(insert("move", { source: SRC, urns: [role] })).rejects.toThrow(/runs_operation_check/);

      expect(await migrate(pool)).toEqual(all.filter((m) => m.version >= 2).map((m) => m.version));
      expect(await migrate(pool)).toEqual([]);
      await insert("move", { source: SRC, urns: [role, database] });
      await insert("up", {});
      await expect(insert("plan", {})).rejects.toThrow(/runs_operation_check/);
      await expect(insert("move", { urns: [role] })).rejects.toThrow(/runs_move_options/);
      await expect(insert("move", { source: SRC, urns: [] })).rejects.toThrow(/runs_move_options/);
      await expect(insert("move", { source: SRC, urns: role })).rejects.toThrow(/runs_move_options/);
      await expect(insert("move", { source: DEST, urns: [role] })).rejects.toThrow(/runs_move_options/);
      const { rows } = await pool.query<{ operation: string; n: string }>("SELECT operation, count(*) AS n FROM runs GROUP BY operation ORDER BY operation");
      expect(rows.map((r) => [r.operation, Number(r.n)])).toEqual([["destroy", 1], ["move", 1], ["up", 2]]);
    } finally {
      await pool.end();
    }
  });
});

describe("move runs on the control plane's queue and workers", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ pg: pgServer });
  });
  afterAll(async () => {
    await h?.close();
  });
  const finished = (id: string) =>
    waitFor(`run ${id} to finish`, async () => {
      const r = await h.cp.runs.get(id);
      return r && (r.state === "succeeded" || r.state === "failed") ? r : undefined;
    }, 30_000);

  it("dispatches a move run to the runner's moveState in the run's checkout and records the outcome as output.summary", async () => {
    seedResources(h.stateDir, SRC, sourceResources());
    seedResources(h.stateDir, DEST, destResources());
    const [queued] = await h.cp.runs.enqueueAll([DEST], { reason: "test: hand over acme", operation: "move", options: { source: SRC, urns: [role, database, key] } });
    const run = await finished(queued!.runId);
    expect(run.error).toBeNull();
    expect(run).toMatchObject({ stack: DEST, operation: "move", state: "succeeded", options: { source: SRC, urns: [role, database, key] } });
    expect(stateMoveSummaryOf(run)).toEqual({ kind: "state-move", source: SRC, dest: DEST, moved: [role], alreadyMoved: [database], missing: [key], children: [roleChild] });
    expect(run.output).toMatchObject({ commit: run.commit, outputs: {}, concurrentUpdateRetries: 0 });
    const [move] = moves(h.stateDir);
    expect(move!.args).toEqual(["state", "move", "--source", SRC, "--dest", DEST, "--yes", role]);
    expect(move!.cwd).toBe(join(h.cp.writer.trees.runsDir, `run-${run.id}-1`, "p"));
    expect(urnsOf(h.stateDir, DEST)).toEqual(expect.arrayContaining([rename(role, DEST), rename(roleChild, DEST)]));
    // Nothing was deployed: the worker ran no update.
    expect(commandLog(h.stateDir).some((c) => c.args[0] === "up")).toBe(false);
  });

  it("holds back an update of the source stack while a move out of it runs, and starts it when the move ends", async () => {
    const pool = h.cp.db.pool;
    // A move out of SRC, running on a worker that is still alive (heartbeat now).
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO runs (stack, operation, options, state, worker, heartbeat_at, started_at, attempts, reasons)
       VALUES ($1, 'move', $2::jsonb, 'running', 'worker-holding-the-move', now(), now(), 1, ARRAY['test: a move in flight']) RETURNING id`,
      [DEST, JSON.stringify({ source: SRC, urns: [secrets] })],
    );
    const moveId = rows[0]!.id;
    const [up] = await h.cp.runs.enqueueAll([SRC], { reason: "test: an update of the source" });
    // Queued without a job: no worker may start it while the move rewrites the source's state.
    const held = await pool.query<{ state: string; job_id: string | null }>("SELECT state, job_id FROM runs WHERE id = $1", [up!.runId]);
    expect(held.rows[0]).toEqual({ state: "queued", job_id: null });
    expect(await h.cp.runs.finish(moveId, "worker-holding-the-move", { state: "succeeded", output: null })).toBe(true);
    const ran = await finished(up!.runId);
    expect(ran.state).toBe("succeeded");
    expect(Date.parse(ran.startedAt!)).toBeGreaterThanOrEqual(Date.parse((await h.cp.runs.get(moveId))!.finishedAt!));
  });

  it("records a move that cannot run as a failed run with the runner's reason", async () => {
    const gone = "shared-prod-gone-01";
    const [queued] = await h.cp.runs.enqueueAll([DEST], { reason: "test: from a stack that does not exist", operation: "move", options: { source: gone, urns: [rename(secrets, gone)] } });
    const run = await finished(queued!.runId);
    expect(run.state).toBe("failed");
    expect(run.error).toMatch(/reading the state of stack shared-prod-gone-01 failed: error: no stack named 'shared-prod-gone-01' found/);
    expect(urnsOf(h.stateDir, SRC)).toContain(secrets);
  });

  it("refuses to queue a move run without its source and URNs (the migration's constraint)", async () => {
    await expect(h.cp.runs.enqueueAll([DEST], { reason: "test: no urns", operation: "move", options: { source: SRC } })).rejects.toThrow(/runs_move_options/);
  });
});
