/**
 * The filtering part of the network inventory (inventory.ts): security groups with their inline
 * and separate rules, and network ACLs with their rules and subnet associations. Pure.
 */
import type { Nacl, NaclRule, SecurityGroup, SgRule } from "./model.ts";
import { T } from "./model.ts";
import type { Block } from "./ranges.ts";
import { block, idOf, Ids, num, origin, str, strs, val, type Reading, type Res } from "./readers.ts";

export interface Security {
  /** Keyed `stack\0id`. */
  securityGroups: Map<string, SecurityGroup>;
  /** The security group an id names (same stack first), or a problem saying none does. */
  sgOf: (r: Res, id: string | undefined) => SecurityGroup | undefined;
}

/** Reads security groups and network ACLs; ACLs are set on the subnets they associate with. */
export function readSecurity(ctx: Reading): Security {
  const { of, problem, ambiguous, withId, vpcOf, subnetOf } = ctx;
  // Security groups and their rules.
  const sgs = new Map<string, SecurityGroup>();
  const sgIds = new Ids<SecurityGroup>();
  const protoOf = (p: unknown) => (p === undefined || p === null ? "-1" : String(p) === "all" ? "-1" : String(p));
  const inlineRule = (x: Record<string, unknown>, from: string, self: string): SgRule => ({
    protocol: protoOf(x.protocol),
    fromPort: num(x.fromPort) ?? 0,
    toPort: num(x.toPort) ?? 65535,
    cidrs: strs(x.cidrBlocks).map((c) => block(c)).filter((b): b is Block => b !== undefined),
    groups: [...strs(x.securityGroups), ...(x.self === true ? [self] : [])],
    from,
  });
  const addSg = (r: Res, id: string, vpcId: string) => {
    const g: SecurityGroup = { ...origin(r), id, vpcId, ingress: [], egress: [] };
    for (const x of (val(r, "ingress") as Record<string, unknown>[] | undefined) ?? []) g.ingress.push(inlineRule(x, `${r.name} inline ingress`, id));
    for (const x of (val(r, "egress") as Record<string, unknown>[] | undefined) ?? []) g.egress.push(inlineRule(x, `${r.name} inline egress`, id));
    sgIds.add(r.stack, id, g);
    sgs.set(`${r.stack}\u0000${id}`, g);
    return g;
  };
  for (const r of of(T.sg)) {
    // A new VPC security group has no egress: the provider revokes AWS's default allow-all egress
    // rule on create (terraform-provider-aws, resource_aws_security_group: "Terraform will remove
    // this default rule"), so only declared rules count.
    const id = withId(r);
    if (id) addSg(r, id, str(r, "vpcId") ?? "");
  }
  for (const r of of(T.defaultSg)) {
    const vpc = vpcOf(r);
    const id = vpc?.defaultSecurityGroupId ?? idOf(r);
    if (id) addSg(r, id, str(r, "vpcId") ?? "");
  }
  const sgOf = (r: Res, id: string | undefined): SecurityGroup | undefined => {
    const g = sgIds.get(r.stack, id, ambiguous(r, "securityGroupId", id ?? ""));
    if (!g) problem(r, `securityGroupId ${id ?? "(unknown)"} is no security group of any stack`);
    return g;
  };
  for (const r of [...of(T.sgIngress), ...of(T.sgEgress)]) {
    const g = sgOf(r, str(r, "securityGroupId"));
    if (!g) continue;
    const cidr = block(str(r, "cidrIpv4"));
    const rule: SgRule = {
      protocol: protoOf(val(r, "ipProtocol")),
      fromPort: num(val(r, "fromPort")) ?? 0,
      toPort: num(val(r, "toPort")) ?? 65535,
      cidrs: cidr ? [cidr] : [],
      groups: str(r, "referencedSecurityGroupId") ? [str(r, "referencedSecurityGroupId")!] : [],
      from: `rule ${r.name}`,
    };
    (r.type === T.sgIngress ? g.ingress : g.egress).push(rule);
  }
  for (const r of of(T.sgRule)) {
    const g = sgOf(r, str(r, "securityGroupId"));
    if (!g) continue;
    const rule = inlineRule(
      { protocol: val(r, "protocol"), fromPort: val(r, "fromPort"), toPort: val(r, "toPort"), cidrBlocks: val(r, "cidrBlocks"), securityGroups: str(r, "sourceSecurityGroupId") ? [str(r, "sourceSecurityGroupId")] : [], self: val(r, "self") },
      `rule ${r.name}`,
      g.id,
    );
    (str(r, "type") === "egress" ? g.egress : g.ingress).push(rule);
  }

  // Network ACLs: a subnet without one of ours keeps the VPC's default ACL, which allows all
  // traffic in and out (https://docs.aws.amazon.com/vpc/latest/userguide/default-network-acl.html).
  const nacls = new Ids<Nacl>();
  const naclRule = (x: Record<string, unknown>, egress: boolean): NaclRule | undefined => {
    const b = block(typeof x.cidrBlock === "string" ? x.cidrBlock : undefined);
    const ruleNo = num(x.ruleNo ?? x.ruleNumber);
    if (!b || ruleNo === undefined) return undefined;
    return { ruleNo, egress, allow: String(x.action ?? x.ruleAction) === "allow", protocol: protoOf(x.protocol), block: b, fromPort: num(x.fromPort) ?? 0, toPort: num(x.toPort) ?? 65535 };
  };
  const addNacl = (r: Res, id: string): Nacl => {
    const n: Nacl = { ...origin(r), id, rules: [] };
    for (const [key, egress] of [["ingress", false], ["egress", true]] as const) {
      for (const x of (val(r, key) as Record<string, unknown>[] | undefined) ?? []) {
        const rule = naclRule(x, egress);
        if (rule) n.rules.push(rule);
      }
    }
    for (const sid of strs(val(r, "subnetIds"))) {
      const s = subnetOf(r, sid, "subnetIds");
      if (s) s.nacl = n;
    }
    nacls.add(r.stack, id, n);
    return n;
  };
  for (const r of of(T.nacl)) {
    const id = withId(r);
    if (id) addNacl(r, id);
  }
  for (const r of of(T.defaultNacl)) {
    const id = str(r, "defaultNetworkAclId") ?? idOf(r);
    if (id) addNacl(r, id);
  }
  for (const r of of(T.naclRule)) {
    const id = str(r, "networkAclId");
    const n = nacls.get(r.stack, id, ambiguous(r, "networkAclId", id ?? ""));
    const rule = naclRule({ ...r.inputs, ...(r.outputs ?? {}) }, val(r, "egress") === true);
    if (n && rule) n.rules.push(rule);
  }
  for (const r of of(T.naclAssociation)) {
    const id = str(r, "networkAclId");
    const n = nacls.get(r.stack, id, ambiguous(r, "networkAclId", id ?? ""));
    const s = subnetOf(r, str(r, "subnetId"), "subnetId");
    if (n && s) s.nacl = n;
  }

  return { securityGroups: sgs, sgOf };
}
