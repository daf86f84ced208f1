/**
 * Reading the rendered resources of the `plan --json` shape (plan/types.ts) for buildInventory
 * (inventory.ts): typed values out of inputs/outputs (secrets unwrapped), ids and regions, the
 * per-stack id index the joins go through, and the Reading the per-concept readers share
 * (readRouting.ts, readSecurity.ts, readWorkloads.ts). Pure: no Pulumi, no AWS SDK.
 */
import { isSecretValue, unwrapSecrets, type RenderedResource } from "../types.ts";
import type { Origin, Subnet, Vpc } from "./model.ts";
import { cidrRange, type Block } from "./ranges.ts";

export type Res = RenderedResource & { stack: string };

export function val(r: RenderedResource, key: string): unknown {
  const v = r.outputs && key in r.outputs ? r.outputs[key] : r.inputs[key];
  return isSecretValue(v) ? unwrapSecrets(v) : v;
}
export function str(r: RenderedResource, key: string): string | undefined {
  const v = val(r, key);
  return typeof v === "string" && v !== "" ? v : undefined;
}
export function num(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "string" && /^-?\d+$/.test(v)) return Number(v);
  return undefined;
}
export function strs(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}
export function flag(v: unknown, dflt: boolean): boolean {
  if (v === undefined || v === null) return dflt;
  return v === true || v === "enable" || v === "true";
}

/** The id a resource carries: recorded by the renderer, or given by `pulumi stack export`. */
export function idOf(r: RenderedResource): string | undefined {
  return r.id ?? (typeof r.outputs?.id === "string" ? r.outputs.id : undefined);
}

/** The region of a resource: its own `region` input (aws v7), else the one in its ARN. */
export function regionOf(r: RenderedResource): string | undefined {
  const own = str(r, "region");
  if (own) return own;
  const arn = str(r, "arn");
  return arn?.split(":")[3] || undefined;
}

export function block(text: string | undefined): Block | undefined {
  if (!text) return undefined;
  try {
    return cidrRange(text);
  } catch {
    return undefined;
  }
}

/** A resource id index: same stack first, then a unique match in another stack. */
export class Ids<V> {
  private readonly map = new Map<string, { stack: string; v: V }[]>();
  add(stack: string, id: string, v: V): void {
    const list = this.map.get(id) ?? [];
    list.push({ stack, v });
    this.map.set(id, list);
  }
  get(stack: string, id: string | undefined, onAmbiguous: (stacks: string[]) => void): V | undefined {
    if (!id) return undefined;
    const list = this.map.get(id);
    if (!list) return undefined;
    const own = list.find((x) => x.stack === stack);
    if (own) return own.v;
    if (list.length > 1) {
      onAmbiguous(list.map((x) => x.stack));
      return undefined;
    }
    return list[0]!.v;
  }
}

export function origin(r: Res): Origin {
  return { stack: r.stack, urn: r.urn, name: r.name, id: idOf(r) ?? "" };
}

/** What the readers of one buildInventory share: resources by type, the problem list, and the joins to VPCs and subnets. */
export interface Reading {
  /** The custom resources of a type, across all stacks. */
  of: (type: string) => Res[];
  problem: (r: Res, message: string) => void;
  /** The callback Ids.get calls when an id names resources of several other stacks. */
  ambiguous: (r: Res, what: string, id: string) => (stacks: string[]) => void;
  /** The resource's id, or a problem saying it has none. */
  withId: (r: Res) => string | undefined;
  vpcOf: (r: Res, key?: string) => Vpc | undefined;
  subnetOf: (r: Res, id: string | undefined, key: string) => Subnet | undefined;
  stackKinds: Map<string, string>;
}
