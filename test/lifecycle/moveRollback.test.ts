/**
 * The rollback of a cell move before its switch (automation/lifecycle/workflows/moveRollback.ts)
 * on two live PostgreSQL servers (harness.ts says what is real and what stands in): the tenant's
 * application writes throughout and is never cut off; the cell moved to loses the role and the
 * copy, the slot is gone, placement is back, every commit passes `validate --base`; refused once
 * the move has switched.
 */
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { affectedStacks } from "../../cli/affected/affected.ts";
import type { EngineHooks } from "../../automation/lifecycle/engine/engine.ts";
import { LifecycleRequestError } from "../../automation/lifecycle/service.ts";
import { requireFleet } from "../../infra/model/fleet.ts";
import { pgTenantIdent } from "../../infra/model/naming.ts";
import { CELL2, CELL2_STACK, CELL_STACK, createScenario, gitLog, loginOf, schemaState, SimulatedCrash, startBench, TENANT_PASSWORD, type Bench } from "./harness.ts";
import { connect, createApplicationSchema, qi, startWriter } from "./tenantDb.ts";
import { slotsOn } from "./probes.ts";

let bench: Bench;
beforeAll(async () => {
  bench = await startBench();
});
afterAll(async () => {
  await bench?.stop();
});

describe("rollback of a cell move", () => {
  it("before the switch: the tenant keeps serving from its cell throughout, the other cell loses the role and the copy, the slot is dropped, placement is back", async () => {
    // The move stops after its copy (the process dies there); the operator then rolls it back.
    let stopAfterCopy = true;
    const hooks: EngineHooks = {
      afterRecord: (_wf, step) => {
        if (step === "copy.data" && stopAfterCopy) {
          stopAfterCopy = false;
          throw new SimulatedCrash("the move's process stops after copy.data");
        }
      },
    };
    const s = await createScenario(bench, { prefix: "mrb" }, { hooks, secondCell: true });
    const ident = pgTenantIdent(s.tenant);
    const q = qi(ident);
    try {
      // More customers than the writer's delete victims (ids 2..51), so its own inserts are never deleted.
      await createApplicationSchema(s.cell, ident, TENANT_PASSWORD, 100);
      const writer = startWriter(s.cell, ident, TENANT_PASSWORD, 31);
      await writer.waitForCommits(5);
      const move = await s.service.requestMove(s.tenant, { env: "prod", to: CELL2 });
      await expect(s.service.engine.run(move.id)).rejects.toThrow(SimulatedCrash);
      // Mid-move: the copy and its slot exist, the role exists in the other cell without LOGIN.
      expect(await slotsOn(s.cell)).toHaveLength(1);
      expect(await loginOf(s.cell2!, s.tenant)).toBe(false);
      expect(await schemaState(s.cell2!, s.tenant)).not.toBe("absent");

      const rb = await s.service.requestMoveRollback(s.tenant);
      expect(rb).toMatchObject({ kind: "move-rollback", params: { moveId: move.id }, state: "pending" });
      expect(await s.service.engine.get(move.id)).toMatchObject({ state: "cancelled", note: `superseded by move-rollback workflow ${rb.id}` });
      const ran = await s.service.engine.run(rb.id);
      expect(ran.error ?? null).toBeNull();
      expect(ran.state).toBe("succeeded");
      await writer.waitForCommits(writer.stats.commits + 5);
      await writer.stop();
      // Never cut off: every write went to the cell it never left.
      expect(writer.stats.stoppedBy).toBeUndefined();
      const c = await connect(s.cell, { user: ident, password: TENANT_PASSWORD });
      const emails = (await c.query<{ email: string }>(`SELECT email FROM ${q}.customers WHERE email LIKE 'w31-%'`)).rows.map((r) => r.email);
      await c.end();
      expect(new Set(emails)).toEqual(new Set(writer.stats.inserted));

      // The other cell's side is gone; the slot too; the tenant logs in to its cell only.
      expect(await loginOf(s.cell2!, s.tenant)).toBeUndefined();
      expect(await schemaState(s.cell2!, s.tenant)).toBe("absent");
      expect(await slotsOn(s.cell)).toEqual([]);
      expect([await loginOf(s.cell, s.tenant), await loginOf(s.cell, s.bystander)]).toEqual([true, true]);
      expect(s.runner.owners.get(`identity:${s.tenant}:prod`)).toBe(CELL_STACK);
      expect(s.runner.calls.map((x) => `${x.op} ${x.stack}`)).toEqual([`up ${CELL_STACK}`, `up ${CELL2_STACK}`, `move ${CELL_STACK}`, `up ${CELL2_STACK}`, `up ${CELL_STACK}`]);
      const handback = s.runner.calls.find((x) => x.op === "move")!;
      expect(handback.move!.source).toBe(CELL2_STACK);
      const steps = await s.service.engine.steps(rb.id);
      expect(steps.map((x) => x.step)).toEqual(["rollback.check", "rollback.capture", "rollback.handback", "rollback.files", "rollback.clear", "rollback.stacks"]);
      expect(steps.find((x) => x.step === "rollback.handback")!.output).toEqual({
        [`${CELL2_STACK}->${CELL_STACK}`]: { moved: [], alreadyMoved: handback.move!.urns, runId: expect.any(String) },
      });

      const t = requireFleet({ projectDir: s.root }).tenants.get(s.tenant)!.tenant;
      expect(t.deployment === "pooled" && [t.placement, t.move, t.environments.prod?.movedAt]).toEqual([{ prod: "use1-01" }, undefined, "2026-03-02T09:00:00Z"]);
      const subjects = gitLog(s.root).slice(1);
      expect(subjects).toEqual([
        `tenants: move ${s.tenant} (prod) from use1-01 to use1-02: start (workflow ${move.id})`,
        `tenants: move ${s.tenant} (prod) from use1-01 to use1-02: phase copying`,
        `tenants: roll back the move of ${s.tenant} (prod) to use1-02: it stays in use1-01`,
      ]);
      // Every commit passes validate --base against the one before it (the rollback is the placement change it accepts).
      const shas = execFileSync("git", ["-C", s.root, "rev-list", "--reverse", "HEAD"], { encoding: "utf8" }).trim().split("\n");
      for (let i = 1; i < shas.length; i++) expect((await affectedStacks(s.root, shas[i - 1]!, shas[i])).placementChanges, subjects[i - 1]).toEqual([]);

      // Nothing left to roll back; a new move may start.
      await expect(s.service.requestMoveRollback(s.tenant)).rejects.toThrow(`tenant ${s.tenant} has no cell move under way; nothing to roll back`);
    } finally {
      await s.close();
    }
  }, 240_000);

  it("is refused once the move has started its switch, and once it has switched", async () => {
    const box: { started?: () => Promise<void> } = {};
    const hooks: EngineHooks = { atPoint: async (_wf, _step, point) => void (point === "window.marked" && (await box.started?.())) };
    const s = await createScenario(bench, { prefix: "mrr" }, { hooks, secondCell: true });
    try {
      await createApplicationSchema(s.cell, pgTenantIdent(s.tenant), TENANT_PASSWORD, 20);
      const move = await s.service.requestMove(s.tenant, { env: "prod", to: CELL2 });
      // While the switch runs (its step holds the tenant's lock), no rollback can be recorded.
      let during: unknown;
      box.started = async () => {
        during = await s.service.requestMoveRollback(s.tenant).then(() => "recorded", (err: unknown) => err);
      };
      const ran = await s.service.engine.run(move.id);
      expect(ran).toMatchObject({ state: "waiting", step: "cleanup.wait" });
      expect(during).toBeInstanceOf(LifecycleRequestError);
      expect((during as Error).message).toMatch(/phase cutover: the cell it moved to serves it; a rollback is possible only before the switch/);
      // Switched: the file says so.
      await expect(s.service.requestMoveRollback(s.tenant)).rejects.toThrow(
        `tenant ${s.tenant}'s move (workflow ${move.id}) is in phase cleanup: the cell it moved to serves it; a rollback is possible only before the switch`,
      );
      expect((await s.service.engine.list(s.tenant)).map((w) => w.kind)).toEqual(["move"]);
    } finally {
      await s.close();
    }
  }, 240_000);
});
