/**
 * A synthetic fleet's network resources in the `plan --json` shape, for the reachability bench and
 * the random-fleet property tests: what the program renders for the network of platform, cell and
 * dedicated stacks (same resource types, inputs and child names as infra/components: Network,
 * DatabaseSecurityGroups, PostgresInstance, Egress, the Transit Gateway spoke and hub, the
 * customer peering), with ids, ARNs and endpoints from the renderer's own mock (plan/render/mockOutputs.ts).
 * Rendering 11,000 stacks through the Pulumi mock runtime would take hours; this takes seconds.
 * The tests check it against the real renderer's output where both exist (test/plan/network).
 */
import { planSubnets } from "../../infra/model/subnets.ts";
import { mockOutputs } from "../../plan/render/mockOutputs.ts";
import type { DeclaredPeer } from "../../plan/network/inventory.ts";
import type { RenderedResource, RenderedStack } from "../../plan/types.ts";

export const ACCOUNT = "111111111111";
export const PG_PORT = 5432;

export interface HubSpec {
  region: string;
  cidr: string;
  azs: string[];
}
export interface SpokeSpec {
  stack: string;
  kind: "shared" | "dedicated";
  tenant: string;
  region: string;
  cidr: string;
  azs: string[];
  egress?: boolean;
  customer?: { vpcId: string; cidr: string; accountId: string };
}
export interface NetworkFleetSpec {
  hubs: HubSpec[];
  controlPlaneRegion: string;
  /** Every dedicated VPC's /16 is carved from it; the hubs route it to their Transit Gateway. */
  dedicatedSupernet: string;
  spokes: SpokeSpec[];
}

class StackBuilder {
  readonly resources: RenderedResource[] = [];
  constructor(readonly name: string, readonly region: string, readonly tags: Record<string, string>) {}

  add(type: string, name: string, inputs: Record<string, unknown>): RenderedResource & { id: string; outputs: Record<string, unknown> } {
    const { id, state } = mockOutputs(type, `${name}`, inputs, { region: this.region, accountId: ACCOUNT, stack: this.name });
    const r = {
      urn: `urn:pulumi:${this.name}::saas-tenancy::${type}::${name}`,
      type, name, parent: "", id, inputs, outputs: { ...state, ...inputs }, custom: true,
      options: { protect: false, retainOnDelete: false, deleteBeforeReplace: false, provider: "", ignoreChanges: [] },
    };
    this.resources.push(r);
    return r;
  }
}

const TGW_TYPES = {
  tgw: "aws:ec2transitgateway/transitGateway:TransitGateway",
  table: "aws:ec2transitgateway/routeTable:RouteTable",
  attach: "aws:ec2transitgateway/vpcAttachment:VpcAttachment",
  assoc: "aws:ec2transitgateway/routeTableAssociation:RouteTableAssociation",
  prop: "aws:ec2transitgateway/routeTablePropagation:RouteTablePropagation",
  route: "aws:ec2transitgateway/route:Route",
  peering: "aws:ec2transitgateway/peeringAttachment:PeeringAttachment",
  accepter: "aws:ec2transitgateway/peeringAttachmentAccepter:PeeringAttachmentAccepter",
};

interface Hub {
  spec: HubSpec;
  stack: StackBuilder;
  tgw: string;
  hubTable: string;
  spokesTable: string;
  runnerSubnets: { az: string; cidr: string; id: string }[];
  runnerSg: string;
  hubRouteTables: string[];
}

