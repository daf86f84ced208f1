import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { PlannedSubnet } from "../model/subnets.ts";
import { componentType, tagsFor, type StackContext } from "./context.ts";

export interface NetworkArgs {
  ctx: StackContext;
  /** Tenant tag value: a tenant id, or SHARED_TENANT for a cell. */
  owner: string;
  vpcCidr: string;
  /** From planSubnets: one private subnet per AZ. */
  privateSubnets: readonly PlannedSubnet[];
}

/**
 * A VPC with one private subnet and one route table per AZ. A route table per AZ (not one for
 * all) so a NAT gateway per AZ can be added without replacing anything.
 *
 * Child names: `<name>-vpc`, `<name>-default-sg`, `<name>-private-<az>` (subnet, route table,
 * association). Keyed by AZ name, never by position: never change them.
 */
export class Network extends pulumi.ComponentResource {
  readonly vpc: aws.ec2.Vpc;
  readonly vpcId: pulumi.Output<string>;
  /** By AZ name, in the order given. */
  readonly privateSubnetIds: pulumi.Output<string>[];
  readonly privateRouteTables: ReadonlyMap<string, aws.ec2.RouteTable>;

  constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("Network"), name, {}, opts);
    const t = tagsFor(args.ctx, args.owner);
    this.vpc = new aws.ec2.Vpc(
      `${name}-vpc`,
      // DNS support and host names: RDS endpoints and private hosted zones need both.
      { cidrBlock: args.vpcCidr, enableDnsSupport: true, enableDnsHostnames: true, tags: t },
      { parent: this },
    );
    this.vpcId = this.vpc.id;
    // Adopt the VPC's default security group and strip its rules (Security Hub EC2.2): nothing
    // may fall back to it and get the default allow-within-group traffic.
    new aws.ec2.DefaultSecurityGroup(`${name}-default-sg`, { vpcId: this.vpc.id, ingress: [], egress: [], tags: t }, { parent: this });

    const tables = new Map<string, aws.ec2.RouteTable>();
    this.privateSubnetIds = args.privateSubnets.map(({ az, cidr }) => {
      const subnet = new aws.ec2.Subnet(
        `${name}-private-${az}`,
        { vpcId: this.vpc.id, cidrBlock: cidr, availabilityZone: az, mapPublicIpOnLaunch: false, tags: t },
        { parent: this },
      );
      const table = new aws.ec2.RouteTable(`${name}-private-${az}`, { vpcId: this.vpc.id, tags: t }, { parent: this });
      new aws.ec2.RouteTableAssociation(`${name}-private-${az}`, { subnetId: subnet.id, routeTableId: table.id }, { parent: this });
      tables.set(az, table);
      return subnet.id;
    });
    this.privateRouteTables = tables;
    this.registerOutputs({ vpcId: this.vpcId, privateSubnetIds: this.privateSubnetIds });
  }
}
