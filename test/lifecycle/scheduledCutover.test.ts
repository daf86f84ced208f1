/**
 * Scheduled switches and cancels while waiting for them, on live PostgreSQL (harness.ts says what
 * is real and what stands in): an upgrade requested with `cutoverNotBefore` copies, then waits at
 * cutover.window with its change stream applied; cancelled there, its slot is dropped, the tenant
 * keeps serving from its cell, and a rollback (requested after the cancel, with no upgrade open)
 * gives the placement back. The cell move's schedule: the switch does not happen before the time
 * (the fake clock), and does after it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slotName } from "../../automation/lifecycle/pg/cdc/slot.ts";
import { CATCH_UP_INTERVAL_MS } from "../../automation/lifecycle/workflows/cutover.ts";
import { requireFleet } from "../../infra/model/fleet.ts";
import { pgTenantIdent } from "../../infra/model/naming.ts";
import { createScenario, startBench, TENANT_PASSWORD, type Bench } from "./harness.ts";
import { docOf, phaseOf, slotsOn, tenantLogin } from "./probes.ts";
import { createApplicationSchema } from "./tenantDb.ts";

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
      // What its steps did stays: the file still records the upgrade.
      expect(phaseOf(s)).toBe("copying");

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
