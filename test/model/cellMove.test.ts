/**
 * The cell move's model (infra/model/cellMove.ts, infra/model/fleetFiles/move.ts): which cells a
 * move may go to, the commit that starts it, what each of the two cells declares and lets log in
 * per phase, where the tenant is routed, and that `validate --base` accepts the workflow's commits
 * and nothing else (infra/model/placementChanges.ts).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cellDeclaresIdentity, cellPartOf, moveHandoverUrns } from "../../infra/model/cellMove.ts";
import { databaseLoginAllowed } from "../../infra/model/database.ts";
import { cellResidents, requireFleet, stacksOfTenant } from "../../infra/model/fleet.ts";
import { moveRefusal, moveStartEdit } from "../../infra/model/fleetFiles/index.ts";
import { chooseCell } from "../../infra/model/placement.ts";
import { placementChanges } from "../../infra/model/placementChanges.ts";
import { routeOf } from "../../infra/model/routes.ts";
import type { Tenant } from "../../infra/model/schema.ts";
import { editYaml, exampleFleet, tempFleet } from "../infra/support.ts";

const base = exampleFleet();
const WF = "0b5a4a4e-6a8e-4c31-9d1e-3f1f6a3c2b10";
const NOW = new Date("2026-12-01T10:00:00Z");
const alpha = () => base.tenants.get("startup-alpha")!.tenant;

/** The example fleet with startup-alpha's prod moving to use1-02 (the workflow's first commit), then `edit`. */
function moving(edit: (dir: string) => void = () => undefined) {
  let dir = "";
  const fleet = tempFleet((d) => {
    dir = d;
    const path = join(d, "tenants/startup-alpha.yaml");
    const files = moveStartEdit(base, readFileSync(path, "utf8"), alpha(), "prod", "use1-02", WF, NOW);
    writeFileSync(path, files["tenants/startup-alpha.yaml"]!);
    edit(d);
  });
  return { fleet, dir, t: fleet.tenants.get("startup-alpha")!.tenant as Extract<Tenant, { deployment: "pooled" }> };
}

describe("moveRefusal", () => {
  it("accepts a move to an open cell of the same env and region with room", () => {
    expect(moveRefusal(base, alpha(), "prod", "use1-02")).toBeUndefined();
  });

  it("refuses, naming why: same cell, unknown cell, another env's cell, another region, opening, draining, full", () => {
    expect(moveRefusal(base, alpha(), "prod", "use1-01")).toBe("tenant startup-alpha is already in cell use1-01 in prod");
    expect(moveRefusal(base, alpha(), "prod", "use1-09")).toBe("cell use1-09 has no stack file stacks/Pulumi.shared-prod-use1-09.yaml (cells of prod in us-east-1: use1-02)");
    expect(moveRefusal(base, alpha(), "staging", "use1-02")).toBe("cell use1-02 is a cell of prod, not of staging; a move stays in its environment (cells of staging in us-east-1: none)");
    expect(moveRefusal(base, alpha(), "prod", "euw1-01")).toBe("cell euw1-01 is in eu-west-1 but tenant startup-alpha lives in us-east-1; data never leaves its region");
    // The cell's settings changed in memory (a fleet with an opening cell that has residents does not validate).
    const edited = (change: { opening?: boolean; draining?: boolean; capacity?: number }) => {
      const cells = new Map(base.cells);
      const c = cells.get("shared-prod-use1-02")!;
      cells.set(c.stack, { ...c, ...(change.capacity !== undefined ? { capacity: change.capacity } : {}), config: { ...c.config, ...change } });
      return { cells, tenants: base.tenants };
    };
    expect(moveRefusal(edited({ opening: true }), alpha(), "prod", "use1-02")).toMatch(/^cell use1-02 is opening \(opening: true in .*Pulumi\.shared-prod-use1-02\.yaml\)/);
    expect(moveRefusal(edited({ draining: true }), alpha(), "prod", "use1-02")).toMatch(/^cell use1-02 is draining \(draining: true in .*\): it takes no tenant$/);
    const full = edited({ capacity: cellResidents(base, { env: "prod", id: "use1-02" }).length });
    expect(moveRefusal(full, alpha(), "prod", "use1-02")).toBe(`cell use1-02 is full: ${cellResidents(base, { env: "prod", id: "use1-02" }).length} tenants for a capacity of ${cellResidents(base, { env: "prod", id: "use1-02" }).length} (tenants leaving it count until their cleanup)`);
  });

  it("refuses a suspended tenant, a dedicated one, and one already moving", () => {
    expect(moveRefusal(base, base.tenants.get("gamma-labs")!.tenant, "prod", "use1-01")).toBe("tenant gamma-labs is suspended; resume it before moving it");
    expect(moveRefusal(base, base.tenants.get("acme")!.tenant, "prod", "use1-01")).toMatch(/^tenant acme is dedicated/);
    const { fleet, t } = moving();
    expect(moveRefusal(fleet, t, "staging", "use1-01")).toBe(`tenant startup-alpha is already moving (from {"prod":"use1-01"}, phase provisioning, workflow ${WF})`);
  });

  it("a draining cell takes no new tenant either (chooseCell)", () => {
    const drained = tempFleet((d) => editYaml(d, "stacks/Pulumi.shared-prod-use1-01.yaml", (doc) => void ((doc.config as Record<string, Record<string, unknown>>)["saas-tenancy:cell"]!.draining = true)));
    expect(chooseCell(base, "prod", "us-east-1").id).toBe("use1-01");
    expect(chooseCell(drained, "prod", "us-east-1").id).toBe("use1-02");
  });
});

