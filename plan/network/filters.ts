/**
 * Security groups and network ACLs for the reachability analysis (plan/network): whether a
 * flow's addresses and port pass them. Pure.
 *
 * Security groups are stateful: a connection admitted one way gets its replies without any rule
 * (https://docs.aws.amazon.com/vpc/latest/userguide/vpc-security-groups.html). Network ACLs are
 * stateless and checked in order of rule number, first match wins, so the replies need rules of
 * their own (https://docs.aws.amazon.com/vpc/latest/userguide/vpc-network-acls.html).
 */
import type { Nacl, SecurityGroup, SgRule } from "./inventory.ts";
import { covered, formatRange, intersect, type Range } from "./ranges.ts";

/** Ports a Linux client (the runner's container) picks its source port from: net.ipv4.ip_local_port_range. */
export const EPHEMERAL_PORTS = { lo: 32768, hi: 60999 } as const;

function tcpRule(r: { protocol: string }): boolean {
  return r.protocol === "-1" || r.protocol === "tcp" || r.protocol === "6";
}
function portIn(r: SgRule, port: number): boolean {
  return r.protocol === "-1" || (r.fromPort <= port && port <= r.toPort);
}

export interface SgVerdict {
  ok: boolean;
  /** The rules that admit the flow, or why none does. */
  detail: string;
}

/**
 * Whether the rules of `groups` in direction `dir` admit TCP `port` to/from every address of
 * `peer`: CIDR rules whose union covers it, or a rule referencing one of `peerGroups` when a
 * reference can work between the two ENIs (`referenceWorks`, see checks.ts).
 */
export function sgAdmits(
  groups: readonly SecurityGroup[],
  dir: "ingress" | "egress",
  peer: Range,
  port: number,
  peerGroups: readonly SecurityGroup[],
  referenceWorks: boolean,
): SgVerdict {
  const names = groups.map((g) => `${g.id} (${g.name})`).join(", ") || "(none)";
  const rules = groups.flatMap((g) => g[dir]).filter((r) => tcpRule(r) && portIn(r, port));
  const peerIds = new Set(peerGroups.map((g) => g.id));
  const byRef = rules.find((r) => r.groups.some((id) => peerIds.has(id)));
  if (byRef && referenceWorks) return { ok: true, detail: `security group ${names}: ${byRef.from} references the peer's group` };
  const cidrRules = rules.filter((r) => r.cidrs.some((c) => intersect(c, peer)));
  if (covered(peer, cidrRules.flatMap((r) => r.cidrs))) return { ok: true, detail: `security group ${names}: ${cidrRules.map((r) => r.from).join(", ")}` };
  const why = byRef
    ? `${byRef.from} references the peer's security group, which AWS does not resolve across this path`
    : `no ${dir} rule for tcp/${port} ${dir === "ingress" ? "from" : "to"} ${formatRange(peer)}`;
  return { ok: false, detail: `security group ${names} admits ${why}` };
}

/** Any ingress rule of `groups` admitting some address of `peer` on any port: the tenant isolation check. */
export function sgOpenTo(groups: readonly SecurityGroup[], peer: Range): SgRule | undefined {
  return groups.flatMap((g) => g.ingress).find((r) => r.cidrs.some((c) => intersect(c, peer)));
}

/**
 * Whether a network ACL lets TCP on `ports` to/from every address of `peer` through (egress: leaving
 * the subnet). No ACL of ours: the VPC's default ACL, which allows everything. A rule that matches
 * only part of the port range and denies counts as denying (the flow may use those ports).
 */
export function naclAdmits(nacl: Nacl | undefined, egress: boolean, peer: Range, ports: { lo: number; hi: number }): SgVerdict {
  if (!nacl) return { ok: true, detail: "default network ACL (allows all)" };
  let remaining: Range[] = [peer];
  for (const rule of nacl.rules.filter((r) => r.egress === egress).sort((a, b) => a.ruleNo - b.ruleNo)) {
    if (!tcpRule(rule)) continue;
    const full = rule.protocol === "-1" || (rule.fromPort <= ports.lo && ports.hi <= rule.toPort);
    const partial = rule.protocol !== "-1" && rule.fromPort <= ports.hi && ports.lo <= rule.toPort;
    if (!full && !(partial && !rule.allow)) continue;
    const next: Range[] = [];
    for (const r of remaining) {
      const hit = intersect(r, rule.block);
      if (!hit) {
        next.push(r);
        continue;
      }
      if (!rule.allow) return { ok: false, detail: `network ACL ${nacl.id} (${nacl.name}) rule ${rule.ruleNo} denies ${formatRange(hit)} on ${ports.lo}-${ports.hi}` };
      if (r.lo < hit.lo) next.push({ lo: r.lo, hi: hit.lo - 1 });
      if (hit.hi < r.hi) next.push({ lo: hit.hi + 1, hi: r.hi });
    }
    remaining = next;
    if (remaining.length === 0) return { ok: true, detail: `network ACL ${nacl.id} (${nacl.name})` };
  }
  return { ok: false, detail: `network ACL ${nacl.id} (${nacl.name}) has no ${egress ? "outbound" : "inbound"} rule allowing ${formatRange(remaining[0]!)} on ${ports.lo}-${ports.hi} (the last rule, *, denies)` };
}
