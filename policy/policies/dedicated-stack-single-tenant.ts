import { pgTenantIdent } from "../../infra/model/naming.ts";
import { escapeRegExp, stringLeaves, tenantOf } from "../lib/resource.ts";
import type { PackSettings } from "../settings.ts";
import type { StackPolicyDefinition } from "../registry.ts";

/** A tenant id inside a longer string: a DNS label not followed by another label character. */
const ID = "([a-z](?:[a-z0-9-]*[a-z0-9])?)(?![a-z0-9-])";
const ENV = "[a-z]{2,7}";

export interface TenantReference {
  /** What the string names: "secret namespace", "KMS alias", "DNS zone", "IAM role" or "schema". */
  what: string;
  tenant: string;
  text: string;
}

/**
 * Tenant-specific names (naming.ts conventions, any env) found in a string. Postgres identifiers
 * come back as the identifier (`tenant_acme_corp`); compare them with `pgTenantIdent`.
 */
export function tenantReferences(value: string, settings: PackSettings): TenantReference[] {
  const app = escapeRegExp(settings.appName);
  const domain = escapeRegExp(settings.domain);
  const out: TenantReference[] = [];
  for (const m of value.matchAll(new RegExp(`(alias/)?${app}/${ENV}/tenants/${ID}`, "g"))) {
    out.push({ what: m[1] ? "KMS alias" : "secret namespace", tenant: m[2]!, text: m[0] });
  }
  for (const m of value.matchAll(new RegExp(`(?<![a-z0-9-])${ID}\\.dedicated\\.(?:${ENV}\\.)?${domain}`, "g"))) {
    out.push({ what: "DNS zone", tenant: m[1]!, text: m[0] });
  }
  for (const m of value.matchAll(new RegExp(`(?<![a-z0-9-])${app}-${ENV}-t-${ID}`, "g"))) {
    out.push({ what: "IAM role", tenant: m[1]!, text: m[0] });
  }
  for (const m of value.matchAll(/(?<![A-Za-z0-9_])tenant_[a-z0-9_]+(?![A-Za-z0-9_])/g)) {
    out.push({ what: "schema", tenant: m[0], text: m[0] });
  }
  return out;
}

export const dedicatedStackSingleTenant: StackPolicyDefinition = {
  kind: "stack",
  name: "dedicated-stack-single-tenant",
  description:
    "A dedicated-<tenant>-<env> stack holds one tenant: every tenant tag is that tenant and no resource names another tenant's secret namespace, KMS alias, DNS zone, IAM role or schema.",
  severity: "critical",
  enforcementLevel: "advisory",
  remediationSteps:
    "Move the other tenant's resource to that tenant's own stack; derive every name from the stack's tenant with infra/model/naming.ts.",
  validate(resources, ctx, report) {
    if (ctx.stack?.kind !== "dedicated") return;
    const tenant = ctx.stack.tenant;
    const ownIdent = pgTenantIdent(tenant);
    for (const r of resources) {
      const tag = tenantOf(r);
      if (tag !== undefined && tag !== tenant) {
        report(`tagged tenant "${tag}" in the dedicated stack of tenant "${tenant}"`, r.urn);
      }
      const seen = new Set<string>();
      for (const { path, value } of stringLeaves(r.props)) {
        if (path === "tags.tenant") continue; // reported above
        for (const ref of tenantReferences(value, ctx.settings)) {
          const foreign = ref.what === "schema" ? ref.tenant !== ownIdent : ref.tenant !== tenant;
          const key = `${path}|${ref.text}`;
          if (!foreign || seen.has(key)) continue;
          seen.add(key);
          const whose = ref.what === "schema" ? `Postgres identifier "${ref.text}"` : `the ${ref.what} "${ref.text}" of tenant "${ref.tenant}"`;
          report(`input ${path} names ${whose}; the dedicated stack of tenant "${tenant}" holds only its own`, r.urn);
        }
      }
    }
  },
};
