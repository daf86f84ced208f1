/**
 * How a stack reads a platform stack's identifiers (docs/network.md, "How a spoke finds its
 * hub"): a StackReference to `platform-<region>` in the same organization and project. The
 * offline renderer answers it with the ids the platform stack's resources get under the mock
 * runtime (plan/render/platformReference.ts), so a plan links spoke and hub exactly.
 */
import * as pulumi from "@pulumi/pulumi";
import { PLATFORM_OUTPUTS, STACK_EXPORT, platformStackReference } from "../model/hub.ts";
import { platformStackName } from "../model/naming.ts";

export interface PlatformIds {
  transitGatewayId: pulumi.Output<string>;
  hubRouteTableId: pulumi.Output<string>;
  spokesRouteTableId: pulumi.Output<string>;
}

export function platformReference(region: string, opts?: pulumi.CustomResourceOptions): pulumi.StackReference {
  return new pulumi.StackReference(
    platformStackName(region),
    { name: platformStackReference(pulumi.getOrganization(), pulumi.getProject(), region) },
    opts,
  );
}

/**
 * infra/index.ts exports a stack's outputs as one object named `stack` (ESM exports need static
 * names), so a reference reads that object and picks the key: a missing key fails the update
 * with the key's name instead of passing `undefined` on.
 */
export function readPlatformOutput(ref: pulumi.StackReference, key: string): pulumi.Output<string> {
  // ref.name is an Output: read it with the outputs (in a template it would print Output's toString warning).
  return pulumi.all([ref.name, ref.requireOutput(STACK_EXPORT)]).apply(([name, outputs]: [string, unknown]) => {
    const v = (outputs as Record<string, unknown> | undefined)?.[key];
    if (typeof v !== "string") throw new Error(`stack ${name}: output ${STACK_EXPORT}.${key} is missing; deploy the platform stack of this region first (docs/deploying.md)`);
    return v;
  });
}

export function platformIds(ref: pulumi.StackReference): PlatformIds {
  const read = (key: string) => readPlatformOutput(ref, key);
  return {
    transitGatewayId: read(PLATFORM_OUTPUTS.transitGatewayId),
    hubRouteTableId: read(PLATFORM_OUTPUTS.hubRouteTableId),
    spokesRouteTableId: read(PLATFORM_OUTPUTS.spokesRouteTableId),
  };
}
