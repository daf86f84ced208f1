import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { POSTGRES_PORT } from "../model/database.ts";
import { componentType, tagsFor, type StackContext } from "./context.ts";

export interface DatabaseSecurityGroupsArgs {
  ctx: StackContext;
  owner: string;
  vpcId: pulumi.Input<string>;
  /** CIDRs besides the app group that may reach Postgres (the control plane). Never 0.0.0.0/0. */
  adminCidrs: readonly { key: string; cidr: string }[];
  /** App egress to the internet on 443 (only where the VPC has NAT). */
  appHttpsEgress: boolean;
  /** The VPC's endpoints (VpcEndpoints): the app group may reach them and S3 (its gateway endpoint) on 443. */
  endpoints?: { securityGroupId: pulumi.Input<string>; s3PrefixListId: pulumi.Input<string> };
}

/**
 * The app security group (attached by the workloads that run the app) and the database group.
 * The database admits 5432 from the app group and the listed admin CIDRs, nothing else; it has
 * no egress. Rules are their own resources (aws.vpc.*Rule), each tagged, so adding one never
 * rewrites the others. No rule opens a port to the world: the admin CIDRs are checked here.
 *
 * Child names: `<name>-app`, `<name>-db` (groups), `<name>-db-from-app`, `<name>-db-from-<key>`,
 * `<name>-app-to-db`, `<name>-app-to-endpoints`, `<name>-app-to-s3`, `<name>-app-https-out`.
 */
export class DatabaseSecurityGroups extends pulumi.ComponentResource {
  readonly appSecurityGroupId: pulumi.Output<string>;
  readonly dbSecurityGroupId: pulumi.Output<string>;

  constructor(name: string, args: DatabaseSecurityGroupsArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("DatabaseSecurityGroups"), name, {}, opts);
    const t = tagsFor(args.ctx, args.owner);
    for (const { cidr } of args.adminCidrs) {
      if (cidr.endsWith("/0")) throw new Error(`${name}: admin CIDR ${cidr} would open Postgres to the internet; use the control-plane CIDR`);
    }
    const app = new aws.ec2.SecurityGroup(`${name}-app`, { vpcId: args.vpcId, description: "Application workloads; may reach the database", tags: t }, { parent: this });
    const db = new aws.ec2.SecurityGroup(`${name}-db`, { vpcId: args.vpcId, description: "PostgreSQL; 5432 from the app group and the control plane only", tags: t }, { parent: this });
    const pg = { ipProtocol: "tcp", fromPort: POSTGRES_PORT, toPort: POSTGRES_PORT };
    new aws.vpc.SecurityGroupIngressRule(
      `${name}-db-from-app`,
      { securityGroupId: db.id, referencedSecurityGroupId: app.id, description: "Postgres from the app group", ...pg, tags: t },
      { parent: this },
    );
    for (const { key, cidr } of args.adminCidrs) {
      new aws.vpc.SecurityGroupIngressRule(
        `${name}-db-from-${key}`,
        { securityGroupId: db.id, cidrIpv4: cidr, description: `Postgres from ${key}`, ...pg, tags: t },
        { parent: this },
      );
    }
    new aws.vpc.SecurityGroupEgressRule(
      `${name}-app-to-db`,
      { securityGroupId: app.id, referencedSecurityGroupId: db.id, description: "Postgres to the database group", ...pg, tags: t },
      { parent: this },
    );
    if (args.endpoints) {
      const https = { ipProtocol: "tcp", fromPort: 443, toPort: 443, tags: t };
      new aws.vpc.SecurityGroupEgressRule(
        `${name}-app-to-endpoints`,
        { securityGroupId: app.id, referencedSecurityGroupId: args.endpoints.securityGroupId, description: "HTTPS to the VPC's interface endpoints", ...https },
        { parent: this },
      );
      new aws.vpc.SecurityGroupEgressRule(
        `${name}-app-to-s3`,
        { securityGroupId: app.id, prefixListId: args.endpoints.s3PrefixListId, description: "HTTPS to S3 through the gateway endpoint", ...https },
        { parent: this },
      );
    }
    if (args.appHttpsEgress) {
      new aws.vpc.SecurityGroupEgressRule(
        `${name}-app-https-out`,
        { securityGroupId: app.id, cidrIpv4: "0.0.0.0/0", description: "HTTPS to the internet through NAT", ipProtocol: "tcp", fromPort: 443, toPort: 443, tags: t },
        { parent: this },
      );
    }
    this.appSecurityGroupId = app.id;
    this.dbSecurityGroupId = db.id;
    this.registerOutputs({ appSecurityGroupId: app.id, dbSecurityGroupId: db.id });
  }
}
