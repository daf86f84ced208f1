import type { Fleet } from "./model/fleet.ts";
import { parseStackName } from "./model/naming.ts";
import { buildDedicatedStack, type DedicatedOutputs } from "./stacks/dedicated.ts";
import { buildPlatformStack, type PlatformOutputs } from "./stacks/platform.ts";
import { buildSharedCellStack, type SharedCellOutputs } from "./stacks/sharedCell.ts";

/** What a stack builder returns: its stack outputs, one shape per stack kind (`kind` tells which). */
export type StackOutputs = PlatformOutputs | SharedCellOutputs | DedicatedOutputs;

/**
 * The whole Pulumi program as a function of the fleet and the stack name, so the offline
 * renderer can run it once per stack under the mock runtime and `infra/index.ts` can run it
 * for a real `pulumi up`. The stack name decides the kind (docs/stacks.md).
 */
export async function defineStack(fleet: Fleet, stackName: string): Promise<StackOutputs> {
  const ref = parseStackName(stackName, fleet.platform.environments);
  const stack = fleet.stacks.get(stackName);
  if (!stack) {
    const fix = ref.kind === "dedicated" ? "run tenantctl new for the tenant" : ref.kind === "shared" ? "add the cell's stack file" : "add the region's platform stack file";
    throw new Error(`stack ${stackName} has no config file ${fleet.dirs.stacksDir}/Pulumi.${stackName}.yaml; ${fix}`);
  }
  switch (ref.kind) {
    case "platform":
      return buildPlatformStack(fleet, stack);
    case "shared":
      return buildSharedCellStack(fleet, stack);
    case "dedicated":
      return buildDedicatedStack(fleet, stack);
  }
}
