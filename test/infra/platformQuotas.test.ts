/**
 * The quota check (infra/model/fleetLimits.ts) counts what each platform stack creates: its
 * counts equal the VPCs, Elastic IPs, IAM roles and RDS instances of the real program's render of
 * both platform stacks, so a component that adds one without the count changing fails here.
 */
import { describe, expect, it } from "vitest";
import { quotaUsage } from "../../infra/model/fleetLimits.ts";
import { exampleFleet, render } from "./support.ts";

const COUNTED = {
  vpcsPerRegion: "aws:ec2/vpc:Vpc",
  elasticIpsPerRegion: "aws:ec2/eip:Eip",
  iamRolesPerAccount: "aws:iam/role:Role",
  rdsInstancesPerRegion: "aws:rds/instance:Instance",
  hostedZonesPerAccount: "aws:route53/zone:Zone",
} as const;

describe("quota usage of the platform stacks", () => {
  it.each(["platform-us-east-1", "platform-eu-west-1"])("%s: counted exactly as rendered", async (name) => {
    const fleet = exampleFleet();
    const r = await render(fleet, name);
    const rendered = Object.fromEntries(Object.entries(COUNTED).map(([q, type]) => [q, r.resources.filter((x) => x.type === type).length]).filter(([, n]) => n !== 0));
    const counted = Object.fromEntries(quotaUsage(fleet).filter((u) => u.holder === name).map((u) => [u.quota, u.count]));
    expect(counted).toEqual(rendered);
    // The control plane's region carries its roles (with an application role per env: prod, staging, dev) and database; the other region does not.
    expect(rendered).toEqual(name === "platform-us-east-1"
      ? { vpcsPerRegion: 1, elasticIpsPerRegion: 2, iamRolesPerAccount: 7, rdsInstancesPerRegion: 1 }
      : { vpcsPerRegion: 1, elasticIpsPerRegion: 2, iamRolesPerAccount: 2 });
  });
});
