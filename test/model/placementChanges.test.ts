/**
 * A pooled tenant's placement compared with a base revision (infra/model/placementChanges.ts):
 * exactly one problem per env whose cell changed, with file, line and the fix; nothing for the
 * changes that are not moves.
 */
import { describe, expect, it } from "vitest";
import { placementChanges } from "../../infra/model/placementChanges.ts";
import { formatProblem } from "../../infra/model/problems.ts";
import { editYaml, exampleFleet, tempFleet, writeYaml } from "../infra/support.ts";

const base = exampleFleet();

describe("placementChanges", () => {
  it("a pooled tenant moved to another cell by hand: one problem per env, at the placement line", () => {
    const head = tempFleet((dir) => editYaml(dir, "tenants/gamma-labs.yaml", (d) => void ((d.placement as Record<string, string>).prod = "use1-01")));
    const problems = placementChanges(base, head, "origin/main");
    expect(problems).toHaveLength(1);
    expect(problems[0]!.file.endsWith("tenants/gamma-labs.yaml")).toBe(true);
    expect(problems[0]!.line).toBe(head.tenants.get("gamma-labs")!.yaml.lineOf(["placement", "prod"]));
    expect(problems[0]!.line).toBeGreaterThan(0);
    expect(formatProblem(problems[0]!).split(": ").slice(1).join(": ")).toBe(
      "placement.prod: changed from use1-02 (at origin/main) to use1-01: a pooled tenant changes cells only through a move, a data migration " +
        "(edited by hand, cell use1-02 would delete the tenant's IAM role, secrets and key alias while use1-01 tries to create the same names, and the data would stay behind); " +
        "put use1-02 back and move the tenant with `tenantctl move gamma-labs --env prod --to use1-01` (the control plane's move workflow copies the data and commits the change)",
    );
  });

  it("only the env whose cell changed is named (staging keeps its cell)", () => {
    const head = tempFleet((dir) =>
      editYaml(dir, "tenants/startup-alpha.yaml", (d) => {
        d.placement = { prod: "use1-02", staging: "use1-01" };
      }),
    );
    expect(base.tenants.get("startup-alpha")!.tenant).toMatchObject({ placement: { prod: "use1-01", staging: "use1-01" } });
    expect(placementChanges(base, head, "HEAD").map((p) => p.path)).toEqual(["placement.prod"]);
  });

  it("negative controls: unchanged fleet, a new tenant, an env removed or added: none is a move", () => {
    expect(placementChanges(base, base, "HEAD")).toEqual([]);
    const head = tempFleet((dir) => {
      writeYaml(dir, "tenants/walkin.yaml", { id: "walkin", displayName: "Walk In", tier: "free", region: "us-east-1", environments: { prod: {} }, placement: { prod: "use1-02" } });
      // startup-alpha leaves staging; gamma-labs is unchanged.
      editYaml(dir, "tenants/startup-alpha.yaml", (d) => {
        delete (d.environments as Record<string, unknown>).staging;
        delete (d.placement as Record<string, unknown>).staging;
      });
    });
    expect(placementChanges(base, head, "HEAD")).toEqual([]);
    // The reverse (an env added) is not a move either.
    expect(placementChanges(head, base, "HEAD")).toEqual([]);
  });
});
