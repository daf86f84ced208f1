import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { componentType, tagsFor, type StackContext } from "./context.ts";

export interface ControlPlanePeeringArgs {
  ctx: StackContext;
  tenant: string;
  vpcId: pulumi.Input<string>;
  /** Private route tables by AZ: each gets a route to the control-plane CIDR. */
  privateRouteTables: ReadonlyMap<string, aws.ec2.RouteTable>;
}

/**
 * The requester side of a VPC peering from a dedicated tenant VPC to the control-plane VPC
 * (platform.controlPlane), and the routes to the control-plane CIDR. The connection is not
 * auto-accepted: the accepter side (acceptance, the control plane's routes back to this CIDR,
 * and its security group rules) belongs to the control plane's own stack; see docs/stacks.md,
 * "Dedicated networking and NAT cost". Until accepted, the routes here are blackholes.
 *
 * Child names: `<name>` (connection), `<name>-<az>` (routes).
 */
export class ControlPlanePeering extends pulumi.ComponentResource {
  readonly connectionId: pulumi.Output<string>;

  constructor(name: string, args: ControlPlanePeeringArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("ControlPlanePeering"), name, {}, opts);
    const { ctx } = args;
    const cp = ctx.platform.controlPlane;
    const connection = new aws.ec2.VpcPeeringConnection(
      name,
      {
        vpcId: args.vpcId,
        peerVpcId: cp.vpcId,
        peerOwnerId: ctx.accountId,
        // Only for a cross-region peering; AWS rejects autoAccept together with peerRegion.
        peerRegion: cp.region !== ctx.region ? cp.region : undefined,
        autoAccept: false,
        tags: tagsFor(ctx, args.tenant),
      },
      { parent: this },
    );
    for (const [az, table] of args.privateRouteTables) {
      new aws.ec2.Route(
        `${name}-${az}`,
        { routeTableId: table.id, destinationCidrBlock: cp.cidr, vpcPeeringConnectionId: connection.id },
        { parent: this },
      );
    }
    this.connectionId = connection.id;
    this.registerOutputs({ connectionId: this.connectionId });
  }
}
