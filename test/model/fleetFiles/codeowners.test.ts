import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { withDedicatedTenant } from "../../../infra/model/fleetFiles/codeowners.ts";

const real = readFileSync(resolve(import.meta.dirname, "../../../.github/CODEOWNERS"), "utf8");

describe("withDedicatedTenant (tenantctl new keeps CODEOWNERS current)", () => {
  it("lists a new dedicated tenant among the others, sorted, with their owners and alignment", () => {
    const after = withDedicatedTenant(real, "bigco")!;
    const tenantLines = after.split("\n").filter((l) => /^\/tenants\/[a-z0-9-]+\.yaml\s/.test(l));
    expect(tenantLines.map((l) => l.split(/\s+/)[0])).toEqual(["/tenants/acme.yaml", "/tenants/bigco.yaml", "/tenants/delta-health.yaml", "/tenants/megacorp.yaml"]);
    const bigco = tenantLines[1]!;
    expect(bigco.split(/\s+/).slice(1)).toEqual(tenantLines[0]!.split(/\s+/).slice(1));
    expect(bigco.indexOf("@")).toBe(tenantLines[0]!.indexOf("@"));
    // Nothing else moves.
    expect(after.split("\n").filter((l) => l !== bigco)).toEqual(real.split("\n"));
  });

  it("puts a tenant sorting first before the others", () => {
    const after = withDedicatedTenant(real, "aardvark")!;
    expect(after.split("\n").filter((l) => l.startsWith("/tenants/") && l.includes(".yaml")).map((l) => l.split(/\s+/)[0])[0]).toBe("/tenants/aardvark.yaml");
  });

  it("changes nothing for a tenant already listed", () => {
    expect(withDedicatedTenant(real, "acme")).toBeUndefined();
  });

  it("starts the list with the dedicated stacks' owners when there is none yet", () => {
    const text = "*  @org/platform-team\n/stacks/Pulumi.dedicated-*  @org/infra-leads\n";
    expect(withDedicatedTenant(text, "bigco")).toBe(`${text}/tenants/bigco.yaml  @org/infra-leads\n`);
  });
});
