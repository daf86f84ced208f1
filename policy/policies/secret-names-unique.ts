import { str } from "../lib/resource.ts";
import { T } from "../lib/stack.ts";
import type { StackPolicyDefinition } from "../registry.ts";

/**
 * Secrets Manager names are unique per account and region: two Secret resources of one stack
 * with the same name make the whole update fail on ResourceExistsException (the second create),
 * or, after a rename, two resources fight over one secret. Reported on every secret after the
 * first that takes a name, naming the first.
 */
export const secretNamesUnique: StackPolicyDefinition = {
  kind: "stack",
  name: "secret-names-unique",
  description: "No two Secrets Manager secrets of a stack share a name (the second create fails with ResourceExistsException).",
  severity: "high",
  enforcementLevel: "advisory",
  remediationSteps:
    "Rename one of the secrets; a tenant secret must not use a name the program keeps for itself (database, config: RESERVED_SECRET_NAMES in infra/model/naming.ts).",
  validate(resources, _ctx, report) {
    const first = new Map<string, string>();
    for (const r of resources) {
      if (r.type !== T.secret) continue;
      const name = str(r.props.name);
      if (name === undefined) continue;
      const prior = first.get(name);
      if (prior === undefined) first.set(name, r.urn);
      else report(`secret name "${name}" is also the name of ${prior}; Secrets Manager names are unique per account and region`, r.urn);
    }
  },
};
