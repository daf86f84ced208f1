/**
 * What a drift check found, from the engine events of `pulumi preview --refresh`: every resource
 * whose step is not a no-op once the refresh has read the cloud's state. Pure.
 *
 * Why events and not `--expect-no-changes`: with that flag the CLI fails the preview as soon as a
 * change is planned, and the failure carries no per-resource detail; the events name each resource
 * and the properties that differ (StepEventMetadata.diffs), which is what a person needs to judge
 * the drift. The verdict is the same: no step other than these ops means no changes.
 */
import type { EngineEvent } from "@pulumi/pulumi/automation/index.js";

/** Step ops that change nothing: the resource matches, or the step only reads or refreshes state. */
const NO_CHANGE_OPS: ReadonlySet<string> = new Set(["same", "read", "refresh"]);

export interface DriftedResource {
  urn: string;
  type: string;
  /** The step preview plans for it: update, replace, create, delete... */
  op: string;
  /** Top-level properties that differ, when the engine reports them. */
  diffs: string[];
}

export function driftFromEvents(events: readonly EngineEvent[]): DriftedResource[] {
  const out = new Map<string, DriftedResource>();
  for (const e of events) {
    const m = e.resourcePreEvent?.metadata;
    if (!m || NO_CHANGE_OPS.has(m.op)) continue;
    // The stack resource itself changes when outputs change; that is not drift of a cloud resource.
    if (m.type === "pulumi:pulumi:Stack") continue;
    out.set(m.urn, { urn: m.urn, type: m.type, op: m.op, diffs: [...(m.diffs ?? [])].sort() });
  }
  return [...out.values()].sort((a, b) => (a.urn < b.urn ? -1 : 1));
}
