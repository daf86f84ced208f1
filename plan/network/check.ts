/**
 * The fleet's network properties, checked offline over the rendered resources of all stacks
 * (docs/network.md): (a) the runner of each region reaches, on its port, every database a
 * `postgresql` provider of that region connects to, and every runner reaches the control plane's
 * database; (b) no tenant VPC (cell or dedicated) reaches another, in either direction, on any
 * port; (c) no VPC of ours but the owner reaches a customer's peered VPC; (d) the platform's
 * other services (the control plane) admit their load balancer's security group alone and have no
 * public address; (e) interface VPC endpoints are usable from their VPC's workload subnets
 * (private DNS, security groups and ACLs admitting 443). Each failure is one
 * line: `<stack>: <source> -> <destination>:<port>: <the first hop with no way on, or the hop
 * that lets it through>`. Pure: `tenantctl plan --all` and `tenantctl network check` call it.
 */
import { regionCode } from "../../infra/model/naming.ts";
import type { PlannedStack, RenderedStack, Violation } from "../types.ts";
import { checkEndpoints } from "./endpoints.ts";
import { EPHEMERAL_PORTS, naclAdmits, sgAdmits, sgOpenTo } from "./filters.ts";
import { buildInventory, type Database, type DeclaredPeer, type Inventory, type Runner, type Subnet, type Vpc } from "./inventory.ts";
import { ALL, BlockIndex, contains, formatRange, type Range } from "./ranges.ts";
import { Network, trace, traceFromTgw, vpcLabel, type Outcome } from "./trace.ts";

export type NetworkCheckKind = "reachability" | "isolation" | "customer-peering" | "endpoints" | "inventory";

export interface NetworkFinding {
  check: NetworkCheckKind;
  /** The stack the line is about (the database's, the source tenant's, the resource's). */
  stack: string;
  source: string;
  destination: string;
  /** A port, or `any`. */
  port: string;
  /** The first hop with no way on (reachability) or the hop that lets traffic through (isolation). */
  hop: string;
  /** The resource the finding points at. */
  urn: string;
}

/** A proven runner-to-database path, every hop named (tenantctl network check --verbose). */
export interface ProvenPath {
  stack: string;
  source: string;
  destination: string;
  port: number;
  hops: string[];
}

export interface NetworkReport {
  findings: NetworkFinding[];
  proven: ProvenPath[];
  counts: { vpcs: number; databases: number; providers: number; runners: number; tenantVpcs: number; traces: number };
}

/** The policy name findings carry in `plan --json` (as violations: mandatory, like the pack's). */
export const NETWORK_POLICY = "network-reachability";

export function formatFinding(f: NetworkFinding): string {
  if (f.check === "inventory") return `${f.stack}: cannot join: ${f.hop}`;
  return `${f.stack}: ${f.source} -> ${f.destination}:${f.port}: ${f.hop}`;
}