describe("a tenant moving between cells", () => {
  it("the first commit: placement names the destination, move names the cell left and the workflow, movedAt is set", () => {
    const { t } = moving();
    expect(t.placement).toEqual({ prod: "use1-02", staging: "use1-01" });
    expect(t.move).toEqual({ phase: "provisioning", from: { prod: "use1-01" }, workflowId: WF, startedAt: "2026-12-01T10:00:00Z" });
    expect(t.environments.prod?.movedAt).toBe("2026-12-01T10:00:00Z");
    expect(t.environments.staging?.movedAt).toBeUndefined();
  });

  it("lives in both cells until cleanup; exactly one of them declares its identity and lets it log in, per phase", () => {
    const { fleet, dir, t } = moving();
    expect(cellResidents(fleet, { env: "prod", id: "use1-01" }).map((x) => x.id)).toContain("startup-alpha");
    expect(cellResidents(fleet, { env: "prod", id: "use1-02" }).map((x) => x.id)).toContain("startup-alpha");
    expect(stacksOfTenant(t)).toEqual(["shared-prod-use1-01", "shared-prod-use1-02", "shared-staging-use1-01"]);
    expect([cellPartOf(t, "prod", "use1-01"), cellPartOf(t, "prod", "use1-02"), cellPartOf(t, "staging", "use1-01"), cellPartOf(t, "prod", "euw1-01")]).toEqual(["leaving", "arriving", "resident", undefined]);
    const rows: string[] = [];
    for (const phase of ["provisioning", "copying", "cutover", "cleanup"]) {
      editYaml(dir, "tenants/startup-alpha.yaml", (d) => void ((d.move as Record<string, unknown>).phase = phase));
      const x = requireFleet({ projectDir: dir }).tenants.get("startup-alpha")!.tenant as Extract<Tenant, { deployment: "pooled" }>;
      rows.push(
        `${phase}: source ${cellDeclaresIdentity(x, "leaving")}/${databaseLoginAllowed(x, "cell", { env: "prod", id: "use1-01" })}, ` +
          `destination ${cellDeclaresIdentity(x, "arriving")}/${databaseLoginAllowed(x, "cell", { env: "prod", id: "use1-02" })}, route ${routeOf(fleet, x, "prod").stack}`,
      );
    }
    expect(rows).toEqual([
      "provisioning: source true/true, destination false/false, route shared-prod-use1-01",
      "copying: source true/true, destination false/false, route shared-prod-use1-01",
      "cutover: source false/false, destination true/true, route shared-prod-use1-02",
      "cleanup: source false/false, destination true/true, route shared-prod-use1-02",
    ]);
  });

  it("hands over the identity components and the DNS record (and an own key) from the source cell stack", () => {
    const { t } = moving();
    const P = "urn:pulumi:shared-prod-use1-01::saas-tenancy::saas-tenancy:components:PooledTenant$";
    expect(moveHandoverUrns(t, "prod", "use1-01")).toEqual([
      `${P}saas-tenancy:components:TenantRole::tenant-startup-alpha-role`,
      `${P}saas-tenancy:components:ConnectionSecret::tenant-startup-alpha-database`,
      `${P}saas-tenancy:components:TenantSecrets::tenant-startup-alpha-secrets`,
      `${P}saas-tenancy:components:TenantRolePolicy::tenant-startup-alpha-access`,
      `${P}saas-tenancy:components:RuntimeConfig::tenant-startup-alpha-config`,
      `${P}aws:route53/record:Record::tenant-startup-alpha-dns`,
    ]);
    const enterprise = { ...t, tier: "enterprise" } as Tenant;
    expect(moveHandoverUrns(enterprise, "prod", "use1-01")).toContain(`${P}saas-tenancy:components:EncryptionKey::tenant-startup-alpha-key`);
  });

  it("the schema refuses a move block that names the cell it is in, or an env without placement", () => {
    expect(() =>
      tempFleet((d) => editYaml(d, "tenants/startup-alpha.yaml", (doc) => void (doc.move = { phase: "provisioning", from: { prod: "use1-01" }, workflowId: WF, startedAt: "2026-12-01T10:00:00Z" }))),
    ).toThrow(/move\.from\.prod: the tenant moves from use1-01 to the same cell/);
  });
});

