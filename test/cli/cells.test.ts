/**
 * `tenantctl cells` and the cells `tenantctl new` opens at the reserve (docs/cells.md), on copies of
 * the example fleet; and validation of cell files: an opening cell takes no tenant, a cell CIDR
 * overlapping anything is refused.
 */
import { existsSync, readdirSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { addStagingTenants } from "./cellsFixture.ts";
import { FleetCopy } from "./fleetCopy.ts";

let fleet: FleetCopy;
beforeEach(() => {
  fleet = new FleetCopy();
});
afterEach(() => fleet.cleanup());

const cellFiles = () => readdirSync(fleet.path("stacks")).filter((f) => f.startsWith("Pulumi.shared-")).sort();

describe("tenantctl cells", () => {
  it("prints every cell and a total per env and region of the example fleet", async () => {
    const r = await fleet.run(["cells"]);
    expect(r.code).toBe(0);
    expect(r.stdout.join("\n").split("\n")).toEqual([
      "ENV      REGION     CELL     STATE  RESIDENTS  CAPACITY  HEADROOM",
      "prod     us-east-1  use1-01  open   2          50        48",
      "prod     us-east-1  use1-02  open   2          50        48",
      "prod     us-east-1  total           4          100       96 (96%, reserve 20%)",
      "prod     eu-west-1  euw1-01  open   2          50        48",
      "prod     eu-west-1  total           2          50        48 (96%, reserve 20%)",
      "staging  us-east-1  use1-01  open   2          20        18",
      "staging  us-east-1  total           2          20        18 (90%, reserve 20%)",
      "staging  eu-west-1  total           0          0         0 (no cells: the next tenant opens one)",
      "dev      us-east-1  total           0          0         0 (no cells: the next tenant opens one)",
      "dev      eu-west-1  total           0          0         0 (no cells: the next tenant opens one)",
    ]);
  });

  it("--json: residents by id, state, CIDR and whether the next tenant opens a cell", async () => {
    addStagingTenants(fleet, 14);
    const r = await fleet.run(["cells", "--json"]);
    const rows = JSON.parse(r.stdout.join("\n")) as { env: string; region: string; headroom: number; nextOpensCell: boolean; cells: { id: string; state: string; cidr: string; residents: string[] }[] }[];
    const staging = rows.find((x) => x.env === "staging" && x.region === "us-east-1")!;
    expect(staging).toMatchObject({ capacity: 20, residents: 16, headroom: 4, headroomPercent: 20, reservePercent: 20, belowReserve: false, nextOpensCell: true });
    expect(staging.cells).toHaveLength(1);
    expect(staging.cells[0]).toMatchObject({ id: "use1-01", stack: "shared-staging-use1-01", state: "open", cidr: "10.11.0.0/16", capacity: 20, headroom: 4 });
    expect(staging.cells[0]!.residents.slice(0, 3)).toEqual(["filler-00", "filler-01", "filler-02"]);
    expect(rows.find((x) => x.env === "prod" && x.region === "us-east-1")!.nextOpensCell).toBe(false);
  });
});

describe("tenantctl new at the reserve", () => {
  it("opens exactly one cell at the threshold, places the tenant in an open cell, and the next tenant opens none", async () => {
    addStagingTenants(fleet, 13); // 15 residents: the 16th leaves the reserve's 4 places
    const below = await fleet.run(["new", "a-co", "--tier", "free", "--env", "staging"]);
    expect(below).toEqual({ code: 0, stdout: [`wrote ${fleet.shown("tenants/a-co.yaml")}`], stderr: [] });
    expect(cellFiles()).toHaveLength(4); // the example's 4 cells

    const at = await fleet.run(["new", "b-co", "--tier", "free", "--env", "staging"]); // the 17th: 3 places left
    expect(at.code).toBe(0);
    expect(at.stdout).toEqual([
      `opened cell use1-02 (staging/us-east-1, 10.3.0.0/16, us-east-1a, us-east-1b): wrote ${fleet.shown("stacks/Pulumi.shared-staging-use1-02.yaml")} with opening: true; ` +
        "commit it on its own and run its first pulumi up; once that succeeded remove opening: true, and tenants are placed there (docs/cells.md)",
      `wrote ${fleet.shown("tenants/b-co.yaml")}`,
    ]);
    expect(fleet.read("tenants/b-co.yaml")).toContain("placement:\n  staging: use1-01\n");
    expect(fleet.read("stacks/Pulumi.shared-staging-use1-02.yaml")).toContain("    opening: true\n");

    const next = await fleet.run(["new", "c-co", "--tier", "free", "--env", "staging"]);
    expect(next.code).toBe(0);
    expect(next.stdout).toEqual([`wrote ${fleet.shown("tenants/c-co.yaml")}`]);
    expect(cellFiles()).toHaveLength(5); // one new cell for the need, not two
    expect((await fleet.run(["validate"])).code).toBe(0);
  });

  it("with no open cell left the tenant is not written (its file may not name an undeployed cell); after the first up it is placed there", async () => {
    addStagingTenants(fleet, 18); // full
    const r = await fleet.run(["new", "d-co", "--tier", "free", "--env", "staging"]);
    expect(r.code).toBe(1);
    expect(r.stdout[0]).toMatch(/^opened cell use1-02 /);
    expect(r.stderr).toEqual([
      `${fleet.shown("tenants/d-co.yaml")}: placement: no open cell with room in staging/us-east-1: cell use1-02 is opening; place the tenant after the first successful ` +
        "`pulumi up` of shared-staging-use1-02 (then remove opening: true from " + `${fleet.shown("stacks/Pulumi.shared-staging-use1-02.yaml")}); nothing written for the tenant: run tenantctl new again then`,
    ]);
    expect(existsSync(fleet.path("tenants/d-co.yaml"))).toBe(false);
    // Asking again before the up opens nothing more and writes nothing.
    const again = await fleet.run(["new", "d-co", "--tier", "free", "--env", "staging"]);
    expect(again.code).toBe(1);
    expect(again.stdout).toEqual([]);
    expect(cellFiles()).toHaveLength(5);
    // The operator removes the marker after the cell's first successful `pulumi up`.
    fleet.edit("stacks/Pulumi.shared-staging-use1-02.yaml", "    opening: true\n", "");
    const placed = await fleet.run(["new", "d-co", "--tier", "free", "--env", "staging"]);
    expect(placed.code).toBe(0);
    expect(fleet.read("tenants/d-co.yaml")).toContain("placement:\n  staging: use1-02\n");
  });
});

describe("validation of cells", () => {
  async function oneProblem(file: string, needle: string, path: string, message: string): Promise<void> {
    const r = await fleet.run(["validate"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toEqual([`${fleet.shown(file)}:${fleet.lineOf(file, needle)}: ${path}: ${message}`]);
  }

  it("a tenant placed by hand in a cell still opening is refused", async () => {
    addStagingTenants(fleet, 18);
    await fleet.run(["new", "d-co", "--tier", "free", "--env", "staging"]);
    fleet.write("tenants/e-co.yaml", "id: e-co\ndisplayName: e-co\ntier: free\nregion: us-east-1\nenvironments:\n  staging: {}\nplacement:\n  staging: use1-02\n");
    await oneProblem(
      "tenants/e-co.yaml", "staging: use1-02", "placement.staging",
      `cell use1-02 is opening (opening: true in ${fleet.shown("stacks/Pulumi.shared-staging-use1-02.yaml")}): its stack has not had its first successful pulumi up; ` +
        "place the tenant in an open cell, or remove opening from the stack file once that up has succeeded (docs/cells.md)",
    );
  });

  it("a cell CIDR overlapping another cell is refused", async () => {
    fleet.edit("stacks/Pulumi.shared-prod-use1-02.yaml", "cidr: 10.2.0.0/16", "cidr: 10.1.128.0/17");
    await oneProblem(
      "stacks/Pulumi.shared-prod-use1-02.yaml", "cidr:", "config.saas-tenancy:cell.cidr",
      "10.1.128.0/17 of cell shared-prod-use1-02 overlaps 10.1.0.0/16 of cell shared-prod-use1-01; choose a block no cell, tenant or hub uses",
    );
  });

  it("a cell CIDR overlapping a dedicated tenant's VPC is refused (reported on the tenant, the later claim)", async () => {
    fleet.edit("stacks/Pulumi.shared-prod-use1-02.yaml", "cidr: 10.2.0.0/16", "cidr: 10.64.0.0/16");
    const r = await fleet.run(["validate"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toHaveLength(1);
    expect(r.stderr[0]).toMatch(/: dedicated\.prod\.cidr: 10\.64\.0\.0\/16 of tenant megacorp \(prod\) overlaps 10\.64\.0\.0\/16 of cell shared-prod-use1-02; /);
  });

  it("a cell CIDR overlapping a customer's peered VPC is refused", async () => {
    fleet.edit("stacks/Pulumi.shared-prod-use1-02.yaml", "cidr: 10.2.0.0/16", "cidr: 172.20.0.0/16");
    const r = await fleet.run(["validate"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toHaveLength(1);
    expect(r.stderr[0]).toMatch(/customerVpc\.cidr: 172\.20\.0\.0\/16 of the customer VPC of tenant megacorp \(prod\) overlaps 172\.20\.0\.0\/16 of cell shared-prod-use1-02; /);
  });
});
