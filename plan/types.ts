/**
 * The offline plan's data model; also the JSON contract of `tenantctl plan --json` (docs/architecture.md, "Contracts other tools rely on"):
 * `{ stacks: [{ name, kind, tenants, resources: [{ urn, type, name, parent, inputs }], violations }] }`.
 */

/** Pulumi's wire marker for a secret value; kept in rendered inputs so secretness is visible offline. */
export const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export interface RenderedResource {
  urn: string;
  /** Type token, e.g. aws:rds/instance:Instance. */
  type: string;
  /** Logical name. */
  name: string;
  /** URN of the parent resource ("" for the stack's direct children). */
  parent: string;
  /** Inputs as the engine would see them; secret values are `{ [SECRET_SIG_KEY]: SECRET_SIG, value }`. */
  inputs: Record<string, unknown>;
  /**
   * Id of a custom resource: the mock runtime's offline, the provider's in a `pulumi stack export`.
   * The network analysis (plan/network) joins resources by it (a subnet's `vpcId` is its VPC's id).
   */
  id?: string;
  /** Outputs of a custom resource: the mock runtime's answer offline, the provider's in a `pulumi stack export`. */
  outputs?: Record<string, unknown>;
  /** Custom (provider-managed) resource, as opposed to a component. */
  custom: boolean;
  /** Resource options the plan cares about. */
  options: {
    protect: boolean;
    retainOnDelete: boolean;
    deleteBeforeReplace: boolean;
    provider: string;
    ignoreChanges: string[];
    /** Old URNs this registration may claim (own aliases and those inherited from the parent's, as the engine expands them). */
    aliases?: string[];
  };
}

export interface Violation {
  policy: string;
  level: "advisory" | "mandatory" | "remediate" | "disabled";
  urn: string;
  message: string;
}

export interface RenderedStack {
  name: string;
  kind: "platform" | "shared" | "dedicated";
  tenants: string[];
  resources: RenderedResource[];
  /** Stack outputs, secrets kept wrapped as in `inputs`. */
  outputs: Record<string, unknown>;
}

export interface PlannedStack extends RenderedStack {
  violations: Violation[];
}

export interface PlanDocument {
  stacks: PlannedStack[];
}

export function isSecretValue(v: unknown): v is { [SECRET_SIG_KEY]: string; value: unknown } {
  return typeof v === "object" && v !== null && (v as Record<string, unknown>)[SECRET_SIG_KEY] === SECRET_SIG;
}

/** Removes secret wrappers (what the policy SDK does before policies see inputs). */
export function unwrapSecrets(v: unknown): unknown {
  if (isSecretValue(v)) return unwrapSecrets((v as { value: unknown }).value);
  if (Array.isArray(v)) return v.map(unwrapSecrets);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x)]));
  return v;
}