describe("validate --base accepts the move workflow's commits and no other placement change", () => {
  it("the first commit (placement + move in phase provisioning) passes; the same placement with the block in a later phase does not", () => {
    expect(placementChanges(base, moving().fleet, "HEAD")).toEqual([]);
    const late = moving((d) => editYaml(d, "tenants/startup-alpha.yaml", (doc) => void ((doc.move as Record<string, unknown>).phase = "copying"))).fleet;
    expect(placementChanges(base, late, "HEAD").map((p) => p.path)).toEqual(["placement.prod"]);
    // Without the block, the same placement is a hand edit.
    const bare = moving((d) => editYaml(d, "tenants/startup-alpha.yaml", (doc) => void delete doc.move)).fleet;
    expect(placementChanges(base, bare, "HEAD").map((p) => p.path)).toEqual(["placement.prod"]);
  });

  it("the phase commits and the cleanup commit change no placement; a rollback before the switch may put the old cell back, after it may not", () => {
    const started = moving().fleet;
    const phase = (p: string) => moving((d) => editYaml(d, "tenants/startup-alpha.yaml", (doc) => void ((doc.move as Record<string, unknown>).phase = p))).fleet;
    expect(placementChanges(started, phase("copying"), "HEAD")).toEqual([]);
    const done = moving((d) => editYaml(d, "tenants/startup-alpha.yaml", (doc) => void delete doc.move)).fleet;
    expect(placementChanges(phase("cleanup"), done, "HEAD")).toEqual([]);
    expect(placementChanges(phase("copying"), base, "HEAD")).toEqual([]);
    expect(placementChanges(phase("cutover"), base, "HEAD").map((p) => p.path)).toEqual(["placement.prod"]);
  });
});
