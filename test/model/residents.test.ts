/** residentsByCell (infra/model/routes.ts): every cell's residents in one pass, equal to cellResidents cell by cell. */
import { describe, expect, it } from "vitest";
import { cellResidents, residentsByCell, residentsKey } from "../../infra/model/routes.ts";
import type { Tenant } from "../../infra/model/schema.ts";
import type { LoadedTenant } from "../../infra/model/tenantFile.ts";
import { exampleFleet, upgradingStartupAlpha } from "../infra/support.ts";

describe("residentsByCell", () => {
  it("lists, per cell, exactly the tenants cellResidents finds, in the same order: placed, moving away, upgrading away", () => {
    const upgrading = upgradingStartupAlpha("copying");
    const alpha = exampleFleet().tenants.get("startup-alpha")!;
    if (alpha.tenant.deployment !== "pooled") throw new Error("startup-alpha is pooled in the example fleet");
    // A second pooled tenant moving from use1-01 to use1-02 (in memory: only the residents are looked at).
    const moving = {
      ...alpha.tenant, id: "mover", placement: { ...alpha.tenant.placement, prod: "use1-02" },
      move: { phase: "copying", from: { prod: "use1-01" }, workflowId: "0b5a4a4e-6a8e-4c31-9d1e-3f1f6a3c2b10", startedAt: "2026-12-01T10:00:00Z" },
    } as Tenant;
    const tenants = new Map<string, LoadedTenant>(upgrading.tenants);
    tenants.set("mover", { ...alpha, tenant: moving });
    const fleet = { ...upgrading, tenants };
    const index = residentsByCell(fleet);
    const ids = (ts: readonly Tenant[] | undefined) => (ts ?? []).map((t) => t.id);
    expect(ids(index.get(residentsKey("prod", "use1-01")))).toContain("startup-alpha");
    expect(ids(index.get(residentsKey("prod", "use1-01")))).toContain("mover");
    expect(ids(index.get(residentsKey("prod", "use1-02")))).toContain("mover");
    let checked = 0;
    for (const cell of fleet.cells.values()) {
      expect(ids(index.get(residentsKey(cell.env, cell.id))), cell.stack).toEqual(ids(cellResidents(fleet, cell)));
      checked++;
    }
    expect(checked).toBe(fleet.cells.size);
    // No key for a cell nobody lives in, and no tenant listed under a cell it is not in.
    const total = [...index.values()].reduce((n, l) => n + l.length, 0);
    expect(total).toBe([...fleet.cells.values()].reduce((n, c) => n + cellResidents(fleet, c).length, 0));
  });
});
