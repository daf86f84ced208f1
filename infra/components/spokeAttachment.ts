import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { componentType, tagsFor, type StackContext } from "./context.ts";
import { platformIds, platformReference } from "./platformReference.ts";

export interface SpokeAttachmentArgs {
  ctx: StackContext;
  /** Tenant tag: a tenant id, or SHARED_TENANT for a cell. */
  owner: string;
  vpcId: pulumi.Input<string>;
  /** The spoke's private subnets (one per AZ): the attachment's ENIs. */
  subnetIds: pulumi.Input<string>[];
  /** Private route tables by AZ: each routes the hub CIDR to the Transit Gateway. */
  privateRouteTables: ReadonlyMap<string, aws.ec2.RouteTable>;
  /** The region's hub CIDR (Pulumi.yaml hubs.<region>.cidr). */
  hubCidr: string;
}

/**
 * A cell or dedicated VPC as a spoke of its region's Transit Gateway (docs/network.md): the
 * attachment (default association and propagation off), its association with the `spokes` table
 * (whose only route is the hub CIDR), its propagation into the `hub` table (so the hub, and only
 * the hub, learns this VPC), and a route to the hub CIDR from every private route table. The
 * gateway and table ids come from the region's platform stack (StackReference).
 *
 * Security group referencing over the gateway stays off (on the gateway and here): AWS supports
 * it only inside one region, after enabling it on the gateway and every attachment, and never
 * across a gateway peering. The spoke's database admits the runner by the runner subnets' CIDRs
 * instead (runnerCidrs(); those subnets hold only runner tasks), which the offline plan and the
 * reachability analysis can check without resolving another stack's security groups.
 *
 * Child names: `<name>` (attachment, association, propagation), `<name>-<az>` (routes), and the
 * StackReference `platform-<region>`. Never change them.
 */
export class SpokeAttachment extends pulumi.ComponentResource {
  readonly attachmentId: pulumi.Output<string>;

  constructor(name: string, args: SpokeAttachmentArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("SpokeAttachment"), name, {}, opts);
    const { ctx } = args;
    const ids = platformIds(platformReference(ctx.region, { parent: this }));
    const attachment = new aws.ec2transitgateway.VpcAttachment(
      name,
      {
        transitGatewayId: ids.transitGatewayId,
        vpcId: args.vpcId,
        subnetIds: args.subnetIds,
        transitGatewayDefaultRouteTableAssociation: false,
        transitGatewayDefaultRouteTablePropagation: false,
        dnsSupport: "enable",
        securityGroupReferencingSupport: "disable",
        tags: tagsFor(ctx, args.owner),
      },
      { parent: this },
    );
    new aws.ec2transitgateway.RouteTableAssociation(
      name,
      { transitGatewayAttachmentId: attachment.id, transitGatewayRouteTableId: ids.spokesRouteTableId },
      { parent: this },
    );
    new aws.ec2transitgateway.RouteTablePropagation(
      name,
      { transitGatewayAttachmentId: attachment.id, transitGatewayRouteTableId: ids.hubRouteTableId },
      { parent: this },
    );
    for (const [az, table] of args.privateRouteTables) {
      new aws.ec2.Route(
        `${name}-${az}`,
        { routeTableId: table.id, destinationCidrBlock: args.hubCidr, transitGatewayId: ids.transitGatewayId },
        // EC2 refuses a route to a transit gateway the VPC is not attached to yet.
        { parent: this, dependsOn: [attachment] },
      );
    }
    this.attachmentId = attachment.id;
    this.registerOutputs({ attachmentId: this.attachmentId });
  }
}
