/**
 * The network inventory of a fleet for the reachability analysis (plan/network): every VPC,
 * subnet, route table, gateway, Transit Gateway object, peering, security group, network ACL,
 * database and runner of all rendered stacks, read from the `plan --json` shape (plan/types.ts)
 * and joined by the ids the resources carry (the mock runtime's offline, the provider's in a
 * `pulumi stack export`). Pure: no Pulumi, no AWS SDK.
 *
 * Joining: a reference (`vpcId`, `transitGatewayRouteTableId`, ...) is looked up first among the
 * resources of the same stack, then among all stacks; a reference that names resources of several
 * other stacks is an error (the join would be a guess), one that names nothing is kept unresolved
 * and the analysis says so where it matters (a customer's VPC is not ours to know).
 */
import { isSecretValue, unwrapSecrets, type RenderedResource, type RenderedStack } from "../types.ts";
import { cidrRange, type Block } from "./ranges.ts";

export const T = {
  vpc: "aws:ec2/vpc:Vpc",
  vpcCidr: "aws:ec2/vpcIpv4CidrBlockAssociation:VpcIpv4CidrBlockAssociation",
  subnet: "aws:ec2/subnet:Subnet",
  routeTable: "aws:ec2/routeTable:RouteTable",
  defaultRouteTable: "aws:ec2/defaultRouteTable:DefaultRouteTable",
  mainRouteTableAssociation: "aws:ec2/mainRouteTableAssociation:MainRouteTableAssociation",
  route: "aws:ec2/route:Route",
  routeTableAssociation: "aws:ec2/routeTableAssociation:RouteTableAssociation",
  igw: "aws:ec2/internetGateway:InternetGateway",
  nat: "aws:ec2/natGateway:NatGateway",
  pcx: "aws:ec2/vpcPeeringConnection:VpcPeeringConnection",
  pcxAccepter: "aws:ec2/vpcPeeringConnectionAccepter:VpcPeeringConnectionAccepter",
  tgw: "aws:ec2transitgateway/transitGateway:TransitGateway",
  tgwVpcAttachment: "aws:ec2transitgateway/vpcAttachment:VpcAttachment",
  tgwPeering: "aws:ec2transitgateway/peeringAttachment:PeeringAttachment",
  tgwPeeringAccepter: "aws:ec2transitgateway/peeringAttachmentAccepter:PeeringAttachmentAccepter",
  tgwRouteTable: "aws:ec2transitgateway/routeTable:RouteTable",
  tgwAssociation: "aws:ec2transitgateway/routeTableAssociation:RouteTableAssociation",
  tgwPropagation: "aws:ec2transitgateway/routeTablePropagation:RouteTablePropagation",
  tgwRoute: "aws:ec2transitgateway/route:Route",
  sg: "aws:ec2/securityGroup:SecurityGroup",
  defaultSg: "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
  sgRule: "aws:ec2/securityGroupRule:SecurityGroupRule",
  sgIngress: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
  sgEgress: "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
  nacl: "aws:ec2/networkAcl:NetworkAcl",
  defaultNacl: "aws:ec2/defaultNetworkAcl:DefaultNetworkAcl",
  naclRule: "aws:ec2/networkAclRule:NetworkAclRule",
  naclAssociation: "aws:ec2/networkAclAssociation:NetworkAclAssociation",
  rds: "aws:rds/instance:Instance",
  rdsSubnetGroup: "aws:rds/subnetGroup:SubnetGroup",
  pgProvider: "pulumi:providers:postgresql",
  ecsService: "aws:ecs/service:Service",
  loadBalancer: "aws:lb/loadBalancer:LoadBalancer",
} as const;

/** What every modelled object keeps of its resource: where it comes from, for messages. */
export interface Origin {
  stack: string;
  urn: string;
  name: string;
  id: string;
}

export interface Vpc extends Origin {
  cidrs: Block[];
  region: string;
  /** The stack kind: platform (hub), shared (cell) or dedicated. */
  kind: string;
  /** The VPC's main route table, used by subnets with no explicit association. */
  mainRouteTable: RouteTable;
  defaultSecurityGroupId?: string;
  subnets: Subnet[];
}

export interface Subnet extends Origin {
  vpc: Vpc;
  block: Block;
  az: string;
  routeTable?: RouteTable;
  nacl?: Nacl;
}

export type RouteTarget =
  | { kind: "local" }
  | { kind: "igw"; id: string }
  | { kind: "nat"; id: string; nat?: NatGateway }
  | { kind: "tgw"; id: string; tgw?: Tgw }
  | { kind: "pcx"; id: string; pcx?: Peering }
  | { kind: "other"; what: string };

export interface VpcRoute {
  block: Block;
  target: RouteTarget;
  /** The route resource (or `local`). */
  from: string;
}

export interface RouteTable extends Origin {
  vpc: Vpc;
  routes: VpcRoute[];
}

export interface NatGateway extends Origin {
  subnet?: Subnet;
  private: boolean;
}

