/**
 * Property (e) of the network check (docs/network.md): the interface VPC endpoints of a VPC are
 * usable by the workloads of that VPC. For every interface endpoint: private DNS is on, and so are
 * DNS support and DNS host names on its VPC (without them AWS does not resolve the service's public
 * name to the endpoint: https://docs.aws.amazon.com/vpc/latest/privatelink/privatelink-access-aws-services.html);
 * its network interfaces are in subnets of its own VPC; and from every workload subnet of the VPC
 * (a subnet whose route table has no internet gateway route) HTTPS reaches each of them: the
 * endpoint's security groups admit tcp/443 from every address of the subnet, and the network ACLs
 * let it through both ways (replies on the ephemeral ports). Routing inside a VPC is its local
 * route. A VPC with interface endpoints must have every service its kind needs
 * (infra/model/endpoints.ts). Pure: reads the rendered resources and the inventory.
 */
import { interfaceEndpoints, type VpcKind } from "../../infra/model/endpoints.ts";
import type { RenderedStack } from "../types.ts";
import { EPHEMERAL_PORTS, naclAdmits, sgAdmits } from "./filters.ts";
import type { Inventory, SecurityGroup, Subnet, Vpc } from "./inventory.ts";
import { formatRange } from "./ranges.ts";

const VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint";
const HTTPS = 443;

export interface EndpointFinding {
  stack: string;
  urn: string;
  source: string;
  destination: string;
  hop: string;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

const KIND_OF_STACK: Readonly<Record<string, VpcKind>> = { platform: "hub", shared: "cell", dedicated: "dedicated" };

/** A subnet workloads run in: its route table sends nothing to an internet gateway. */
function isWorkloadSubnet(s: Subnet): boolean {
  return !(s.routeTable?.routes ?? []).some((r) => r.target.kind === "igw");
}

export function checkEndpoints(stacks: readonly RenderedStack[], inv: Inventory): EndpointFinding[] {
  const out: EndpointFinding[] = [];
  const subnetOf = new Map(inv.subnets.map((s) => [`${s.stack}\u0000${s.id}`, s]));
  const vpcOf = new Map(inv.vpcs.map((v) => [`${v.stack}\u0000${v.id}`, v]));
  const vpcResource = new Map(stacks.flatMap((s) => s.resources.filter((r) => r.type === "aws:ec2/vpc:Vpc").map((r) => [`${s.name}\u0000${r.id ?? ""}`, r] as const)));
  const servicesByVpc = new Map<Vpc, Set<string>>();

  for (const s of stacks) {
    for (const r of s.resources.filter((x) => x.type === VPC_ENDPOINT && x.inputs.vpcEndpointType === "Interface")) {
      const service = String(r.inputs.serviceName ?? "").replace(/^com\.amazonaws\.[a-z0-9-]+\./, "");
      const destination = `endpoint ${service} (${r.name})`;
      const vpc = vpcOf.get(`${s.name}\u0000${String(r.inputs.vpcId)}`);
      const add = (source: string, hop: string) => out.push({ stack: s.name, urn: r.urn, source, destination, hop });
      if (!vpc) {
        add("its VPC", `vpcId ${String(r.inputs.vpcId)} is no VPC of ${s.name}`);
        continue;
      }
      servicesByVpc.set(vpc, (servicesByVpc.get(vpc) ?? new Set()).add(service));
      const vpcName = `vpc ${vpc.name} ${vpc.cidrs.map(formatRange).join(",")}`;
      if (r.inputs.privateDnsEnabled !== true) add(vpcName, `private DNS is off: the service's public name resolves to its public addresses, which this VPC cannot reach without a NAT`);
      const v = vpcResource.get(`${s.name}\u0000${vpc.id}`);
      if (v && (v.inputs.enableDnsSupport !== true || v.inputs.enableDnsHostnames !== true)) {
        add(vpcName, `the VPC needs enableDnsSupport and enableDnsHostnames for the endpoint's private DNS`);
      }
      const eniSubnets = strings(r.inputs.subnetIds).map((id) => subnetOf.get(`${s.name}\u0000${id}`));
      if (eniSubnets.length === 0 || eniSubnets.some((x) => x === undefined || x.vpc !== vpc)) {
        add(vpcName, `its subnets ${strings(r.inputs.subnetIds).join(", ") || "(none)"} are not all subnets of its VPC`);
        continue;
      }
      const groups = strings(r.inputs.securityGroupIds).map((id) => inv.securityGroups.get(`${s.name}\u0000${id}`)).filter((g): g is SecurityGroup => g !== undefined);
      for (const client of vpc.subnets.filter(isWorkloadSubnet)) {
        const source = `subnet ${client.name} ${formatRange(client.block)}`;
        const sg = sgAdmits(groups, "ingress", client.block, HTTPS, [], false);
        if (!sg.ok) {
          add(source, sg.detail);
          continue;
        }
        for (const eni of eniSubnets as Subnet[]) {
          const legs = [
            { nacl: client.nacl, egress: true, peer: eni.block, ports: { lo: HTTPS, hi: HTTPS }, at: client },
            { nacl: eni.nacl, egress: false, peer: client.block, ports: { lo: HTTPS, hi: HTTPS }, at: eni },
            { nacl: eni.nacl, egress: true, peer: client.block, ports: EPHEMERAL_PORTS, at: eni },
            { nacl: client.nacl, egress: false, peer: eni.block, ports: EPHEMERAL_PORTS, at: client },
          ];
          const refused = legs.map((l) => ({ l, v: naclAdmits(l.nacl, l.egress, l.peer, l.ports) })).find((x) => !x.v.ok);
          if (refused) add(source, `network ACL of subnet ${refused.l.at.name}: ${refused.v.detail}`);
        }
      }
    }
  }

  for (const [vpc, have] of servicesByVpc) {
    const kind = KIND_OF_STACK[inv.stackKinds.get(vpc.stack) ?? ""];
    if (!kind) continue;
    const missing = interfaceEndpoints(kind).filter((svc) => !have.has(svc));
    if (missing.length > 0) {
      out.push({
        stack: vpc.stack, urn: vpc.urn, source: `vpc ${vpc.name} ${vpc.cidrs.map(formatRange).join(",")}`, destination: `endpoints of a ${kind} VPC`,
        hop: `no interface endpoint for ${missing.join(", ")}: its workloads cannot reach ${missing.length === 1 ? "that service" : "those services"} without a NAT`,
      });
    }
  }
  return out;
}
