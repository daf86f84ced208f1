/**
 * The network model the reachability analysis (plan/network) works on: the resource types it
 * reads (T) and the objects buildInventory (inventory.ts) joins them into: VPCs, subnets, route
 * tables, gateways, Transit Gateway objects, peerings, security groups, network ACLs, databases,
 * runners. Types only, plus the type-name table. Pure: no Pulumi, no AWS SDK.
 */
import type { Block } from "./ranges.ts";

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

/**
 * A customer VPC as the tenant file declares it (`dedicated.<env>.customerVpc`): the stack that
 * peers with it and the VPC's id and CIDR. The rendered peering names the VPC, not its CIDR.
 */
export interface DeclaredPeer {
  stack: string;
  vpcId: string;
  cidr: string;
}
