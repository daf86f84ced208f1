/**
 * Builder of `platform-<region>` stacks (docs/network.md, docs/deploying.md): the region's hub
 * network, Transit Gateway and runner; peering with the control plane's hub elsewhere; the
 * control plane itself in its region. No postgresql provider anywhere: this stack deploys first,
 * from anywhere with AWS credentials. Top-level names (`platform-<code>`, `hub-<code>`,
 * `transit-<code>`, `runner-<code>`, `peering-<region>`, `control-plane`, `application-<env>`) are part of every URN
 * in the stack: never change them.
 */
import type * as pulumi from "@pulumi/pulumi";
import { ApplicationRole } from "../components/applicationRole.ts";
import { stackContext } from "../components/context.ts";
import { ControlPlaneService } from "../components/controlPlaneService.ts";
import { AccessLogBucket } from "../components/accessLogBucket.ts";
import { HubNetwork } from "../components/hubNetwork.ts";
import { HubPeering } from "../components/hubPeering.ts";
import { PlatformFoundation } from "../components/platformFoundation.ts";
import { platformIds, platformReference, readPlatformOutput } from "../components/platformReference.ts";
import { Runner } from "../components/runner.ts";
import { TransitHub } from "../components/transitHub.ts";
import type { Fleet } from "../model/fleet.ts";
import { hubDestinations, hubLayout, PLATFORM_OUTPUTS, peerRegions, runnerCidrs, transitNames } from "../model/hub.ts";
import { regionCode } from "../model/naming.ts";
import type { StackFile } from "../model/stackFile.ts";

export interface PlatformOutputs {
  kind: "platform";
  region: string;
  hubCidr: string;
  [PLATFORM_OUTPUTS.hubVpcId]: pulumi.Output<string>;
  [PLATFORM_OUTPUTS.transitGatewayId]: pulumi.Output<string>;
  [PLATFORM_OUTPUTS.hubRouteTableId]: pulumi.Output<string>;
  [PLATFORM_OUTPUTS.spokesRouteTableId]: pulumi.Output<string>;
  runnerCidrs: string[];
  runnerSecurityGroupId: pulumi.Output<string>;
  /** Present in the control plane's region: what the runners elsewhere read through their StackReference. */
  [PLATFORM_OUTPUTS.databaseUrlSecretArn]?: pulumi.Output<string>;
  controlPlaneHostname?: string;
}

export function buildPlatformStack(fleet: Fleet, stack: StackFile): PlatformOutputs {
  if (stack.ref.kind !== "platform") throw new Error(`buildPlatformStack: ${stack.ref.name} is not a platform-<region> stack`);
  if (!stack.image) throw new Error(`${stack.file}: saas-tenancy:image is required in a platform stack`);
  const { region } = stack.ref;
  const p = fleet.platform;
  const ctx = stackContext(p, stack.ref.env, stack.ref.name, region);
  const code = regionCode(region);
  const cpRegion = p.controlPlane.region;
  const isControlPlaneRegion = region === cpRegion;
  const layout = hubLayout(p, region);
  const destinations = hubDestinations(p, fleet.cells.values(), region);

  const foundation = new PlatformFoundation(`platform-${code}`, { ctx, secretRegions: isControlPlaneRegion ? [region] : [region, cpRegion], controlPlane: isControlPlaneRegion });
  const hub = new HubNetwork(`hub-${code}`, { ctx, layout });
  // Before any cell or dedicated stack of the region: their buckets log here.
  for (const env of p.environments) new AccessLogBucket(`access-logs-${env}-${code}`, { ctx, env });
  const transit = new TransitHub(transitNames(region).gateway, {
    ctx,
    hubCidr: layout.cidr,
    [PLATFORM_OUTPUTS.hubVpcId]: hub.vpcId,
    attachmentSubnetIds: hub.runnerSubnetIds,
    hubRouteTables: hub.routeTables,
    destinations,
  });

  // The control plane's hub, seen from here: its database is in its services subnets.
  const cpServices = hubLayout(p, cpRegion).services.map((s, i) => ({ key: `control-plane-${i}`, cidr: s.cidr }));
  const spokeDestinations = destinations.filter((d) => d.via !== "peer-hub");
  let databaseUrlSecretArn: pulumi.Output<string> | undefined;
  if (!isControlPlaneRegion) {
    const cpRef = platformReference(cpRegion);
    databaseUrlSecretArn = readPlatformOutput(cpRef, PLATFORM_OUTPUTS.databaseUrlSecretArn);
    for (const peer of peerRegions(p, region)) {
      new HubPeering(`peering-${peer}`, {
        ctx,
        local: { gatewayId: transit.gateway.id, hubTableId: transit.hubTable.id, spokesTableId: transit.spokesTable.id, hubCidr: layout.cidr },
        peer: { region: peer, hubCidr: hubLayout(p, peer).cidr, ids: platformIds(cpRef) },
      });
    }
  }

  // In its region the control plane comes first: the runner there reads its database URL secret.
  const cp = isControlPlaneRegion
    ? new ControlPlaneService("control-plane", {
        ctx,
        vpcId: hub.vpcId,
        servicesSubnetIds: hub.servicesSubnetIds,
        publicSubnetIds: hub.publicSubnetIds,
        image: stack.image,
        clusterArn: foundation.clusterArn,
        executionRoleArn: foundation.executionRoleArn,
        keyArn: foundation.keyArn,
        logGroup: foundation.logGroups["control-plane"]!,
        runners: p.regions.map((r) => ({ region: r, cidrs: runnerCidrs(p, r) })),
      })
    : undefined;
  // IAM is global: the application roles live with the control plane's other roles, one per env.
  if (isControlPlaneRegion) for (const env of p.environments) new ApplicationRole(`application-${env}`, { ctx, env });
  const runner = new Runner(`runner-${code}`, {
    ctx,
    vpcId: hub.vpcId,
    subnetIds: hub.runnerSubnetIds,
    image: stack.image,
    clusterArn: foundation.clusterArn,
    executionRoleArn: foundation.executionRoleArn,
    logGroup: foundation.logGroups.runner,
    databaseUrlSecretArn: cp ? cp.databaseUrlSecretArn : databaseUrlSecretArn!,
    postgresDestinations: [...spokeDestinations, ...cpServices],
  });

  return {
    kind: "platform",
    region,
    hubCidr: layout.cidr,
    hubVpcId: hub.vpcId,
    transitGatewayId: transit.gateway.id,
    hubRouteTableId: transit.hubTable.id,
    spokesRouteTableId: transit.spokesTable.id,
    runnerCidrs: runnerCidrs(p, region),
    runnerSecurityGroupId: runner.securityGroupId,
    ...(cp ? { databaseUrlSecretArn: cp.databaseUrlSecretArn, controlPlaneHostname: cp.hostname } : {}),
  };
}
