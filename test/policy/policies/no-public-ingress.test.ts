import { describe, expect, it } from "vitest";
import { EC2_19_PORTS, riskyPorts } from "../../../policy/policies/no-public-ingress.ts";
import { add, dedicatedStack, find, tagsFor, urn, urnOf, violation, violationsAfter, violationsOf } from "../fixtures.ts";

const P = "no-public-ingress";
const D = dedicatedStack();
const EC2_19 = "; Security Hub EC2.19 forbids unrestricted access to high-risk ports";

describe(P, () => {
  it("passes HTTPS from anywhere, PostgreSQL from a security group or a private CIDR, and open egress", async () => {
    expect(await violationsOf(D)).toEqual([]);
  });

  it("lists the EC2.19 ports of the Security Hub control", () => {
    expect(EC2_19_PORTS).toEqual([20, 21, 22, 23, 25, 110, 135, 143, 445, 1433, 1434, 3000, 3306, 3389, 4333, 5000, 5432, 5500, 5601, 8080, 8088, 8888, 9200, 9300]);
    expect(riskyPorts("tcp", 8000, 8100)).toEqual([8080, 8088]);
    expect(riskyPorts("icmp", -1, -1)).toEqual([]);
    expect(riskyPorts("-1", 0, 0)).toEqual(EC2_19_PORTS);
  });

  it("reports an inline ingress opening 5432 to the world", async () => {
    const open = { protocol: "tcp", fromPort: 5432, toPort: 5432, cidrBlocks: ["0.0.0.0/0"] };
    expect(await violationsAfter(D, (s) => (find(s, "acme-db-sg").inputs.ingress = [open]))).toEqual([
      violation(P, urn(D, "acme-db-sg"), `ingress[0] opens port 5432 (protocol tcp) to 0.0.0.0/0${EC2_19}`),
    ]);
  });

  it("reports a standalone ingress rule opening SSH to all IPv6 addresses", async () => {
    const rule = { securityGroupId: "sg-0acmeapp", ipProtocol: "tcp", fromPort: 22, toPort: 22, cidrIpv6: "::/0", tags: tagsFor(D, "acme") };
    expect(await violationsAfter(D, (s) => add(s, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "acme-ssh", rule))).toEqual([
      violation(P, urnOf(D.name, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "acme-ssh"), `rule opens port 22 (protocol tcp) to ::/0${EC2_19}`),
    ]);
  });

  it("reports a security group rule opening every port", async () => {
    const rule = { type: "ingress", securityGroupId: "sg-0acmeapp", protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"], ipv6CidrBlocks: ["::/0"] };
    expect(await violationsAfter(D, (s) => add(s, "aws:ec2/securityGroupRule:SecurityGroupRule", "acme-all", rule))).toEqual([
      violation(P, urnOf(D.name, "aws:ec2/securityGroupRule:SecurityGroupRule", "acme-all"), `rule opens every port (protocol -1) to 0.0.0.0/0 and ::/0${EC2_19}`),
    ]);
  });

  it("reports a port range that covers high-risk ports", async () => {
    expect(await violationsAfter(D, (s) => Object.assign(find(s, "acme-app-https").inputs, { fromPort: 8000, toPort: 8100 }))).toEqual([
      violation(P, urn(D, "acme-app-https"), `rule opens ports 8080, 8088 (protocol tcp) to 0.0.0.0/0${EC2_19}`),
    ]);
  });

  it("ignores egress rules and port-less protocols", async () => {
    const egress = { type: "egress", securityGroupId: "sg-0acmeapp", protocol: "tcp", fromPort: 5432, toPort: 5432, cidrBlocks: ["0.0.0.0/0"] };
    const icmp = { type: "ingress", securityGroupId: "sg-0acmeapp", protocol: "icmp", fromPort: -1, toPort: -1, cidrBlocks: ["0.0.0.0/0"] };
    expect(
      await violationsAfter(D, (s) => {
        add(s, "aws:ec2/securityGroupRule:SecurityGroupRule", "acme-egress", egress);
        add(s, "aws:ec2/securityGroupRule:SecurityGroupRule", "acme-icmp", icmp);
      }),
    ).toEqual([]);
  });
});
