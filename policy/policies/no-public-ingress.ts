import { records, str, strings } from "../lib/resource.ts";
import { T } from "../lib/stack.ts";
import type { ResourcePolicyDefinition } from "../registry.ts";

/**
 * The high-risk ports of AWS Security Hub control [EC2.19] "Security groups should not allow
 * unrestricted access to ports with high risk" (AWS Security Hub User Guide, Amazon EC2 controls).
 * The control fails a security group that admits any of them from 0.0.0.0/0 or ::/0.
 */
export const EC2_19_PORTS: readonly number[] = [
  20, 21, 22, 23, 25, 110, 135, 143, 445, 1433, 1434, 3000, 3306, 3389, 4333, 5000, 5432, 5500, 5601, 8080, 8088, 8888, 9200, 9300,
];

const ANYWHERE = ["0.0.0.0/0", "::/0"];

interface Rule {
  where: string;
  protocol: string | undefined;
  fromPort: unknown;
  toPort: unknown;
  cidrs: string[];
}

/** The EC2.19 ports a rule opens, or [] (ICMP and other port-less protocols open none). */
export function riskyPorts(protocol: string | undefined, fromPort: unknown, toPort: unknown): number[] {
  const p = (protocol ?? "").toLowerCase();
  if (p === "-1" || p === "all") return [...EC2_19_PORTS];
  if (!["tcp", "udp", "6", "17"].includes(p)) return [];
  const from = typeof fromPort === "number" ? fromPort : 0;
  const to = typeof toPort === "number" ? toPort : 65535;
  return EC2_19_PORTS.filter((port) => port >= from && port <= to);
}

function describe(ports: number[]): string {
  return ports.length === EC2_19_PORTS.length ? "every port" : `port${ports.length > 1 ? "s" : ""} ${ports.join(", ")}`;
}

function rulesOf(type: string, props: Readonly<Record<string, unknown>>): Rule[] {
  switch (type) {
    case T.securityGroup:
      return records(props.ingress).map((r, i) => ({
        where: `ingress[${i}]`,
        protocol: str(r.protocol),
        fromPort: r.fromPort,
        toPort: r.toPort,
        cidrs: [...strings(r.cidrBlocks), ...strings(r.ipv6CidrBlocks)],
      }));
    case T.ingressRule:
      return [
        {
          where: "rule",
          protocol: str(props.ipProtocol),
          fromPort: props.fromPort,
          toPort: props.toPort,
          cidrs: [...strings(props.cidrIpv4), ...strings(props.cidrIpv6)],
        },
      ];
    case T.securityGroupRule:
      if (props.type !== "ingress") return [];
      return [
        {
          where: "rule",
          protocol: str(props.protocol),
          fromPort: props.fromPort,
          toPort: props.toPort,
          cidrs: [...strings(props.cidrBlocks), ...strings(props.ipv6CidrBlocks)],
        },
      ];
    default:
      return [];
  }
}

export const noPublicIngress: ResourcePolicyDefinition = {
  kind: "resource",
  name: "no-public-ingress",
  description:
    "No security group rule, inline or standalone, opens a Security Hub EC2.19 high-risk port (SSH, RDP, PostgreSQL, ...) to 0.0.0.0/0 or ::/0.",
  severity: "critical",
  enforcementLevel: "advisory",
  remediationSteps:
    "Admit the port from a security group (referencedSecurityGroupId / securityGroups) or a private CIDR such as the control-plane VPC, never from the internet.",
  types: [T.securityGroup, T.ingressRule, T.securityGroupRule],
  validate({ type, props }, _ctx, report) {
    for (const rule of rulesOf(type, props)) {
      const open = rule.cidrs.filter((c) => ANYWHERE.includes(c));
      if (open.length === 0) continue;
      const ports = riskyPorts(rule.protocol, rule.fromPort, rule.toPort);
      if (ports.length === 0) continue;
      report(`${rule.where} opens ${describe(ports)} (protocol ${rule.protocol}) to ${open.join(" and ")}; Security Hub EC2.19 forbids unrestricted access to high-risk ports`);
    }
  },
};
