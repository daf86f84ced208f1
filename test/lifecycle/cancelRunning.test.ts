/**
 * An upgrade (and a cell move) cancelled while its copy.data step copies a large table, on live PostgreSQL
 * (harness.ts says what is real and what stands in). The copy is held mid-stream by a proxy in
 * front of the cell (test/support/pgGate.ts: the cell's COPY of the large table stops after 256 KiB
 * until released), so the cancel lands while both COPY statements run. The cancel is asked of
 * another engine (its own pool: another control-plane process; only PostgreSQL carries it), and
 * the process running the step stops it: sessions ended on both servers, the target transaction
 * rolled back, then the upgrade's clean-up (slot and publication dropped) and state `cancelled`.
 * Negative control: the same step declared not interruptible runs to its end (the copy committed)
 * and the workflow ends cancelled only after it. Crash: the process dies as it learns of the cancel
 * (a request written without the NOTIFY: learnt by polling); its next run ends the workflow
 * cancelled instead of resuming the copy.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool } from "../../automation/db/database.ts";
import { WorkflowEngine, type EngineHooks } from "../../automation/lifecycle/engine/engine.ts";
import { requestOnlyPorts } from "../../automation/lifecycle/requestPorts.ts";
import { copyData } from "../../automation/lifecycle/workflows/cutover.ts";
import { LIFECYCLE_WORKFLOWS } from "../../automation/lifecycle/workflows/registry.ts";
import { moveWorkflow } from "../../automation/lifecycle/workflows/move.ts";
import { upgradeWorkflow } from "../../automation/lifecycle/workflows/upgrade.ts";
import { pgTenantIdent } from "../../infra/model/naming.ts";
import { startPgGate, type PgGate } from "../support/pgGate.ts";
import { CELL, CELL2, createScenario, SimulatedCrash, startBench, TENANT_PASSWORD, type Bench, type Scenario } from "./harness.ts";
import { docOf, phaseOf, slotsOn, tenantLogin } from "./probes.ts";
import { connect, createApplicationSchema, qi, withDb, type DbRef } from "./tenantDb.ts";

const ALLOW = 256 * 1024;
/** 20,000 rows of 1 KiB: some 20 MiB, far more than the gate lets through. */
const BIG_ROWS = 20_000;

let bench: Bench;
beforeAll(async () => {
  bench = await startBench();
});
afterAll(async () => {
  await bench?.stop();
});

const on = withDb;

/** Polls `read` until it returns `want` (at most 60 s): the servers end a terminated backend asynchronously. */
async function until<T>(read: () => Promise<T>, want: T): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const got = await read();
    if (JSON.stringify(got) === JSON.stringify(want) || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Sessions on the database other than the probe's own (the copy's, once it was stopped, must be gone). */
const otherSessions = (db: DbRef) =>
  on(db, async (c) => (await c.query<{ q: string }>("SELECT left(query, 40) AS q FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() ORDER BY 1", [db.database])).rows.map((r) => r.q));

/** Relations left in the tenant's schema where the copy goes. */
const dedicatedRelations = (s: Scenario, kind: Kind = "upgrade") =>
  on(destination(s, kind), async (c) => Number((await c.query<{ n: string }>("SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1", [pgTenantIdent(s.tenant)])).rows[0]!.n));

interface Gated {
  s: Scenario;
  gate: PgGate;
  id: string;
  run: Promise<unknown>;
  /** Another control-plane process over the same database (its own pool and engine; it runs nothing). */
  other: WorkflowEngine;
  close(): Promise<void>;
}

type Kind = "upgrade" | "move";

/** Where the copy goes: the dedicated database, or the cell a move goes to. */
const destination = (s: Scenario, kind: Kind): DbRef => (kind === "move" ? s.cell2! : s.ded);