/** The network vpc/subnets/route tables as infra/components/network.ts renders them. */
function network(b: StackBuilder, name: string, cidr: string, azs: string[], publicSubnets: boolean) {
  const vpc = b.add("aws:ec2/vpc:Vpc", `${name}-vpc`, { cidrBlock: cidr, enableDnsSupport: true, enableDnsHostnames: true, tags: b.tags });
  b.add("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", `${name}-default-sg`, { vpcId: vpc.id, ingress: [], egress: [], tags: b.tags });
  const plan = planSubnets({ vpcCidr: cidr, azs, publicSubnets });
  const priv = plan.private.map(({ az, cidr: c }) => {
    const subnet = b.add("aws:ec2/subnet:Subnet", `${name}-private-${az}`, { vpcId: vpc.id, cidrBlock: c, availabilityZone: az, mapPublicIpOnLaunch: false, tags: b.tags });
    const table = b.add("aws:ec2/routeTable:RouteTable", `${name}-private-${az}`, { vpcId: vpc.id, tags: b.tags });
    b.add("aws:ec2/routeTableAssociation:RouteTableAssociation", `${name}-private-${az}`, { subnetId: subnet.id, routeTableId: table.id });
    return { az, cidr: c, id: subnet.id, table: table.id };
  });
  return { vpc: vpc.id, priv, pub: plan.public };
}

function egress(b: StackBuilder, name: string, vpcId: string, pub: { az: string; cidr: string }[], privTables: { az: string; table: string }[]) {
  const igw = b.add("aws:ec2/internetGateway:InternetGateway", `${name}-igw`, { vpcId, tags: b.tags });
  const publicTable = b.add("aws:ec2/routeTable:RouteTable", `${name}-public`, { vpcId, tags: b.tags });
  b.add("aws:ec2/route:Route", `${name}-public`, { routeTableId: publicTable.id, destinationCidrBlock: "0.0.0.0/0", gatewayId: igw.id });
  const nats = new Map<string, string>();
  for (const { az, cidr } of pub) {
    const subnet = b.add("aws:ec2/subnet:Subnet", `${name}-public-${az}`, { vpcId, cidrBlock: cidr, availabilityZone: az, mapPublicIpOnLaunch: false, tags: b.tags });
    b.add("aws:ec2/routeTableAssociation:RouteTableAssociation", `${name}-public-${az}`, { subnetId: subnet.id, routeTableId: publicTable.id });
    const eip = b.add("aws:ec2/eip:Eip", `${name}-nat-${az}`, { domain: "vpc", tags: b.tags });
    nats.set(az, b.add("aws:ec2/natGateway:NatGateway", `${name}-nat-${az}`, { allocationId: eip.id, subnetId: subnet.id, connectivityType: "public", tags: b.tags }).id);
  }
  for (const { az, table } of privTables) {
    b.add("aws:ec2/route:Route", `${name}-private-${az}`, { routeTableId: table, destinationCidrBlock: "0.0.0.0/0", natGatewayId: nats.get(az) ?? [...nats.values()][0] });
  }
}

function sgRule(b: StackBuilder, kind: "ingress" | "egress", name: string, inputs: Record<string, unknown>) {
  const type = kind === "ingress" ? "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule" : "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule";
  b.add(type, name, { ipProtocol: "tcp", fromPort: PG_PORT, toPort: PG_PORT, tags: b.tags, ...inputs });
}

function database(b: StackBuilder, name: string, identifier: string, subnetIds: string[], sgId: string, withProvider: boolean) {
  const group = b.add("aws:rds/subnetGroup:SubnetGroup", name, { name: identifier, description: `Private subnets of ${identifier}`, subnetIds, tags: b.tags });
  const db = b.add("aws:rds/instance:Instance", name, { identifier, engine: "postgres", port: PG_PORT, dbSubnetGroupName: group.outputs.name, vpcSecurityGroupIds: [sgId], publiclyAccessible: false, tags: b.tags });
  if (withProvider) {
    b.resources.push({
      urn: `urn:pulumi:${b.name}::saas-tenancy::pulumi:providers:postgresql::${name}`, type: "pulumi:providers:postgresql", name, parent: "", id: `${name}-provider`,
      inputs: { host: db.outputs.address, port: String(PG_PORT), sslmode: "require", superuser: "false" }, outputs: {}, custom: true,
      options: { protect: false, retainOnDelete: false, deleteBeforeReplace: false, provider: "", ignoreChanges: [] },
    });
  }
}

