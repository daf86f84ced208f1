/**
 * Where a tenant's pooled DNS name (`<id>.<env domain>`) points. Pure; used by the cell stack.
 */
import { dedicatedZoneName } from "./naming.ts";
import { envDomain, type Platform } from "./platform.ts";
import type { Tenant } from "./schema.ts";

/**
 * - suspended: the suspension page (data kept, docs/lifecycle.md);
 * - migrating to a dedicated stack, from cutover on: the tenant's dedicated zone, so links to the
 *   old name keep working after the move;
 * - otherwise: the cell's ingress.
 */
export function pooledDnsTarget(
  platform: Pick<Platform, "domain" | "suspensionTarget">,
  t: Tenant,
  env: string,
  ingressHostname: string,
): string {
  if (t.lifecycle === "suspended") return platform.suspensionTarget;
  if (t.deployment === "dedicated") {
    const phase = t.migration?.phase;
    if (phase === "cutover" || phase === "cleanup") return dedicatedZoneName(t.id, envDomain(platform, env));
  }
  return ingressHostname;
}

/** TTL of tenant CNAMEs: short, so suspension, resumption and cutover take effect within minutes. */
export const TENANT_RECORD_TTL = 60;
/** TTL of the NS delegation of a dedicated zone: its name servers never change while the zone lives. */
export const DELEGATION_TTL = 172_800;