export function checkNetwork(stacks: readonly RenderedStack[], declaredPeers: readonly DeclaredPeer[] = []): NetworkReport {
  const inv = buildInventory(stacks, declaredPeers);
  const net = new Network(inv);
  const findings: NetworkFinding[] = inv.problems.map((p) => ({ check: "inventory", stack: p.stack, source: "inventory", destination: "resource", port: "any", hop: p.message, urn: p.urn }));
  const proven: ProvenPath[] = [];
  let traces = 0;
  const counted = (n: Network, s: Subnet, src: Range, dst: Range, opts: Parameters<typeof trace>[4]): Outcome[] => {
    traces++;
    return trace(n, s, src, dst, opts);
  };

  // (a) runners -> databases.
  // A runner is named by the region it serves: its platform stack's.
  const runnerName = (r: Runner) => `runner ${regionCode(r.stack.replace(/^platform-/, ""))}`;
  const checked = new Set<string>();
  // A runner serves the region of its platform stack; one whose subnets are elsewhere would carry
  // that region's data out of it.
  const misplaced = (r: Runner): string | undefined => {
    const serves = r.stack.replace(/^platform-/, "");
    return r.region === serves ? undefined : `the runner of platform-${serves} runs in ${r.region} (${r.name}: its subnets are in a VPC of ${r.region}); ${serves} data must be handled in ${serves}`;
  };
  const reach = (stack: string, runner: Runner, db: Database, urn: string) => {
    const key = `${runner.stack}|${runner.id}|${db.stack}|${db.id}`;
    if (checked.has(key)) return;
    checked.add(key);
    const line = (hop: string) => findings.push({ check: "reachability", stack, source: runnerName(runner), destination: `db ${db.identifier}`, port: String(db.port), hop, urn });
    const failure = reachOne(net, runner, db, (n) => (traces += n));
    if (typeof failure === "string") line(failure);
    else proven.push({ stack, source: runnerName(runner), destination: `db ${db.identifier}`, port: db.port, hops: failure });
  };
  const byAddress = new Map(inv.databases.map((d) => [d.address, d]));
  for (const p of inv.providers) {
    const db = byAddress.get(p.host);
    if (!db) {
      findings.push({ check: "reachability", stack: p.stack, source: `provider ${p.name}`, destination: p.host, port: String(p.port), hop: "no RDS instance of any stack has this address", urn: p.urn });
      continue;
    }
    if (p.port !== db.port) {
      findings.push({ check: "reachability", stack: p.stack, source: `provider ${p.name}`, destination: `db ${db.identifier}`, port: String(p.port), hop: `the instance listens on ${db.port}`, urn: p.urn });
      continue;
    }
    const region = db.region;
    const runners = inv.runners.filter((r) => r.stack === `platform-${region}`);
    if (runners.length === 0) {
      findings.push({ check: "reachability", stack: p.stack, source: `runner ${regionCode(region)}`, destination: `db ${db.identifier}`, port: String(db.port), hop: `no runner in ${region}: stack platform-${region} has no runner service (tenant data never leaves its region)`, urn: p.urn });
      continue;
    }
    for (const runner of runners) {
      if (misplaced(runner)) findings.push({ check: "reachability", stack: p.stack, source: runnerName(runner), destination: `db ${db.identifier}`, port: String(db.port), hop: misplaced(runner)!, urn: runner.urn });
      else reach(p.stack, runner, db, p.urn);
    }
  }
  // Every runner reaches the control plane's database (a database of a platform stack): the
  // workers of every region use its queue, through the hubs' Transit Gateway peering.
  for (const db of inv.databases.filter((d) => inv.stackKinds.get(d.stack) === "platform" || d.stack.startsWith("platform-"))) {
    for (const runner of inv.runners) {
      if (misplaced(runner)) findings.push({ check: "reachability", stack: db.stack, source: runnerName(runner), destination: `db ${db.identifier}`, port: String(db.port), hop: misplaced(runner)!, urn: runner.urn });
      else reach(db.stack, runner, db, db.urn);
    }
  }

  // (b) and (c): isolation, layer by layer; each layer must isolate on its own.
  const tenantVpcs = inv.vpcs.filter((v) => isTenantKind(inv, v));
  const tenantOf = (v: Vpc) => (isTenantKind(inv, v) ? v : undefined);
  const reported = new Set<string>();
  const isolation = (kind: NetworkCheckKind, from: Vpc, toStack: string, toRange: Range, hop: string, urn: string) => {
    const key = `${kind}|${from.stack}|${from.id}|${toStack}|${hop}`;
    if (reported.has(key)) return;
    reported.add(key);
    findings.push({ check: kind, stack: from.stack, source: `vpc ${from.name} ${from.cidrs.map(formatRange).join(",")}`, destination: `${toStack} ${formatRange(toRange)}`, port: "any", hop, urn });
  };
  // The hop that let the packet cross into the other VPC: the one just before it enters it.
  const decisive = (o: Outcome) => {
    const entry = o.kind === "delivered" ? vpcLabel(o.vpc) : "customer VPC ";
    const i = o.hops.findIndex((h) => h.includes(entry));
    return o.hops[Math.max(0, i - 1)] ?? "";
  };
  const judge = (from: Vpc, outcomes: Outcome[], layer: string) => {
    for (const o of outcomes) {
      if (o.kind === "delivered" && o.vpc !== from && tenantOf(o.vpc) && tenantOf(from)) {
        isolation("isolation", from, o.vpc.stack, o.range, `${layer}${decisive(o)}`, from.urn);
      }
      if (o.kind === "external" && o.what === "customer" && o.peering && o.peering.vpc !== from) {
        isolation("customer-peering", from, `customer VPC ${o.peering.peerVpcId} of ${o.peering.stack}`, o.range, `${layer}${decisive(o)}`, from.urn);
      }
    }
  };
  for (const vpc of inv.vpcs) {
    for (const s of vpc.subnets) {
      // Actual routing, every VPC (a hub must not reach a customer's VPC either).
      judge(vpc, counted(net, s, s.block, ALL, { mode: "may" }), "");
      if (!tenantOf(vpc)) continue;
      // VPC route tables alone: as if the Transit Gateways delivered anything anywhere.
      judge(vpc, counted(net, s, s.block, ALL, { mode: "may", openTgw: true }), "VPC routes alone (transit gateway assumed open): ");
    }
    if (!tenantOf(vpc)) continue;
    // Transit Gateway route tables alone: as if the VPC sent everything to its attachments.
    for (const a of net.attachmentsOf(vpc)) {
      traces++;
      judge(vpc, traceFromTgw(net, a, vpc.cidrs[0]!, ALL, { mode: "may" }), "transit gateway routes alone: ");
    }
  }
  // Security groups alone: no ingress rule in a tenant VPC admits another tenant VPC's addresses.
  const vpcById = new Map<string, Vpc>();
  for (const v of inv.vpcs) {
    vpcById.set(`${v.stack}\u0000${v.id}`, v);
    if (!vpcById.has(v.id)) vpcById.set(v.id, v);
  }
  const tenantCidrs = new BlockIndex(tenantVpcs.flatMap((vpc) => vpc.cidrs.map((block) => ({ block, vpc }))));
  for (const g of inv.securityGroups.values()) {
    const owner = vpcById.get(`${g.stack}\u0000${g.vpcId}`) ?? vpcById.get(g.vpcId);
    if (!owner || !tenantOf(owner)) continue;
    for (const rule of g.ingress) {
      for (const c of rule.cidrs) {
        for (const { vpc: other, block } of tenantCidrs.candidates(c)) {
          if (other === owner || !sgOpenTo([g], block)) continue;
          isolation("isolation", other, owner.stack, owner.cidrs[0]!, `security groups alone: security group ${g.id} (${g.name}, ${g.stack}) ${rule.from} admits ${formatRange(c)}, which holds ${other.stack}'s ${formatRange(block)}`, g.urn);
        }
      }
    }
  }
  // Routes into a customer's peering wider than the customer's declared CIDR.
  for (const p of inv.peerings) {
    if (p.peer || !p.vpc) continue;
    for (const s of p.vpc.subnets) {
      const t = s.routeTable ?? p.vpc.mainRouteTable;
      for (const r of t.routes) {
        if (r.target.kind !== "pcx" || r.target.pcx !== p) continue;
        const key = p.declaredPeerCidr ? `wide|${t.id}|${r.from}` : `nocidr|${p.stack}|${p.id}`;
        if (reported.has(key)) continue;
        reported.add(key);
        if (!p.declaredPeerCidr) {
          findings.push({ check: "customer-peering", stack: p.stack, source: `vpc ${p.vpc.name}`, destination: `customer VPC ${p.peerVpcId}`, port: "any", hop: `peering ${p.id} (${p.name}) goes to a VPC of no stack whose CIDR no tenant file declares (customerVpc): its routes cannot be checked`, urn: p.urn });
        } else if (!contains(p.declaredPeerCidr, r.block)) {
          findings.push({ check: "customer-peering", stack: p.stack, source: `vpc ${p.vpc.name}`, destination: `customer VPC ${p.peerVpcId} ${formatRange(p.declaredPeerCidr)}`, port: "any", hop: `route table ${t.id} (${t.name}) ${r.from} sends ${formatRange(r.block)} to peering ${p.id}, wider than the customer's CIDR ${formatRange(p.declaredPeerCidr)}`, urn: t.urn });
        }
      }
    }
  }
  // (d) The platform's other services (the control plane) are reached through their load
  // balancer alone: their security groups admit only groups load balancers carry, no address
  // range, and their tasks have no public address (docs/security.md, "Deployment posture").
  for (const svc of inv.services) {
    const line = (source: string, port: string, hop: string, urn: string) =>
      findings.push({ check: "isolation", stack: svc.stack, source, destination: `service ${svc.name}`, port, hop, urn });
    if (svc.assignPublicIp) line("internet", "any", `service ${svc.name} gives its tasks public IP addresses (assignPublicIp); it is reached through its load balancer only`, svc.urn);
    for (const g of svc.securityGroups) {
      for (const rule of g.ingress) {
        const port = rule.fromPort === rule.toPort ? String(rule.fromPort) : `${rule.fromPort}-${rule.toPort}`;
        for (const c of rule.cidrs) {
          line(formatRange(c), port, `security group ${g.id} (${g.name}, ${g.stack}) ${rule.from} admits ${formatRange(c)}: only the load balancer's security group may be admitted`, g.urn);
        }
        for (const ref of rule.groups.filter((id) => !inv.loadBalancerGroups.has(id))) {
          line(`security group ${ref}`, port, `security group ${g.id} (${g.name}, ${g.stack}) ${rule.from} admits security group ${ref}, which no load balancer carries`, g.urn);
        }
      }
    }
  }

  // (e) Interface endpoints usable from their VPC's workload subnets (plan/network/endpoints.ts).
  for (const f of checkEndpoints(stacks, inv)) findings.push({ check: "endpoints", stack: f.stack, source: f.source, destination: f.destination, port: "443", hop: f.hop, urn: f.urn });

  return {
    findings,
    proven,
    counts: { vpcs: inv.vpcs.length, databases: inv.databases.length, providers: inv.providers.length, runners: inv.runners.length, tenantVpcs: tenantVpcs.length, traces },
  };
}

