/**
 * Scheduled switches and cancels while waiting for them, on live PostgreSQL (harness.ts says what
 * is real and what stands in): an upgrade requested with `cutoverNotBefore` copies, then waits at
 * cutover.window with its change stream applied; cancelled there, its slot is dropped, the tenant
 * keeps serving from its cell, and a rollback (requested after the cancel, with no upgrade open)
 * gives the placement back. The cell move's schedule: the switch does not happen before the time
 * (the fake clock), and does after it; cancelled while it waits, it leaves the tenant on its cell
 * and its rollback gives the placement back.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { afterCancel } from "../../automation/lifecycle/afterCancel.ts";
import { listWorkflows } from "../../automation/lifecycle/listWorkflows.ts";
import { formatWorkflows } from "../../cli/commands/workflows.ts";
import { slotName } from "../../automation/lifecycle/pg/cdc/slot.ts";
import { CATCH_UP_INTERVAL_MS } from "../../automation/lifecycle/workflows/cutover.ts";
import { requireFleet } from "../../infra/model/fleet.ts";
import { pgTenantIdent } from "../../infra/model/naming.ts";
import { CELL2, CELL2_STACK, CELL_STACK, createScenario, startBench, TENANT_PASSWORD, type Bench } from "./harness.ts";
import { docOf, phaseOf, slotsOn, tenantLogin } from "./probes.ts";
import { connect, createApplicationSchema, qi } from "./tenantDb.ts";

let bench: Bench;
beforeAll(async () => {
  bench = await startBench();
});
afterAll(async () => {
  await bench?.stop();
});

describe("a scheduled upgrade", () => {
  it("waits at cutover.window; cancelled there, its slot is dropped and the tenant serves from its cell; a rollback then gives its placement back", async () => {
    const s = await createScenario(bench, { prefix: "scu" });
    try {
      await createApplicationSchema(s.cell, pgTenantIdent(s.tenant), TENANT_PASSWORD, 20);
      const original = requireFleet({ projectDir: s.root }).tenants.get(s.tenant)!.tenant;
      const at = new Date(s.clock.now().getTime() + 6 * 3600_000);
      const up = await s.service.requestUpgrade(s.tenant, { cutoverNotBefore: at });
      const cellDoc = docOf(s);
      // Copied, then waiting: woken every CATCH_UP_INTERVAL_MS to apply the stream, the switch not before `at`.
      expect(await s.service.engine.run(up.id)).toEqual({ id: up.id, state: "waiting", step: "cutover.window", wakeAt: new Date(s.clock.now().getTime() + CATCH_UP_INTERVAL_MS) });
      expect(await slotsOn(s.cell)).toEqual([slotName(up.id, "prod")]);
      expect(phaseOf(s)).toBe("copying");

      const cancelled = await s.service.engine.cancel(up.id, "operator: not this week");
      expect(cancelled).toMatchObject({ state: "cancelled", note: "operator: not this week", wakeAt: null });
      // Nothing holds the cell's WAL; the tenant never stopped serving from its cell.
      expect(await slotsOn(s.cell)).toEqual([]);
      expect(await tenantLogin(s.cell, s.tenant)).toBe("ok");
      expect(docOf(s)).toEqual(cellDoc);
      expect(docOf(s).port).toBe(s.cell.server.port);
      // What its steps did stays: the file still records the upgrade, and the cancel's answer names the rollback.
      expect(phaseOf(s)).toBe("copying");
      expect(afterCancel(cancelled, await s.service.engine.steps(up.id))).toBe(
        `tenant ${s.tenant} serves from its cell as before; its file still records the upgrade: ` +
          `tenantctl upgrade ${s.tenant} --rollback gives its pooled placement back (the dedicated stacks are kept unless --destroy-dedicated)`,
      );

      // No upgrade is open, but the cancelled one is the tenant's latest workflow: its rollback is accepted.
      const rb = await s.service.requestRollback(s.tenant);
      expect(rb.params).toEqual({ upgradeId: up.id, destroyDedicated: false });
      expect(await s.service.engine.run(rb.id)).toMatchObject({ state: "succeeded" });
      expect(requireFleet({ projectDir: s.root }).tenants.get(s.tenant)!.tenant).toEqual(original);
      expect(await tenantLogin(s.cell, s.tenant)).toBe("ok");
      // Now the latest workflow is the rollback: nothing is left to roll back.
      await expect(s.service.requestRollback(s.tenant)).rejects.toThrow(`tenant ${s.tenant} has no upgrade under way; nothing to roll back`);
    } finally {
      await s.close();
    }
  }, 240_000);

  it("an upgrade cancelled before its first step leaves nothing to roll back", async () => {
    const s = await createScenario(bench, { prefix: "scn" });
    try {
      const up = await s.service.requestUpgrade(s.tenant, { cutoverNotBefore: new Date(s.clock.now().getTime() + 3600_000) });
      await s.service.engine.cancel(up.id, "operator");
      await expect(s.service.requestRollback(s.tenant)).rejects.toThrow(`tenant ${s.tenant} has no upgrade under way; nothing to roll back`);
    } finally {
      await s.close();
    }
  });
});

describe("a scheduled cell move", () => {
  it("copies at once, does not switch before its time (the stream applied at each wake-up), and switches after it", async () => {
    const s = await createScenario(bench, { prefix: "scm" }, { secondCell: true });
    const cell2 = s.cell2!;
    const ident = pgTenantIdent(s.tenant);
    const minutes = (n: number) => new Date(s.clock.now().getTime() + n * 60_000);
    try {
      await createApplicationSchema(s.cell, ident, TENANT_PASSWORD, 20);
      const at = minutes(40);
      const wf = await s.service.requestMove(s.tenant, { env: "prod", to: CELL2, cutoverNotBefore: at });
      expect(wf.params).toEqual({ env: "prod", from: "use1-01", to: "use1-02", cutoverNotBefore: at.toISOString() });
      const cellDoc = docOf(s);
      const notSwitched = async () => ({
        login: [await tenantLogin(s.cell, s.tenant), await tenantLogin(cell2, s.tenant)],
        doc: docOf(s),
        phase: phaseOf(s),
        owner: s.runner.owners.get(`identity:${s.tenant}:prod`),
        stateMoves: s.runner.calls.filter((c) => c.op === "move").length,
      });
      const before = { login: ["ok", expect.stringMatching(/is not permitted to log in/)], doc: cellDoc, phase: "copying", owner: CELL_STACK, stateMoves: 0 };

      // Copied, then waiting for the time: woken every CATCH_UP_INTERVAL_MS (15 min) to apply the stream, last at the time itself.
      expect(await s.service.engine.run(wf.id)).toEqual({ id: wf.id, state: "waiting", step: "cutover.window", wakeAt: minutes(15) });
      expect(await notSwitched()).toEqual(before);
      // tenantctl workflows shows when it wakes next and what it waits for.
      const listed = await listWorkflows(s.pool, { tenantId: s.tenant, limit: 5 });
      expect(listed).toEqual([expect.objectContaining({ id: wf.id, state: "waiting", currentStep: "cutover.window", wakeAt: minutes(15), note: `cutover not before ${at.toISOString()}; the change stream is applied meanwhile`, cancelRequestedAt: null })]);
      const table = formatWorkflows(listed, false).split("\n");
      expect(table[0]).toMatch(/^ID +KIND +TENANT +STATE +STEP +WAKES +UPDATED +LAST ERROR$/);
      expect(table[1]!.split(/ {2,}/).slice(3, 6)).toEqual(["waiting", "cutover.window", `${minutes(15).toISOString()} (cutover not before ${at.toISOString()}; the change stream is applied meanwhile)`]);
      expect(JSON.parse(formatWorkflows(listed, true))).toEqual([expect.objectContaining({ wakeAt: minutes(15).toISOString(), note: `cutover not before ${at.toISOString()}; the change stream is applied meanwhile` })]);
      const w = await connect(s.cell, { user: ident, password: TENANT_PASSWORD });
      await w.query(`INSERT INTO ${qi(ident)}.customers (email, name) VALUES ('while-waiting@example.com', 'waiting')`);
      await w.end();
      s.clock.advance(15 * 60_000);
      expect(await s.service.engine.runDue()).toEqual([{ id: wf.id, state: "waiting", step: "cutover.window", wakeAt: minutes(15) }]);
      // The wake-up applied the stream: the write made while waiting is in the destination already.
      const c2 = await connect(cell2);
      try {
        await c2.query(`GRANT ${qi(ident)} TO CURRENT_USER`);
        expect((await c2.query(`SELECT name FROM ${qi(ident)}.customers WHERE email = 'while-waiting@example.com'`)).rows).toEqual([{ name: "waiting" }]);
      } finally {
        await c2.end();
      }
      s.clock.advance(15 * 60_000);
      expect(await s.service.engine.runDue()).toEqual([{ id: wf.id, state: "waiting", step: "cutover.window", wakeAt: at }]);
      // A minute before the time: not due, and forced it still waits.
      s.clock.advance(9 * 60_000);
      expect(await s.service.engine.runDue()).toEqual([]);
      expect(await s.service.engine.run(wf.id, { force: true })).toEqual({ id: wf.id, state: "waiting", step: "cutover.window", wakeAt: at });
      expect(await notSwitched()).toEqual(before);

      // The time reached: the switch, and the move goes on to its retention wait.
      s.clock.advance(60_000);
      const [ran] = await s.service.engine.runDue();
      expect(ran).toMatchObject({ id: wf.id, state: "waiting", step: "cleanup.wait" });
      expect(await notSwitched()).toEqual({
        login: [expect.stringMatching(/is not permitted to log in/), "ok"], doc: { ...cellDoc, port: cell2.server.port, database: cell2.database },
        phase: "cleanup", owner: CELL2_STACK, stateMoves: 1,
      });
      expect((await s.service.engine.steps(wf.id)).map((x) => x.step).slice(3, 6)).toEqual(["copy.data", "cutover.window", "cutover.switch"]);
    } finally {
      await s.close();
    }
  }, 240_000);

  it("cancelled while it waits: no slot left, the tenant serves from its cell, and the rollback the cancel's answer names gives the placement back", async () => {
    const s = await createScenario(bench, { prefix: "scx" }, { secondCell: true });
    try {
      await createApplicationSchema(s.cell, pgTenantIdent(s.tenant), TENANT_PASSWORD, 20);
      const cellDoc = docOf(s);
      const wf = await s.service.requestMove(s.tenant, { env: "prod", to: CELL2, cutoverNotBefore: new Date(s.clock.now().getTime() + 3 * 3600_000) });
      expect(await s.service.engine.run(wf.id)).toMatchObject({ state: "waiting", step: "cutover.window" });
      expect(await slotsOn(s.cell)).toEqual([slotName(wf.id, "prod")]);

      const cancelled = await s.service.engine.cancel(wf.id, "operator: the customer changed their mind");
      expect(cancelled).toMatchObject({ state: "cancelled", wakeAt: null });
      expect(await slotsOn(s.cell)).toEqual([]);
      expect(await tenantLogin(s.cell, s.tenant)).toBe("ok");
      expect(docOf(s)).toEqual(cellDoc);
      expect(afterCancel(cancelled, await s.service.engine.steps(wf.id))).toBe(
        `tenant ${s.tenant} serves from cell use1-01 (prod) as before; its file still records the move to use1-02: ` +
          `tenantctl move ${s.tenant} --rollback (POST /api/tenants/${s.tenant}/move/rollback) gives the placement back and removes what the move built in use1-02`,
      );
      expect(requireFleet({ projectDir: s.root }).tenants.get(s.tenant)!.tenant).toMatchObject({ placement: { prod: CELL2 }, move: { phase: "copying", workflowId: wf.id } });

      const rb = await s.service.requestMoveRollback(s.tenant);
      expect(await s.service.engine.run(rb.id)).toMatchObject({ state: "succeeded" });
      const t = requireFleet({ projectDir: s.root }).tenants.get(s.tenant)!.tenant;
      expect(t).toMatchObject({ placement: { prod: "use1-01" } });
      expect((t as { move?: unknown }).move).toBeUndefined();
      expect(await tenantLogin(s.cell, s.tenant)).toBe("ok");
    } finally {
      await s.close();
    }
  }, 240_000);
});
