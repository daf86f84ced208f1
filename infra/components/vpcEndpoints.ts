import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { endpointAzs, endpointKey, interfaceEndpoints, type VpcKind } from "../model/endpoints.ts";
import type { PlannedSubnet } from "../model/subnets.ts";
import { componentType, tagsFor, type StackContext } from "./context.ts";
import type { Network } from "./network.ts";

/** A source admitted on 443 by the endpoints' security group. `key` names its rule: stable. */
export interface EndpointClient {
  key: string;
  cidr: string;
  description: string;
}

export interface VpcEndpointsArgs {
  ctx: StackContext;
  owner: string;
  vpcId: pulumi.Input<string>;
  /** Interface endpoint services (infra/model/endpoints.ts interfaceEndpoints()). */
  services: readonly string[];
  /** Subnets holding the interface endpoints' network interfaces: one per AZ served (endpointAzs()). */
  subnetIds: pulumi.Input<string>[];
  /** Route tables the S3 gateway endpoint adds its prefix-list route to (every private table). */
  routeTableIds: pulumi.Input<string>[];
  /** Who may call the interface endpoints (HTTPS). Never 0.0.0.0/0. */
  clients: readonly EndpointClient[];
  /** The security group's description (a change replaces the group: never change a deployed one). */
  securityGroupDescription: string;
  /**
   * The hub's endpoints were children of HubNetwork before this component existed (its name
   * `hub-<code>`): each child then gets an alias to its former parent and name, so the next `up`
   * claims the existing endpoints instead of replacing them (test/infra/hubEndpointAliases.test.ts).
   */
  formerlyIn?: { parent: pulumi.Resource; name: string };
}

/**
 * A VPC's endpoints (docs/network.md, "VPC endpoints"): a security group admitting HTTPS from the
 * listed clients, an interface endpoint per service with private DNS (the service's public name
 * resolves to the endpoint inside the VPC, so SDKs need no endpoint override), and an S3 gateway
 * endpoint on the route tables (free; S3 traffic never needs a NAT).
 *
 * Child names (name = `<owner component>-endpoints`): `<name>` (security group),
 * `<name>-from-<client key>` (ingress rules), `<name>-<service key>` (interface endpoints),
 * `<name>-s3` (gateway endpoint). Part of every URN: never change them.
 */
export class VpcEndpoints extends pulumi.ComponentResource {
  readonly securityGroupId: pulumi.Output<string>;
  /** The S3 prefix list the gateway endpoint routes: an egress rule to it lets a group reach S3. */
  readonly s3PrefixListId: pulumi.Output<string>;

  constructor(name: string, args: VpcEndpointsArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("VpcEndpoints"), name, {}, opts);
    const { ctx } = args;
    const t = tagsFor(ctx, args.owner);
    for (const c of args.clients) {
      if (c.cidr.endsWith("/0")) throw new Error(`${name}: endpoint client ${c.key} (${c.cidr}) would admit the whole internet; list the VPC's own subnets`);
    }
    if (args.services.length > 0 && args.clients.length === 0) throw new Error(`${name}: interface endpoints with no client CIDR admit nobody; list the VPC's subnets`);
    // Children keep the former parent's state: same type, former parent, former name.
    const former = (formerName: string): pulumi.CustomResourceOptions =>
      args.formerlyIn ? { parent: this, aliases: [{ name: formerName, parent: args.formerlyIn.parent }] } : { parent: this };
    const hub = args.formerlyIn?.name;

    const sg = new aws.ec2.SecurityGroup(
      name,
      { vpcId: args.vpcId, description: args.securityGroupDescription, tags: t },
      former(`${hub}-endpoints`),
    );
    for (const c of args.clients) {
      new aws.vpc.SecurityGroupIngressRule(
        `${name}-from-${c.key}`,
        { securityGroupId: sg.id, cidrIpv4: c.cidr, ipProtocol: "tcp", fromPort: 443, toPort: 443, description: c.description, tags: t },
        former(`${hub}-endpoints-from-${c.key}`),
      );
    }
    for (const svc of args.services) {
      new aws.ec2.VpcEndpoint(
        `${name}-${endpointKey(svc)}`,
        {
          vpcId: args.vpcId,
          serviceName: `com.amazonaws.${ctx.region}.${svc}`,
          vpcEndpointType: "Interface",
          privateDnsEnabled: true,
          subnetIds: args.subnetIds,
          securityGroupIds: [sg.id],
          tags: t,
        },
        former(`${hub}-${endpointKey(svc)}`),
      );
    }
    const s3 = new aws.ec2.VpcEndpoint(
      `${name}-s3`,
      { vpcId: args.vpcId, serviceName: `com.amazonaws.${ctx.region}.s3`, vpcEndpointType: "Gateway", routeTableIds: args.routeTableIds, tags: t },
      former(`${hub}-s3`),
    );
    this.securityGroupId = sg.id;
    this.s3PrefixListId = s3.prefixListId;
    this.registerOutputs({ securityGroupId: this.securityGroupId, s3PrefixListId: this.s3PrefixListId });
  }
}

/**
 * The endpoints of a cell or dedicated VPC: the spoke set, its interface endpoints in the
 * private subnets of endpointAzs(), HTTPS admitted from each private subnet (the workloads'),
 * the S3 gateway endpoint on every private route table.
 */
export function spokeEndpointsArgs(ctx: StackContext, owner: string, kind: Exclude<VpcKind, "hub">, network: Network, subnets: readonly PlannedSubnet[]): VpcEndpointsArgs {
  const azs = endpointAzs(kind, ctx.env, subnets.map((s) => s.az));
  const ids = new Map(subnets.map((s, i) => [s.az, network.privateSubnetIds[i]!]));
  return {
    ctx,
    owner,
    vpcId: network.vpcId,
    services: interfaceEndpoints(kind),
    subnetIds: azs.map((az) => ids.get(az)!),
    routeTableIds: [...network.privateRouteTables.values()].map((rt) => rt.id),
    clients: subnets.map((s) => ({ key: s.az, cidr: s.cidr, description: `HTTPS from the private subnet in ${s.az}` })),
    securityGroupDescription: "Interface endpoints; HTTPS from the VPC's private subnets only",
  };
}
