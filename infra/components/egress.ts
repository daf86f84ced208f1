import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { PlannedSubnet } from "../model/subnets.ts";
import { componentType, tagsFor, type StackContext } from "./context.ts";

export interface EgressArgs {
  ctx: StackContext;
  owner: string;
  vpcId: pulumi.Input<string>;
  /** From planSubnets({ publicSubnets: true }): one public subnet per AZ, same AZs as the private ones. */
  publicSubnets: readonly PlannedSubnet[];
  /** Private route tables by AZ (Network.privateRouteTables): each gets a default route to a NAT. */
  privateRouteTables: ReadonlyMap<string, aws.ec2.RouteTable>;
  /**
   * One NAT gateway per AZ (prod: an AZ outage does not cut the other AZs' egress) or a single
   * NAT in the first AZ (elsewhere: ~1/3 of the hourly cost of three, cross-AZ traffic and an
   * AZ-wide single point of failure accepted). See docs/stacks.md, "Dedicated networking and NAT cost".
   */
  natPerAz: boolean;
}

/**
 * Internet egress for private subnets: public subnets (NAT only; nothing gets a public IP on
 * launch), an internet gateway, NAT gateway(s) with Elastic IPs, and default routes.
 *
 * Child names: `<name>-igw`, `<name>-public` (route table, default route), `<name>-public-<az>`
 * (subnet, association), `<name>-nat-<az>` (EIP, NAT), `<name>-private-<az>` (default route).
 */
export class Egress extends pulumi.ComponentResource {
  /** The public subnets, in the order given (the hub's load balancer lives in them). */
  readonly publicSubnetIds: pulumi.Output<string>[];

  constructor(name: string, args: EgressArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("Egress"), name, {}, opts);
    const t = tagsFor(args.ctx, args.owner);
    const first = args.publicSubnets[0];
    if (!first) throw new Error(`${name}: egress needs at least one public subnet`);
    const igw = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: args.vpcId, tags: t }, { parent: this });
    const publicTable = new aws.ec2.RouteTable(`${name}-public`, { vpcId: args.vpcId, tags: t }, { parent: this });
    new aws.ec2.Route(`${name}-public`, { routeTableId: publicTable.id, destinationCidrBlock: "0.0.0.0/0", gatewayId: igw.id }, { parent: this });

    const publicSubnetIds = new Map<string, pulumi.Output<string>>();
    for (const { az, cidr } of args.publicSubnets) {
      const subnet = new aws.ec2.Subnet(
        `${name}-public-${az}`,
        { vpcId: args.vpcId, cidrBlock: cidr, availabilityZone: az, mapPublicIpOnLaunch: false, tags: t },
        { parent: this },
      );
      new aws.ec2.RouteTableAssociation(`${name}-public-${az}`, { subnetId: subnet.id, routeTableId: publicTable.id }, { parent: this });
      publicSubnetIds.set(az, subnet.id);
    }

    this.publicSubnetIds = [...publicSubnetIds.values()];
    const natAzs = args.natPerAz ? args.publicSubnets.map((s) => s.az) : [first.az];
    const nats = new Map<string, aws.ec2.NatGateway>();
    for (const az of natAzs) {
      const eip = new aws.ec2.Eip(`${name}-nat-${az}`, { domain: "vpc", tags: t }, { parent: this, dependsOn: [igw] });
      nats.set(az, new aws.ec2.NatGateway(
        `${name}-nat-${az}`,
        { allocationId: eip.id, subnetId: publicSubnetIds.get(az)!, connectivityType: "public", tags: t },
        { parent: this, dependsOn: [igw] },
      ));
    }
    for (const [az, table] of args.privateRouteTables) {
      const nat = nats.get(az) ?? nats.get(first.az)!;
      new aws.ec2.Route(`${name}-private-${az}`, { routeTableId: table.id, destinationCidrBlock: "0.0.0.0/0", natGatewayId: nat.id }, { parent: this });
    }
    this.registerOutputs({ natGatewayIds: [...nats.values()].map((n) => n.id) });
  }
}
