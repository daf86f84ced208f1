/** Helpers of the network analysis tests: find and change resources of rendered stacks. */
import type { RenderedResource, RenderedStack } from "../../../plan/types.ts";

export function find(stacks: readonly RenderedStack[], stack: string, name: string, type?: string): RenderedResource {
  const s = stacks.find((x) => x.name === stack);
  const hits = s?.resources.filter((r) => r.name === name && (!type || r.type === type)) ?? [];
  if (hits.length !== 1) throw new Error(`${stack}: expected one resource named ${name}${type ? ` of type ${type}` : ""}, found ${hits.length}`);
  return hits[0]!;
}

/** Sets inputs (and the echoed outputs) of a resource. */
export function setInputs(r: RenderedResource, values: Record<string, unknown>): void {
  Object.assign(r.inputs, values);
  if (r.outputs) Object.assign(r.outputs, values);
}

export function remove(stacks: RenderedStack[], stack: string, name: string, type: string): void {
  const s = stacks.find((x) => x.name === stack)!;
  const before = s.resources.length;
  s.resources = s.resources.filter((r) => !(r.name === name && r.type === type));
  if (s.resources.length !== before - 1) throw new Error(`${stack}: no ${type} ${name} to remove`);
}

/** Adds a resource to a stack, modelled on `like` (same stack), with its own name, id and inputs. */
export function addLike(stacks: RenderedStack[], stack: string, like: RenderedResource, name: string, id: string, inputs: Record<string, unknown>): RenderedResource {
  const s = stacks.find((x) => x.name === stack)!;
  const r: RenderedResource = { ...like, urn: like.urn.replace(/::[^:]+$/, `::${name}`), name, id, inputs: { ...inputs }, outputs: { ...inputs } };
  s.resources.push(r);
  return r;
}