function hubStack(spec: HubSpec, _fleet: NetworkFleetSpec): Hub {
  const name = `platform-${spec.region}`;
  const b = new StackBuilder(name, spec.region, { tenant: "shared", env: "prod", stack: name, "managed-by": "saas-tenancy" });
  const net = network(b, `hub-${spec.region}`, spec.cidr, spec.azs, true);
  egress(b, `hub-${spec.region}-egress`, net.vpc, net.pub, net.priv);
  const tgw = b.add(TGW_TYPES.tgw, `tgw-${spec.region}`, { defaultRouteTableAssociation: "disable", defaultRouteTablePropagation: "disable", tags: b.tags });
  const hubTable = b.add(TGW_TYPES.table, `tgw-${spec.region}-hub`, { transitGatewayId: tgw.id, tags: b.tags });
  const spokesTable = b.add(TGW_TYPES.table, `tgw-${spec.region}-spokes`, { transitGatewayId: tgw.id, tags: b.tags });
  const attach = b.add(TGW_TYPES.attach, `hub-${spec.region}-attachment`, { transitGatewayId: tgw.id, vpcId: net.vpc, subnetIds: net.priv.map((s) => s.id), transitGatewayDefaultRouteTableAssociation: false, transitGatewayDefaultRouteTablePropagation: false, tags: b.tags });
  b.add(TGW_TYPES.assoc, `hub-${spec.region}-attachment`, { transitGatewayAttachmentId: attach.id, transitGatewayRouteTableId: hubTable.id });
  b.add(TGW_TYPES.prop, `hub-${spec.region}-to-spokes`, { transitGatewayAttachmentId: attach.id, transitGatewayRouteTableId: spokesTable.id });
  // The hub table knows the hub itself too: traffic arriving from a peered hub is routed by it.
  b.add(TGW_TYPES.prop, `hub-${spec.region}-to-hub`, { transitGatewayAttachmentId: attach.id, transitGatewayRouteTableId: hubTable.id });
  const sg = b.add("aws:ec2/securityGroup:SecurityGroup", `runner-${spec.region}`, { vpcId: net.vpc, description: "runner", tags: b.tags });
  b.add("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", `runner-${spec.region}-pg-out`, { securityGroupId: sg.id, ipProtocol: "tcp", fromPort: PG_PORT, toPort: PG_PORT, cidrIpv4: "10.0.0.0/8", tags: b.tags });
  b.add("aws:ecs/service:Service", `runner-${spec.region}`, { networkConfiguration: { subnets: net.priv.map((s) => s.id), securityGroups: [sg.id], assignPublicIp: false }, tags: { ...b.tags, role: "runner" } });
  return { spec, stack: b, tgw: tgw.id, hubTable: hubTable.id, spokesTable: spokesTable.id, runnerSubnets: net.priv, runnerSg: sg.id, hubRouteTables: net.priv.map((s) => s.table) };
}

