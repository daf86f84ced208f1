/**
 * What the tenant files declare that the rendered resources cannot say, for the network check
 * (plan/network): the CIDR of each customer VPC a dedicated stack peers with
 * (`dedicated.<env>.customerVpc`, docs/tenant-files.md). A VPC peering names the peer VPC's id,
 * never its CIDR, so a route into the peering can be judged only against the file.
 */
import type { Fleet } from "../../infra/model/fleet.ts";
import { dedicatedStackName } from "../../infra/model/naming.ts";
import type { DeclaredPeer } from "./inventory.ts";

function customerVpc(v: unknown): { vpcId: string; cidr: string } | undefined {
  if (!v || typeof v !== "object") return undefined;
  const c = (v as { customerVpc?: unknown }).customerVpc;
  if (!c || typeof c !== "object") return undefined;
  const { vpcId, cidr } = c as { vpcId?: unknown; cidr?: unknown };
  return typeof vpcId === "string" && typeof cidr === "string" ? { vpcId, cidr } : undefined;
}

export function declaredPeersOf(fleet: Pick<Fleet, "tenants">): DeclaredPeer[] {
  const out: DeclaredPeer[] = [];
  for (const { tenant } of fleet.tenants.values()) {
    if (tenant.deployment !== "dedicated") continue;
    for (const [env, net] of Object.entries(tenant.dedicated as Record<string, unknown>)) {
      const c = customerVpc(net);
      if (c) out.push({ stack: dedicatedStackName(tenant.id, env), ...c });
    }
  }
  return out;
}