/** A scenario whose cell is reached through a gate; the upgrade (or move) started and held mid-copy of the large table. */
async function gatedCopy(prefix: string, hooks?: EngineHooks, kind: Kind = "upgrade"): Promise<Gated> {
  const gate = await startPgGate({ host: bench.cellServer.host, port: bench.cellServer.port }, /COPY "tenant_[^"]+"\."events" [^\0]*TO STDOUT/, ALLOW);
  const s = await createScenario(bench, { prefix }, {
    ...(hooks ? { hooks } : {}),
    secondCell: kind === "move",
    // Only the cell left goes through the gate (a move's destination is on the other server).
    databases: (real) => ({ ...real, cell: async (env, cell) => (cell === CELL ? { ...(await real.cell(env, cell)), host: gate.host, port: gate.port } : real.cell(env, cell)) }),
  });
  const ident = pgTenantIdent(s.tenant);
  await createApplicationSchema(s.cell, ident, TENANT_PASSWORD, 20);
  const owner = await connect(s.cell, { user: ident, password: TENANT_PASSWORD });
  try {
    await owner.query(`INSERT INTO ${qi(ident)}.events SELECT repeat(md5(g::text), 32), now(), NULL FROM generate_series(1, $1) g`, [BIG_ROWS]);
  } finally {
    await owner.end();
  }
  const id = (kind === "move" ? await s.service.requestMove(s.tenant, { env: "prod", to: CELL2 }) : await s.service.requestUpgrade(s.tenant)).id;
  const run = s.service.engine.run(id);
  run.catch(() => undefined);
  await gate.gated;
  const other = await otherProcess(s);
  const close = async () => {
    gate.release();
    await other.close();
    await s.close();
    await gate.close();
  };
  try {
    // Mid-copy: the step runs, the slot exists, the destination is loading the table.
    expect(await s.service.engine.get(id)).toMatchObject({ state: "running", currentStep: "copy.data" });
    expect(await slotsOn(s.cell)).toHaveLength(1);
    expect((await otherSessions(destination(s, kind))).some((q) => q.startsWith('COPY "tenant_'))).toBe(true);
  } catch (err) {
    await close();
    throw err;
  }
  return { s, gate, id, run, other: other.engine, close };
}

/** Another control-plane process: its own pool and engine over the same database; it runs nothing. */
async function otherProcess(s: Scenario) {
  const cfg = s.pool.options;
  const pool = createPool({ host: cfg.host!, port: cfg.port!, user: cfg.user!, password: cfg.password as string, database: cfg.database! }, 2);
  return { engine: new WorkflowEngine(pool, requestOnlyPorts(), LIFECYCLE_WORKFLOWS), close: () => pool.end() };
}

const stepsBefore = (kind: Kind) => {
  const steps = (kind === "move" ? moveWorkflow : upgradeWorkflow).steps;
  return steps.slice(0, steps.findIndex((x) => x.name === "copy.data")).map((x) => x.name);
};
const before = stepsBefore("upgrade");

/** The tenant serves from its cell: it logs in and writes there, its document names the cell, its file still records the upgrade. */
async function servesFromCell(s: Scenario) {
  const ident = pgTenantIdent(s.tenant);
  const c = await connect(s.cell, { user: ident, password: TENANT_PASSWORD });
  try {
    await c.query(`INSERT INTO ${qi(ident)}.customers (email, name, mood) VALUES ('after-cancel@example.com', 'after', 'ok')`);
  } finally {
    await c.end();
  }
  return { login: await tenantLogin(s.cell, s.tenant), doc: docOf(s), phase: phaseOf(s) };
}

