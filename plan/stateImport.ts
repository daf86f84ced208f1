import { parseStackName } from "../infra/model/naming.ts";
import { SECRET_SIG, SECRET_SIG_KEY, type PlanDocument, type RenderedResource, type RenderedStack } from "./types.ts";

/** Either file `tenantctl policy check` accepts, turned into stacks of resources. */
export class StateFormatError extends Error {}

interface ExportedResource {
  urn: string;
  id?: string;
  type: string;
  custom?: boolean;
  parent?: string;
  provider?: string;
  protect?: boolean;
  retainOnDelete?: boolean;
  deleteBeforeReplace?: boolean;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
}

/**
 * A `pulumi stack export` secret is `{ sig, ciphertext }` (or `{ sig, plaintext }` with
 * --show-secrets, the plaintext being JSON). Keep it marked secret; decrypting is not ours to do.
 */
function importSecrets(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(importSecrets);
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (o[SECRET_SIG_KEY] === SECRET_SIG) {
      let value: unknown = "[encrypted]";
      if (typeof o.plaintext === "string") {
        try {
          value = JSON.parse(o.plaintext);
        } catch {
          value = o.plaintext;
        }
      } else if ("value" in o) value = o.value;
      return { [SECRET_SIG_KEY]: SECRET_SIG, value: importSecrets(value) };
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, importSecrets(x)]));
  }
  return v;
}

/** urn:pulumi:<stack>::<project>::<qualified type>::<name> */
function urnParts(urn: string): { stack: string; name: string } {
  const m = /^urn:pulumi:([^:]+)::[^:]+::.+::(.*)$/.exec(urn);
  if (!m) throw new StateFormatError(`"${urn}" is not a Pulumi URN`);
  return { stack: m[1]!, name: m[2]! };
}

function fromExport(doc: { deployment: { resources?: ExportedResource[] } }, environments: readonly string[]): RenderedStack[] {
  const resources = doc.deployment.resources ?? [];
  const byStack = new Map<string, RenderedResource[]>();
  for (const r of resources) {
    if (typeof r.urn !== "string" || typeof r.type !== "string") throw new StateFormatError("deployment.resources[] entries need urn and type");
    const { stack, name } = urnParts(r.urn);
    const list = byStack.get(stack) ?? [];
    list.push({
      urn: r.urn,
      type: r.type,
      name,
      parent: r.parent ?? "",
      ...(typeof r.id === "string" && r.id !== "" ? { id: r.id } : {}),
      inputs: importSecrets(r.inputs ?? {}) as Record<string, unknown>,
      outputs: importSecrets(r.outputs ?? {}) as Record<string, unknown>,
      custom: r.custom ?? false,
      options: {
        protect: r.protect ?? false,
        retainOnDelete: r.retainOnDelete ?? false,
        deleteBeforeReplace: r.deleteBeforeReplace ?? false,
        provider: r.provider ?? "",
        ignoreChanges: [],
      },
    });
    byStack.set(stack, list);
  }
  return [...byStack].map(([name, list]) => {
    const tenants = [...new Set(list.map((r) => (r.outputs?.tags as Record<string, string> | undefined)?.tenant ?? (r.inputs.tags as Record<string, string> | undefined)?.tenant).filter((t): t is string => typeof t === "string" && t !== "shared"))].sort();
    return { name, kind: parseStackName(name, environments).kind, tenants, resources: list, outputs: {} };
  });
}

/** Reads a plan JSON (`tenantctl plan --json`) or a `pulumi stack export` document. */
export function importStacks(json: unknown, environments: readonly string[]): RenderedStack[] {
  if (json && typeof json === "object") {
    const o = json as Record<string, unknown>;
    if (Array.isArray(o.stacks)) {
      return (o as unknown as PlanDocument).stacks.map(({ violations: _v, ...s }) => s);
    }
    if (o.deployment && typeof o.deployment === "object") return fromExport(o as { deployment: { resources?: ExportedResource[] } }, environments);
  }
  throw new StateFormatError("expected a plan JSON ({ stacks: [...] }) or a `pulumi stack export` file ({ deployment: { resources: [...] } })");
}
