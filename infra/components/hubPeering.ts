import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { SHARED_TENANT } from "../model/naming.ts";
import { componentType, tagsFor, type StackContext } from "./context.ts";
import type { PlatformIds } from "./platformReference.ts";

export interface HubPeeringArgs {
  ctx: StackContext;
  /** This region's gateway and tables (TransitHub). */
  local: { gatewayId: pulumi.Input<string>; hubTableId: pulumi.Input<string>; spokesTableId: pulumi.Input<string>; hubCidr: string };
  /** The control plane's region, its hub CIDR and ids (read from its platform stack). */
  peer: { region: string; hubCidr: string; ids: PlatformIds };
}

/**
 * Transit Gateway peering between this region's hub and the control plane's (docs/network.md),
 * requested and accepted here (same account; the accepter and the peer-side routes are declared
 * with `region` = the peer's, so the control plane's stack never depends on the other regions).
 * On both gateways the attachment is associated with the `spokes` table (whose only route is the
 * local hub CIDR: a packet from the other hub reaches this hub, never a spoke), and the `hub`
 * table gets a static route to the other hub's CIDR (TGW peerings do not propagate). Spokes never
 * learn the other region.
 *
 * Child names (name = `peering-<peer region>`): `<name>` (attachment, local association, local
 * route), `<name>-accept`, `<name>-peer` (peer association, peer route). Never change them.
 */
export class HubPeering extends pulumi.ComponentResource {
  readonly attachmentId: pulumi.Output<string>;

  constructor(name: string, args: HubPeeringArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("HubPeering"), name, {}, opts);
    const { ctx, local, peer } = args;
    const t = tagsFor(ctx, SHARED_TENANT);
    const attachment = new aws.ec2transitgateway.PeeringAttachment(
      name,
      { transitGatewayId: local.gatewayId, peerTransitGatewayId: peer.ids.transitGatewayId, peerRegion: peer.region, peerAccountId: ctx.accountId, tags: t },
      { parent: this },
    );
    const accepted = new aws.ec2transitgateway.PeeringAttachmentAccepter(
      `${name}-accept`,
      { region: peer.region, transitGatewayAttachmentId: attachment.id, tags: t },
      { parent: this },
    );
    const after = { parent: this, dependsOn: [accepted] };
    new aws.ec2transitgateway.RouteTableAssociation(name, { transitGatewayAttachmentId: attachment.id, transitGatewayRouteTableId: local.spokesTableId }, after);
    new aws.ec2transitgateway.Route(name, { destinationCidrBlock: peer.hubCidr, transitGatewayAttachmentId: attachment.id, transitGatewayRouteTableId: local.hubTableId }, after);
    new aws.ec2transitgateway.RouteTableAssociation(
      `${name}-peer`,
      { region: peer.region, transitGatewayAttachmentId: attachment.id, transitGatewayRouteTableId: peer.ids.spokesRouteTableId },
      after,
    );
    new aws.ec2transitgateway.Route(
      `${name}-peer`,
      { region: peer.region, destinationCidrBlock: local.hubCidr, transitGatewayAttachmentId: attachment.id, transitGatewayRouteTableId: peer.ids.hubRouteTableId },
      after,
    );
    this.attachmentId = attachment.id;
    this.registerOutputs({ attachmentId: this.attachmentId });
  }
}
