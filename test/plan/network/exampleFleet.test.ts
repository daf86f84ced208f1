/**
 * The network check over the example fleet rendered by the real program (platform, cell and
 * dedicated stacks under the mock runtime, the spokes' StackReferences answered with the platform
 * stacks' mock ids): every path proven, and each negative control caught with the right hop named.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { checkNetwork, formatFinding } from "../../../plan/network/check.ts";
import { declaredPeersOf } from "../../../plan/network/declared.ts";
import { planStacks } from "../../../plan/planStacks.ts";
import type { RenderedStack } from "../../../plan/types.ts";
import { mockId, mockOutputs } from "../../../plan/render/mockOutputs.ts";
import { exampleFleet } from "../../infra/support.ts";
import { addLike, find, remove, setInputs } from "./support.ts";

const fleet = exampleFleet();
const peers = declaredPeersOf(fleet);
let rendered: RenderedStack[];

beforeAll(async () => {
  // Render only (no policy pack: the plan tests run it); in this process, one stack at a time.
  rendered = (await planStacks(fleet, [...fleet.stacks.keys()], { analyze: async () => [] })).stacks;
}, 300_000);

const copy = (): RenderedStack[] => structuredClone(rendered);
const lines = (stacks: RenderedStack[]) => checkNetwork(stacks, peers).findings.map(formatFinding);
const ofType = (stacks: RenderedStack[], stack: string, type: string) => stacks.find((s) => s.name === stack)!.resources.filter((r) => r.type === type);
const ASSOCIATION = "aws:ec2transitgateway/routeTableAssociation:RouteTableAssociation";
const PROPAGATION = "aws:ec2transitgateway/routeTablePropagation:RouteTablePropagation";
const ATTACHMENT = "aws:ec2transitgateway/vpcAttachment:VpcAttachment";
const TGW_TABLE = "aws:ec2transitgateway/routeTable:RouteTable";

describe("network check over the example fleet", () => {
  it("proves every provider's database reachable from its region's runner and the control plane's from both runners; no finding", () => {
    const report = checkNetwork(rendered, peers);
    expect(report.findings.map(formatFinding)).toEqual([]);
    expect(report.proven.map((p) => `${p.stack}: ${p.source} -> ${p.destination}:${p.port}`).sort()).toEqual([
      "dedicated-acme-prod: runner use1 -> db tenancy-prod-acme:5432",
      "dedicated-delta-health-prod: runner euw1 -> db tenancy-prod-delta-health:5432",
      "dedicated-megacorp-prod: runner use1 -> db tenancy-prod-megacorp:5432",
      "dedicated-megacorp-staging: runner use1 -> db tenancy-staging-megacorp:5432",
      "platform-us-east-1: runner euw1 -> db tenancy-control-plane:5432",
      "platform-us-east-1: runner use1 -> db tenancy-control-plane:5432",
      "shared-prod-euw1-01: runner euw1 -> db tenancy-prod-euw1-01:5432",
      "shared-prod-use1-01: runner use1 -> db tenancy-prod-use1-01:5432",
      "shared-prod-use1-02: runner use1 -> db tenancy-prod-use1-02:5432",
      "shared-staging-use1-01: runner use1 -> db tenancy-staging-use1-01:5432",
    ]);
    expect(report.counts.tenantVpcs).toBe(8);
  });

  it("the spoke joins its hub by the ids the platform stack renders (a different Transit Gateway id joins nothing)", () => {
    const s = copy();
    const a = ofType(s, "dedicated-acme-prod", ATTACHMENT)[0]!;
    setInputs(a, { transitGatewayId: "tgw-0000000000000000f" });
    expect(lines(s)).toContain(`dedicated-acme-prod: cannot join: VpcAttachment ${a.name}: transitGatewayId tgw-0000000000000000f is no Transit Gateway of any stack`);
  });

  it("a missing Transit Gateway association: the database's replies are dropped at its attachment", () => {
    const s = copy();
    const assoc = ofType(s, "dedicated-acme-prod", ASSOCIATION)[0]!;
    remove(s, "dedicated-acme-prod", assoc.name, ASSOCIATION);
    const a = ofType(s, "dedicated-acme-prod", ATTACHMENT)[0]!;
    const out = lines(s);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(new RegExp(`^dedicated-acme-prod: runner use1 -> db tenancy-prod-acme:5432: replies: attachment ${a.id} \\(${a.name}, dedicated-acme-prod\\) has no route table association on transit gateway tgw-`));
  });

  it("a spoke propagated into `spokes`: every other spoke of us-east-1 reaches it, named at the spokes table", () => {
    const s = copy();
    const p = ofType(s, "dedicated-acme-prod", PROPAGATION)[0]!;
    const spokes = ofType(s, "platform-us-east-1", TGW_TABLE).find((t) => t.name.endsWith("-spokes"))!;
    addLike(s, "dedicated-acme-prod", p, `${p.name}-into-spokes`, "tgw-rtb-prop-x", { ...p.inputs, transitGatewayRouteTableId: spokes.id });
    const out = lines(s);
    expect(out.map((l) => l.split(":")[0]).sort()).toEqual([
      "dedicated-megacorp-prod", "dedicated-megacorp-staging", "shared-prod-use1-01", "shared-prod-use1-02", "shared-staging-use1-01",
    ]);
    for (const l of out) expect(l).toContain(`-> dedicated-acme-prod 10.66.0.0/16:any: transit gateway routes alone: transit gateway route table ${spokes.id} (${spokes.name}, platform-us-east-1): 10.66.0.0/16 -> attachment`);
    for (const l of out) expect(l).toContain(`(propagation ${p.name}-into-spokes (dedicated-acme-prod))`);
  });

  it("the control plane's tasks are reached through its load balancer alone: a CIDR, another group or a public IP is named", () => {
    const s = copy();
    const fromAlb = find(s, "platform-us-east-1", "control-plane-task-from-alb");
    const task = fromAlb.inputs.securityGroupId as string;
    // The intact stack admits the ALB's group alone: no finding (first test); each opening is named.
    addLike(s, "platform-us-east-1", fromAlb, "control-plane-task-from-office", "sgr-0y", { securityGroupId: task, cidrIpv4: "198.51.100.0/24", ipProtocol: "tcp", fromPort: 8080, toPort: 8080 });
    const db = mockId("aws:ec2/securityGroup:SecurityGroup", "control-plane-db-sg", "platform-us-east-1");
    addLike(s, "platform-us-east-1", fromAlb, "control-plane-task-from-db", "sgr-0z", { securityGroupId: task, referencedSecurityGroupId: db, ipProtocol: "tcp", fromPort: 8080, toPort: 8080 });
    const svc = find(s, "platform-us-east-1", "control-plane", "aws:ecs/service:Service");
    setInputs(svc, { networkConfiguration: { ...(svc.inputs.networkConfiguration as Record<string, unknown>), assignPublicIp: true } });
    expect(lines(s)).toEqual([
      "platform-us-east-1: internet -> service control-plane:any: service control-plane gives its tasks public IP addresses (assignPublicIp); it is reached through its load balancer only",
      `platform-us-east-1: 198.51.100.0/24 -> service control-plane:8080: security group ${task} (control-plane-task-sg, platform-us-east-1) rule control-plane-task-from-office admits 198.51.100.0/24: only the load balancer's security group may be admitted`,
      `platform-us-east-1: security group ${db} -> service control-plane:8080: security group ${task} (control-plane-task-sg, platform-us-east-1) rule control-plane-task-from-db admits security group ${db}, which no load balancer carries`,
    ]);
  });

  it("a database security group opened to another tenant's CIDR", () => {
    const s = copy();
    const rule = find(s, "dedicated-acme-prod", "tenant-acme-sg-db-from-runner-us-east-1a");
    addLike(s, "dedicated-acme-prod", rule, "tenant-acme-sg-db-from-megacorp", "sgr-0x", { ...rule.inputs, cidrIpv4: "10.64.0.0/16" });
    expect(lines(s)).toEqual([
      `dedicated-megacorp-prod: vpc tenant-megacorp-network-vpc 10.64.0.0/16 -> dedicated-acme-prod 10.66.0.0/16:any: security groups alone: security group ${rule.inputs.securityGroupId} (tenant-acme-sg-db, dedicated-acme-prod) rule tenant-acme-sg-db-from-megacorp admits 10.64.0.0/16, which holds dedicated-megacorp-prod's 10.64.0.0/16`,
    ]);
  });

  it("a route to another tenant's CIDR, named at the route table", () => {
    const s = copy();
    const r = find(s, "dedicated-acme-prod", "tenant-acme-spoke-us-east-1a");
    addLike(s, "dedicated-acme-prod", r, "tenant-acme-to-megacorp", "r-0x", { ...r.inputs, destinationCidrBlock: "10.64.0.0/16" });
    const out = lines(s);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^dedicated-acme-prod: vpc tenant-acme-network-vpc 10\.66\.0\.0\/16 -> dedicated-megacorp-prod 10\.64\.0\.0\/16:any: VPC routes alone \(transit gateway assumed open\): route table rtb-\S+ \(tenant-acme-network-private-us-east-1a, dedicated-acme-prod\): 10\.64\.0\.0\/16 -> transit gateway tgw-\S+ .*\(route tenant-acme-to-megacorp\)$/);
  });

  it("a customer peering route wider than the customer's CIDR", () => {
    const s = copy();
    setInputs(find(s, "dedicated-megacorp-prod", "tenant-megacorp-peering-us-east-1a"), { destinationCidrBlock: "172.16.0.0/12" });
    const out = lines(s);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^dedicated-megacorp-prod: vpc tenant-megacorp-network-vpc -> customer VPC vpc-0a1b2c3d4e5f60718 172\.20\.0\.0\/16:any: route table rtb-\S+ \(tenant-megacorp-network-private-us-east-1a\) route tenant-megacorp-peering-us-east-1a sends 172\.16\.0\.0\/12 to peering pcx-\S+, wider than the customer's CIDR 172\.20\.0\.0\/16$/);
  });

  it("a runner in the wrong region: the eu-west-1 databases name it", () => {
    const s = copy();
    const use1 = ofType(s, "platform-us-east-1", "aws:ecs/service:Service").find((r) => r.name.startsWith("runner-"))!;
    const euw1 = ofType(s, "platform-eu-west-1", "aws:ecs/service:Service").find((r) => r.name.startsWith("runner-"))!;
    setInputs(euw1, { networkConfiguration: use1.inputs.networkConfiguration });
    const hop = `the runner of platform-eu-west-1 runs in us-east-1 (${euw1.name}: its subnets are in a VPC of us-east-1); eu-west-1 data must be handled in eu-west-1`;
    expect(lines(s).sort()).toEqual([
      `dedicated-delta-health-prod: runner euw1 -> db tenancy-prod-delta-health:5432: ${hop}`,
      "platform-us-east-1: runner euw1 -> db tenancy-control-plane:5432: " + hop,
      `shared-prod-euw1-01: runner euw1 -> db tenancy-prod-euw1-01:5432: ${hop}`,
    ].sort());
  });
});

describe("mock ids carry the stack (plan/render/mockOutputs.ts)", () => {
  const VPC = "aws:ec2/vpc:Vpc";
  /** EC2-style ids of the rendered fleet (vpc-0..., subnet-0..., rtb-0..., tgw-attach-0...), with the stacks whose resources have them. */
  const owners = (stacks: readonly RenderedStack[], idOf: (s: RenderedStack, r: RenderedStack["resources"][number]) => string | undefined) => {
    const out = new Map<string, Set<string>>();
    for (const s of stacks) {
      for (const r of s.resources) {
        const id = idOf(s, r);
        if (!id || !/^[a-z-]+-0[0-9a-f]{16}$/.test(id)) continue;
        out.set(id, (out.get(id) ?? new Set()).add(s.name));
      }
    }
    return out;
  };
  const shared = (m: Map<string, Set<string>>) => [...m].filter(([, st]) => st.size > 1).map(([id, st]) => `${id}: ${[...st].sort().join(" ")}`);

  it("no id of the rendered fleet belongs to two stacks: megacorp's prod and staging VPCs, named alike, differ", () => {
    const ids = owners(rendered, (_s, r) => r.id);
    expect(ids.size).toBeGreaterThan(200);
    expect(shared(ids)).toEqual([]);
    const prod = find(rendered, "dedicated-megacorp-prod", "tenant-megacorp-network-vpc", VPC);
    const staging = find(rendered, "dedicated-megacorp-staging", "tenant-megacorp-network-vpc", VPC);
    expect(prod.id).toBe(mockId(VPC, "tenant-megacorp-network-vpc", "dedicated-megacorp-prod"));
    expect(staging.id).toBe(mockId(VPC, "tenant-megacorp-network-vpc", "dedicated-megacorp-staging"));
    expect(staging.id).not.toBe(prod.id);
    // What AWS derives from the VPC differs too.
    const ctx = { region: "us-east-1", accountId: fleet.platform.awsAccountId };
    const a = mockOutputs(VPC, prod.name, {}, { ...ctx, stack: "dedicated-megacorp-prod" }).state;
    const b = mockOutputs(VPC, staging.name, {}, { ...ctx, stack: "dedicated-megacorp-staging" }).state;
    for (const k of ["arn", "defaultSecurityGroupId", "mainRouteTableId"]) expect(a[k], k).not.toBe(b[k]);
    // Deterministic: the same stack, type and name give the same id (renders diff only on real changes).
    expect(mockId(VPC, prod.name, "dedicated-megacorp-prod")).toBe(prod.id);
  });

  it("negative control: seeded by type and name only (the same stack seed for all), the fleet's ids collide across stacks", () => {
    const ids = owners(rendered, (_s, r) => (r.custom && r.id ? mockId(r.type, r.name, "") : undefined));
    const collisions = shared(ids);
    expect(collisions).toContain(`${mockId(VPC, "tenant-megacorp-network-vpc", "")}: dedicated-megacorp-prod dedicated-megacorp-staging`);
    expect(collisions.length).toBeGreaterThan(10);
  });

  it("a spoke's Transit Gateway ids are those its region's platform stack renders", () => {
    const tgw = ofType(rendered, "platform-eu-west-1", "aws:ec2transitgateway/transitGateway:TransitGateway")[0]!;
    const attachment = ofType(rendered, "dedicated-delta-health-prod", ATTACHMENT)[0]!;
    expect(attachment.inputs.transitGatewayId).toBe(tgw.id);
    expect(tgw.id).toBe(mockId(tgw.type, tgw.name, "platform-eu-west-1"));
  });
});