export interface Peering extends Origin {
  /** Requester VPC (ours: the stack that declares it). */
  vpc?: Vpc;
  vpcId: string;
  peer?: Vpc;
  peerVpcId: string;
  peerOwnerId?: string;
  peerRegion?: string;
  /** autoAccept, or an accepter resource of ours. Otherwise the peer's owner may or may not accept. */
  accepted: boolean;
  /** The peer side's CIDR when the peer VPC is not ours, as the tenant file declares it (DeclaredPeer). */
  declaredPeerCidr?: Block;
  tenant?: string;
}

export interface Tgw extends Origin {
  region: string;
  defaultAssociation: boolean;
  defaultPropagation: boolean;
  sgReferencing: boolean;
  /** The default route table, when default association or propagation is on. */
  defaultTable?: TgwRouteTable;
}

export interface TgwAttachment extends Origin {
  kind: "vpc" | "peering";
  /** For a VPC attachment, its TGW; for a peering, the requester's. */
  tgw?: Tgw;
  tgwId: string;
  vpc?: Vpc;
  subnets: Subnet[];
  /** Peering only. */
  peerTgw?: Tgw;
  peerTgwId?: string;
  accepted: boolean;
  sgReferencing: boolean;
  defaultAssociation: boolean;
  defaultPropagation: boolean;
}

export interface TgwRoute {
  block: Block;
  /** undefined: blackhole. */
  attachment: TgwAttachment | undefined;
  static: boolean;
  from: string;
}

export interface TgwRouteTable extends Origin {
  tgw?: Tgw;
  routes: TgwRoute[];
}

export interface SgRule {
  protocol: string;
  fromPort: number;
  toPort: number;
  cidrs: Block[];
  /** Referenced security group ids. */
  groups: string[];
  from: string;
}

export interface SecurityGroup extends Origin {
  vpcId: string;
  ingress: SgRule[];
  egress: SgRule[];
}

export interface NaclRule {
  ruleNo: number;
  egress: boolean;
  allow: boolean;
  protocol: string;
  block: Block;
  fromPort: number;
  toPort: number;
}

export interface Nacl extends Origin {
  rules: NaclRule[];
}

export interface Database extends Origin {
  identifier: string;
  address: string;
  port: number;
  subnets: Subnet[];
  securityGroups: SecurityGroup[];
  vpc?: Vpc;
  region: string;
}

export interface PgProvider extends Origin {
  host: string;
  port: number;
  region: string;
}

export interface Runner extends Origin {
  region: string;
  subnets: Subnet[];
  securityGroups: SecurityGroup[];
}

/** An ECS service of a platform stack that is not a runner (the control plane): reached through its load balancer only. */
export interface PlatformService extends Origin {
  securityGroups: SecurityGroup[];
  assignPublicIp: boolean;
}

/** An input the analysis cannot use: unresolved reference, unknown value, ambiguous join. */
export interface InventoryProblem {
  stack: string;
  urn: string;
  message: string;
}

export interface Inventory {
  vpcs: Vpc[];
  subnets: Subnet[];
  tgws: Tgw[];
  attachments: TgwAttachment[];
  tgwTables: TgwRouteTable[];
  peerings: Peering[];
  securityGroups: Map<string, SecurityGroup>;
  databases: Database[];
  providers: PgProvider[];
  runners: Runner[];
  /** The other ECS services of platform stacks (the control plane). */
  services: PlatformService[];
  /** Ids of the security groups load balancers carry. */
  loadBalancerGroups: Set<string>;
  /** Which TGW route table an attachment is associated with, per TGW side (peering attachments have two). */
  associations: Map<TgwAttachment, Map<Tgw | undefined, TgwRouteTable>>;
  problems: InventoryProblem[];
  /** Which stacks a resource id appears in: ids the mock runtime repeats across stacks are joined per stack. */
  stackKinds: Map<string, string>;
}

// --- reading values ----------------------------------------------------------------------------

type Res = RenderedResource & { stack: string };

function val(r: RenderedResource, key: string): unknown {
  const v = r.outputs && key in r.outputs ? r.outputs[key] : r.inputs[key];
  return isSecretValue(v) ? unwrapSecrets(v) : v;
}
function str(r: RenderedResource, key: string): string | undefined {
  const v = val(r, key);
  return typeof v === "string" && v !== "" ? v : undefined;
}
function num(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "string" && /^-?\d+$/.test(v)) return Number(v);
  return undefined;
}
function strs(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}
function flag(v: unknown, dflt: boolean): boolean {
  if (v === undefined || v === null) return dflt;
  return v === true || v === "enable" || v === "true";
}

/** The id a resource carries: recorded by the renderer, or given by `pulumi stack export`. */
function idOf(r: RenderedResource): string | undefined {
  return r.id ?? (typeof r.outputs?.id === "string" ? r.outputs.id : undefined);
}

/** The region of a resource: its own `region` input (aws v7), else the one in its ARN. */
function regionOf(r: RenderedResource): string | undefined {
  const own = str(r, "region");
  if (own) return own;
  const arn = str(r, "arn");
  return arn?.split(":")[3] || undefined;
}

function block(text: string | undefined): Block | undefined {
  if (!text) return undefined;
  try {
    return cidrRange(text);
  } catch {
    return undefined;
  }
}

