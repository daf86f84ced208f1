import { TENANT_RECORD_TTL } from "../../infra/model/dnsTargets.ts";
import { controlPlaneHostname, dedicatedZoneName, privateZoneName } from "../../infra/model/naming.ts";
import { domainOf, envOf, isTenantId, str, tenantOf } from "../lib/resource.ts";
import { StackIndex, T } from "../lib/stack.ts";
import type { StackPolicyDefinition } from "../registry.ts";

function fqdn(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

const within = (name: string, zone: string): boolean => name === zone || name.endsWith(`.${zone}`);

export const dnsTenantNames: StackPolicyDefinition = {
  kind: "stack",
  name: "dns-tenant-names",
  description:
    "A tenant's DNS names are <id>.<domain> (pooled) or inside <id>.dedicated.<domain> and <id>.<env>.internal (dedicated), for a tenant of the stack, under the env's domain, a pooled name with a TTL of at most TENANT_RECORD_TTL (an upgrade or a cell move re-points it); a platform stack names only the control plane (api.<domain>) and its certificate validation.",
  severity: "medium",
  enforcementLevel: "advisory",
  remediationSteps: "Name records with pooledHostname / dedicatedZoneName / privateZoneName from infra/model/naming.ts and envDomain(platform, env).",
  validate(resources, ctx, report) {
    const stack = ctx.stack;
    if (!stack) return;
    const index = new StackIndex(resources);
    const domain = domainOf(ctx.settings, stack.env);
    const stackTenants = new Set(
      stack.kind === "dedicated" ? [stack.tenant] : resources.map((r) => tenantOf(r)).filter(isTenantId),
    );

    for (const zone of index.ofType(T.zone)) {
      const tenant = tenantOf(zone);
      const name = str(zone.props.name);
      if (!isTenantId(tenant) || name === undefined) continue;
      const zoneDomain = domainOf(ctx.settings, envOf(zone, ctx) ?? stack.env);
      const allowed = [dedicatedZoneName(tenant, zoneDomain), privateZoneName(tenant, envOf(zone, ctx) ?? stack.env)];
      if (!allowed.includes(fqdn(name))) {
        report(`zone "${name}" of tenant "${tenant}" is neither "${allowed[0]}" nor "${allowed[1]}"`, zone.urn);
      }
    }

    for (const record of index.ofType(T.record)) {
      const raw = str(record.props.name);
      if (raw === undefined) continue;
      const zone = index.resolve(record, "zoneId", [T.zone]);
      const zoneName = zone ? fqdn(str(zone.props.name) ?? "") : undefined;
      // The provider appends the zone name to a relative record name.
      let name = fqdn(raw);
      if (zoneName && !within(name, zoneName)) name = `${name}.${zoneName}`;

      if (name.endsWith(".internal")) {
        if (stack.kind === "dedicated" && !within(name, privateZoneName(stack.tenant, stack.env))) {
          report(`record "${name}" is outside the tenant's private zone "${privateZoneName(stack.tenant, stack.env)}"`, record.urn);
        }
        continue;
      }
      if (!within(name, domain)) {
        report(`record "${name}" is outside the domain "${domain}" of env ${stack.env}`, record.urn);
        continue;
      }
      if (stack.kind === "platform") {
        // The platform names no tenant: only the control plane's host name ("api" is a reserved
        // tenant id) and its certificate's DNS validation records (`_<token>.<host>`, ACM).
        const host = controlPlaneHostname(domain);
        const validation = name.endsWith(`.${host}`) && name.slice(0, -(host.length + 1)).startsWith("_") && !name.slice(0, -(host.length + 1)).includes(".");
        if (name !== host && !validation) {
          report(`record "${name}" in a platform stack is neither the control plane's "${host}" nor a certificate validation record "_<token>.${host}"`, record.urn);
        }
        continue;
      }
      if (stack.kind === "dedicated") {
        const own = dedicatedZoneName(stack.tenant, domain);
        if (!within(name, own)) report(`record "${name}" is outside the zone "${own}" of tenant "${stack.tenant}"`, record.urn);
        continue;
      }
      const label = name === domain ? "" : name.slice(0, -(domain.length + 1));
      if (label === "" || label.includes(".")) {
        report(`record "${name}" is not of the form <tenant>.${domain}`, record.urn);
      } else if (!stackTenants.has(label)) {
        report(`record "${name}" names "${label}", which is not a tenant of this stack`, record.urn);
      } else if (typeof record.props.ttl === "number" && record.props.ttl > TENANT_RECORD_TTL) {
        // Resolvers keep the old answer for the TTL after an upgrade or a move re-points the name
        // (docs/lifecycle.md, "DNS and the TTL"); the low TTL is fixed, never lowered ahead.
        report(
          `record "${name}" has a TTL of ${record.props.ttl} s; a tenant's pooled name keeps at most ${TENANT_RECORD_TTL} s (TENANT_RECORD_TTL, infra/model/dnsTargets.ts): ` +
            "an upgrade or a cell move re-points it, and resolvers keep the old answer for the TTL after the switch",
          record.urn,
        );
      }
    }
  },
};
