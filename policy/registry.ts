/**
 * The policy registry: one definition per policy file, names unique and kebab-case, each with a
 * severity, a description and a default enforcement level (advisory: the pack, not the policy,
 * decides what blocks an update — see pack.ts). Definitions are plain data plus a validate
 * function; `toPulumiPolicy` turns one into the @pulumi/policy shape with the settings schema.
 */
import type {
  EnforcementLevel,
  Policy,
  ReportViolation,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  Severity,
  StackValidationArgs,
  StackValidationPolicy,
} from "@pulumi/policy";
import { contextFor, type PolicyContext, type ResourceView } from "./lib/resource.ts";
import type { StackResourceView } from "./lib/stack.ts";
import { resolveSettings, settingsSchema, type PackSettings } from "./settings.ts";

interface DefinitionBase {
  /** kebab-case, unique in the pack; also the key of the policy's config. */
  name: string;
  /** One sentence: what the policy proves. Shown by the CLI above every violation. */
  description: string;
  severity: Severity;
  /** Default level when the pack does not override it. Registry policies are advisory. */
  enforcementLevel: EnforcementLevel;
  /** What to do about a violation. */
  remediationSteps: string;
}

/** Reports a violation; the message says what is wrong, on which value, and what is expected. */
export type Report = (message: string) => void;
export type StackReport = (message: string, urn: string) => void;

export interface ResourcePolicyDefinition extends DefinitionBase {
  kind: "resource";
  /** Resource types the policy looks at; others are skipped before `validate` runs. */
  types: readonly string[] | ((type: string) => boolean);
  validate(resource: ResourceView, ctx: PolicyContext, report: Report): void;
}

export interface StackPolicyDefinition extends DefinitionBase {
  kind: "stack";
  validate(resources: readonly StackResourceView[], ctx: PolicyContext, report: StackReport): void;
}

export type PolicyDefinition = ResourcePolicyDefinition | StackPolicyDefinition;
export type PulumiPolicy = ResourceValidationPolicy | StackValidationPolicy;

const NAME_PATTERN = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;

export class PolicyRegistryError extends Error {}

export class PolicyRegistry {
  private readonly byName = new Map<string, PolicyDefinition>();

  add(def: PolicyDefinition): this {
    if (!NAME_PATTERN.test(def.name)) {
      throw new PolicyRegistryError(`policy name "${def.name}" is not kebab-case (e.g. "tenant-tags")`);
    }
    if (def.name === "all") throw new PolicyRegistryError(`policy name "all" is reserved by Pulumi policy config`);
    if (this.byName.has(def.name)) throw new PolicyRegistryError(`duplicate policy name "${def.name}"`);
    if (def.description.trim() === "") throw new PolicyRegistryError(`policy "${def.name}" has no description`);
    this.byName.set(def.name, def);
    return this;
  }

  get(name: string): PolicyDefinition | undefined {
    return this.byName.get(name);
  }

  definitions(): readonly PolicyDefinition[] {
    return [...this.byName.values()];
  }
}

function appliesTo(def: ResourcePolicyDefinition, type: string): boolean {
  return typeof def.types === "function" ? def.types(type) : def.types.includes(type);
}

/** The SDK hands policies `Record<string, any>`; from here on every value is `unknown`. */
function view(r: { type: string; name: string; urn: string; props: Record<string, unknown> }): ResourceView {
  return { type: r.type, name: r.name, urn: r.urn, props: r.props };
}

/**
 * The @pulumi/policy form of a definition. `defaults` are the settings used when the policy's
 * config does not set them; `enforcementLevel` is the level the pack gives it.
 */
export function toPulumiPolicy(def: PolicyDefinition, defaults: PackSettings, enforcementLevel: EnforcementLevel): PulumiPolicy {
  const base: Policy = {
    name: def.name,
    description: def.description,
    enforcementLevel,
    severity: def.severity,
    remediationSteps: def.remediationSteps,
    configSchema: settingsSchema(defaults),
  };
  if (def.kind === "resource") {
    return {
      ...base,
      validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
        if (!appliesTo(def, args.type)) return;
        const settings = resolveSettings(args.getConfig<Record<string, unknown>>(), defaults);
        def.validate(view(args), contextFor(args.urn, settings), (message) => reportViolation(message));
      },
    };
  }
  return {
    ...base,
    validateStack: (args: StackValidationArgs, reportViolation: ReportViolation) => {
      if (args.resources.length === 0) return;
      const settings = resolveSettings(args.getConfig<Record<string, unknown>>(), defaults);
      const resources: StackResourceView[] = args.resources.map((r) => ({
        ...view(r),
        propertyDependencies: Object.fromEntries(
          Object.entries(r.propertyDependencies).map(([k, deps]) => [k, deps.map((d) => d.urn)]),
        ),
      }));
      def.validate(resources, contextFor(resources[0]!.urn, settings), (message, urn) => reportViolation(message, urn));
    },
  };
}