/** Every stack of the fleet, in the `plan --json` shape. */
export function networkFleet(fleet: NetworkFleetSpec): RenderedStack[] {
  const hubs = new Map(fleet.hubs.map((h) => [h.region, hubStack(h, fleet)]));
  const cp = hubs.get(fleet.controlPlaneRegion)!;
  // Hub VPC routes: the dedicated supernet, every cell of the region and the peered hubs go to the TGW.
  for (const hub of hubs.values()) {
    const dests = [{ key: "dedicated", cidr: fleet.dedicatedSupernet }, ...fleet.spokes.filter((s) => s.kind === "shared" && s.region === hub.spec.region).map((s) => ({ key: s.stack, cidr: s.cidr }))];
    const peers = hub === cp ? [...hubs.values()].filter((h) => h !== cp) : [cp];
    for (const p of peers) dests.push({ key: `hub-${p.spec.region}`, cidr: p.spec.cidr });
    for (const [i, table] of hub.hubRouteTables.entries()) {
      for (const d of dests) hub.stack.add("aws:ec2/route:Route", `hub-${hub.spec.region}-${d.key}-${i}`, { routeTableId: table, destinationCidrBlock: d.cidr, transitGatewayId: hub.tgw });
    }
  }
  // Hub peering: each other region requests, the control plane's region accepts; static hub routes both ways.
  for (const hub of hubs.values()) {
    if (hub === cp) continue;
    const pa = hub.stack.add(TGW_TYPES.peering, `tgw-${hub.spec.region}-to-${cp.spec.region}`, { transitGatewayId: hub.tgw, peerTransitGatewayId: cp.tgw, peerRegion: cp.spec.region, peerAccountId: ACCOUNT, tags: hub.stack.tags });
    cp.stack.add(TGW_TYPES.accepter, `tgw-${cp.spec.region}-from-${hub.spec.region}`, { transitGatewayAttachmentId: pa.id, tags: cp.stack.tags });
    for (const [side, other] of [[hub, cp], [cp, hub]] as const) {
      side.stack.add(TGW_TYPES.assoc, `tgw-${side.spec.region}-peering-${other.spec.region}`, { transitGatewayAttachmentId: pa.id, transitGatewayRouteTableId: side.hubTable });
      side.stack.add(TGW_TYPES.route, `tgw-${side.spec.region}-to-hub-${other.spec.region}`, { transitGatewayRouteTableId: side.hubTable, destinationCidrBlock: other.spec.cidr, transitGatewayAttachmentId: pa.id });
    }
  }
  // The control plane's database, admitting every region's runner subnets.
  const cpSg = cp.stack.add("aws:ec2/securityGroup:SecurityGroup", "control-plane-db", { vpcId: cp.stack.resources.find((r) => r.type === "aws:ec2/vpc:Vpc")!.id, tags: cp.stack.tags });
  for (const hub of hubs.values()) for (const s of hub.runnerSubnets) sgRule(cp.stack, "ingress", `control-plane-db-from-${s.az}-${hub.spec.region}`, { securityGroupId: cpSg.id, cidrIpv4: s.cidr });
  database(cp.stack, "control-plane-db", "tenancy-control-plane", cp.runnerSubnets.map((s) => s.id), cpSg.id, false);

  const out: RenderedStack[] = [];
  for (const s of fleet.spokes) {
    const hub = hubs.get(s.region)!;
    const b = new StackBuilder(s.stack, s.region, { tenant: s.kind === "shared" ? "shared" : s.tenant, env: "prod", stack: s.stack, "managed-by": "saas-tenancy" });
    const comp = s.kind === "shared" ? `cell-${s.tenant}` : `tenant-${s.tenant}`;
    const net = network(b, `${comp}-network`, s.cidr, s.azs, s.egress === true);
    if (s.egress) egress(b, `${comp}-egress`, net.vpc, net.pub, net.priv);
    // Spoke: attachment of the private subnets, associated with `spokes`, propagated into `hub`, hub CIDR via the TGW.
    const attach = b.add(TGW_TYPES.attach, `${comp}-tgw`, { transitGatewayId: hub.tgw, vpcId: net.vpc, subnetIds: net.priv.map((x) => x.id), transitGatewayDefaultRouteTableAssociation: false, transitGatewayDefaultRouteTablePropagation: false, tags: b.tags });
    b.add(TGW_TYPES.assoc, `${comp}-tgw`, { transitGatewayAttachmentId: attach.id, transitGatewayRouteTableId: hub.spokesTable });
    b.add(TGW_TYPES.prop, `${comp}-tgw`, { transitGatewayAttachmentId: attach.id, transitGatewayRouteTableId: hub.hubTable });
    for (const p of net.priv) b.add("aws:ec2/route:Route", `${comp}-hub-${p.az}`, { routeTableId: p.table, destinationCidrBlock: hub.spec.cidr, transitGatewayId: hub.tgw });
    const app = b.add("aws:ec2/securityGroup:SecurityGroup", `${comp}-sg-app`, { vpcId: net.vpc, tags: b.tags });
    const db = b.add("aws:ec2/securityGroup:SecurityGroup", `${comp}-sg-db`, { vpcId: net.vpc, tags: b.tags });
    sgRule(b, "ingress", `${comp}-sg-db-from-app`, { securityGroupId: db.id, referencedSecurityGroupId: app.id });
    for (const r of hub.runnerSubnets) sgRule(b, "ingress", `${comp}-sg-db-from-runner-${r.az}`, { securityGroupId: db.id, cidrIpv4: r.cidr });
    sgRule(b, "egress", `${comp}-sg-app-to-db`, { securityGroupId: app.id, referencedSecurityGroupId: db.id });
    if (s.customer) {
      const pcx = b.add("aws:ec2/vpcPeeringConnection:VpcPeeringConnection", `${comp}-customer-peering`, { vpcId: net.vpc, peerVpcId: s.customer.vpcId, peerOwnerId: s.customer.accountId, autoAccept: false, tags: b.tags });
      for (const p of net.priv) b.add("aws:ec2/route:Route", `${comp}-customer-peering-${p.az}`, { routeTableId: p.table, destinationCidrBlock: s.customer.cidr, vpcPeeringConnectionId: pcx.id });
      sgRule(b, "ingress", `${comp}-sg-app-from-customer`, { securityGroupId: app.id, cidrIpv4: s.customer.cidr, fromPort: 443, toPort: 443 });
    }
    database(b, `${comp}-db`, `tenancy-prod-${s.tenant}`, net.priv.map((x) => x.id), db.id, true);
    out.push({ name: s.stack, kind: s.kind, tenants: [s.tenant], resources: b.resources, outputs: {} });
  }
  return [...[...hubs.values()].map((h) => ({ name: h.stack.name, kind: "platform" as unknown as "shared", tenants: [], resources: h.stack.resources, outputs: {} })), ...out];
}

