/**
 * A move or an upgrade cancelled while its switch's write window is open (the process was killed
 * inside it, so no step runs and the engine lets an operator cancel), on live PostgreSQL
 * (harness.ts says what is real and what stands in). The cancel undoes the window as a failed
 * window is undone (automation/lifecycle/workflows/switchWindow.ts): LOGIN back on the database the
 * tenant was leaving, the window's row gone, the identity's state and phase copying back, the
 * stacks' holds released, the capture slot dropped. The state sampled between the kill and the
 * cancel is what a cancel that only wrote the workflow's state left for good (the negative
 * control), and a cancel whose undo fails is refused with the workflow left as it was.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkflowConflictError, type EngineHooks } from "../../automation/lifecycle/engine/engine.ts";
import { captureSlots } from "../../automation/lifecycle/pg/cdc/slot.ts";
import { windowRecord } from "../../automation/lifecycle/workflows/switchWindow.ts";
import { pgTenantIdent } from "../../infra/model/naming.ts";
import { CELL2, CELL2_STACK, CELL_STACK, createScenario, SimulatedCrash, startBench, TENANT_PASSWORD, type Bench, type Scenario } from "./harness.ts";
import { docOf, phaseOf, tenantLogin } from "./probes.ts";
import { connect, createApplicationSchema, qi, withDb } from "./tenantDb.ts";

let bench: Bench;
beforeAll(async () => {
  bench = await startBench();
});
afterAll(async () => {
  await bench?.stop();
});

const onCell = withDb;

/** What the cancel must undo, read from the databases and the doubles. */
async function leftovers(s: Scenario, id: string) {
  return {
    login: await tenantLogin(s.cell, s.tenant),
    windowRow: await onCell(s.cell, async (c) => (await windowRecord(c, id, "prod")) !== undefined),
    holds: [...s.runner.holds.entries()].filter(([, holder]) => holder === id).map(([stack]) => stack).sort(),
    slots: await onCell(s.cell, async (c) => (await captureSlots(c)).map((x) => x.workflowId)),
    phase: phaseOf(s),
    owner: s.runner.owners.get(`identity:${s.tenant}:prod`),
  };
}

describe.each(["move", "upgrade"] as const)("a %s cancelled inside its switch's window", (kind) => {
  it("gives LOGIN back, removes the window's row, releases the holds and drops the slot; a failed undo refuses the cancel", async () => {
    let killed = false;
    const hooks: EngineHooks = {
      atPoint: (_wf, _step, point) => {
        if (point !== "window.sessionsEnded" || killed) return;
        killed = true;
        throw new SimulatedCrash(`kill -9 at ${point}`);
      },
    };
    const s = await createScenario(bench, { prefix: kind === "move" ? "wcm" : "wcu" }, { hooks, secondCell: kind === "move" });
    const ident = pgTenantIdent(s.tenant);
    const target = kind === "move" ? CELL2_STACK : `dedicated-${s.tenant}-prod`;
    try {
      await createApplicationSchema(s.cell, ident, TENANT_PASSWORD, 20);
      const id = (kind === "move" ? await s.service.requestMove(s.tenant, { env: "prod", to: CELL2 }) : await s.service.requestUpgrade(s.tenant)).id;
      await expect(s.service.engine.run(id)).rejects.toThrow(SimulatedCrash);
      expect(killed).toBe(true);

      // Negative control: after the kill the window is open; a cancel that only wrote the state left exactly this.
      const inWindow = await leftovers(s, id);
      expect(inWindow).toEqual({
        login: expect.stringMatching(/is not permitted to log in/),
        windowRow: true,
        holds: [CELL_STACK, target].sort(),
        slots: [id],
        phase: "cutover",
        owner: target,
      });

      // A cancel whose undo fails (the hand-back of the identity's state) is refused; nothing changes.
      const moveState = s.runner.moveState.bind(s.runner);
      s.runner.moveState = async () => {
        throw new Error("the state backend is unreachable");
      };
      const refused = await s.service.engine.cancel(id, "operator: give up").catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(WorkflowConflictError);
      expect((refused as Error).message).toBe(
        `cancel of ${kind} workflow ${id} refused: its clean-up failed (the state backend is unreachable); the workflow is left running at cutover.switch ` +
          "(its next attempt undoes a write window left open first); fix the cause and cancel again",
      );
      expect((await s.service.engine.get(id))!.state).toBe("running");
      // LOGIN was given back before the hand-back failed (the undo's first part); the rest is still there.
      expect(await leftovers(s, id)).toEqual({ ...inWindow, login: "ok" });

      s.runner.moveState = moveState;
      const cancelled = await s.service.engine.cancel(id, "operator: give up");
      expect(cancelled).toMatchObject({ state: "cancelled", note: "operator: give up" });
      expect(await leftovers(s, id)).toEqual({ login: "ok", windowRow: false, holds: [], slots: [], phase: "copying", owner: CELL_STACK });
      // The connection document was never changed: the application's next connection goes to the cell.
      expect(docOf(s)).toEqual({ ...docOf(s), port: s.cell.server.port, database: s.cell.database });
      expect(s.logs.some((l) => l.message.startsWith("change capture dropped: the " + kind + " was cancelled"))).toBe(true);

      // The tenant writes to its cell again.
      const c = await connect(s.cell, { user: ident, password: TENANT_PASSWORD });
      try {
        await c.query(`INSERT INTO ${qi(ident)}.customers (email, name, mood) VALUES ('after-cancel@example.com', 'after', 'ok')`);
      } finally {
        await c.end();
      }
      // A second cancel is refused (already cancelled) and the worker does not run it again.
      await expect(s.service.engine.cancel(id, "again")).rejects.toThrow(
        `${kind} workflow ${id} of tenant ${s.tenant} is already cancelled (since ${cancelled.finishedAt!.toISOString()}): ` +
          "only a pending, running or waiting workflow can be cancelled; it was cancelled before (operator: give up)",
      );
      expect(await s.service.engine.run(id)).toMatchObject({ state: "cancelled" });
    } finally {
      await s.close();
    }
  }, 240_000);
});
