/**
 * The workload part of the network inventory (inventory.ts): RDS instances with their subnet
 * groups, the postgresql providers that connect to them, the regional runners and the other ECS
 * services of platform stacks, and the security groups load balancers carry. Pure.
 */
import type { RenderedResource } from "../types.ts";
import type { Database, PgProvider, PlatformService, Runner, SecurityGroup, Subnet } from "./model.ts";
import { T } from "./model.ts";
import { idOf, Ids, num, origin, regionOf, str, strs, val, type Reading, type Res } from "./readers.ts";

export interface Workloads {
  databases: Database[];
  providers: PgProvider[];
  runners: Runner[];
  services: PlatformService[];
  loadBalancerGroups: Set<string>;
}

/** Reads databases, providers, runners and platform services; `sgOf` resolves their security groups. */
export function readWorkloads(ctx: Reading, sgOf: (r: Res, id: string | undefined) => SecurityGroup | undefined): Workloads {
  const { of, problem, ambiguous, subnetOf, stackKinds } = ctx;
  // Databases, the providers that connect to them, runners.
  const subnetGroups = new Ids<Subnet[]>();
  for (const r of of(T.rdsSubnetGroup)) {
    const name = str(r, "name") ?? idOf(r);
    if (name) subnetGroups.add(r.stack, name, strs(val(r, "subnetIds")).map((s) => subnetOf(r, s, "subnetIds")).filter((s): s is Subnet => s !== undefined));
  }
  const databases: Database[] = [];
  for (const r of of(T.rds)) {
    const groupName = str(r, "dbSubnetGroupName");
    const dbSubnets = subnetGroups.get(r.stack, groupName, ambiguous(r, "dbSubnetGroupName", groupName ?? ""));
    const address = str(r, "address");
    if (!dbSubnets) {
      // No subnet group: RDS places the instance in the default VPC, which is none of ours.
      problem(r, `dbSubnetGroupName ${groupName ?? "(none)"} is no subnet group of any stack`);
      continue;
    }
    if (!address) {
      problem(r, "has no address (endpoint not known)");
      continue;
    }
    databases.push({
      ...origin(r),
      identifier: str(r, "identifier") ?? r.name,
      address,
      port: num(val(r, "port")) ?? 5432,
      subnets: dbSubnets,
      securityGroups: strs(val(r, "vpcSecurityGroupIds")).map((id) => sgOf(r, id)).filter((g): g is SecurityGroup => g !== undefined),
      ...(dbSubnets[0] ? { vpc: dbSubnets[0].vpc } : {}),
      region: regionOf(r) ?? dbSubnets[0]?.vpc.region ?? "unknown",
    });
  }
  const byAddress = new Map(databases.map((d) => [d.address, d]));
  const providers: PgProvider[] = [];
  for (const r of of(T.pgProvider)) {
    const host = str(r, "host");
    if (!host) {
      problem(r, "host is not known at plan time");
      continue;
    }
    const db = byAddress.get(host);
    providers.push({ ...origin(r), host, port: num(val(r, "port")) ?? 5432, region: db?.region ?? "unknown" });
  }
  const runners: Runner[] = [];
  const services: PlatformService[] = [];
  for (const r of of(T.ecsService)) {
    if (!isRunner(r, stackKinds)) {
      if (stackKinds.get(r.stack) === "platform" || r.stack.startsWith("platform-")) {
        const net = (val(r, "networkConfiguration") ?? {}) as Record<string, unknown>;
        services.push({
          ...origin(r),
          securityGroups: strs(net.securityGroups).map((id) => sgOf(r, id)).filter((g): g is SecurityGroup => g !== undefined),
          assignPublicIp: net.assignPublicIp === true,
        });
      }
      continue;
    }
    const net = (val(r, "networkConfiguration") ?? {}) as Record<string, unknown>;
    const rs = strs(net.subnets).map((s) => subnetOf(r, s, "networkConfiguration.subnets")).filter((s): s is Subnet => s !== undefined);
    runners.push({
      ...origin(r),
      region: rs[0]?.vpc.region ?? regionOf(r) ?? "unknown",
      subnets: rs,
      securityGroups: strs(net.securityGroups).map((id) => sgOf(r, id)).filter((g): g is SecurityGroup => g !== undefined),
    });
  }

  const loadBalancerGroups = new Set(of(T.loadBalancer).flatMap((r) => strs(val(r, "securityGroups")).map((id) => sgOf(r, id)?.id).filter((id): id is string => id !== undefined)));

  return { databases, providers, runners, services, loadBalancerGroups };
}

/**
 * The regional runner: the ECS service of a `platform-<region>` stack that runs `pulumi up`
 * (docs/network.md). It is recognised by its `role: runner` tag, or, without one, by its logical
 * name (infra/components/runner.ts names it `runner-<region code>`).
 */
export function isRunner(r: RenderedResource & { stack: string }, kinds: ReadonlyMap<string, string>): boolean {
  if (kinds.get(r.stack) !== "platform" && !r.stack.startsWith("platform-")) return false;
  const tags = (val(r, "tags") ?? {}) as Record<string, unknown>;
  if (typeof tags.role === "string") return tags.role === "runner";
  return /(^|-)runner(-|$)/.test(r.name);
}
