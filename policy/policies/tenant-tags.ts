import { MANAGED_BY, SHARED_TENANT, TENANT_ID_PATTERN } from "../../infra/model/naming.ts";
import { tagsOf } from "../lib/resource.ts";
import type { ResourcePolicyDefinition } from "../registry.ts";
import { TAGGABLE_TYPES } from "../taggable-types.ts";

/** docs/stacks.md, "Naming and isolation conventions": the tags every taggable AWS resource carries. */
export const REQUIRED_TAGS = ["tenant", "env", "stack", "managed-by"] as const;

export const tenantTags: ResourcePolicyDefinition = {
  kind: "resource",
  name: "tenant-tags",
  description: "Every taggable AWS resource carries the tenant, env, stack and managed-by tags, with values that match its stack.",
  severity: "medium",
  enforcementLevel: "advisory",
  remediationSteps:
    "Set `tags: tags(tenant, env, stack)` from infra/model/naming.ts on the resource itself; provider default tags are not visible to policies.",
  types: (type) => TAGGABLE_TYPES.has(type),
  validate(resource, ctx, report) {
    const tags = tagsOf(resource.props);
    const missing = REQUIRED_TAGS.filter((k) => (tags[k] ?? "") === "");
    if (missing.length > 0) {
      report(`missing tag(s) ${missing.join(", ")}; every taggable resource carries ${REQUIRED_TAGS.join(", ")}`);
    }
    const managedBy = tags["managed-by"];
    if (managedBy !== undefined && managedBy !== "" && managedBy !== MANAGED_BY) {
      report(`tag managed-by is "${managedBy}", expected "${MANAGED_BY}"`);
    }
    if (tags.stack && ctx.stackName && tags.stack !== ctx.stackName) {
      report(`tag stack is "${tags.stack}" but the resource is in stack "${ctx.stackName}"`);
    }
    if (tags.env) {
      if (ctx.stack && tags.env !== ctx.stack.env) {
        report(`tag env is "${tags.env}" but stack "${ctx.stackName}" is env "${ctx.stack.env}"`);
      } else if (!ctx.settings.environments.includes(tags.env)) {
        report(`tag env "${tags.env}" is not one of the platform environments: ${ctx.settings.environments.join(", ")}`);
      }
    }
    if (tags.tenant && tags.tenant !== SHARED_TENANT && !TENANT_ID_PATTERN.test(tags.tenant)) {
      report(`tag tenant "${tags.tenant}" is neither a tenant id (a DNS label) nor "${SHARED_TENANT}"`);
    }
  },
};
