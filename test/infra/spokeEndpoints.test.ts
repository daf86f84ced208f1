/**
 * VPC endpoints of cell and dedicated VPCs (docs/network.md, "VPC endpoints"), rendered offline
 * under the mock runtime: the exact resources and inputs per cell and per dedicated tenant and
 * env, the app group's egress to them, the choice of AZs, a second `up` with nothing to do and the
 * order a destroy deletes them in (the engine double, test/support/engineSim.ts and destroySim.ts).
 */
import { beforeAll, describe, expect, it } from "vitest";
import {
  endpointAzs, endpointKey, HUB_INTERFACE_ENDPOINTS, INTERFACE_ENDPOINTS_PER_VPC, interfaceEndpoints, SPOKE_INTERFACE_ENDPOINTS,
} from "../../infra/model/endpoints.ts";
import type { Fleet } from "../../infra/model/fleet.ts";
import { tags } from "../../infra/model/naming.ts";
import { dedicatedAzs, planSubnets, type PlannedSubnet } from "../../infra/model/subnets.ts";
import { mockId } from "../../plan/render/mockOutputs.ts";
import type { RenderedStack } from "../../plan/types.ts";
import { AwsWorld, destroy } from "../support/destroySim.ts";
import { SimCloud } from "../support/engineSim.ts";
import { byTypeName, C, exampleFleet, ofType, plain, render, subtree, T } from "./support.ts";

const ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint";
const CELLS = ["shared-prod-use1-01", "shared-prod-use1-02", "shared-prod-euw1-01", "shared-staging-use1-01"];
const DEDICATED = ["dedicated-acme-prod", "dedicated-delta-health-prod", "dedicated-megacorp-prod", "dedicated-megacorp-staging"];

const fleet: Fleet = exampleFleet();
const rendered = new Map<string, RenderedStack>();
const get = (name: string) => rendered.get(name)!;

beforeAll(async () => {
  for (const name of [...CELLS, ...DEDICATED]) rendered.set(name, await render(fleet, name));
});

/** What the model says a spoke stack's VPC is: component name, owner tag, env, region, private subnets. */
function spoke(stack: string): { n: string; owner: string; env: string; region: string; subnets: readonly PlannedSubnet[] } {
  const cell = fleet.cells.get(stack);
  if (cell) return { n: `cell-${cell.id}`, owner: "shared", env: cell.env, region: cell.region, subnets: planSubnets({ vpcCidr: cell.config.cidr, azs: cell.config.azs }).private };
  const m = /^dedicated-(.+)-(prod|staging|dev)$/.exec(stack)!;
  const t = fleet.tenants.get(m[1]!)!.tenant;
  if (t.deployment !== "dedicated") throw new Error(`${stack}: not a dedicated tenant`);
  const net = t.dedicated[m[2]!]!;
  const azs = dedicatedAzs(t.region, m[2]!, net.azCount);
  return { n: `tenant-${t.id}`, owner: t.id, env: m[2]!, region: t.region, subnets: planSubnets({ vpcCidr: net.cidr, azs, publicSubnets: t.features.egress }).private };
}

describe("which endpoints each VPC kind gets (infra/model/endpoints.ts)", () => {
  it("hub: the six the runner and control plane call; cells and dedicated VPCs: the five their workloads call", () => {
    expect(interfaceEndpoints("hub")).toEqual(["secretsmanager", "kms", "sts", "logs", "ecr.api", "ecr.dkr"]);
    expect(interfaceEndpoints("cell")).toEqual(["secretsmanager", "ssm", "kms", "sts", "logs"]);
    expect(interfaceEndpoints("dedicated")).toEqual(interfaceEndpoints("cell"));
    expect(endpointKey("ecr.dkr")).toBe("ecr-dkr");
    // Far below AWS's default of 50 interface endpoints per VPC.
    expect(INTERFACE_ENDPOINTS_PER_VPC).toBe(50);
    expect(Math.max(HUB_INTERFACE_ENDPOINTS.length, SPOKE_INTERFACE_ENDPOINTS.length)).toBeLessThanOrEqual(INTERFACE_ENDPOINTS_PER_VPC);
  });

  it("AZs: every AZ for the hub and prod spokes, the first AZ only for non-prod spokes; no AZ is an error", () => {
    const azs = ["us-east-1a", "us-east-1b", "us-east-1c"];
    expect(endpointAzs("hub", "prod", azs)).toEqual(azs);
    expect(endpointAzs("cell", "prod", azs)).toEqual(azs);
    expect(endpointAzs("dedicated", "prod", azs)).toEqual(azs);
    expect(endpointAzs("cell", "staging", azs)).toEqual(["us-east-1a"]);
    expect(endpointAzs("dedicated", "dev", azs)).toEqual(["us-east-1a"]);
    expect(() => endpointAzs("cell", "prod", [])).toThrow("a cell VPC without AZs has nowhere to place its endpoints");
  });
});