function isTenantKind(inv: Inventory, v: Vpc): boolean {
  const kind = inv.stackKinds.get(v.stack);
  return kind === "shared" || kind === "dedicated";
}

/**
 * One runner to one database: forward routing from each runner subnet to each database subnet
 * (the task and the instance may be in any of them), the security groups both ways, network ACLs
 * both ways (replies on ephemeral ports), and the routing of the replies. Returns the hops of
 * one proven path, or the first failure as text.
 */
function reachOne(net: Network, runner: Runner, db: Database, count: (n: number) => void): string[] | string {
  if (runner.subnets.length === 0) return `runner ${runner.name} has no subnets`;
  if (db.subnets.length === 0) return `database ${db.identifier} has no subnets`;
  let example: string[] | undefined;
  for (const rs of runner.subnets) {
    for (const ds of db.subnets) {
      count(2);
      const fwd = trace(net, rs, rs.block, ds.block, { mode: "must" });
      const bad = fwd.find((o) => o.kind !== "delivered" || o.vpc !== ds.vpc);
      if (bad) return bad.kind === "dropped" ? bad.reason : `packets for ${formatRange(bad.range)} end ${bad.kind === "delivered" ? `in ${bad.vpc.name} (${bad.vpc.stack}), not the database's VPC` : `outside (${bad.what})`}`;
      const via = fwd[0]!.kind === "delivered" ? fwd[0]!.via : "origin";
      const sameVpc = rs.vpc === ds.vpc;
      const tgwRef = via === "tgw" && tgwReferencing(net, rs.vpc, ds.vpc);
      const pcxRef = via === "pcx" && rs.vpc.region === ds.vpc.region;
      const egress = sgAdmits(runner.securityGroups, "egress", ds.block, db.port, db.securityGroups, sameVpc || pcxRef);
      if (!egress.ok) return `${egress.detail} (runner side)`;
      const ingress = sgAdmits(db.securityGroups, "ingress", rs.block, db.port, runner.securityGroups, sameVpc || pcxRef || tgwRef);
      if (!ingress.ok) return `${ingress.detail} (database side)`;
      const port = { lo: db.port, hi: db.port };
      for (const [nacl, egressDir, peer, ports, side] of [
        [rs.nacl, true, ds.block, port, "runner subnet"],
        [ds.nacl, false, rs.block, port, "database subnet"],
        [ds.nacl, true, rs.block, EPHEMERAL_PORTS, "database subnet, replies"],
        [rs.nacl, false, ds.block, EPHEMERAL_PORTS, "runner subnet, replies"],
      ] as const) {
        const v = naclAdmits(nacl, egressDir, peer, ports);
        if (!v.ok) return `${v.detail} (${side})`;
      }
      // Replies: security groups are stateful, routing is not.
      const back = trace(net, ds, ds.block, rs.block, { mode: "must" });
      const badBack = back.find((o) => o.kind !== "delivered" || o.vpc !== rs.vpc);
      if (badBack) return `replies: ${badBack.kind === "dropped" ? badBack.reason : `end outside the runner's VPC`}`;
      example ??= [...fwd[0]!.hops, egress.detail, ingress.detail, "replies: " + back[0]!.hops.slice(1).join(" / ")];
    }
  }
  return example!;
}