/** A resource id index: same stack first, then a unique match in another stack. */
class Ids<V> {
  private readonly map = new Map<string, { stack: string; v: V }[]>();
  add(stack: string, id: string, v: V): void {
    const list = this.map.get(id) ?? [];
    list.push({ stack, v });
    this.map.set(id, list);
  }
  get(stack: string, id: string | undefined, onAmbiguous: (stacks: string[]) => void): V | undefined {
    if (!id) return undefined;
    const list = this.map.get(id);
    if (!list) return undefined;
    const own = list.find((x) => x.stack === stack);
    if (own) return own.v;
    if (list.length > 1) {
      onAmbiguous(list.map((x) => x.stack));
      return undefined;
    }
    return list[0]!.v;
  }
}

function origin(r: Res): Origin {
  return { stack: r.stack, urn: r.urn, name: r.name, id: idOf(r) ?? "" };
}

/**
 * A customer VPC as the tenant file declares it (`dedicated.<env>.customerVpc`): the stack that
 * peers with it and the VPC's id and CIDR. The rendered peering names the VPC, not its CIDR.
 */
export interface DeclaredPeer {
  stack: string;
  vpcId: string;
  cidr: string;
}

/** Reads the network of all stacks. */
export function buildInventory(stacks: readonly RenderedStack[], declaredPeers: readonly DeclaredPeer[] = []): Inventory {
  const declared = new Map(declaredPeers.map((d) => [`${d.stack}\u0000${d.vpcId}`, d.cidr]));
  const problems: InventoryProblem[] = [];
  const byType = new Map<string, Res[]>();
  const stackKinds = new Map<string, string>();
  for (const s of stacks) {
    stackKinds.set(s.name, s.kind);
    for (const r of s.resources) {
      if (!r.custom) continue;
      const list = byType.get(r.type) ?? [];
      list.push({ ...r, stack: s.name });
      byType.set(r.type, list);
    }
  }
  const of = (t: string) => byType.get(t) ?? [];
  const problem = (r: Res, message: string) => problems.push({ stack: r.stack, urn: r.urn, message: `${r.type.split(":").pop()} ${r.name}: ${message}` });
  const ambiguous = (r: Res, what: string, id: string) => (stacks: string[]) =>
    problem(r, `${what} ${id} names resources of several stacks (${stacks.join(", ")}); the join would be a guess`);
  const withId = (r: Res): string | undefined => {
    const id = idOf(r);
    if (!id) problem(r, "has no id (a plan JSON from before ids were recorded? re-run tenantctl plan --json)");
    return id;
  };

  // VPCs, their main route tables and subnets.
  const vpcs = new Ids<Vpc>();
  const tables = new Ids<RouteTable>();
  const vpcList: Vpc[] = [];
  for (const r of of(T.vpc)) {
    const id = withId(r);
    const cidr = block(str(r, "cidrBlock"));
    if (!id) continue;
    if (!cidr) {
      problem(r, `cidrBlock ${JSON.stringify(val(r, "cidrBlock"))} is not known at plan time`);
      continue;
    }
    const mainId = str(r, "mainRouteTableId") ?? `${id}#main`;
    const vpc = {
      ...origin(r), cidrs: [cidr], region: regionOf(r) ?? "unknown", kind: stackKinds.get(r.stack) ?? "unknown",
      subnets: [], defaultSecurityGroupId: str(r, "defaultSecurityGroupId"),
    } as unknown as Vpc;
    // The main route table AWS creates with the VPC: the local route only, unless a
    // DefaultRouteTable or MainRouteTableAssociation below says otherwise.
    vpc.mainRouteTable = { stack: r.stack, urn: r.urn, name: `${r.name} main route table`, id: mainId, vpc, routes: [] };
    tables.add(r.stack, mainId, vpc.mainRouteTable);
    vpcs.add(r.stack, id, vpc);
    vpcList.push(vpc);
  }
  for (const r of of(T.vpcCidr)) {
    const vpc = vpcs.get(r.stack, str(r, "vpcId"), ambiguous(r, "vpcId", str(r, "vpcId") ?? ""));
    const b = block(str(r, "cidrBlock"));
    if (vpc && b) vpc.cidrs.push(b);
  }
  const vpcOf = (r: Res, key = "vpcId"): Vpc | undefined => {
    const id = str(r, key);
    const v = vpcs.get(r.stack, id, ambiguous(r, key, id ?? ""));
    if (!v) problem(r, `${key} ${id ?? "(unknown)"} is no VPC of any stack`);
    return v;
  };
  const subnets = new Ids<Subnet>();
  const subnetList: Subnet[] = [];
  for (const r of of(T.subnet)) {
    const id = withId(r);
    const vpc = vpcOf(r);
    const b = block(str(r, "cidrBlock"));
    if (!id || !vpc) continue;
    if (!b) {
      problem(r, `cidrBlock ${JSON.stringify(val(r, "cidrBlock"))} is not known at plan time`);
      continue;
    }
    const s: Subnet = { ...origin(r), vpc, block: b, az: str(r, "availabilityZone") ?? "unknown" };
    vpc.subnets.push(s);
    subnets.add(r.stack, id, s);
    subnetList.push(s);
  }
  const subnetOf = (r: Res, id: string | undefined, key: string): Subnet | undefined => {
    const s = subnets.get(r.stack, id, ambiguous(r, key, id ?? ""));
    if (!s) problem(r, `${key} ${id ?? "(unknown)"} is no subnet of any stack`);
    return s;
  };

  // Gateways, peerings, Transit Gateways (route targets).
  const igws = new Ids<true>();
  for (const r of of(T.igw)) {
    const id = withId(r);
    if (id) igws.add(r.stack, id, true);
  }
  const nats = new Ids<NatGateway>();
  for (const r of of(T.nat)) {
    const id = withId(r);
    if (id) nats.add(r.stack, id, { ...origin(r), subnet: subnetOf(r, str(r, "subnetId"), "subnetId"), private: str(r, "connectivityType") === "private" });
  }
  const accepted = new Set<string>();
  for (const r of of(T.pcxAccepter)) {
    const id = str(r, "vpcPeeringConnectionId");
    if (id) accepted.add(id);
  }
  const peerings = new Ids<Peering>();
  const peeringList: Peering[] = [];
  for (const r of of(T.pcx)) {
    const id = withId(r);
    if (!id) continue;
    const vpcId = str(r, "vpcId") ?? "";
    const peerVpcId = str(r, "peerVpcId") ?? "";
    const tags = (val(r, "tags") ?? {}) as Record<string, unknown>;
    const peerCidr = declared.get(`${r.stack}\u0000${peerVpcId}`);
    const p: Peering = {
      ...origin(r),
      vpcId,
      peerVpcId,
      vpc: vpcs.get(r.stack, vpcId, ambiguous(r, "vpcId", vpcId)),
      peer: vpcs.get(r.stack, peerVpcId, ambiguous(r, "peerVpcId", peerVpcId)),
      ...(str(r, "peerOwnerId") ? { peerOwnerId: str(r, "peerOwnerId") } : {}),
      ...(str(r, "peerRegion") ? { peerRegion: str(r, "peerRegion") } : {}),
      // AWS accepts a same-account, same-region request itself only with autoAccept.
      accepted: (val(r, "autoAccept") === true && !str(r, "peerRegion")) || accepted.has(id),
      ...(block(peerCidr) ? { declaredPeerCidr: block(peerCidr)! } : {}),
      ...(typeof tags.tenant === "string" ? { tenant: tags.tenant } : {}),
    };
    peerings.add(r.stack, id, p);
    peeringList.push(p);
  }

  const tgwAccepted = new Set<string>();
  for (const r of of(T.tgwPeeringAccepter)) {
    const id = str(r, "transitGatewayAttachmentId");
    if (id) tgwAccepted.add(id);
  }
  const tgws = new Ids<Tgw>();
  const tgwList: Tgw[] = [];
  const tgwTables = new Ids<TgwRouteTable>();
  const tgwTableList: TgwRouteTable[] = [];
  for (const r of of(T.tgw)) {
    const id = withId(r);
    if (!id) continue;
    // AWS defaults: default route table association and propagation enabled, SG referencing disabled
    // (https://docs.aws.amazon.com/vpc/latest/tgw/tgw-transit-gateways.html#create-tgw).
    const t: Tgw = {
      ...origin(r),
      region: regionOf(r) ?? "unknown",
      defaultAssociation: flag(val(r, "defaultRouteTableAssociation"), true),
      defaultPropagation: flag(val(r, "defaultRouteTablePropagation"), true),
      sgReferencing: flag(val(r, "securityGroupReferencingSupport"), false),
    };
    if (t.defaultAssociation || t.defaultPropagation) {
      const tableId = str(r, "associationDefaultRouteTableId") ?? `${id}#default`;
      t.defaultTable = { stack: r.stack, urn: r.urn, name: `${r.name} default route table`, id: tableId, tgw: t, routes: [] };
      tgwTables.add(r.stack, tableId, t.defaultTable);
      tgwTableList.push(t.defaultTable);
    }
    tgws.add(r.stack, id, t);
    tgwList.push(t);
  }
  const tgwOf = (r: Res, key: string): Tgw | undefined => {
    const id = str(r, key);
    const t = tgws.get(r.stack, id, ambiguous(r, key, id ?? ""));
    if (!t) problem(r, `${key} ${id ?? "(unknown)"} is no Transit Gateway of any stack`);
    return t;
  };
  for (const r of of(T.tgwRouteTable)) {
    const id = withId(r);
    if (!id) continue;
    const t: TgwRouteTable = { ...origin(r), tgw: tgwOf(r, "transitGatewayId"), routes: [] };
    tgwTables.add(r.stack, id, t);
    tgwTableList.push(t);
  }

  const attachments = new Ids<TgwAttachment>();
  const attachmentList: TgwAttachment[] = [];
  for (const r of of(T.tgwVpcAttachment)) {
    const id = withId(r);
    if (!id) continue;
    const a: TgwAttachment = {
      ...origin(r),
      kind: "vpc",
      tgwId: str(r, "transitGatewayId") ?? "",
      tgw: tgwOf(r, "transitGatewayId"),
      vpc: vpcOf(r),
      subnets: strs(val(r, "subnetIds")).map((s) => subnetOf(r, s, "subnetIds")).filter((s): s is Subnet => s !== undefined),
      accepted: true,
      // The attachment option defaults to enable; the TGW's own option (default disable) must be on too
      // (https://docs.aws.amazon.com/vpc/latest/tgw/tgw-vpc-attachments.html#vpc-attachment-security).
      sgReferencing: flag(val(r, "securityGroupReferencingSupport"), true),
      defaultAssociation: flag(val(r, "transitGatewayDefaultRouteTableAssociation"), true),
      defaultPropagation: flag(val(r, "transitGatewayDefaultRouteTablePropagation"), true),
    };
    attachments.add(r.stack, id, a);
    attachmentList.push(a);
  }
  for (const r of of(T.tgwPeering)) {
    const id = withId(r);
    if (!id) continue;
    const peerId = str(r, "peerTransitGatewayId");
    const a: TgwAttachment = {
      ...origin(r),
      kind: "peering",
      tgwId: str(r, "transitGatewayId") ?? "",
      tgw: tgwOf(r, "transitGatewayId"),
      subnets: [],
      ...(peerId ? { peerTgwId: peerId } : {}),
      peerTgw: tgwOf(r, "peerTransitGatewayId"),
      // A peering attachment carries traffic only once the peer side accepts it
      // (https://docs.aws.amazon.com/vpc/latest/tgw/tgw-peering.html).
      accepted: tgwAccepted.has(id),
      sgReferencing: false,
      defaultAssociation: false,
      defaultPropagation: false,
    };
    attachments.add(r.stack, id, a);
    attachmentList.push(a);
  }
  const attachmentOf = (r: Res): TgwAttachment | undefined => {
    const id = str(r, "transitGatewayAttachmentId");
    const a = attachments.get(r.stack, id, ambiguous(r, "transitGatewayAttachmentId", id ?? ""));
    if (!a) problem(r, `transitGatewayAttachmentId ${id ?? "(unknown)"} is no attachment of any stack`);
    return a;
  };
  const tableOf = (r: Res): TgwRouteTable | undefined => {
    const id = str(r, "transitGatewayRouteTableId");
    const t = tgwTables.get(r.stack, id, ambiguous(r, "transitGatewayRouteTableId", id ?? ""));
    if (!t) problem(r, `transitGatewayRouteTableId ${id ?? "(unknown)"} is no Transit Gateway route table of any stack`);
    return t;
  };

  // Transit Gateway associations, propagations and static routes.
  const associations = new Map<TgwAttachment, Map<Tgw | undefined, TgwRouteTable>>();
  const associate = (a: TgwAttachment, t: TgwRouteTable, r?: Res) => {
    const sides = associations.get(a) ?? new Map<Tgw | undefined, TgwRouteTable>();
    const prior = sides.get(t.tgw);
    // An attachment is associated with at most one route table of a Transit Gateway.
    if (prior && prior !== t && r) problem(r, `attachment ${a.name} is already associated with ${prior.name}; AWS allows one association per attachment`);
    sides.set(t.tgw, t);
    associations.set(a, sides);
  };
  for (const r of of(T.tgwAssociation)) {
    const a = attachmentOf(r);
    const t = tableOf(r);
    if (a && t) associate(a, t, r);
  }
  const propagate = (a: TgwAttachment, t: TgwRouteTable, from: string, r?: Res) => {
    if (a.kind === "peering") {
      // "Transit gateway peering attachments do not support route propagation": static routes only.
      if (r) problem(r, `propagates peering attachment ${a.name}, which AWS does not support (https://docs.aws.amazon.com/vpc/latest/tgw/tgw-peering.html)`);
      return;
    }
    for (const b of a.vpc?.cidrs ?? []) t.routes.push({ block: b, attachment: a, static: false, from });
  };
  for (const r of of(T.tgwPropagation)) {
    const a = attachmentOf(r);
    const t = tableOf(r);
    if (a && t) propagate(a, t, `propagation ${r.name} (${r.stack})`, r);
  }
  for (const a of attachmentList) {
    const t = a.tgw?.defaultTable;
    if (!t || a.kind !== "vpc") continue;
    if (a.tgw!.defaultAssociation && a.defaultAssociation && !associations.get(a)?.has(a.tgw)) associate(a, t);
    if (a.tgw!.defaultPropagation && a.defaultPropagation) propagate(a, t, `default propagation of ${a.name} (${a.stack})`);
  }
  for (const r of of(T.tgwRoute)) {
    const t = tableOf(r);
    const b = block(str(r, "destinationCidrBlock"));
    if (!t) continue;
    if (!b) {
      problem(r, `destinationCidrBlock ${JSON.stringify(val(r, "destinationCidrBlock"))} is not known at plan time`);
      continue;
    }
    const blackhole = val(r, "blackhole") === true;
    t.routes.push({ block: b, attachment: blackhole ? undefined : attachmentOf(r), static: true, from: `route ${r.name} (${r.stack})` });
  }

  // VPC route tables, routes, associations.
  const tableList: RouteTable[] = [];
  for (const r of of(T.routeTable)) {
    const id = withId(r);
    const vpc = vpcOf(r);
    if (!id || !vpc) continue;
    const t: RouteTable = { ...origin(r), vpc, routes: [] };
    tables.add(r.stack, id, t);
    tableList.push(t);
    for (const inline of (val(r, "routes") as Record<string, unknown>[] | undefined) ?? []) addRoute(r, t, inline, `${r.name} inline route`);
  }
  for (const r of of(T.defaultRouteTable)) {
    const id = str(r, "defaultRouteTableId");
    const t = tables.get(r.stack, id, ambiguous(r, "defaultRouteTableId", id ?? ""));
    if (!t) {
      problem(r, `defaultRouteTableId ${id ?? "(unknown)"} is no VPC's main route table`);
      continue;
    }
    for (const inline of (val(r, "routes") as Record<string, unknown>[] | undefined) ?? []) addRoute(r, t, inline, `${r.name} inline route`);
  }
  for (const r of of(T.mainRouteTableAssociation)) {
    const vpc = vpcOf(r);
    const id = str(r, "routeTableId");
    const t = tables.get(r.stack, id, ambiguous(r, "routeTableId", id ?? ""));
    if (vpc && t) vpc.mainRouteTable = t;
  }
  function addRoute(r: Res, t: RouteTable, src: Record<string, unknown>, from: string): void {
    const g = (k: string) => (typeof src[k] === "string" && src[k] !== "" ? src[k] : undefined);
    const b = block(g("destinationCidrBlock") ?? g("cidrBlock"));
    if (!b) {
      if (g("destinationPrefixListId") || g("destinationIpv6CidrBlock") || g("ipv6CidrBlock")) return; // not IPv4 CIDR routing: not modelled
      problem(r, `destination ${JSON.stringify(src.destinationCidrBlock ?? src.cidrBlock)} is not known at plan time`);
      return;
    }
    let target: RouteTarget;
    const gw = g("gatewayId");
    if (gw === "local") target = { kind: "local" };
    else if (gw && igws.get(r.stack, gw, ambiguous(r, "gatewayId", gw))) target = { kind: "igw", id: gw };
    else if (g("natGatewayId")) {
      const id = g("natGatewayId")!;
      const nat = nats.get(r.stack, id, ambiguous(r, "natGatewayId", id));
      target = { kind: "nat", id, ...(nat ? { nat } : {}) };
    } else if (g("transitGatewayId")) {
      const id = g("transitGatewayId")!;
      const tgw = tgws.get(r.stack, id, ambiguous(r, "transitGatewayId", id));
      target = { kind: "tgw", id, ...(tgw ? { tgw } : {}) };
    } else if (g("vpcPeeringConnectionId")) {
      const id = g("vpcPeeringConnectionId")!;
      const pcx = peerings.get(r.stack, id, ambiguous(r, "vpcPeeringConnectionId", id));
      target = { kind: "pcx", id, ...(pcx ? { pcx } : {}) };
    } else if (gw) target = { kind: "other", what: `gateway ${gw} (no internet gateway of any stack)` };
    else {
      const k = ["networkInterfaceId", "vpcEndpointId", "egressOnlyGatewayId", "localGatewayId", "carrierGatewayId", "coreNetworkArn"].find((x) => g(x));
      target = { kind: "other", what: k ? `${k} ${g(k)}` : "no target" };
    }
    t.routes.push({ block: b, target, from });
  }
  for (const r of of(T.route)) {
    const id = str(r, "routeTableId");
    const t = tables.get(r.stack, id, ambiguous(r, "routeTableId", id ?? ""));
    if (!t) {
      problem(r, `routeTableId ${id ?? "(unknown)"} is no route table of any stack`);
      continue;
    }
    addRoute(r, t, Object.fromEntries(Object.keys({ ...r.inputs, ...(r.outputs ?? {}) }).map((k) => [k, val(r, k)])), `route ${r.name}`);
  }
  for (const r of of(T.routeTableAssociation)) {
    const id = str(r, "routeTableId");
    const t = tables.get(r.stack, id, ambiguous(r, "routeTableId", id ?? ""));
    const sid = str(r, "subnetId");
    if (!sid) continue; // a gateway (edge) association: not modelled
    const s = subnetOf(r, sid, "subnetId");
    if (!t) problem(r, `routeTableId ${id ?? "(unknown)"} is no route table of any stack`);
    if (t && s) {
      if (s.routeTable && s.routeTable !== t) problem(r, `subnet ${s.name} is already associated with ${s.routeTable.name}; a subnet has one route table`);
      s.routeTable = t;
    }
  }
  // The local route of every table: the VPC's CIDRs (https://docs.aws.amazon.com/vpc/latest/userguide/RouteTables.html#route-table-routes).
  for (const t of [...tableList, ...vpcList.map((v) => v.mainRouteTable)]) {
    for (const b of t.vpc.cidrs) if (!t.routes.some((x) => x.target.kind === "local" && x.block.lo === b.lo && x.block.prefix === b.prefix)) t.routes.push({ block: b, target: { kind: "local" }, from: "local" });
  }

  // Security groups and their rules.
  const sgs = new Map<string, SecurityGroup>();
  const sgIds = new Ids<SecurityGroup>();
  const protoOf = (p: unknown) => (p === undefined || p === null ? "-1" : String(p) === "all" ? "-1" : String(p));
  const inlineRule = (x: Record<string, unknown>, from: string, self: string): SgRule => ({
    protocol: protoOf(x.protocol),
    fromPort: num(x.fromPort) ?? 0,
    toPort: num(x.toPort) ?? 65535,
    cidrs: strs(x.cidrBlocks).map((c) => block(c)).filter((b): b is Block => b !== undefined),
    groups: [...strs(x.securityGroups), ...(x.self === true ? [self] : [])],
    from,
  });
  const addSg = (r: Res, id: string, vpcId: string) => {
    const g: SecurityGroup = { ...origin(r), id, vpcId, ingress: [], egress: [] };
    for (const x of (val(r, "ingress") as Record<string, unknown>[] | undefined) ?? []) g.ingress.push(inlineRule(x, `${r.name} inline ingress`, id));
    for (const x of (val(r, "egress") as Record<string, unknown>[] | undefined) ?? []) g.egress.push(inlineRule(x, `${r.name} inline egress`, id));
    sgIds.add(r.stack, id, g);
    sgs.set(`${r.stack}\u0000${id}`, g);
    return g;
  };
  for (const r of of(T.sg)) {
    // A new VPC security group has no egress: the provider revokes AWS's default allow-all egress
    // rule on create (terraform-provider-aws, resource_aws_security_group: "Terraform will remove
    // this default rule"), so only declared rules count.
    const id = withId(r);
    if (id) addSg(r, id, str(r, "vpcId") ?? "");
  }
  for (const r of of(T.defaultSg)) {
    const vpc = vpcOf(r);
    const id = vpc?.defaultSecurityGroupId ?? idOf(r);
    if (id) addSg(r, id, str(r, "vpcId") ?? "");
  }
  const sgOf = (r: Res, id: string | undefined): SecurityGroup | undefined => {
    const g = sgIds.get(r.stack, id, ambiguous(r, "securityGroupId", id ?? ""));
    if (!g) problem(r, `securityGroupId ${id ?? "(unknown)"} is no security group of any stack`);
    return g;
  };
  for (const r of [...of(T.sgIngress), ...of(T.sgEgress)]) {
    const g = sgOf(r, str(r, "securityGroupId"));
    if (!g) continue;
    const cidr = block(str(r, "cidrIpv4"));
    const rule: SgRule = {
      protocol: protoOf(val(r, "ipProtocol")),
      fromPort: num(val(r, "fromPort")) ?? 0,
      toPort: num(val(r, "toPort")) ?? 65535,
      cidrs: cidr ? [cidr] : [],
      groups: str(r, "referencedSecurityGroupId") ? [str(r, "referencedSecurityGroupId")!] : [],
      from: `rule ${r.name}`,
    };
    (r.type === T.sgIngress ? g.ingress : g.egress).push(rule);
  }
  for (const r of of(T.sgRule)) {
    const g = sgOf(r, str(r, "securityGroupId"));
    if (!g) continue;
    const rule = inlineRule(
      { protocol: val(r, "protocol"), fromPort: val(r, "fromPort"), toPort: val(r, "toPort"), cidrBlocks: val(r, "cidrBlocks"), securityGroups: str(r, "sourceSecurityGroupId") ? [str(r, "sourceSecurityGroupId")] : [], self: val(r, "self") },
      `rule ${r.name}`,
      g.id,
    );
    (str(r, "type") === "egress" ? g.egress : g.ingress).push(rule);
  }

  // Network ACLs: a subnet without one of ours keeps the VPC's default ACL, which allows all
  // traffic in and out (https://docs.aws.amazon.com/vpc/latest/userguide/default-network-acl.html).
  const nacls = new Ids<Nacl>();
  const naclRule = (x: Record<string, unknown>, egress: boolean): NaclRule | undefined => {
    const b = block(typeof x.cidrBlock === "string" ? x.cidrBlock : undefined);
    const ruleNo = num(x.ruleNo ?? x.ruleNumber);
    if (!b || ruleNo === undefined) return undefined;
    return { ruleNo, egress, allow: String(x.action ?? x.ruleAction) === "allow", protocol: protoOf(x.protocol), block: b, fromPort: num(x.fromPort) ?? 0, toPort: num(x.toPort) ?? 65535 };
  };
  const addNacl = (r: Res, id: string): Nacl => {
    const n: Nacl = { ...origin(r), id, rules: [] };
    for (const [key, egress] of [["ingress", false], ["egress", true]] as const) {
      for (const x of (val(r, key) as Record<string, unknown>[] | undefined) ?? []) {
        const rule = naclRule(x, egress);
        if (rule) n.rules.push(rule);
      }
    }
    for (const sid of strs(val(r, "subnetIds"))) {
      const s = subnetOf(r, sid, "subnetIds");
      if (s) s.nacl = n;
    }
    nacls.add(r.stack, id, n);
    return n;
  };
  for (const r of of(T.nacl)) {
    const id = withId(r);
    if (id) addNacl(r, id);
  }
  for (const r of of(T.defaultNacl)) {
    const id = str(r, "defaultNetworkAclId") ?? idOf(r);
    if (id) addNacl(r, id);
  }
  for (const r of of(T.naclRule)) {
    const id = str(r, "networkAclId");
    const n = nacls.get(r.stack, id, ambiguous(r, "networkAclId", id ?? ""));
    const rule = naclRule({ ...r.inputs, ...(r.outputs ?? {}) }, val(r, "egress") === true);
    if (n && rule) n.rules.push(rule);
  }
  for (const r of of(T.naclAssociation)) {
    const id = str(r, "networkAclId");
    const n = nacls.get(r.stack, id, ambiguous(r, "networkAclId", id ?? ""));
    const s = subnetOf(r, str(r, "subnetId"), "subnetId");
    if (n && s) s.nacl = n;
  }

  // Databases, the providers that connect to them, runners.
  const subnetGroups = new Ids<Subnet[]>();
  for (const r of of(T.rdsSubnetGroup)) {
    const name = str(r, "name") ?? idOf(r);
    if (name) subnetGroups.add(r.stack, name, strs(val(r, "subnetIds")).map((s) => subnetOf(r, s, "subnetIds")).filter((s): s is Subnet => s !== undefined));
  }
  const databases: Database[] = [];
  for (const r of of(T.rds)) {
    const groupName = str(r, "dbSubnetGroupName");
    const dbSubnets = subnetGroups.get(r.stack, groupName, ambiguous(r, "dbSubnetGroupName", groupName ?? ""));
    const address = str(r, "address");
    if (!dbSubnets) {
      // No subnet group: RDS places the instance in the default VPC, which is none of ours.
      problem(r, `dbSubnetGroupName ${groupName ?? "(none)"} is no subnet group of any stack`);
      continue;
    }
    if (!address) {
      problem(r, "has no address (endpoint not known)");
      continue;
    }
    databases.push({
      ...origin(r),
      identifier: str(r, "identifier") ?? r.name,
      address,
      port: num(val(r, "port")) ?? 5432,
      subnets: dbSubnets,
      securityGroups: strs(val(r, "vpcSecurityGroupIds")).map((id) => sgOf(r, id)).filter((g): g is SecurityGroup => g !== undefined),
      ...(dbSubnets[0] ? { vpc: dbSubnets[0].vpc } : {}),
      region: regionOf(r) ?? dbSubnets[0]?.vpc.region ?? "unknown",
    });
  }
  const byAddress = new Map(databases.map((d) => [d.address, d]));
  const providers: PgProvider[] = [];
  for (const r of of(T.pgProvider)) {
    const host = str(r, "host");
    if (!host) {
      problem(r, "host is not known at plan time");
      continue;
    }
    const db = byAddress.get(host);
    providers.push({ ...origin(r), host, port: num(val(r, "port")) ?? 5432, region: db?.region ?? "unknown" });
  }
  const runners: Runner[] = [];
  const services: PlatformService[] = [];
  for (const r of of(T.ecsService)) {
    if (!isRunner(r, stackKinds)) {
      if (stackKinds.get(r.stack) === "platform" || r.stack.startsWith("platform-")) {
        const net = (val(r, "networkConfiguration") ?? {}) as Record<string, unknown>;
        services.push({
          ...origin(r),
          securityGroups: strs(net.securityGroups).map((id) => sgOf(r, id)).filter((g): g is SecurityGroup => g !== undefined),
          assignPublicIp: net.assignPublicIp === true,
        });
      }
      continue;
    }
    const net = (val(r, "networkConfiguration") ?? {}) as Record<string, unknown>;
    const rs = strs(net.subnets).map((s) => subnetOf(r, s, "networkConfiguration.subnets")).filter((s): s is Subnet => s !== undefined);
    runners.push({
      ...origin(r),
      region: rs[0]?.vpc.region ?? regionOf(r) ?? "unknown",
      subnets: rs,
      securityGroups: strs(net.securityGroups).map((id) => sgOf(r, id)).filter((g): g is SecurityGroup => g !== undefined),
    });
  }

  const loadBalancerGroups = new Set(of(T.loadBalancer).flatMap((r) => strs(val(r, "securityGroups")).map((id) => sgOf(r, id)?.id).filter((id): id is string => id !== undefined)));

  return {
    vpcs: vpcList, subnets: subnetList, tgws: tgwList, attachments: attachmentList, tgwTables: tgwTableList, peerings: peeringList,
    securityGroups: sgs, databases, providers, runners, services, loadBalancerGroups, associations, problems, stackKinds,
  };
}

/**
 * The regional runner: the ECS service of a `platform-<region>` stack that runs `pulumi up`
 * (docs/network.md). It is recognised by its `role: runner` tag, or, without one, by its logical
 * name (infra/components/runner.ts names it `runner-<region code>`).
 */
export function isRunner(r: RenderedResource & { stack: string }, kinds: ReadonlyMap<string, string>): boolean {
  if (kinds.get(r.stack) !== "platform" && !r.stack.startsWith("platform-")) return false;
  const tags = (val(r, "tags") ?? {}) as Record<string, unknown>;
  if (typeof tags.role === "string") return tags.role === "runner";
  return /(^|-)runner(-|$)/.test(r.name);
}