describe.each([...CELLS, ...DEDICATED])("%s: VPC endpoints, exactly", (stack) => {
  it("a group admitting 443 from each private subnet, five interface endpoints with private DNS, the S3 gateway on every private table, the app group's egress to both", () => {
    const r = get(stack);
    const { n, owner, env, region, subnets } = spoke(stack);
    const id = (type: string, name: string) => mockId(type, name, stack);
    const t = tags(owner, env, stack);
    const vpcId = id(T.vpc, `${n}-network-vpc`);
    const sg = id(T.sg, `${n}-endpoints`);
    const component = byTypeName(r, C("VpcEndpoints"), `${n}-endpoints`);
    expect(component.parent).toBe(r.resources.find((x) => x.name === n && x.type.startsWith("saas-tenancy:components:"))!.urn);

    expect(plain(byTypeName(r, T.sg, `${n}-endpoints`))).toEqual({ vpcId, description: "Interface endpoints; HTTPS from the VPC's private subnets only", tags: t });
    for (const s of subnets) {
      expect(plain(byTypeName(r, T.ingress, `${n}-endpoints-from-${s.az}`))).toEqual({
        securityGroupId: sg, cidrIpv4: s.cidr, ipProtocol: "tcp", fromPort: 443, toPort: 443, description: `HTTPS from the private subnet in ${s.az}`, tags: t,
      });
    }
    // Prod: the endpoints' interfaces in every AZ; elsewhere in the first AZ only.
    const endpointSubnets = (env === "prod" ? subnets : subnets.slice(0, 1)).map((s) => id(T.subnet, `${n}-network-private-${s.az}`));
    for (const svc of ["secretsmanager", "ssm", "kms", "sts", "logs"]) {
      expect(plain(byTypeName(r, ENDPOINT, `${n}-endpoints-${svc}`))).toEqual({
        vpcId, serviceName: `com.amazonaws.${region}.${svc}`, vpcEndpointType: "Interface", privateDnsEnabled: true, subnetIds: endpointSubnets, securityGroupIds: [sg], tags: t,
      });
    }
    const s3 = byTypeName(r, ENDPOINT, `${n}-endpoints-s3`);
    expect(plain(s3)).toEqual({
      vpcId, serviceName: `com.amazonaws.${region}.s3`, vpcEndpointType: "Gateway", routeTableIds: subnets.map((s) => id(T.routeTable, `${n}-network-private-${s.az}`)), tags: t,
    });
    expect(subtree(r, component.urn)).toHaveLength(1 + 1 + subnets.length + 6);

    const app = id(T.sg, `${n}-sg-app`);
    const prefixList = s3.outputs?.prefixListId;
    expect(prefixList).toMatch(/^pl-[0-9a-f]{8}$/);
    expect(plain(byTypeName(r, T.egress, `${n}-sg-app-to-endpoints`))).toEqual({
      securityGroupId: app, referencedSecurityGroupId: sg, ipProtocol: "tcp", fromPort: 443, toPort: 443, description: "HTTPS to the VPC's interface endpoints", tags: t,
    });
    expect(plain(byTypeName(r, T.egress, `${n}-sg-app-to-s3`))).toEqual({
      securityGroupId: app, prefixListId: prefixList, ipProtocol: "tcp", fromPort: 443, toPort: 443, description: "HTTPS to S3 through the gateway endpoint", tags: t,
    });
    // One S3 gateway endpoint and five interface endpoints per VPC, nothing else of the kind.
    expect(ofType(r, ENDPOINT)).toHaveLength(6);
  });
});

describe("day 2", () => {
  it("a second up of the same program changes nothing (every stack, rendered afresh)", async () => {
    for (const stack of ["shared-prod-use1-01", "dedicated-megacorp-staging"]) {
      const cloud = new SimCloud();
      cloud.up(get(stack));
      const again = await render(fleet, stack);
      expect(cloud.up(again), stack).toMatchObject({ created: [], updated: [], replaced: [], aliased: [], deleted: [], retained: [] });
    }
  });

  it("a destroy deletes the endpoints and the app's rules to them before their group, the S3 endpoint before the route tables, all before the subnets and the VPC", () => {
    const stack = "shared-staging-use1-01";
    const n = "cell-use1-01";
    const cloud = new SimCloud();
    cloud.up(get(stack));
    const report = destroy(cloud, stack, new AwsWorld());
    expect(report).toMatchObject({ failed: [], blocked: [] });
    const at = (label: string) => {
      const i = report.deleted.indexOf(label);
      expect(i, label).toBeGreaterThanOrEqual(0);
      return i;
    };
    const group = at(`${T.sg} ${n}-endpoints`);
    const vpc = at(`${T.vpc} ${n}-network-vpc`);
    for (const svc of ["secretsmanager", "ssm", "kms", "sts", "logs"]) {
      const e = at(`${ENDPOINT} ${n}-endpoints-${svc}`);
      expect(e).toBeLessThan(group);
      expect(e).toBeLessThan(at(`${T.subnet} ${n}-network-private-us-east-1a`));
    }
    for (const rule of [`${T.egress} ${n}-sg-app-to-endpoints`, `${T.ingress} ${n}-endpoints-from-us-east-1a`]) expect(at(rule)).toBeLessThan(group);
    const s3 = at(`${ENDPOINT} ${n}-endpoints-s3`);
    expect(s3).toBeLessThan(at(`${T.routeTable} ${n}-network-private-us-east-1a`));
    expect(at(`${T.egress} ${n}-sg-app-to-s3`)).toBeLessThan(at(`${T.sg} ${n}-sg-app`));
    expect(group).toBeLessThan(vpc);
  });
});
