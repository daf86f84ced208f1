import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { transitNames, type HubDestination } from "../model/hub.ts";
import { SHARED_TENANT } from "../model/naming.ts";
import { componentType, tagsFor, type StackContext } from "./context.ts";

export interface TransitHubArgs {
  ctx: StackContext;
  hubCidr: string;
  hubVpcId: pulumi.Input<string>;
  /** The runner subnets: the attachment's ENIs live there (one per AZ). */
  attachmentSubnetIds: pulumi.Input<string>[];
  /** The hub VPC's route tables by AZ: each routes `destinations` to the Transit Gateway. */
  hubRouteTables: ReadonlyMap<string, aws.ec2.RouteTable>;
  /** hubDestinations(): dedicated supernet, the region's cells, the peered hubs. */
  destinations: readonly HubDestination[];
}

/**
 * A region's Transit Gateway (docs/network.md). Default association and propagation are off, so
 * an attachment reaches nothing until it is put in a table explicitly. Two tables:
 * - `hub`: the hub VPC's attachment is associated with it; every spoke propagates into it, and
 *   peered hubs get static routes (so the hub reaches every spoke and the control plane's hub);
 * - `spokes`: every spoke is associated with it; its only route is the hub CIDR (static, to the
 *   hub VPC's attachment). A spoke never learns another spoke: tenant VPCs cannot reach each other.
 * Security group referencing stays off: spokes admit the runner by its subnets' CIDRs
 * (see SpokeAttachment for why).
 *
 * Child names (name = `transit-<region code>`, transitNames()): `<name>` (gateway), `<name>-hub`,
 * `<name>-spokes` (tables), `<name>-hub-vpc` (attachment, association, the spokes table's route),
 * `<name>-<az>-<destination key>` (hub VPC routes). Never change them: spokes find the gateway
 * and tables by these names' ids.
 */
export class TransitHub extends pulumi.ComponentResource {
  readonly gateway: aws.ec2transitgateway.TransitGateway;
  readonly hubTable: aws.ec2transitgateway.RouteTable;
  readonly spokesTable: aws.ec2transitgateway.RouteTable;
  readonly hubAttachment: aws.ec2transitgateway.VpcAttachment;

  constructor(name: string, args: TransitHubArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("TransitHub"), name, {}, opts);
    const { ctx } = args;
    const names = transitNames(ctx.region);
    if (name !== names.gateway) throw new Error(`TransitHub must be named ${names.gateway} (spokes find it by that name), got ${name}`);
    const t = tagsFor(ctx, SHARED_TENANT);
    this.gateway = new aws.ec2transitgateway.TransitGateway(
      names.gateway,
      {
        description: `${ctx.app} hub of ${ctx.region}: spokes reach the hub only`,
        defaultRouteTableAssociation: "disable",
        defaultRouteTablePropagation: "disable",
        autoAcceptSharedAttachments: "disable",
        dnsSupport: "enable",
        securityGroupReferencingSupport: "disable",
        tags: t,
      },
      { parent: this },
    );
    this.hubTable = new aws.ec2transitgateway.RouteTable(names.hubTable, { transitGatewayId: this.gateway.id, tags: t }, { parent: this });
    this.spokesTable = new aws.ec2transitgateway.RouteTable(names.spokesTable, { transitGatewayId: this.gateway.id, tags: t }, { parent: this });
    this.hubAttachment = new aws.ec2transitgateway.VpcAttachment(
      names.hubAttachment,
      {
        transitGatewayId: this.gateway.id,
        vpcId: args.hubVpcId,
        subnetIds: args.attachmentSubnetIds,
        transitGatewayDefaultRouteTableAssociation: false,
        transitGatewayDefaultRouteTablePropagation: false,
        dnsSupport: "enable",
        securityGroupReferencingSupport: "disable",
        tags: t,
      },
      { parent: this },
    );
    new aws.ec2transitgateway.RouteTableAssociation(
      names.hubAttachment,
      { transitGatewayAttachmentId: this.hubAttachment.id, transitGatewayRouteTableId: this.hubTable.id },
      { parent: this },
    );
    // The spokes' only way anywhere: the hub CIDR, static (the hub VPC does not propagate into `spokes`).
    new aws.ec2transitgateway.Route(
      names.hubAttachment,
      { destinationCidrBlock: args.hubCidr, transitGatewayAttachmentId: this.hubAttachment.id, transitGatewayRouteTableId: this.spokesTable.id },
      { parent: this },
    );
    for (const [az, table] of args.hubRouteTables) {
      for (const d of args.destinations) {
        new aws.ec2.Route(
          `${name}-${az}-${d.key}`,
          { routeTableId: table.id, destinationCidrBlock: d.cidr, transitGatewayId: this.gateway.id },
          // EC2 refuses a route to a transit gateway the VPC is not attached to yet.
          { parent: this, dependsOn: [this.hubAttachment] },
        );
      }
    }
    this.registerOutputs({ transitGatewayId: this.gateway.id, hubRouteTableId: this.hubTable.id, spokesRouteTableId: this.spokesTable.id });
  }
}
