import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { DELEGATION_TTL, TENANT_RECORD_TTL } from "../model/dnsTargets.ts";
import { dedicatedZoneName, privateDbHostname, privateZoneName } from "../model/naming.ts";
import { envDomain } from "../model/platform.ts";
import { componentType, tagsFor, type StackContext } from "./context.ts";
import { platformReference, readPlatformOutput } from "./platformReference.ts";
import { PLATFORM_OUTPUTS } from "../model/hub.ts";

/** An ALIAS target for the zone apex: the tenant's load balancer (created with the app, outside this program). */
export interface IngressAlias {
  dnsName: string;
  zoneId: string;
}

export interface DedicatedDnsArgs {
  ctx: StackContext;
  tenant: string;
  vpcId: pulumi.Input<string>;
  dbAddress: pulumi.Input<string>;
  /** Apex record of the public zone; none until the tenant's load balancer exists. */
  ingress?: IngressAlias;
  /**
   * Let a delete remove every record of both zones first (records the stack did not create: an
   * ACM validation record, the app's own names; no tenant data). Only once the tenant's final backup is recorded
   * (infra/model/destroy.ts).
   * @default false: a destroy fails on a zone holding records it did not create (HostedZoneNotEmpty)
   */
  forceDestroy?: boolean;
}

/**
 * A dedicated tenant's DNS: public zone `<id>.dedicated.<env domain>` delegated from the
 * platform's zone by an NS record, its apex aliased to the tenant's ingress, and private zone
 * `<id>.<env>.internal` with `db.<id>.<env>.internal` -> the RDS address (apps use the stable
 * name; an instance replaced from a snapshot gets a new address, the name stays).
 *
 * The private zone is created with the tenant VPC (AWS creates a private zone only with a VPC)
 * and ignores changes to its inline `vpcs` from then on; every other VPC is a separate
 * ZoneAssociation: the region's hub VPC (the runner resolves the tenant's names), and any a
 * person adds (a customer VPC). With inline `vpcs` alone, the next `up` would remove every
 * association made outside it (the provider's documented "exclusive" inline associations,
 * https://www.pulumi.com/registry/packages/aws/api-docs/route53/zone/).
 *
 * Child names: `<name>-public`, `<name>-private` (zones), `<name>-private-hub` (association),
 * `<name>-delegation`, `<name>-ingress`, `<name>-db`.
 */
export class DedicatedDns extends pulumi.ComponentResource {
  readonly zoneName: string;
  readonly nameServers: pulumi.Output<string[]>;
  readonly privateDbHostname: string;

  constructor(name: string, args: DedicatedDnsArgs, opts?: pulumi.ComponentResourceOptions) {
    super(componentType("DedicatedDns"), name, {}, opts);
    const { ctx, tenant } = args;
    const t = tagsFor(ctx, tenant);
    this.zoneName = dedicatedZoneName(tenant, envDomain(ctx.platform, ctx.env));
    const zone = new aws.route53.Zone(
      `${name}-public`,
      { name: this.zoneName, comment: `Tenant ${tenant} (${ctx.env}), delegated from ${ctx.platform.domain}`, forceDestroy: args.forceDestroy ?? false, tags: t },
      { parent: this },
    );
    this.nameServers = zone.nameServers;
    new aws.route53.Record(
      `${name}-delegation`,
      { zoneId: ctx.platform.hostedZoneId, name: this.zoneName, type: "NS", ttl: DELEGATION_TTL, records: zone.nameServers },
      { parent: this },
    );
    if (args.ingress) {
      new aws.route53.Record(
        `${name}-ingress`,
        {
          zoneId: zone.zoneId,
          name: this.zoneName,
          type: "A",
          aliases: [{ name: args.ingress.dnsName, zoneId: args.ingress.zoneId, evaluateTargetHealth: true }],
        },
        { parent: this },
      );
    }

    const internal = new aws.route53.Zone(
      `${name}-private`,
      { name: privateZoneName(tenant, ctx.env), comment: `Tenant ${tenant} (${ctx.env}) internal names`, vpcs: [{ vpcId: args.vpcId, vpcRegion: ctx.region }], forceDestroy: args.forceDestroy ?? false, tags: t },
      { parent: this, ignoreChanges: ["vpcs"] },
    );
    const hubVpcId = readPlatformOutput(platformReference(ctx.region, { parent: this }), PLATFORM_OUTPUTS.hubVpcId);
    new aws.route53.ZoneAssociation(`${name}-private-hub`, { zoneId: internal.zoneId, vpcId: hubVpcId, vpcRegion: ctx.region }, { parent: this });
    this.privateDbHostname = privateDbHostname(tenant, ctx.env);
    new aws.route53.Record(
      `${name}-db`,
      { zoneId: internal.zoneId, name: this.privateDbHostname, type: "CNAME", ttl: TENANT_RECORD_TTL, records: [args.dbAddress] },
      { parent: this },
    );
    this.registerOutputs({ zoneName: this.zoneName, nameServers: this.nameServers, privateDbHostname: this.privateDbHostname });
  }
}
