import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { interfaceEndpoints } from "../model/endpoints.ts";
import { type HubLayout } from "../model/hub.ts";
import { SHARED_TENANT } from "../model/naming.ts";
import { componentType, tagsFor, type StackContext } from "./context.ts";
import { Egress } from "./egress.ts";
import { Network } from "./network.ts";
import { VpcEndpoints } from "./vpcEndpoints.ts";

export interface HubNetworkArgs {
  ctx: StackContext;
  /** hubLayout(platform, region): the subnets, keyed by AZ. */
  layout: HubLayout;
}

/**
 * A region's hub VPC (docs/network.md): runner subnets (Network's private subnets), services
 * subnets (control plane, its database, interface endpoints) sharing the per-AZ route tables,
 * public subnets with a NAT gateway per AZ for the runner's outbound calls (GitHub, the Pulumi
 * state backend, Stripe: nothing else gets a public address), interface endpoints for the AWS
 * APIs the runner and the control plane call, and an S3 gateway endpoint (free; S3 traffic stays
 * off the NAT).
 *
 * Child names (name = `hub-<region code>`): `<name>-network` (VPC, runner subnets, tables),
 * `<name>-services-<az>`, `<name>-egress`, `<name>-endpoints` (VpcEndpoints: its security group
 * and rule kept their names, the endpoints became `<name>-endpoints-<service>` and
 * `<name>-endpoints-s3`, all aliased to their former URNs). Never change them.
 */
export class HubNetwork extends pulumi.ComponentResource {
  readonly vpcId: pulumi.Output<string>;
  readonly runnerSubnetIds: pulumi.Output<string>[];
  readonly servicesSubnetIds: pulumi.Output<string>[];
  readonly publicSubnetIds: pulumi.Output<string>[];
  readonly routeTables: ReadonlyMap<string, aws.ec2.RouteTable>;

  constructor(name: string, args: HubNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("HubNetwork"), name, {}, opts);
    const { ctx, layout } = args;
    const t = tagsFor(ctx, SHARED_TENANT);
    const network = new Network(`${name}-network`, { ctx, owner: SHARED_TENANT, vpcCidr: layout.cidr, privateSubnets: layout.runner }, { parent: this });
    this.vpcId = network.vpcId;
    this.runnerSubnetIds = network.privateSubnetIds;
    this.routeTables = network.privateRouteTables;

    this.servicesSubnetIds = layout.services.map(({ az, cidr }) => {
      const subnet = new aws.ec2.Subnet(
        `${name}-services-${az}`,
        { vpcId: network.vpcId, cidrBlock: cidr, availabilityZone: az, mapPublicIpOnLaunch: false, tags: t },
        { parent: this },
      );
      new aws.ec2.RouteTableAssociation(`${name}-services-${az}`, { subnetId: subnet.id, routeTableId: network.privateRouteTables.get(az)!.id }, { parent: this });
      return subnet.id;
    });

    const egress = new Egress(
      `${name}-egress`,
      // A NAT per AZ: the platform is production infrastructure, and an AZ outage must not stop the other AZ's runner tasks.
      { ctx, owner: SHARED_TENANT, vpcId: network.vpcId, publicSubnets: layout.public, privateRouteTables: network.privateRouteTables, natPerAz: true },
      { parent: this },
    );
    this.publicSubnetIds = egress.publicSubnetIds;

    new VpcEndpoints(
      `${name}-endpoints`,
      {
        ctx,
        owner: SHARED_TENANT,
        vpcId: network.vpcId,
        services: interfaceEndpoints("hub"),
        subnetIds: this.servicesSubnetIds,
        routeTableIds: [...network.privateRouteTables.values()].map((rt) => rt.id),
        clients: [{ key: "hub", cidr: layout.cidr, description: "HTTPS from the hub VPC" }],
        securityGroupDescription: "Interface endpoints; HTTPS from the hub VPC only",
        // These were this component's own children before VpcEndpoints existed: keep their state.
        formerlyIn: { parent: this, name },
      },
      { parent: this },
    );
    this.registerOutputs({ vpcId: this.vpcId });
  }
}
