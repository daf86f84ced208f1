/**
 * The network inventory of a fleet for the reachability analysis (plan/network): every VPC,
 * subnet, route table, gateway, Transit Gateway object, peering, security group, network ACL,
 * database and runner of all rendered stacks, read from the `plan --json` shape (plan/types.ts)
 * and joined by the ids the resources carry (the mock runtime's offline, the provider's in a
 * `pulumi stack export`). Pure: no Pulumi, no AWS SDK.
 *
 * Joining: a reference (`vpcId`, `transitGatewayRouteTableId`, ...) is looked up first among the
 * resources of the same stack, then among all stacks; a reference that names resources of several
 * other stacks is an error (the join would be a guess), one that names nothing is kept unresolved
 * and the analysis says so where it matters (a customer's VPC is not ours to know).
 *
 * This file reads VPCs and subnets (what every other join goes through) and assembles the rest:
 * the model is in model.ts, routing in readRouting.ts, security groups and network ACLs in
 * readSecurity.ts, databases and runners in readWorkloads.ts.
 */
import type { RenderedStack } from "../types.ts";
import type { DeclaredPeer, Inventory, InventoryProblem, RouteTable, Subnet, Vpc } from "./model.ts";
import { T } from "./model.ts";
import { block, Ids, origin, regionOf, str, val, idOf, type Reading, type Res } from "./readers.ts";
import { readRouting } from "./readRouting.ts";
import { readSecurity } from "./readSecurity.ts";
import { readWorkloads } from "./readWorkloads.ts";

// The model and the runner test live in their own files; callers keep importing them from here.
export * from "./model.ts";
export { isRunner } from "./readWorkloads.ts";

/** Reads the network of all stacks. */
export function buildInventory(stacks: readonly RenderedStack[], declaredPeers: readonly DeclaredPeer[] = []): Inventory {
  const declared = new Map(declaredPeers.map((d) => [`${d.stack}\u0000${d.vpcId}`, d.cidr]));
  const problems: InventoryProblem[] = [];
  const byType = new Map<string, Res[]>();
  const stackKinds = new Map<string, string>();
  for (const s of stacks) {
    stackKinds.set(s.name, s.kind);
    for (const r of s.resources) {
      if (!r.custom) continue;
      const list = byType.get(r.type) ?? [];
      list.push({ ...r, stack: s.name });
      byType.set(r.type, list);
    }
  }
  const of = (t: string) => byType.get(t) ?? [];
  const problem = (r: Res, message: string) => problems.push({ stack: r.stack, urn: r.urn, message: `${r.type.split(":").pop()} ${r.name}: ${message}` });
  const ambiguous = (r: Res, what: string, id: string) => (stacks: string[]) =>
    problem(r, `${what} ${id} names resources of several stacks (${stacks.join(", ")}); the join would be a guess`);
  const withId = (r: Res): string | undefined => {
    const id = idOf(r);
    if (!id) problem(r, "has no id (a plan JSON from before ids were recorded? re-run tenantctl plan --json)");
    return id;
  };

  // VPCs, their main route tables and subnets.
  const vpcs = new Ids<Vpc>();
  const tables = new Ids<RouteTable>();
  const vpcList: Vpc[] = [];
  for (const r of of(T.vpc)) {
    const id = withId(r);
    const cidr = block(str(r, "cidrBlock"));
    if (!id) continue;
    if (!cidr) {
      problem(r, `cidrBlock ${JSON.stringify(val(r, "cidrBlock"))} is not known at plan time`);
      continue;
    }
    const mainId = str(r, "mainRouteTableId") ?? `${id}#main`;
    const vpc = {
      ...origin(r), cidrs: [cidr], region: regionOf(r) ?? "unknown", kind: stackKinds.get(r.stack) ?? "unknown",
      subnets: [], defaultSecurityGroupId: str(r, "defaultSecurityGroupId"),
    } as unknown as Vpc;
    // The main route table AWS creates with the VPC: the local route only, unless a
    // DefaultRouteTable or MainRouteTableAssociation below says otherwise.
    vpc.mainRouteTable = { stack: r.stack, urn: r.urn, name: `${r.name} main route table`, id: mainId, vpc, routes: [] };
    tables.add(r.stack, mainId, vpc.mainRouteTable);
    vpcs.add(r.stack, id, vpc);
    vpcList.push(vpc);
  }
  for (const r of of(T.vpcCidr)) {
    const vpc = vpcs.get(r.stack, str(r, "vpcId"), ambiguous(r, "vpcId", str(r, "vpcId") ?? ""));
    const b = block(str(r, "cidrBlock"));
    if (vpc && b) vpc.cidrs.push(b);
  }
  const vpcOf = (r: Res, key = "vpcId"): Vpc | undefined => {
    const id = str(r, key);
    const v = vpcs.get(r.stack, id, ambiguous(r, key, id ?? ""));
    if (!v) problem(r, `${key} ${id ?? "(unknown)"} is no VPC of any stack`);
    return v;
  };
  const subnets = new Ids<Subnet>();
  const subnetList: Subnet[] = [];
  for (const r of of(T.subnet)) {
    const id = withId(r);
    const vpc = vpcOf(r);
    const b = block(str(r, "cidrBlock"));
    if (!id || !vpc) continue;
    if (!b) {
      problem(r, `cidrBlock ${JSON.stringify(val(r, "cidrBlock"))} is not known at plan time`);
      continue;
    }
    const s: Subnet = { ...origin(r), vpc, block: b, az: str(r, "availabilityZone") ?? "unknown" };
    vpc.subnets.push(s);
    subnets.add(r.stack, id, s);
    subnetList.push(s);
  }
  const subnetOf = (r: Res, id: string | undefined, key: string): Subnet | undefined => {
    const s = subnets.get(r.stack, id, ambiguous(r, key, id ?? ""));
    if (!s) problem(r, `${key} ${id ?? "(unknown)"} is no subnet of any stack`);
    return s;
  };
  const ctx: Reading = { of, problem, ambiguous, withId, vpcOf, subnetOf, stackKinds };
  const routing = readRouting(ctx, vpcs, tables, vpcList, declared);
  const security = readSecurity(ctx);
  const workloads = readWorkloads(ctx, security.sgOf);

  return {
    vpcs: vpcList, subnets: subnetList, tgws: routing.tgws, attachments: routing.attachments, tgwTables: routing.tgwTables, peerings: routing.peerings,
    securityGroups: security.securityGroups, databases: workloads.databases, providers: workloads.providers, runners: workloads.runners,
    services: workloads.services, loadBalancerGroups: workloads.loadBalancerGroups, associations: routing.associations, problems, stackKinds,
  };
}
