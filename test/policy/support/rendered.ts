/**
 * Rendered stacks of the real program as policy fixtures: the example fleet's renders are the
 * passing fixture, and a test edits one resource's inputs and outputs (the engine reports both)
 * to make the failing one. Checked through plan/analyze.ts with the fleet's settings, as
 * `tenantctl plan` does.
 */
import { resolve } from "node:path";
import { requireFleet, type Fleet } from "../../../infra/model/fleet.ts";
import { fleetAnalyzer } from "../../../plan/planStacks.ts";
import { renderStack } from "../../../plan/render/render.ts";
import type { RenderedResource, RenderedStack, Violation } from "../../../plan/types.ts";

export const projectDir = resolve(import.meta.dirname, "../../..");
export const SSM = "aws:ssm/parameter:Parameter";

export function fleetOf(dir = projectDir): Fleet {
  return requireFleet({ projectDir: dir });
}

/** Renders stacks one at a time (the mock runtime is process-wide). */
export async function renderAll(fleet: Fleet, names: Iterable<string>): Promise<Map<string, RenderedStack>> {
  const out = new Map<string, RenderedStack>();
  for (const name of names) out.set(name, await renderStack(fleet, name, { fastPromises: true }));
  return out;
}

/** The violations of one policy on a stack. */
export async function policyViolations(fleet: Fleet, stack: RenderedStack, policy: string): Promise<Violation[]> {
  return (await fleetAnalyzer(fleet)(stack)).filter((v) => v.policy === policy);
}

export function resourceOf(stack: RenderedStack, type: string, name: string): RenderedResource {
  const r = stack.resources.find((x) => x.type === type && x.name === name);
  if (!r) throw new Error(`no ${type} ${name} in ${stack.name}`);
  return r;
}

/** A copy of `stack` with `fn` applied to one resource's inputs and outputs. */
export function edited(stack: RenderedStack, type: string, name: string, fn: (props: Record<string, unknown>) => void): RenderedStack {
  const copy = structuredClone(stack);
  const r = resourceOf(copy, type, name);
  fn(r.inputs);
  if (r.outputs) fn(r.outputs);
  return copy;
}

/** A copy of `stack` with a parameter's JSON document changed by `fn`. */
export function editedDocument(stack: RenderedStack, name: string, fn: (doc: Record<string, unknown>) => void): RenderedStack {
  return edited(stack, SSM, name, (p) => {
    const doc = JSON.parse(String(p.insecureValue)) as Record<string, unknown>;
    fn(doc);
    p.insecureValue = JSON.stringify(doc);
  });
}

/** The document a parameter of `stack` holds. */
export function documentOf(stack: RenderedStack, name: string): Record<string, unknown> {
  return JSON.parse(String(resourceOf(stack, SSM, name).inputs.insecureValue)) as Record<string, unknown>;
}
