import * as pulumi from "@pulumi/pulumi";
import type { Fleet } from "../../infra/model/fleet.ts";
import { tenantsOfStack } from "../../infra/model/fleet.ts";
import { PROJECT } from "../../infra/model/platform.ts";
import { parseStackName } from "../../infra/model/naming.ts";
import { defineStack, type StackOutputs } from "../../infra/program.ts";
import * as settingsModule from "@pulumi/pulumi/runtime/settings.js";
import * as stateModule from "@pulumi/pulumi/runtime/state.js";
import { withFastPromises } from "./fastPromises.ts";
import { platformReferenceOutputs } from "./platformReference.ts";
import { RecordingMonitor } from "./monitor.ts";
import type { RenderedStack } from "../types.ts";


// Internal SDK functions, used the way `pulumi.runtime.setMocks` uses them (the SDK version is pinned).
const sdkSettings = settingsModule as unknown as {
  setMockOptions(monitor: unknown, project?: string, stack?: string, preview?: boolean, organization?: string): void;
  waitForRPCs(): Promise<void>;
};
const sdkState = stateModule as unknown as { getStore(): Record<string, unknown> };

export interface RenderOptions {
  /**
   * Skip the stack trace the SDK captures for every promise it tracks (see fastPromises.ts).
   * Off by default; `tenantctl plan` turns it on. `pulumi up` never goes through this renderer.
   */
  fastPromises?: boolean;
  /** The program to run; default the real one (infra/program.ts). Tests of the renderer pass their own. */
  program?: (fleet: Fleet, stackName: string) => Promise<StackOutputs | Record<string, unknown>>;
}

/** Config the Pulumi CLI would give the program: the stack file's `config:` keys, as strings. */
function stackConfig(fleet: Fleet, stackName: string): Record<string, string> {
  const file = fleet.stacks.get(stackName);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(file?.config ?? {})) {
    const key = k.includes(":") ? k : `${PROJECT}:${k}`;
    out[key] = typeof v === "string" ? v : JSON.stringify(v);
  }
  return out;
}

let rendering = false;

/**
 * Renders one stack under Pulumi's mock runtime and returns every resource it registers.
 * The mock runtime is process-wide: renders run one at a time in a process (a second
 * concurrent call is refused rather than mixing two stacks' resources).
 */
export async function renderStack(fleet: Fleet, stackName: string, opts: RenderOptions = {}): Promise<RenderedStack> {
  if (rendering) throw new Error("renderStack: another render is in progress in this process; render stacks one at a time");
  rendering = true;
  try {
    return await withFastPromises(opts.fastPromises === true, () => renderOnce(fleet, stackName, opts));
  } finally {
    rendering = false;
  }
}

async function renderOnce(fleet: Fleet, stackName: string, opts: RenderOptions): Promise<RenderedStack> {
  const ref = parseStackName(stackName, fleet.platform.environments);
  const file = fleet.stacks.get(stackName);
  const monitor = new RecordingMonitor(
    {
      project: PROJECT,
      stack: stackName,
      region: file?.region ?? fleet.platform.regions[0]!,
      accountId: fleet.platform.awsAccountId,
    },
    (name) => platformReferenceOutputs(fleet, name),
  );
  pulumi.runtime.setAllConfig(stackConfig(fleet, stackName));
  // "organization" is what a self-managed (DIY) backend reports; StackReference names are built from it.
  sdkSettings.setMockOptions(monitor, PROJECT, stackName, false, "organization");
  Object.assign(sdkState.getStore(), {
    supportsSecrets: true,
    supportsResourceReferences: true,
    supportsOutputValues: false,
    supportsDeletedWith: true,
    supportsAliasSpecs: true,
    supportsTransforms: false,
  });
  const program = opts.program ?? defineStack;
  // A program error is caught inside the stack and rethrown after it settles: thrown through
  // runInPulumiStack it would also reject promises the SDK derives from the stack's outputs,
  // which nobody awaits (unhandled rejections), as well as this one.
  let failure: { error: unknown } | undefined;
  await pulumi.runtime.runInPulumiStack(async () => {
    try {
      return await program(fleet, stackName);
    } catch (error) {
      failure = { error };
      return {};
    }
  });
  await sdkSettings.waitForRPCs();
  if (failure) throw failure.error;
  const root = monitor.records.find((r) => r.type === "pulumi:pulumi:Stack");
  return {
    name: stackName,
    kind: ref.kind,
    tenants: tenantsOfStack(fleet, stackName).map((t) => t.id),
    resources: monitor.records,
    outputs: (root && monitor.outputs.get(root.urn)) ?? {},
  };
}