/** The customer VPCs the fleet's tenant files would declare (checkNetwork's second argument). */
export function declaredPeers(fleet: NetworkFleetSpec): DeclaredPeer[] {
  return fleet.spokes.flatMap((s) => (s.customer ? [{ stack: s.stack, vpcId: s.customer.vpcId, cidr: s.customer.cidr }] : []));
}

/** A fleet of `cells` cells and `dedicated` dedicated VPCs over the given regions (round robin), /20 VPCs from 10.128.0.0/9 for dedicated and 10.8.0.0/13 for cells. */
export function syntheticNetworkSpec(opts: { cells: number; dedicated: number; regions?: string[]; customerEvery?: number; egressEvery?: number }): NetworkFleetSpec {
  const regions = opts.regions ?? ["us-east-1", "eu-west-1"];
  const hubs = regions.map((region, i) => ({ region, cidr: `10.${i}.0.0/16`, azs: [`${region}a`, `${region}b`] }));
  const block20 = (base: number, i: number) => {
    const n = base + i * 4096;
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.0/20`;
  };
  const spokes: SpokeSpec[] = [];
  for (let i = 0; i < opts.cells; i++) {
    const region = regions[i % regions.length]!;
    const cell = `c${String(i).padStart(5, "0")}`;
    spokes.push({ stack: `shared-prod-${cell}`, kind: "shared", tenant: cell, region, cidr: block20(0x0a080000, i), azs: [`${region}a`, `${region}b`] });
  }
  for (let i = 0; i < opts.dedicated; i++) {
    const region = regions[i % regions.length]!;
    const id = `d${String(i).padStart(5, "0")}`;
    const customer = opts.customerEvery && i % opts.customerEvery === 0 ? { vpcId: `vpc-0cus${String(i).padStart(12, "0")}`, cidr: `172.${16 + (i % 16)}.${Math.floor(i / 16) % 256}.0/24`, accountId: "222222222222" } : undefined;
    spokes.push({ stack: `dedicated-${id}-prod`, kind: "dedicated", tenant: id, region, cidr: block20(0x0a800000, i), azs: [`${region}a`, `${region}b`, `${region}c`], ...(opts.egressEvery && i % opts.egressEvery === 0 ? { egress: true } : {}), ...(customer ? { customer } : {}) });
  }
  return { hubs, controlPlaneRegion: regions[0]!, dedicatedSupernet: "10.128.0.0/9", spokes };
}
