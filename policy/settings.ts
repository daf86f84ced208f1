/**
 * Platform settings the policies need. They come from policy config (`--policy-pack-config`),
 * per policy as CrossGuard config is, with defaults equal to Pulumi.yaml's platform object
 * (test/policy/settings.test.ts keeps the two in step). In-process (analyze.ts) the defaults
 * apply unless the caller passes other ones.
 */
import type { PolicyConfigSchema } from "@pulumi/policy";
import { APP_NAME_PATTERN } from "../infra/model/naming.ts";

export interface PackSettings {
  /** App name: first segment of secret names, KMS aliases, role and bucket names. */
  appName: string;
  /** Platform DNS domain; non-prod envs serve under `<env>.<domain>`. */
  domain: string;
  /** Environments a stack name may carry (`shared-<env>-<cell>`, `dedicated-<tenant>-<env>`). */
  environments: string[];
  /** The AWS account the stacks deploy to: IAM policies may only name ARNs in it. */
  awsAccountId: string;
}

/** Pulumi.yaml `config.saas-tenancy:platform` as shipped; change both together. */
export const DEFAULT_SETTINGS: Readonly<PackSettings> = Object.freeze({
  appName: "tenancy",
  domain: "tenancy.example.com",
  environments: ["prod", "staging", "dev"],
  awsAccountId: "111111111111",
});

/** JSON schema of the settings, with the defaults filled in, for every policy's configSchema. */
export function settingsSchema(defaults: PackSettings): PolicyConfigSchema {
  return {
    properties: {
      appName: { type: "string", pattern: APP_NAME_PATTERN.source, default: defaults.appName },
      domain: { type: "string", pattern: "^(?:[a-z0-9-]+\\.)+[a-z]{2,}$", default: defaults.domain },
      environments: {
        type: "array",
        items: { type: "string", pattern: "^[a-z]{2,7}$" },
        minItems: 1,
        default: defaults.environments,
      },
      awsAccountId: { type: "string", pattern: "^\\d{12}$", default: defaults.awsAccountId },
    },
  };
}

/**
 * Settings for one evaluation: the policy's config over the defaults. The CLI validates config
 * against the schema before the pack sees it; values of the wrong type are ignored here rather
 * than trusted, so an in-process caller cannot smuggle in a non-string.
 */
export function resolveSettings(config: Record<string, unknown>, defaults: PackSettings): PackSettings {
  const str = (k: "appName" | "domain" | "awsAccountId"): string =>
    typeof config[k] === "string" && config[k] !== "" ? config[k] : defaults[k];
  const envs = config.environments;
  const environments =
    Array.isArray(envs) && envs.length > 0 && envs.every((e) => typeof e === "string") ? envs : defaults.environments;
  return { appName: str("appName"), domain: str("domain"), environments, awsAccountId: str("awsAccountId") };
}

export function withDefaults(overrides: Partial<PackSettings> = {}): PackSettings {
  return { ...DEFAULT_SETTINGS, environments: [...DEFAULT_SETTINGS.environments], ...overrides };
}
