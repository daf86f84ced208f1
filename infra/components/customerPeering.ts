import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { componentType, tagsFor, type StackContext } from "./context.ts";

/** Port the customer's workloads reach the tenant's application on. */
export const CUSTOMER_APP_PORT = 443;

export interface CustomerPeeringArgs {
  ctx: StackContext;
  tenant: string;
  vpcId: pulumi.Input<string>;
  /** dedicated.<env>.customerVpc of the tenant file (validated: disjoint from everything of ours). */
  customer: { accountId: string; vpcId: string; cidr: string };
  /** Private route tables by AZ: each routes the customer CIDR (only) to the peering. */
  privateRouteTables: ReadonlyMap<string, aws.ec2.RouteTable>;
  /** The tenant's app group: admits HTTPS from the customer CIDR (only). The database group admits nothing from it. */
  appSecurityGroupId: pulumi.Input<string>;
}

/**
 * `features.vpcPeering` (docs/network.md): private connectivity between a dedicated VPC and the
 * customer's own VPC, in the customer's account. This is the requester side; the customer
 * accepts it in their account (a cross-account peering cannot be auto-accepted, so `autoAccept`
 * is false) and adds their routes back. Until they accept, the routes here are blackholes, and
 * an unaccepted request expires after 7 days (a later `pulumi up` after expiry re-creates it).
 * Routes and the security group rule are limited to the customer's CIDR; the database is not
 * reachable from it, and no other VPC of ours learns the peering (peerings are not transitive).
 *
 * Child names: `<name>` (connection, app ingress rule), `<name>-<az>` (routes). Never change them.
 */
export class CustomerPeering extends pulumi.ComponentResource {
  readonly connectionId: pulumi.Output<string>;

  constructor(name: string, args: CustomerPeeringArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("CustomerPeering"), name, {}, opts);
    const { ctx, customer } = args;
    const t = tagsFor(ctx, args.tenant);
    const connection = new aws.ec2.VpcPeeringConnection(
      name,
      { vpcId: args.vpcId, peerVpcId: customer.vpcId, peerOwnerId: customer.accountId, autoAccept: false, tags: t },
      { parent: this },
    );
    for (const [az, table] of args.privateRouteTables) {
      new aws.ec2.Route(`${name}-${az}`, { routeTableId: table.id, destinationCidrBlock: customer.cidr, vpcPeeringConnectionId: connection.id }, { parent: this });
    }
    new aws.vpc.SecurityGroupIngressRule(
      name,
      {
        securityGroupId: args.appSecurityGroupId,
        cidrIpv4: customer.cidr,
        ipProtocol: "tcp",
        fromPort: CUSTOMER_APP_PORT,
        toPort: CUSTOMER_APP_PORT,
        description: `HTTPS from the customer VPC ${customer.vpcId}`,
        tags: t,
      },
      { parent: this },
    );
    this.connectionId = connection.id;
    this.registerOutputs({ connectionId: this.connectionId });
  }
}
