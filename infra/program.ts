import type { Fleet } from "./model/fleet.ts";
import { parseStackName } from "./model/naming.ts";
import { buildDedicatedStack } from "./stacks/dedicated.ts";
import { buildSharedCellStack } from "./stacks/sharedCell.ts";

/** What a stack builder returns: its stack outputs. */
export type StackOutputs = Record<string, unknown>;

/**
 * The whole Pulumi program as a function of the fleet and the stack name, so the offline
 * renderer can run it once per stack under the mock runtime and `infra/index.ts` can run it
 * for a real `pulumi up`. The stack name decides the kind (docs/stacks.md).
 */
export async function defineStack(fleet: Fleet, stackName: string): Promise<StackOutputs> {
  const ref = parseStackName(stackName, fleet.platform.environments);
  const stack = fleet.stacks.get(stackName);
  if (!stack) {
    throw new Error(
      `stack ${stackName} has no config file ${fleet.dirs.stacksDir}/Pulumi.${stackName}.yaml; ` +
        (ref.kind === "dedicated" ? `run tenantctl new for the tenant` : `add the cell's stack file`),
    );
  }
  return ref.kind === "shared" ? buildSharedCellStack(fleet, stack) : buildDedicatedStack(fleet, stack);
}
