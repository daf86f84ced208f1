import { dedicatedZoneName, SHARED_TENANT } from "../../infra/model/naming.ts";
import { ROUTING_KEYS } from "../../infra/model/routingDocument.ts";
import { domainOf, isRecord, str, tenantOf } from "../lib/resource.ts";
import { documentParameters, documentValue, renderedTenants, rendersTenant, stackRegion, unknownKeys } from "../lib/ssmDocuments.ts";
import type { StackPolicyDefinition } from "../registry.ts";
import { tenantReferences } from "./dedicated-stack-single-tenant.ts";

/**
 * The routing document of an env and region (docs/runtime-config.md) is the union of every
 * stack's share under `/<app>/<env>/routing/<region>/`: a router reads the path and sends each
 * tenant's requests where the shares say. A share naming another env or region would route
 * that env's tenants from here; a cell routing a tenant it does not serve would send the
 * tenant's requests (and data) to another tenant's cell. So each share names only its own env,
 * region and stack, a cell's `routes` list exactly the tenants whose runtime config it publishes
 * (it serves them), its `forwards` only tenants it renders but no longer serves, and a dedicated
 * stack's share routes only its tenant, to its zone.
 */
export const routingOwnEnvRegion: StackPolicyDefinition = {
  kind: "stack",
  name: "routing-own-env-region",
  description:
    "Each routing share (/<app>/<env>/routing/<region>/...) lies in the stack's env and region, names its own stack, and routes only tenants placed there: a cell the tenants it serves, a dedicated stack its tenant to its zone.",
  severity: "critical",
  enforcementLevel: "advisory",
  remediationSteps:
    "Publish shares with RoutingShare (infra/components/routingShare.ts) from cellRoutingParameters / dedicatedRoutingParameter (infra/model/routingDocument.ts); a tenant is routed by the stack that publishes its runtime config.",
  validate(resources, ctx, report) {
    const app = ctx.settings.appName;
    const stack = ctx.stack;
    const region = stackRegion(resources);
    const rendered = renderedTenants(resources);
    const params = documentParameters(resources, app);
    /** Tenants whose runtime config this stack publishes: the tenants it serves. */
    const served = new Set(params.flatMap((p) => (p.doc.kind === "config" ? [p.doc.tenant] : [])));
    /** Tenant -> URNs of the shares of this stack routing it. */
    const routedBy = new Map<string, string[]>();
    let firstShare: string | undefined;

    for (const { doc, name, resource: r } of params) {
      if (doc.kind === "config" || doc.kind === "tenant-other") continue;
      firstShare ??= r.urn;
      if (doc.kind === "routing-other") {
        report(`parameter "${name}" under the routing path is neither a cell page (.../routing/<region>/cells/<cell>/<nn>) nor a dedicated share (.../routing/<region>/dedicated/<tenant>)`, r.urn);
        continue;
      }
      if (stack === undefined) continue;
      if (stack.kind === "platform") {
        report(`routing share "${name}" in platform stack ${ctx.stackName}; only cell and dedicated stacks write shares`, r.urn);
        continue;
      }
      if (doc.env !== stack.env) report(`routing share "${name}" is for env ${doc.env}, stack ${ctx.stackName} is in env ${stack.env}`, r.urn);
      if (region !== undefined && doc.region !== region) report(`routing share "${name}" is for region ${doc.region}, stack ${ctx.stackName} is in ${region}`, r.urn);
      const cellShare = doc.kind === "routing-cell";
      if (cellShare && (stack.kind !== "shared" || stack.cell !== doc.cell)) {
        report(`routing share "${name}" is cell ${doc.cell}'s, written by ${ctx.stackName}; a share is written only by its own stack`, r.urn);
      }
      if (!cellShare && (stack.kind !== "dedicated" || stack.tenant !== doc.tenant)) {
        report(`routing share "${name}" is tenant "${doc.tenant}"'s, written by ${ctx.stackName}; a share is written only by its own stack`, r.urn);
      }
      const owner = cellShare ? SHARED_TENANT : doc.tenant;
      const tag = tenantOf(r);
      if (tag !== owner) report(`routing share "${name}" is tagged tenant ${tag === undefined ? "(none)" : `"${tag}"`}, expected "${owner}"`, r.urn);

      const parsed = documentValue(r);
      if ("error" in parsed) {
        report(`routing share "${name}" ${parsed.error}`, r.urn);
        continue;
      }
      const share = parsed.value;
      const extra = unknownKeys(share, ROUTING_KEYS);
      if (extra.length > 0) report(`routing share "${name}" has key${extra.length > 1 ? "s" : ""} ${extra.map((k) => `"${k}"`).join(", ")} a share does not define (ROUTING_KEYS in infra/model/routingDocument.ts)`, r.urn);
      for (const [field, actual, want] of [
        ["env", share.env, doc.env],
        ["region", share.region, doc.region],
        ["source", share.source, ctx.stackName],
        ["kind", share.kind, cellShare ? "cell" : "dedicated"],
      ] as const) {
        if (actual !== want) report(`routing share "${name}": ${field} is ${JSON.stringify(actual) ?? "missing"}, expected ${JSON.stringify(want)}`, r.urn);
      }
      const routes = isRecord(share.routes) ? share.routes : {};
      const forwards = isRecord(share.forwards) ? share.forwards : {};
      const domain = domainOf(ctx.settings, doc.env);

      for (const [kind, map] of [["routes", routes], ["forwards", forwards]] as const) {
        for (const [id, endpoint] of Object.entries(map)) {
          if (kind === "routes") routedBy.set(id, [...(routedBy.get(id) ?? []), r.urn]);
          const host = str(endpoint);
          const foreign = host === undefined ? [] : tenantReferences(host, ctx.settings).filter((ref) => ref.what === "DNS zone" && ref.tenant !== id);
          if (host === undefined) report(`routing share "${name}": ${kind}.${id} is ${JSON.stringify(endpoint)}, not a host name`, r.urn);
          for (const ref of foreign) report(`routing share "${name}": ${kind}.${id} is "${host}", the zone of tenant "${ref.tenant}"`, r.urn);
        }
      }

      if (!cellShare) {
        const want = { [doc.tenant]: dedicatedZoneName(doc.tenant, domain) };
        const got = Object.entries(routes);
        if (got.length !== 1 || routes[doc.tenant] !== want[doc.tenant]) {
          report(`routing share "${name}": routes is ${JSON.stringify(routes)}, expected ${JSON.stringify(want)} (a dedicated stack routes only its tenant, to its zone)`, r.urn);
        }
        if (Object.keys(forwards).length > 0) report(`routing share "${name}": a dedicated share forwards nothing, found ${Object.keys(forwards).map((k) => `"${k}"`).join(", ")}`, r.urn);
        continue;
      }
      for (const id of Object.keys(routes)) {
        if (!served.has(id)) report(`routing share "${name}" routes tenant "${id}", whose runtime config this stack does not publish: a cell routes only the tenants it serves`, r.urn);
      }
      for (const id of Object.keys(forwards)) {
        if (served.has(id)) report(`routing share "${name}" forwards tenant "${id}", which this stack serves: it belongs in routes`, r.urn);
        else if (!rendersTenant(rendered, id)) report(`routing share "${name}" forwards tenant "${id}", which this stack does not hold`, r.urn);
      }
    }

    // Every tenant the stack serves is routed by exactly one of its shares.
    if (stack === undefined || stack.kind === "platform") return;
    for (const p of params) {
      if (p.doc.kind !== "config") continue;
      const id = p.doc.tenant;
      const by = routedBy.get(id) ?? [];
      if (by.length === 0) report(`tenant "${id}" is served by this stack (its runtime config is here) but no routing share of the stack routes it`, firstShare ?? p.resource.urn);
      else if (by.length > 1) report(`tenant "${id}" is routed by ${by.length} shares of this stack: ${by.join(", ")}`, by[1]!);
    }
  },
};