describe("an upgrade cancelled while copy.data copies a large table", () => {
  it.each(["upgrade", "move"] as const)("a %s: stops the copy mid-stream (sessions ended, target rolled back), drops the slot and ends cancelled", async (kind) => {
    // Polling every hour: only the NOTIFY can tell the step's process in time.
    const { s, gate, id, run, other, close } = await gatedCopy(kind === "move" ? "crm" : "crc", { cancelPollMs: 3_600_000 }, kind);
    try {
      const asked = await other.cancel(id, "operator: wrong tenant");
      expect(asked).toMatchObject({ id, state: "running", currentStep: "copy.data", cancelRequestedAt: expect.any(Date), finishedAt: null });
      expect(other.cancelInterrupts(asked)).toBe(true);
      // Asked again: the same request.
      expect((await other.cancel(id, "again")).cancelRequestedAt).toEqual(asked.cancelRequestedAt);

      // The process running the step learns it (NOTIFY), stops the step and ends the workflow; the gate is never opened.
      expect(await run).toEqual({ id, state: "cancelled", step: "copy.data" });
      expect(gate.forwardedAfterTrigger()).toBe(ALLOW);
      expect(await s.service.engine.get(id)).toMatchObject({ state: "cancelled", note: "operator: wrong tenant", currentStep: "copy.data" });
      expect((await s.service.engine.steps(id)).map((x) => x.step)).toEqual(stepsBefore(kind));

      // Nothing left on either database: no session of the copy, no slot or publication, nothing in the destination's schema.
      expect(await until(() => otherSessions(destination(s, kind)), [])).toEqual([]);
      expect(await until(() => otherSessions(s.cell), [])).toEqual([]);
      // The proxy hears of a session's end after pg_stat_activity stops listing it (the socket's
      // close is an event of this process): seen once at 1 under load.
      expect(await until(async () => gate.openConnections(), 0)).toBe(0);
      expect(await slotsOn(s.cell)).toEqual([]);
      expect(await on(s.cell, async (c) => (await c.query("SELECT pubname FROM pg_publication")).rows)).toEqual([]);
      expect(await dedicatedRelations(s, kind)).toBe(0);
      expect(s.runner.holds.size).toBe(0);
      expect(s.logs.some((l) => l.message === `change capture dropped: the ${kind} was cancelled`)).toBe(true);
      expect(await servesFromCell(s)).toEqual({ login: "ok", doc: { ...docOf(s), port: s.cell.server.port, database: s.cell.database }, phase: "copying" });
      // The worker never runs it again.
      expect(await s.service.engine.run(id)).toMatchObject({ state: "cancelled" });
    } finally {
      await close();
    }
  }, 240_000);

  it("negative control: a copy.data that is not interruptible runs to its end, and the workflow ends cancelled after it", async () => {
    // Without the abort wiring (before the step starts: the engine reads it then).
    copyData.interruptible = false;
    const { s, gate, id, run, other, close } = await gatedCopy("crn").catch((err: unknown) => {
      copyData.interruptible = true;
      throw err;
    });
    try {
      const asked = await other.cancel(id, "operator: wrong time");
      expect(other.cancelInterrupts(asked)).toBe(false);
      gate.release();
      expect(await run).toEqual({ id, state: "cancelled", step: "cutover.window" });
      // The copy completed and committed: its step is recorded and the dedicated schema holds the tables.
      const steps = await s.service.engine.steps(id);
      expect(steps.map((x) => x.step)).toEqual([...before, "copy.data"]);
      expect(((steps.at(-1)!.output.prod as { rowsCopied: number }).rowsCopied)).toBeGreaterThan(BIG_ROWS);
      expect(await dedicatedRelations(s)).toBeGreaterThan(0);
      // The clean-up still ran: no slot.
      expect(await slotsOn(s.cell)).toEqual([]);
    } finally {
      copyData.interruptible = true;
      await close();
    }
  }, 240_000);

  it("crash: the process dies as it learns of the cancel (by its polling: no NOTIFY); its next run ends the workflow cancelled instead of resuming", async () => {
    const hooks: EngineHooks = {
      cancelPollMs: 200,
      atPoint: (_wf, _step, point) => {
        if (point === "cancel.learned") throw new SimulatedCrash(`kill -9 at ${point}`);
      },
    };
    const { s, gate, id, run, close } = await gatedCopy("crk", hooks);
    try {
      // Written by hand, without the NOTIFY: the step's process learns it by its polling (the safety net).
      await s.pool.query("UPDATE lifecycle_workflows SET cancel_requested_at = now(), cancel_note = 'operator: stop' WHERE id = $1", [id]);
      await expect(run).rejects.toThrow(SimulatedCrash);
      // What the kill left: the request recorded, the workflow open at copy.data, the slot on the cell.
      expect(await s.service.engine.get(id)).toMatchObject({ state: "running", currentStep: "copy.data", cancelRequestedAt: expect.any(Date) });
      expect(await slotsOn(s.cell)).toHaveLength(1);
      gate.release();
      // The restarted worker: due at once, ended cancelled, copy.data never run again.
      const due = await s.service.engine.runDue();
      expect(due).toEqual([{ id, state: "cancelled", step: "copy.data" }]);
      expect(await s.service.engine.get(id)).toMatchObject({ state: "cancelled", note: "operator: stop" });
      expect((await s.service.engine.steps(id)).map((x) => x.step)).toEqual(before);
      expect(await slotsOn(s.cell)).toEqual([]);
      expect(await dedicatedRelations(s)).toBe(0);
      expect((await servesFromCell(s)).login).toBe("ok");
    } finally {
      await close();
    }
  }, 240_000);
});
