/**
 * Property (e) of the network check (plan/network/endpoints.ts) over the example fleet rendered by
 * the real program: every interface endpoint of the hubs, cells and dedicated VPCs is usable from
 * its VPC's workload subnets; each negative control is caught with the subnet and the hop named.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { checkNetwork, formatFinding } from "../../../plan/network/check.ts";
import { declaredPeersOf } from "../../../plan/network/declared.ts";
import { planStacks } from "../../../plan/planStacks.ts";
import type { RenderedStack } from "../../../plan/types.ts";
import { exampleFleet } from "../../infra/support.ts";
import { find, remove, setInputs } from "./support.ts";

const fleet = exampleFleet();
const peers = declaredPeersOf(fleet);
let rendered: RenderedStack[];

beforeAll(async () => {
  rendered = (await planStacks(fleet, [...fleet.stacks.keys()], { analyze: async () => [] })).stacks;
}, 300_000);

const copy = (): RenderedStack[] => structuredClone(rendered);
const lines = (stacks: RenderedStack[]) => checkNetwork(stacks, peers).findings.filter((f) => f.check === "endpoints").map(formatFinding);
const ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint";
const INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule";

const SG = "aws:ec2/securityGroup:SecurityGroup";
const SPOKE = ["secretsmanager", "ssm", "kms", "sts", "logs"];

describe("interface endpoints in the example fleet", () => {
  it("every endpoint of every hub, cell and dedicated VPC is usable from its VPC's workload subnets: no finding", () => {
    expect(lines(copy())).toEqual([]);
    // The check saw them: 6 per hub, 5 per cell and dedicated VPC.
    const interfaces = rendered.flatMap((s) => s.resources.filter((r) => r.type === ENDPOINT && r.inputs.vpcEndpointType === "Interface"));
    expect(interfaces).toHaveLength(2 * 6 + 8 * 5);
  });

  it("a cell's endpoint group that does not admit one of the cell's subnets: each endpoint is unreachable from that subnet", () => {
    const s = copy();
    remove(s, "shared-prod-use1-01", "cell-use1-01-endpoints-from-us-east-1b", INGRESS);
    const sg = find(s, "shared-prod-use1-01", "cell-use1-01-endpoints", SG).id!;
    expect(lines(s)).toEqual(SPOKE.map((svc) =>
      `shared-prod-use1-01: subnet cell-use1-01-network-private-us-east-1b 10.1.16.0/20 -> endpoint ${svc} (cell-use1-01-endpoints-${svc}):443: security group ${sg} (cell-use1-01-endpoints) admits no ingress rule for tcp/443 from 10.1.16.0/20`));
  });

  it("a rule admitting only part of a subnet does not count: every address of the subnet must be admitted", () => {
    const s = copy();
    const rule = find(s, "dedicated-megacorp-staging", "tenant-megacorp-endpoints-from-us-east-1a", INGRESS);
    expect(rule.inputs.cidrIpv4).toBe("10.65.0.0/20");
    setInputs(rule, { cidrIpv4: "10.65.0.0/24" });
    const sg = find(s, "dedicated-megacorp-staging", "tenant-megacorp-endpoints", SG).id!;
    expect(lines(s)).toEqual(SPOKE.map((svc) =>
      `dedicated-megacorp-staging: subnet tenant-megacorp-network-private-us-east-1a 10.65.0.0/20 -> endpoint ${svc} (tenant-megacorp-endpoints-${svc}):443: security group ${sg} (tenant-megacorp-endpoints) admits no ingress rule for tcp/443 from 10.65.0.0/20`));
  });

  it("private DNS off on one endpoint: named once, for its VPC", () => {
    const s = copy();
    setInputs(find(s, "dedicated-acme-prod", "tenant-acme-endpoints-kms", ENDPOINT), { privateDnsEnabled: false });
    expect(lines(s)).toEqual([
      "dedicated-acme-prod: vpc tenant-acme-network-vpc 10.66.0.0/16 -> endpoint kms (tenant-acme-endpoints-kms):443: private DNS is off: the service's public name resolves to its public addresses, which this VPC cannot reach without a NAT",
    ]);
  });

  it("a VPC without DNS host names: its endpoints' private DNS does not resolve", () => {
    const s = copy();
    setInputs(find(s, "shared-prod-euw1-01", "cell-euw1-01-network-vpc", "aws:ec2/vpc:Vpc"), { enableDnsHostnames: false });
    expect(lines(s)).toEqual(SPOKE.map((svc) =>
      `shared-prod-euw1-01: vpc cell-euw1-01-network-vpc 10.21.0.0/16 -> endpoint ${svc} (cell-euw1-01-endpoints-${svc}):443: the VPC needs enableDnsSupport and enableDnsHostnames for the endpoint's private DNS`));
  });

  it("a cell missing one of the services its workloads need", () => {
    const s = copy();
    remove(s, "shared-staging-use1-01", "cell-use1-01-endpoints-ssm", ENDPOINT);
    expect(lines(s)).toEqual([
      "shared-staging-use1-01: vpc cell-use1-01-network-vpc 10.11.0.0/16 -> endpoints of a cell VPC:443: no interface endpoint for ssm: its workloads cannot reach that service without a NAT",
    ]);
  });

  it("the hub's endpoints too: without the rule admitting the hub, neither the runner nor the services subnets reach them", () => {
    const s = copy();
    remove(s, "platform-eu-west-1", "hub-euw1-endpoints-from-hub", INGRESS);
    const found = lines(s);
    // 6 endpoints x (2 runner + 2 services subnets); the public subnets (NAT, load balancer) are no workload subnets.
    expect(found).toHaveLength(24);
    expect(found.every((l) => l.startsWith("platform-eu-west-1: subnet hub-euw1-"))).toBe(true);
    expect(found.some((l) => l.includes("-egress-public-"))).toBe(false);
  });
});
