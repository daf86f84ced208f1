/**
 * The quota check (infra/model/fleetLimits.ts) counts what each platform stack creates: its
 * counts equal the VPCs, Elastic IPs, IAM roles and RDS instances of the real program's render of
 * both platform stacks, so a component that adds one without the count changing fails here; the
 * same for the SSM parameters and SNS topics of every cell and dedicated stack.
 */
import { describe, expect, it } from "vitest";
import { quotaUsage, ssmParameterCount } from "../../infra/model/fleetLimits.ts";
import { exampleFleet, render, upgradingStartupAlpha } from "./support.ts";

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
    rendered.gatewayEndpointsPerRegion = gatewayEndpoints(r);
    const counted = Object.fromEntries(quotaUsage(fleet).filter((u) => u.holder === name).map((u) => [u.quota, u.count]));
    expect(counted).toEqual(rendered);
    // The control plane's region carries its roles (with an application role per env: prod, staging, dev) and database; the other region does not.
    expect(rendered).toEqual(name === "platform-us-east-1"
      ? { vpcsPerRegion: 1, elasticIpsPerRegion: 2, iamRolesPerAccount: 7, rdsInstancesPerRegion: 1, gatewayEndpointsPerRegion: 1 }
      : { vpcsPerRegion: 1, elasticIpsPerRegion: 2, iamRolesPerAccount: 2, gatewayEndpointsPerRegion: 1 });
  });

  it("gateway VPC endpoints: one per VPC in every cell and dedicated stack too, counted exactly as rendered", async () => {
    const fleet = exampleFleet();
    for (const name of [...fleet.stacks.keys()].filter((n) => !n.startsWith("platform-"))) {
      const r = await render(fleet, name);
      const counted = quotaUsage(fleet).filter((u) => u.holder === name && u.quota === "gatewayEndpointsPerRegion").map((u) => u.count);
      expect([gatewayEndpoints(r)], name).toEqual(counted);
      expect(counted, name).toEqual([1]);
    }
  });
});

describe("SNS topics per stack (the storage alarms' topic, docs/runtime-config.md)", () => {
  it("every stack of the example fleet: counted exactly as rendered, one per cell and dedicated stack, none in platform stacks", async () => {
    const fleet = exampleFleet();
    const rendered: Record<string, number> = {};
    const counted: Record<string, number> = {};
    for (const name of fleet.stacks.keys()) {
      rendered[name] = (await render(fleet, name)).resources.filter((x) => x.type === "aws:sns/topic:Topic").length;
      counted[name] = quotaUsage(fleet).filter((u) => u.holder === name && u.quota === "snsTopicsPerRegion").reduce((n, u) => n + u.count, 0);
    }
    expect(counted).toEqual(rendered);
    expect(rendered).toEqual({
      "dedicated-acme-prod": 1, "dedicated-delta-health-prod": 1, "dedicated-megacorp-prod": 1, "dedicated-megacorp-staging": 1,
      "platform-eu-west-1": 0, "platform-us-east-1": 0,
      "shared-prod-euw1-01": 1, "shared-prod-use1-01": 1, "shared-prod-use1-02": 1, "shared-staging-use1-01": 1,
    });
  }, 120_000);
});

/** S3 gateway endpoints of a rendered stack ("Gateway VPC endpoints per Region"). */
function gatewayEndpoints(r: { resources: { type: string; inputs: Record<string, unknown> }[] }): number {
  return r.resources.filter((x) => x.type === "aws:ec2/vpcEndpoint:VpcEndpoint" && x.inputs.vpcEndpointType === "Gateway").length;
}

describe("SSM parameters per stack (Parameter Store quota, docs/runtime-config.md)", () => {
  const SSM = "aws:ssm/parameter:Parameter";

  it("every cell and dedicated stack of the example fleet: counted exactly as rendered; platform stacks write none", async () => {
    const fleet = exampleFleet();
    const rendered: Record<string, number> = {};
    const counted: Record<string, number> = {};
    for (const name of fleet.stacks.keys()) {
      rendered[name] = (await render(fleet, name)).resources.filter((x) => x.type === SSM).length;
      counted[name] = ssmParameterCount(fleet, fleet.stacks.get(name)!);
    }
    expect(counted).toEqual(rendered);
    // A cell: one document per tenant it serves and one routing page; a dedicated stack: its document and its share.
    expect(rendered).toEqual({
      "dedicated-acme-prod": 2, "dedicated-delta-health-prod": 2, "dedicated-megacorp-prod": 2, "dedicated-megacorp-staging": 2,
      "platform-eu-west-1": 0, "platform-us-east-1": 0,
      "shared-prod-euw1-01": 3, "shared-prod-use1-01": 3, "shared-prod-use1-02": 3, "shared-staging-use1-01": 3,
    });
    const regional = quotaUsage(fleet).filter((u) => u.quota === "ssmStandardParametersPerRegion");
    expect(regional.reduce((n, u) => n + (u.region === "us-east-1" ? u.count : 0), 0)).toBe(15);
    expect(regional.reduce((n, u) => n + (u.region === "eu-west-1" ? u.count : 0), 0)).toBe(5);
  }, 120_000);

  it("through an upgrade the count follows the render: the document moves at cutover, the dedicated share appears with it", async () => {
    for (const phase of ["copying", "cutover", "cleanup"]) {
      const fleet = upgradingStartupAlpha(phase);
      const got: Record<string, [number, number]> = {};
      for (const name of ["shared-prod-use1-01", "dedicated-startup-alpha-prod"]) {
        got[name] = [ssmParameterCount(fleet, fleet.stacks.get(name)!), (await render(fleet, name)).resources.filter((x) => x.type === SSM).length];
      }
      const before = phase === "copying";
      expect(got, phase).toEqual({ "shared-prod-use1-01": before ? [3, 3] : [2, 2], "dedicated-startup-alpha-prod": before ? [0, 0] : [2, 2] });
    }
  }, 120_000);
});
