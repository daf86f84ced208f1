import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { declaredPeers, networkFleet, syntheticNetworkSpec } from "../../../bench/lib/networkFleet.ts";
import { checkNetwork, formatFinding } from "../../../plan/network/check.ts";
import type { RenderedStack } from "../../../plan/types.ts";
import { addLike, find, remove, setInputs } from "./support.ts";

const PROPAGATION = "aws:ec2transitgateway/routeTablePropagation:RouteTablePropagation";
const ASSOCIATION = "aws:ec2transitgateway/routeTableAssociation:RouteTableAssociation";
const ECS = "aws:ecs/service:Service";

/** 2 cells and 4 dedicated tenants over us-east-1 and eu-west-1; d00000 and d00002 peer with a customer VPC and have NAT egress. */
const SPEC = syntheticNetworkSpec({ cells: 2, dedicated: 4, customerEvery: 2, egressEvery: 2 });
function fleet(): RenderedStack[] {
  return networkFleet(SPEC);
}

function lines(stacks: RenderedStack[]): string[] {
  return checkNetwork(stacks, declaredPeers(SPEC)).findings.map(formatFinding);
}

describe("network check on a synthetic fleet (the program's network resources, bench/lib/networkFleet.ts)", () => {
  it("proves every provider's database reachable from its region's runner, and the control plane's from every runner", () => {
    const report = checkNetwork(fleet(), declaredPeers(SPEC));
    expect(report.findings.map(formatFinding)).toEqual([]);
    expect(report.counts).toMatchObject({ vpcs: 8, databases: 7, providers: 6, runners: 2, tenantVpcs: 6 });
    expect(report.proven.map((p) => `${p.stack}: ${p.source} -> ${p.destination}:${p.port}`).sort()).toEqual([
      "dedicated-d00000-prod: runner use1 -> db tenancy-prod-d00000:5432",
      "dedicated-d00001-prod: runner euw1 -> db tenancy-prod-d00001:5432",
      "dedicated-d00002-prod: runner use1 -> db tenancy-prod-d00002:5432",
      "dedicated-d00003-prod: runner euw1 -> db tenancy-prod-d00003:5432",
      "platform-us-east-1: runner euw1 -> db tenancy-control-plane:5432",
      "platform-us-east-1: runner use1 -> db tenancy-control-plane:5432",
      "shared-prod-c00000: runner use1 -> db tenancy-prod-c00000:5432",
      "shared-prod-c00001: runner euw1 -> db tenancy-prod-c00001:5432",
    ]);
    // Every hop named: the eu-west-1 runner reaches the control plane's database through the hub peering.
    const cp = report.proven.find((p) => p.source === "runner euw1" && p.destination === "db tenancy-control-plane")!;
    expect(cp.hops.some((h) => h.includes("tgw-eu-west-1-hub") && h.includes("tgw-eu-west-1-to-us-east-1"))).toBe(true);
    expect(cp.hops.some((h) => h.startsWith("transit gateway ") && h.includes("platform-us-east-1"))).toBe(true);
  });

  it("a missing Transit Gateway association: the replies of the cell's database are dropped at its attachment", () => {
    const s = fleet();
    remove(s, "shared-prod-c00000", "cell-c00000-tgw", ASSOCIATION);
    const attachment = find(s, "shared-prod-c00000", "cell-c00000-tgw", "aws:ec2transitgateway/vpcAttachment:VpcAttachment");
    const tgw = find(s, "platform-us-east-1", "tgw-us-east-1");
    expect(lines(s)).toEqual([
      `shared-prod-c00000: runner use1 -> db tenancy-prod-c00000:5432: replies: attachment ${attachment.id} (cell-c00000-tgw, shared-prod-c00000) has no route table association on transit gateway ${tgw.id} (tgw-us-east-1): the transit gateway drops its traffic`,
    ]);
  });

  it("a spoke propagated into `spokes`: every other spoke of the region reaches it, named at the spokes table", () => {
    const s = fleet();
    const p = find(s, "dedicated-d00002-prod", "tenant-d00002-tgw", PROPAGATION);
    const spokes = find(s, "platform-us-east-1", "tgw-us-east-1-spokes");
    addLike(s, "dedicated-d00002-prod", p, "tenant-d00002-tgw-spokes", "tgw-rtb-prop-x", { ...p.inputs, transitGatewayRouteTableId: spokes.id });
    const attachment = find(s, "dedicated-d00002-prod", "tenant-d00002-tgw", "aws:ec2transitgateway/vpcAttachment:VpcAttachment");
    const hop = `transit gateway routes alone: transit gateway route table ${spokes.id} (tgw-us-east-1-spokes, platform-us-east-1): 10.128.32.0/20 -> attachment ${attachment.id} (tenant-d00002-tgw, dedicated-d00002-prod) (propagation tenant-d00002-tgw-spokes (dedicated-d00002-prod))`;
    expect(lines(s)).toEqual([
      `shared-prod-c00000: vpc cell-c00000-network-vpc 10.8.0.0/20 -> dedicated-d00002-prod 10.128.32.0/20:any: ${hop}`,
      `dedicated-d00000-prod: vpc tenant-d00000-network-vpc 10.128.0.0/20 -> dedicated-d00002-prod 10.128.32.0/20:any: ${hop}`,
    ]);
  });

  it("a database security group opened to another tenant's CIDR is named, though routing alone isolates", () => {
    const s = fleet();
    const rule = find(s, "dedicated-d00000-prod", "tenant-d00000-sg-db-from-runner-us-east-1a");
    addLike(s, "dedicated-d00000-prod", rule, "tenant-d00000-sg-db-from-d2", "sgr-0x", { ...rule.inputs, cidrIpv4: "10.128.32.0/20" });
    const sg = find(s, "dedicated-d00000-prod", "tenant-d00000-sg-db");
    expect(lines(s)).toEqual([
      `dedicated-d00002-prod: vpc tenant-d00002-network-vpc 10.128.32.0/20 -> dedicated-d00000-prod 10.128.0.0/20:any: security groups alone: security group ${sg.id} (tenant-d00000-sg-db, dedicated-d00000-prod) rule tenant-d00000-sg-db-from-d2 admits 10.128.32.0/20, which holds dedicated-d00002-prod's 10.128.32.0/20`,
    ]);
  });

  it("a route to another tenant's CIDR is named at the route table, though the Transit Gateway alone isolates", () => {
    const s = fleet();
    const r = find(s, "dedicated-d00000-prod", "tenant-d00000-hub-us-east-1a");
    addLike(s, "dedicated-d00000-prod", r, "tenant-d00000-to-d2", "r-0x", { ...r.inputs, destinationCidrBlock: "10.128.32.0/20" });
    const table = find(s, "dedicated-d00000-prod", "tenant-d00000-network-private-us-east-1a", "aws:ec2/routeTable:RouteTable");
    const tgw = find(s, "platform-us-east-1", "tgw-us-east-1");
    const attachment = find(s, "dedicated-d00000-prod", "tenant-d00000-tgw", "aws:ec2transitgateway/vpcAttachment:VpcAttachment");
    expect(lines(s)).toEqual([
      `dedicated-d00000-prod: vpc tenant-d00000-network-vpc 10.128.0.0/20 -> dedicated-d00002-prod 10.128.32.0/20:any: VPC routes alone (transit gateway assumed open): route table ${table.id} (tenant-d00000-network-private-us-east-1a, dedicated-d00000-prod): 10.128.32.0/20 -> transit gateway ${tgw.id} (tgw-us-east-1) through attachment ${attachment.id} (tenant-d00000-tgw, dedicated-d00000-prod) (route tenant-d00000-to-d2)`,
    ]);
  });

  it("a customer peering route wider than the customer's CIDR is named", () => {
    const s = fleet();
    setInputs(find(s, "dedicated-d00000-prod", "tenant-d00000-customer-peering-us-east-1a"), { destinationCidrBlock: "172.16.0.0/12" });
    const table = find(s, "dedicated-d00000-prod", "tenant-d00000-network-private-us-east-1a", "aws:ec2/routeTable:RouteTable");
    const pcx = find(s, "dedicated-d00000-prod", "tenant-d00000-customer-peering");
    expect(lines(s)).toEqual([
      `dedicated-d00000-prod: vpc tenant-d00000-network-vpc -> customer VPC vpc-0cus000000000000 172.16.0.0/24:any: route table ${table.id} (tenant-d00000-network-private-us-east-1a) route tenant-d00000-customer-peering-us-east-1a sends 172.16.0.0/12 to peering ${pcx.id}, wider than the customer's CIDR 172.16.0.0/24`,
    ]);
  });

  it("a customer peering whose CIDR no tenant file declares cannot be checked, and says so", () => {
    const s = fleet();
    const pcx = find(s, "dedicated-d00000-prod", "tenant-d00000-customer-peering");
    expect(checkNetwork(s).findings.map(formatFinding).filter((l) => l.includes("customer"))).toEqual([
      `dedicated-d00000-prod: vpc tenant-d00000-network-vpc -> customer VPC vpc-0cus000000000000:any: peering ${pcx.id} (tenant-d00000-customer-peering) goes to a VPC of no stack whose CIDR no tenant file declares (customerVpc): its routes cannot be checked`,
      `dedicated-d00002-prod: vpc tenant-d00002-network-vpc -> customer VPC vpc-0cus000000000002:any: peering ${find(s, "dedicated-d00002-prod", "tenant-d00002-customer-peering").id} (tenant-d00002-customer-peering) goes to a VPC of no stack whose CIDR no tenant file declares (customerVpc): its routes cannot be checked`,
    ]);
  });

  it("another tenant routed into a customer's peering is refused by AWS (peerings are not transitive): no path", () => {
    const s = fleet();
    // d00002 (same region) sends d00000's customer CIDR to the TGW; the spokes table has no route to it.
    const r = find(s, "dedicated-d00002-prod", "tenant-d00002-hub-us-east-1a");
    addLike(s, "dedicated-d00002-prod", r, "tenant-d00002-to-customer", "r-0y", { ...r.inputs, destinationCidrBlock: "172.16.0.0/24" });
    expect(lines(s)).toEqual([]);
  });

  it("a hub routing a customer's CIDR to the owner's attachment still cannot reach it: the peering carries only the owner's addresses", () => {
    const s = fleet();
    const hubRoute = find(s, "platform-us-east-1", "hub-us-east-1-dedicated-0");
    addLike(s, "platform-us-east-1", hubRoute, "hub-to-customer", "r-0z", { ...hubRoute.inputs, destinationCidrBlock: "172.16.0.0/24" });
    const attachment = find(s, "dedicated-d00000-prod", "tenant-d00000-tgw", "aws:ec2transitgateway/vpcAttachment:VpcAttachment");
    const hubTable = find(s, "platform-us-east-1", "tgw-us-east-1-hub");
    const tr = find(s, "platform-us-east-1", "tgw-us-east-1-to-hub-eu-west-1");
    addLike(s, "platform-us-east-1", tr, "tgw-hub-to-customer", "tgw-r-0z", { transitGatewayRouteTableId: hubTable.id, destinationCidrBlock: "172.16.0.0/24", transitGatewayAttachmentId: attachment.id });
    expect(lines(s)).toEqual([]);
  });

  it("a runner in the wrong region: eu-west-1 databases name the runner of platform-eu-west-1", () => {
    const s = fleet();
    const use1 = find(s, "platform-us-east-1", "runner-us-east-1", ECS);
    setInputs(find(s, "platform-eu-west-1", "runner-eu-west-1", ECS), { networkConfiguration: use1.inputs.networkConfiguration });
    const hop = "the runner of platform-eu-west-1 runs in us-east-1 (runner-eu-west-1: its subnets are in a VPC of us-east-1); eu-west-1 data must be handled in eu-west-1";
    expect(lines(s)).toEqual([
      `shared-prod-c00001: runner euw1 -> db tenancy-prod-c00001:5432: ${hop}`,
      `dedicated-d00001-prod: runner euw1 -> db tenancy-prod-d00001:5432: ${hop}`,
      `dedicated-d00003-prod: runner euw1 -> db tenancy-prod-d00003:5432: ${hop}`,
      `platform-us-east-1: runner euw1 -> db tenancy-control-plane:5432: ${hop}`,
    ]);
  });

  it("a database security group without the runner's subnets: the database side is named", () => {
    const s = fleet();
    remove(s, "shared-prod-c00001", "cell-c00001-sg-db-from-runner-eu-west-1a", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule");
    const sg = find(s, "shared-prod-c00001", "cell-c00001-sg-db");
    expect(lines(s)).toEqual([
      `shared-prod-c00001: runner euw1 -> db tenancy-prod-c00001:5432: security group ${sg.id} (cell-c00001-sg-db) admits no ingress rule for tcp/5432 from 10.1.0.0/20 (database side)`,
    ]);
  });

  it("a spoke without the hub route: the database's replies have no way back", () => {
    const s = fleet();
    remove(s, "dedicated-d00001-prod", "tenant-d00001-hub-eu-west-1b", "aws:ec2/route:Route");
    const table = find(s, "dedicated-d00001-prod", "tenant-d00001-network-private-eu-west-1b", "aws:ec2/routeTable:RouteTable");
    expect(lines(s)).toEqual([
      `dedicated-d00001-prod: runner euw1 -> db tenancy-prod-d00001:5432: replies: route table ${table.id} (tenant-d00001-network-private-eu-west-1b, dedicated-d00001-prod) has no route to 10.1.0.0/20`,
    ]);
  });

  it("random fleets: every provider's database reachable, no tenant pair connected, no customer reached but by its owner", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 8 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        (cells, dedicated, customerEvery, egressEvery) => {
          const spec = syntheticNetworkSpec({ cells, dedicated, customerEvery, egressEvery });
          const report = checkNetwork(networkFleet(spec), declaredPeers(spec));
          expect(report.findings.map(formatFinding)).toEqual([]);
          // One proven path per provider, plus each runner to the control plane's database.
          expect(report.proven).toHaveLength(cells + dedicated + 2);
          expect(report.counts.tenantVpcs).toBe(cells + dedicated);
        },
      ),
      { numRuns: 25 },
    );
  });

  it("random fleets with one spoke propagated into `spokes`: every other spoke of its region is reported reaching it", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 5 }), fc.integer({ min: 2, max: 6 }), fc.nat(), (cells, dedicated, pick) => {
        const s = networkFleet(syntheticNetworkSpec({ cells, dedicated }));
        const spokes = s.filter((x) => x.name.startsWith("shared-") || x.name.startsWith("dedicated-"));
        const victim = spokes[pick % spokes.length]!;
        const p = victim.resources.find((r) => r.type === PROPAGATION)!;
        const region = victim.resources.find((r) => r.type === "aws:ec2/vpc:Vpc")!.outputs!.arn!.toString().split(":")[3]!;
        const table = find(s, `platform-${region}`, `tgw-${region}-spokes`);
        addLike(s, victim.name, p, `${p.name}-spokes`, "tgw-prop-x", { ...p.inputs, transitGatewayRouteTableId: table.id });
        const sameRegion = spokes.filter((x) => x !== victim && x.resources.find((r) => r.type === "aws:ec2/vpc:Vpc")!.outputs!.arn!.toString().includes(`:${region}:`));
        const reported = new Set(checkNetwork(s).findings.filter((f) => f.check === "isolation" && f.destination.startsWith(`${victim.name} `)).map((f) => f.stack));
        expect([...reported].sort()).toEqual(sameRegion.map((x) => x.name).sort());
      }),
      { numRuns: 15 },
    );
  });
});
