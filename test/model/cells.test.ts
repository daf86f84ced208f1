/**
 * Cells that never fill up (infra/model/cells.ts, docs/cells.md): usage per env and region, the
 * reserve threshold, the new cell's stack file (id, CIDR, AZs, sizing) and the opening marker,
 * on copies of the example fleet.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cellsToOpen, fleetUsage, needsNewCell, openedCellText, planNewCell, poolUsage, withCell } from "../../infra/model/cells.ts";
import { overlaps, parseCidr } from "../../infra/model/cidr.ts";
import { loadFleet, type Fleet } from "../../infra/model/fleet.ts";
import { formatProblem } from "../../infra/model/problems.ts";
import { CellOpeningError, chooseCell, takenCidrs } from "../../infra/model/placement.ts";
import { parseStackFile } from "../../infra/model/stackFile.ts";
import { addStagingTenants } from "../cli/cellsFixture.ts";
import { FleetCopy } from "../cli/fleetCopy.ts";

let copy: FleetCopy;
beforeEach(() => {
  copy = new FleetCopy();
});
afterEach(() => copy.cleanup());

function load(): Fleet {
  const { fleet, problems } = loadFleet({ projectDir: copy.dir });
  if (!fleet) throw new Error(problems.map(formatProblem).join("\n"));
  return fleet;
}

describe("usage per env and region", () => {
  it("sums capacity, residents and headroom of the example fleet; an env and region without cells has none", () => {
    const fleet = load();
    const prod = poolUsage(fleet, "prod", "us-east-1");
    expect(prod.cells.map((c) => [c.cell.id, c.residents, c.headroom, c.opening])).toEqual([
      ["use1-01", ["freebie-one", "startup-alpha"], 48, false],
      ["use1-02", ["company-beta", "gamma-labs"], 48, false],
    ]);
    expect([prod.capacity, prod.residents, prod.headroom, prod.headroomPercent, prod.reservePercent, prod.belowReserve]).toEqual([100, 4, 96, 96, 20, false]);
    expect(fleetUsage(fleet).map((u) => `${u.env}/${u.region}:${u.capacity}`)).toEqual([
      "prod/us-east-1:100", "prod/eu-west-1:50", "staging/us-east-1:20", "staging/eu-west-1:0", "dev/us-east-1:0", "dev/eu-west-1:0",
    ]);
    expect(needsNewCell(fleet, "dev", "us-east-1")).toBe(true); // no capacity at all
  });

  it("opens a cell exactly when placing one more tenant leaves less than the reserve (20% of 20 = 4 places)", () => {
    addStagingTenants(copy, 13); // 15 residents: the 16th leaves 4 places
    expect(needsNewCell(load(), "staging", "us-east-1")).toBe(false);
    addStagingTenants(copy, 14); // filler-13 added: 16 residents: the 17th would leave 3
    expect(needsNewCell(load(), "staging", "us-east-1")).toBe(true);
    // Another env or region is not affected.
    expect(needsNewCell(load(), "prod", "us-east-1")).toBe(false);
  });

  it("the reserve comes from Pulumi.yaml cellDefaults.reservePercent", () => {
    copy.edit("Pulumi.yaml", "reservePercent: 20", "reservePercent: 50");
    addStagingTenants(copy, 8); // 10 residents of 20: the 11th leaves 9 < 10
    expect(poolUsage(load(), "staging", "us-east-1").reservePercent).toBe(50);
    expect(needsNewCell(load(), "staging", "us-east-1")).toBe(true);
  });

  it("while a cell is opening no second one is asked for, and no tenant is placed in it", () => {
    addStagingTenants(copy, 18); // full: 20 of 20
    const fleet = load();
    const cell = planNewCell(fleet, "staging", "us-east-1");
    const after = withCell(fleet, cell);
    expect(needsNewCell(after, "staging", "us-east-1")).toBe(false);
    expect(() => chooseCell(after, "staging", "us-east-1")).toThrow(CellOpeningError);
    expect(() => chooseCell(after, "staging", "us-east-1")).toThrow("cell use1-02 is opening");
    // Negative control: once open, it takes the tenant.
    const open = withCell(fleet, { ...cell, config: { ...cell.config, opening: false } });
    expect(chooseCell(open, "staging", "us-east-1").id).toBe("use1-02");
  });
});

describe("the new cell's stack file", () => {
  it("takes the next id, the lowest /16 of 10/8 nothing uses, the region's first AZs and its newest sibling's sizing", () => {
    const fleet = load();
    const cell = planNewCell(fleet, "staging", "us-east-1");
    expect(cell.stack).toBe("shared-staging-use1-02");
    expect(cell.config).toEqual({
      cidr: "10.3.0.0/16", // 10.0 hub, 10.1 and 10.2 prod cells
      azs: ["us-east-1a", "us-east-1b"],
      ingressHostname: "ingress.shared-staging-use1-02.tenancy.example.com",
      capacity: 20,
      dbInstanceClass: "db.t4g.medium",
      opening: true,
    });
    for (const taken of takenCidrs(fleet)) expect(overlaps(parseCidr(cell.config.cidr), taken)).toBe(false);
    // The file parses as the cell it describes.
    const parsed = parseStackFile("x", "Pulumi.shared-staging-use1-02.yaml", cell.text, fleet.platform.environments, fleet.platform.regions);
    expect(Array.isArray(parsed) ? parsed : parsed.cell).toEqual(cell.config);
    expect(cell.text).toContain("azs: [us-east-1a, us-east-1b]");
    // eu-west-1 prod: euw1-02, 3 AZs exist but cellDefaults.azCount is 2.
    expect(planNewCell(fleet, "prod", "eu-west-1")).toMatchObject({ id: "euw1-02", config: { azs: ["eu-west-1a", "eu-west-1b"], capacity: 50 } });
    // No cell yet in dev: the first one, platform defaults (no overrides copied).
    expect(planNewCell(fleet, "dev", "us-east-1").config).toEqual({
      cidr: "10.3.0.0/16", azs: ["us-east-1a", "us-east-1b"], ingressHostname: "ingress.shared-dev-use1-01.tenancy.example.com", opening: true,
    });
  });

  it("skips a block a customer's peered VPC or the dedicated supernet uses", () => {
    copy.edit("tenants/megacorp.yaml", "cidr: 172.20.0.0/16", "cidr: 10.3.0.0/16");
    const valid = load(); // a customer VPC at 10.3 overlaps nothing of ours: valid
    expect(planNewCell(valid, "staging", "us-east-1").config.cidr).toBe("10.4.0.0/16");
    // Cells never go inside the dedicated supernet even where it is free.
    const many = Array.from({ length: 70 }, (_, i) => i).reduce((f) => withCell(f, planNewCell(f, "dev", "us-east-1")), valid);
    for (const c of many.cells.values()) expect(overlaps(parseCidr(c.config.cidr), parseCidr("10.64.0.0/10"))).toBe(false);
  });

  it("two envs of one tenant get two cells with different CIDRs", () => {
    const fleet = load();
    const opened = cellsToOpen(fleet, { id: "x", tier: "free", region: "eu-west-1", environments: { staging: {}, dev: {} } });
    expect(opened.map((c) => [c.stack, c.config.cidr])).toEqual([["shared-staging-euw1-01", "10.3.0.0/16"], ["shared-dev-euw1-01", "10.4.0.0/16"]]);
    // Dedicated tenants and explicit placements open nothing.
    expect(cellsToOpen(fleet, { id: "x", tier: "dedicated", region: "eu-west-1", environments: { dev: {} } })).toEqual([]);
    expect(cellsToOpen(fleet, { id: "x", tier: "free", region: "eu-west-1", environments: { dev: {} }, placement: { dev: "euw1-01" } })).toEqual([]);
  });

  it("openedCellText drops the marker and its comment, keeps the rest", () => {
    const cell = planNewCell(load(), "staging", "us-east-1");
    const opened = openedCellText(cell.text);
    expect(opened).not.toMatch(/opening/);
    expect(opened).toContain("# Pooled cell shared-staging-use1-02, opened because staging/us-east-1 would fall below its 20% reserve");
    const { opening: _gone, ...rest } = cell.config;
    const parsed = parseStackFile("x", "Pulumi.shared-staging-use1-02.yaml", opened, ["staging"], ["us-east-1"]);
    expect(Array.isArray(parsed) ? parsed : parsed.cell).toEqual(rest);
    // Exactly the marker and its comment go: every other line stays as written (a one-purpose commit).
    expect(opened.split("\n")).toEqual(cell.text.split("\n").filter((l) => l !== "    opening: true" && !l.startsWith("# opening: true")));
  });
});