/**
 * Security group references across a Transit Gateway work only with the option on the Transit
 * Gateway (off by default) and on both VPC attachments, within one region, and only in inbound
 * rules (https://docs.aws.amazon.com/vpc/latest/tgw/tgw-vpc-attachments.html#vpc-attachment-security).
 */
function tgwReferencing(net: Network, a: Vpc, b: Vpc): boolean {
  const atA = net.attachmentsOf(a);
  return atA.some((x) => {
    const y = net.attachmentOf(b, x.tgw);
    return y !== undefined && x.tgw?.sgReferencing === true && x.sgReferencing && y.sgReferencing;
  });
}

/** Findings as `plan --json` violations of their stack (mandatory, policy `network-reachability`). */
export function attachFindings(stacks: PlannedStack[], findings: readonly NetworkFinding[]): PlannedStack[] {
  const byStack = new Map<string, Violation[]>();
  for (const f of findings) {
    const list = byStack.get(f.stack) ?? [];
    list.push({ policy: NETWORK_POLICY, level: "mandatory", urn: f.urn, message: formatFinding(f) });
    byStack.set(f.stack, list);
  }
  return stacks.map((s) => (byStack.has(s.name) ? { ...s, violations: [...s.violations, ...byStack.get(s.name)!] } : s));
}
