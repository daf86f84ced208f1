/**
 * An enterprise tenant pooled in a prod cell has its own KMS key. Offboarding it (its file leaves,
 * the cell's next up drops it) or downgrading it to standard (the cell stops declaring the key)
 * must not fail: the key is retained, not protected. Proven on the real renders applied to the
 * engine double (test/support/engineSim.ts: a model of the engine, nothing is deployed), whose
 * protect rule is checked by the negative control.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { requireFleet } from "../../infra/model/fleet.ts";
import type { RenderedStack } from "../../plan/types.ts";
import { ProtectedError, SimCloud } from "../support/engineSim.ts";
import { editYaml, render, tempFleet } from "./support.ts";

const STACK = "shared-prod-use1-02";
const TENANT = "company-beta";
const KEY = "aws:kms/key:Key";

async function before(): Promise<{ dir: string; cloud: SimCloud; first: RenderedStack }> {
  let dir = "";
  const fleet = tempFleet((d) => (dir = d));
  expect(fleet.tenants.get(TENANT)!.tenant.tier).toBe("enterprise");
  const first = await render(fleet, STACK);
  const key = first.resources.find((x) => x.type === KEY && x.name === `tenant-${TENANT}-key`)!;
  expect([key.options.protect, key.options.retainOnDelete]).toEqual([false, true]);
  const cloud = new SimCloud();
  cloud.up(first);
  return { dir, cloud, first };
}

describe("an enterprise pooled tenant's own key in a prod cell", () => {
  it("offboarding: the cell's update succeeds and keeps the key (retained), deleting the tenant's other resources", async () => {
    const { dir, cloud } = await before();
    rmSync(join(dir, "tenants", `${TENANT}.yaml`));
    const report = cloud.up(await render(requireFleet({ projectDir: dir }), STACK));
    expect(report.retained).toEqual([expect.stringMatching(new RegExp(`[$:]${KEY}::tenant-${TENANT}-key$`))]);
    expect(report.deleted).toContain("kms alias alias/tenancy/prod/tenants/company-beta");
    expect(report.deleted).toContain("iam role tenancy-prod-t-company-beta");
  });

  it("downgrade to standard: the key is no longer declared and is retained; the secrets move to the cell key", async () => {
    const { dir, cloud } = await before();
    editYaml(dir, `tenants/${TENANT}.yaml`, (d) => void (d.tier = "standard"));
    const report = cloud.up(await render(requireFleet({ projectDir: dir }), STACK));
    expect(report.retained).toEqual([expect.stringMatching(new RegExp(`[$:]${KEY}::tenant-${TENANT}-key$`))]);
    expect(report.deleted).toEqual(["kms alias alias/tenancy/prod/tenants/company-beta"]);
  });

  it("negative control: had the key been protected, the engine would refuse the offboarding update", async () => {
    let dir = "";
    const fleet = tempFleet((d) => (dir = d));
    const first = await render(fleet, STACK);
    for (const x of first.resources) if (x.type === KEY && x.name === `tenant-${TENANT}-key`) x.options.protect = true;
    const cloud = new SimCloud();
    cloud.up(first);
    rmSync(join(dir, "tenants", `${TENANT}.yaml`));
    const next = await render(requireFleet({ projectDir: dir }), STACK);
    expect(() => cloud.up(next)).toThrow(ProtectedError);
    expect(() => cloud.up(next)).toThrow(/tenant-company-beta-key" as it is currently marked for protection/);
  });
});
