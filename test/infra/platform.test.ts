/**
 * Platform stacks (`platform-<region>`), rendered offline under Pulumi's mock runtime: the exact
 * resources per region, the Transit Gateway's tables, associations and routes, the peering
 * between hubs, the control plane's exposure (ALB rules, security groups, database), roles,
 * secrets, the bootstrap rule (no postgresql resource or provider), and the StackReference
 * answer spokes read matching what the platform stack exports.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { Fleet } from "../../infra/model/fleet.ts";
import { httpSettingsFrom } from "../../automation/http/settings.ts";
import { hubLayout, planListenerRules } from "../../infra/model/hub.ts";
import { platformStackName, tags } from "../../infra/model/naming.ts";
import { mockId } from "../../plan/render/mockOutputs.ts";
import { platformReferenceOutputs } from "../../plan/render/platformReference.ts";
import type { RenderedResource, RenderedStack } from "../../plan/types.ts";
import { byTypeName, C, exampleFleet, isTaggable, json, ofType, plain, render, shape, T } from "./support.ts";

const TGW = {
  gateway: "aws:ec2transitgateway/transitGateway:TransitGateway",
  table: "aws:ec2transitgateway/routeTable:RouteTable",
  attachment: "aws:ec2transitgateway/vpcAttachment:VpcAttachment",
  association: "aws:ec2transitgateway/routeTableAssociation:RouteTableAssociation",
  route: "aws:ec2transitgateway/route:Route",
  peering: "aws:ec2transitgateway/peeringAttachment:PeeringAttachment",
  accepter: "aws:ec2transitgateway/peeringAttachmentAccepter:PeeringAttachmentAccepter",
} as const;
const ENDPOINTS = ["secretsmanager", "kms", "sts", "logs", "ecr-api", "ecr-dkr"];

/** The exact resources of a platform stack (below the stack resource). */
function platformShape(o: { code: string; azs: string[]; cells: string[]; peers: string[]; controlPlane: boolean; peering?: string }): string[] {
  const f = `platform-${o.code}`;
  const h = `hub-${o.code}`;
  const tr = `transit-${o.code}`;
  const r = `runner-${o.code}`;
  const destinations = ["dedicated", ...o.cells, ...o.peers.map((p) => `hub-${p}`)];
  const cp = "control-plane";
  return [
    `${C("PlatformFoundation")} ${f}`, `${C("EncryptionKey")} ${f}-key`, `${T.key} ${f}-key`, `${T.alias} ${f}-key`,
    `${T.logGroup} ${f}-logs-runner`, ...(o.controlPlane ? [`${T.logGroup} ${f}-logs-control-plane`] : []),
    `aws:ecs/cluster:Cluster ${f}-cluster`, `${T.role} ${f}-exec`, `${T.rolePolicy} ${f}-exec`,
    `${C("HubNetwork")} ${h}`, `${C("Network")} ${h}-network`, `${T.vpc} ${h}-network-vpc`, `aws:ec2/defaultSecurityGroup:DefaultSecurityGroup ${h}-network-default-sg`,
    ...o.azs.flatMap((az) => [
      `${T.subnet} ${h}-network-private-${az}`, `${T.routeTable} ${h}-network-private-${az}`, `${T.rta} ${h}-network-private-${az}`,
      `${T.subnet} ${h}-services-${az}`, `${T.rta} ${h}-services-${az}`,
      `${T.subnet} ${h}-egress-public-${az}`, `${T.rta} ${h}-egress-public-${az}`, `${T.eip} ${h}-egress-nat-${az}`, `${T.nat} ${h}-egress-nat-${az}`,
      `${T.route} ${h}-egress-private-${az}`,
      ...destinations.map((d) => `${T.route} ${tr}-${az}-${d}`),
    ]),
    `${C("Egress")} ${h}-egress`, `${T.igw} ${h}-egress-igw`, `${T.routeTable} ${h}-egress-public`, `${T.route} ${h}-egress-public`,
    ...["prod", "staging", "dev"].flatMap((env) => [
      `${C("AccessLogBucket")} access-logs-${env}-${o.code}`,
      ...["bucket:Bucket", "bucketOwnershipControls:BucketOwnershipControls", "bucketPublicAccessBlock:BucketPublicAccessBlock", "bucketVersioning:BucketVersioning",
        "bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "bucketPolicy:BucketPolicy", "bucketLifecycleConfiguration:BucketLifecycleConfiguration"]
        .map((type) => `aws:s3/${type} access-logs-${env}-${o.code}`),
    ]),
    `${C("VpcEndpoints")} ${h}-endpoints`, `${T.sg} ${h}-endpoints`, `${T.ingress} ${h}-endpoints-from-hub`,
    ...ENDPOINTS.map((e) => `aws:ec2/vpcEndpoint:VpcEndpoint ${h}-endpoints-${e}`), `aws:ec2/vpcEndpoint:VpcEndpoint ${h}-endpoints-s3`,
    `${C("TransitHub")} ${tr}`, `${TGW.gateway} ${tr}`, `${TGW.table} ${tr}-hub`, `${TGW.table} ${tr}-spokes`,
    `${TGW.attachment} ${tr}-hub-vpc`, `${TGW.association} ${tr}-hub-vpc`, `${TGW.route} ${tr}-hub-vpc`,
    ...(o.peering
      ? [
          `${C("HubPeering")} ${o.peering}`, `${TGW.peering} ${o.peering}`, `${TGW.accepter} ${o.peering}-accept`,
          `${TGW.association} ${o.peering}`, `${TGW.route} ${o.peering}`, `${TGW.association} ${o.peering}-peer`, `${TGW.route} ${o.peering}-peer`,
        ]
      : []),
    `${C("Runner")} ${r}`, `${T.role} ${r}-role`, `${T.rolePolicy} ${r}-role`, `${T.sg} ${r}-sg`, `${T.egress} ${r}-https-out`,
    ...[...destinations.filter((d) => !d.startsWith("hub-")), "control-plane-0", "control-plane-1"].map((d) => `${T.egress} ${r}-pg-${d}`),
    `aws:ecs/taskDefinition:TaskDefinition ${r}`, `aws:ecs/service:Service ${r}`,
    ...(o.controlPlane
      ? [
          `${C("ControlPlaneService")} ${cp}`, `${T.role} ${cp}-role`, `${T.rolePolicy} ${cp}-role`, `${T.role} ${cp}-deployer`, `${T.rolePolicy} ${cp}-deployer`,
          `${T.secret} ${cp}-secret-stripe-webhook-secret`, `${T.secret} ${cp}-secret-api-keys`, `${T.secret} ${cp}-database-url`, `${T.version} ${cp}-database-url`,
          `${T.sg} ${cp}-alb-sg`, `${T.sg} ${cp}-task-sg`, `${T.sg} ${cp}-db-sg`,
          `${T.ingress} ${cp}-alb-https-in`, `${T.ingress} ${cp}-alb-http-in`, `${T.egress} ${cp}-alb-to-task`, `${T.ingress} ${cp}-task-from-alb`,
          `${T.egress} ${cp}-task-https-out`, `${T.egress} ${cp}-task-to-db`, `${T.ingress} ${cp}-db-from-task`,
          ...["us-east-1-0", "us-east-1-1", "eu-west-1-0", "eu-west-1-1"].map((x) => `${T.ingress} ${cp}-db-from-runner-${x}`),
          `${C("PostgresInstance")} ${cp}-db`, `random:index/randomId:RandomId ${cp}-db-final-snapshot`, `${T.password} ${cp}-db-master`, `${T.secret} ${cp}-db-master`, `${T.version} ${cp}-db-master`,
          `aws:rds/subnetGroup:SubnetGroup ${cp}-db`, `aws:rds/parameterGroup:ParameterGroup ${cp}-db`, `${T.rds} ${cp}-db`,
          `aws:acm/certificate:Certificate ${cp}-cert`, `${T.record} ${cp}-cert-validation`, `aws:acm/certificateValidation:CertificateValidation ${cp}-cert`,
          `aws:lb/loadBalancer:LoadBalancer ${cp}`, `aws:lb/targetGroup:TargetGroup ${cp}`, `aws:lb/listener:Listener ${cp}-https`, `aws:lb/listener:Listener ${cp}-http`,
          ...["public-0", "operators-api-0", "operators-console-0"].map((k) => `aws:lb/listenerRule:ListenerRule ${cp}-rule-${k}`),
          `${T.record} ${cp}-dns`, `aws:ecs/taskDefinition:TaskDefinition ${cp}`, `aws:ecs/service:Service ${cp}`,
          ...exampleFleet().platform.environments.flatMap((e) => [`${C("ApplicationRole")} application-${e}`, `${T.role} application-${e}`, `${T.rolePolicy} application-${e}`]),
        ]
      : []),
  ].sort();
}

const fleet: Fleet = exampleFleet();
const rendered = new Map<string, RenderedStack>();
const get = (name: string) => rendered.get(name)!;
const below = (r: RenderedStack) => r.resources.filter((x) => x.type !== T.stack);
const strip = (x: RenderedResource) => { const { tags: _t, description: _d, ...rest } = plain(x); return rest; };

beforeAll(async () => {
  for (const name of ["platform-us-east-1", "platform-eu-west-1"]) rendered.set(name, await render(fleet, name));
});

describe("platform stacks: exact resource sets", () => {
  it("us-east-1 (the control plane's region): hub, transit gateway, runner and the control plane", () => {
    expect(shape(below(get("platform-us-east-1")))).toEqual(platformShape({
      code: "use1", azs: ["us-east-1a", "us-east-1b"], cells: ["shared-prod-use1-01", "shared-prod-use1-02", "shared-staging-use1-01"], peers: ["eu-west-1"], controlPlane: true,
    }));
  });

  it("eu-west-1: hub, transit gateway, runner and the peering with the control plane's hub; no control plane", () => {
    expect(shape(below(get("platform-eu-west-1")))).toEqual(platformShape({
      code: "euw1", azs: ["eu-west-1a", "eu-west-1b"], cells: ["shared-prod-euw1-01"], peers: ["us-east-1"], controlPlane: false, peering: "peering-us-east-1",
    }));
  });

  it("bootstrap: no postgresql resource or provider in any platform stack (it deploys before any path to a database exists)", () => {
    for (const r of rendered.values()) {
      expect(r.resources.filter((x) => x.type.startsWith("postgresql:") || x.type === "pulumi:providers:postgresql")).toEqual([]);
    }
    // Negative control: a cell has them, and the check above would see them.
    expect(fleet.stacks.get("shared-prod-use1-01")).toBeDefined();
  });

  it("every taggable AWS resource carries tenant=shared, env=prod and its stack; the others none", () => {
    for (const [name, r] of rendered) {
      let n = 0;
      for (const x of r.resources.filter((y) => y.type.startsWith("aws:"))) {
        if (isTaggable(x.type)) {
          expect(x.inputs.tags, `${x.type} ${x.name}`).toEqual(tags("shared", "prod", name));
          n++;
        } else expect(x.inputs.tags, `${x.type} ${x.name}`).toBeUndefined();
      }
      expect(n).toBeGreaterThan(40);
    }
  });
});

/** The platform stack of a region code (its resources' mock ids derive from the stack). */
const platformOf = (code: string) => platformStackName(code === "use1" ? "us-east-1" : "eu-west-1");

describe("transit gateway", () => {
  const hubOf = (code: string) => ({
    tgw: mockId(TGW.gateway, `transit-${code}`, platformOf(code)),
    hub: mockId(TGW.table, `transit-${code}-hub`, platformOf(code)),
    spokes: mockId(TGW.table, `transit-${code}-spokes`, platformOf(code)),
    att: mockId(TGW.attachment, `transit-${code}-hub-vpc`, platformOf(code)),
  });

  it("default association and propagation off; SG referencing off; two tables on it", () => {
    const r = get("platform-us-east-1");
    expect(strip(byTypeName(r, TGW.gateway, "transit-use1"))).toEqual({
      defaultRouteTableAssociation: "disable", defaultRouteTablePropagation: "disable", autoAcceptSharedAttachments: "disable",
      dnsSupport: "enable", securityGroupReferencingSupport: "disable",
    });
    const ids = hubOf("use1");
    for (const t of ["hub", "spokes"]) expect(strip(byTypeName(r, TGW.table, `transit-use1-${t}`))).toEqual({ transitGatewayId: ids.tgw });
  });

  it("the hub VPC attaches on its runner subnets, is associated with `hub`, and `spokes` has exactly one route: the hub CIDR", () => {
    for (const [name, code, region] of [["platform-us-east-1", "use1", "us-east-1"], ["platform-eu-west-1", "euw1", "eu-west-1"]] as const) {
      const r = get(name);
      const ids = hubOf(code);
      const layout = hubLayout(fleet.platform, region);
      expect(strip(byTypeName(r, TGW.attachment, `transit-${code}-hub-vpc`))).toEqual({
        transitGatewayId: ids.tgw, vpcId: mockId(T.vpc, `hub-${code}-network-vpc`, platformOf(code)),
        subnetIds: layout.runner.map((s) => mockId(T.subnet, `hub-${code}-network-private-${s.az}`, platformOf(code))),
        transitGatewayDefaultRouteTableAssociation: false, transitGatewayDefaultRouteTablePropagation: false, dnsSupport: "enable", securityGroupReferencingSupport: "disable",
      });
      expect(plain(byTypeName(r, TGW.association, `transit-${code}-hub-vpc`))).toEqual({ transitGatewayAttachmentId: ids.att, transitGatewayRouteTableId: ids.hub });
      const spokesRoutes = ofType(r, TGW.route).map(plain).filter((x) => x.transitGatewayRouteTableId === ids.spokes);
      expect(spokesRoutes).toEqual([{ destinationCidrBlock: layout.cidr, transitGatewayAttachmentId: ids.att, transitGatewayRouteTableId: ids.spokes }]);
      // No propagation into `spokes` is declared anywhere in a platform stack.
      expect(ofType(r, "aws:ec2transitgateway/routeTablePropagation:RouteTablePropagation")).toEqual([]);
    }
  });

  it("hub VPC route tables send the dedicated supernet, the region's cells and the peered hub to the gateway, 0.0.0.0/0 to the AZ's NAT", () => {
    const r = get("platform-eu-west-1");
    const tgw = hubOf("euw1").tgw;
    for (const az of ["eu-west-1a", "eu-west-1b"]) {
      const table = mockId(T.routeTable, `hub-euw1-network-private-${az}`, "platform-eu-west-1");
      const routes = ofType(r, T.route).map(plain).filter((x) => x.routeTableId === table);
      expect(routes).toEqual(expect.arrayContaining([
        { routeTableId: table, destinationCidrBlock: "10.64.0.0/10", transitGatewayId: tgw },
        { routeTableId: table, destinationCidrBlock: "10.21.0.0/16", transitGatewayId: tgw },
        { routeTableId: table, destinationCidrBlock: "10.0.0.0/16", transitGatewayId: tgw },
        { routeTableId: table, destinationCidrBlock: "0.0.0.0/0", natGatewayId: mockId(T.nat, `hub-euw1-egress-nat-${az}`, "platform-eu-west-1") },
      ]));
      expect(routes).toHaveLength(4);
    }
  });

  it("peering: requested and accepted in the eu-west-1 stack, associated with `spokes` on both sides, static hub routes both ways", () => {
    const r = get("platform-eu-west-1");
    const eu = hubOf("euw1");
    const us = hubOf("use1");
    const att = mockId(TGW.peering, "peering-us-east-1", "platform-eu-west-1");
    expect(strip(byTypeName(r, TGW.peering, "peering-us-east-1"))).toEqual({ transitGatewayId: eu.tgw, peerTransitGatewayId: us.tgw, peerRegion: "us-east-1", peerAccountId: "111111111111" });
    expect(strip(byTypeName(r, TGW.accepter, "peering-us-east-1-accept"))).toEqual({ region: "us-east-1", transitGatewayAttachmentId: att });
    expect(plain(byTypeName(r, TGW.association, "peering-us-east-1"))).toEqual({ transitGatewayAttachmentId: att, transitGatewayRouteTableId: eu.spokes });
    expect(plain(byTypeName(r, TGW.route, "peering-us-east-1"))).toEqual({ destinationCidrBlock: "10.0.0.0/16", transitGatewayAttachmentId: att, transitGatewayRouteTableId: eu.hub });
    expect(plain(byTypeName(r, TGW.association, "peering-us-east-1-peer"))).toEqual({ region: "us-east-1", transitGatewayAttachmentId: att, transitGatewayRouteTableId: us.spokes });
    expect(plain(byTypeName(r, TGW.route, "peering-us-east-1-peer"))).toEqual({ region: "us-east-1", destinationCidrBlock: "10.255.0.0/16", transitGatewayAttachmentId: att, transitGatewayRouteTableId: us.hub });
    // The control plane's own stack declares no peering: it never depends on another region.
    expect(ofType(get("platform-us-east-1"), TGW.peering)).toEqual([]);
  });

  it("what a spoke's StackReference reads offline is exactly what the platform stack exports", () => {
    for (const [name, region] of [["platform-us-east-1", "us-east-1"], ["platform-eu-west-1", "eu-west-1"]] as const) {
      // infra/index.ts exports the builder's outputs as `stack`; the renderer records them unwrapped.
      const answer = platformReferenceOutputs(fleet, `organization/saas-tenancy/platform-${region}`)!.stack as Record<string, unknown>;
      const exported = get(name).outputs;
      for (const [k, v] of Object.entries(answer)) expect(exported[k], k).toBe(v);
      expect(Object.keys(answer).sort()).toEqual(
        region === "us-east-1" ? ["databaseUrlSecretArn", "hubRouteTableId", "hubVpcId", "spokesRouteTableId", "transitGatewayId"] : ["hubRouteTableId", "hubVpcId", "spokesRouteTableId", "transitGatewayId"],
      );
    }
    expect(platformReferenceOutputs(fleet, "organization/saas-tenancy/platform-ap-south-1")).toBeUndefined();
  });
});

describe("hub network", () => {
  it("subnets from the hub layout: runner, services, public; none gives public IPs", () => {
    const r = get("platform-us-east-1");
    const layout = hubLayout(fleet.platform, "us-east-1");
    expect(layout.runner.map((s) => s.cidr)).toEqual(["10.0.0.0/20", "10.0.16.0/20"]);
    expect(layout.services.map((s) => s.cidr)).toEqual(["10.0.192.0/22", "10.0.196.0/22"]);
    expect(layout.public.map((s) => s.cidr)).toEqual(["10.0.128.0/24", "10.0.129.0/24"]);
    const subnets = ofType(r, T.subnet).map(plain);
    expect(subnets.map((s) => s.cidrBlock).sort()).toEqual([...layout.runner, ...layout.services, ...layout.public].map((s) => s.cidr).sort());
    for (const s of subnets) expect(s.mapPublicIpOnLaunch).toBe(false);
  });

  it("an S3 server access log bucket per env: SSE-S3 (log delivery refuses SSE-KMS targets), ACLs off, blocked, versioned, kept on destroy; delivery only for the env's buckets of this account", () => {
    const r = get("platform-eu-west-1");
    const parts = r.resources.filter((x) => x.name === "access-logs-staging-euw1" && x.custom);
    expect(parts.map((x) => x.options.retainOnDelete)).toEqual([true, true, true, true, true, true, true]);
    expect(plain(byTypeName(r, "aws:s3/bucket:Bucket", "access-logs-staging-euw1"))).toMatchObject({ bucket: "tenancy-staging-euw1-access-logs-111111111111", forceDestroy: false });
    expect(strip(byTypeName(r, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "access-logs-staging-euw1"))).toEqual({ bucket: "tenancy-staging-euw1-access-logs-111111111111", rule: { objectOwnership: "BucketOwnerEnforced" } });
    expect(strip(byTypeName(r, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "access-logs-staging-euw1")).rules).toEqual([
      { applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } },
    ]);
    expect(strip(byTypeName(r, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "access-logs-staging-euw1"))).toMatchObject({ blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true });
    expect(strip(byTypeName(r, "aws:s3/bucketVersioning:BucketVersioning", "access-logs-staging-euw1")).versioningConfiguration).toEqual({ status: "Enabled" });
    expect(JSON.parse(String(plain(byTypeName(r, "aws:s3/bucketPolicy:BucketPolicy", "access-logs-staging-euw1")).policy)).Statement).toEqual([
      {
        Sid: "S3ServerAccessLogDelivery", Effect: "Allow", Principal: { Service: "logging.s3.amazonaws.com" }, Action: "s3:PutObject",
        Resource: "arn:aws:s3:::tenancy-staging-euw1-access-logs-111111111111/*",
        Condition: { ArnLike: { "aws:SourceArn": "arn:aws:s3:::tenancy-staging-*" }, StringEquals: { "aws:SourceAccount": "111111111111" } },
      },
      {
        Sid: "DenyInsecureTransport", Effect: "Deny", Principal: "*", Action: "s3:*",
        Resource: ["arn:aws:s3:::tenancy-staging-euw1-access-logs-111111111111", "arn:aws:s3:::tenancy-staging-euw1-access-logs-111111111111/*"],
        Condition: { Bool: { "aws:SecureTransport": "false" } },
      },
    ]);
    expect(strip(byTypeName(r, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "access-logs-staging-euw1")).rules).toEqual([{
      id: "expire-access-logs", status: "Enabled", filter: {}, expiration: { days: 400 }, noncurrentVersionExpiration: { noncurrentDays: 30 },
      abortIncompleteMultipartUpload: { daysAfterInitiation: 7 },
    }]);
  });

  it("interface endpoints for the six services with private DNS in the services subnets; the S3 gateway endpoint on the private tables", () => {
    const r = get("platform-eu-west-1");
    const services = ["hub-euw1-services-eu-west-1a", "hub-euw1-services-eu-west-1b"].map((n) => mockId(T.subnet, n, "platform-eu-west-1"));
    for (const [n, svc] of [["secretsmanager", "secretsmanager"], ["kms", "kms"], ["sts", "sts"], ["logs", "logs"], ["ecr-api", "ecr.api"], ["ecr-dkr", "ecr.dkr"]]) {
      expect(strip(byTypeName(r, "aws:ec2/vpcEndpoint:VpcEndpoint", `hub-euw1-endpoints-${n}`))).toEqual({
        vpcId: mockId(T.vpc, "hub-euw1-network-vpc", "platform-eu-west-1"), serviceName: `com.amazonaws.eu-west-1.${svc}`, vpcEndpointType: "Interface", privateDnsEnabled: true,
        subnetIds: services, securityGroupIds: [mockId(T.sg, "hub-euw1-endpoints", "platform-eu-west-1")],
      });
    }
    expect(strip(byTypeName(r, "aws:ec2/vpcEndpoint:VpcEndpoint", "hub-euw1-endpoints-s3"))).toEqual({
      vpcId: mockId(T.vpc, "hub-euw1-network-vpc", "platform-eu-west-1"), serviceName: "com.amazonaws.eu-west-1.s3", vpcEndpointType: "Gateway",
      routeTableIds: ["eu-west-1a", "eu-west-1b"].map((az) => mockId(T.routeTable, `hub-euw1-network-private-${az}`, "platform-eu-west-1")),
    });
    expect(strip(byTypeName(r, T.ingress, "hub-euw1-endpoints-from-hub"))).toEqual({ securityGroupId: mockId(T.sg, "hub-euw1-endpoints", "platform-eu-west-1"), cidrIpv4: "10.255.0.0/16", ipProtocol: "tcp", fromPort: 443, toPort: 443 });
  });
});

describe("runner", () => {
  it("no ingress; HTTPS out, Postgres only to the region's spokes and the control plane's services subnets", () => {
    const r = get("platform-eu-west-1");
    const sg = mockId(T.sg, "runner-euw1-sg", "platform-eu-west-1");
    expect(ofType(r, T.ingress).filter((x) => plain(x).securityGroupId === sg)).toEqual([]);
    expect(ofType(r, T.egress).map(strip).filter((x) => x.securityGroupId === sg).map((x) => `${x.cidrIpv4}:${x.fromPort}`).sort()).toEqual([
      "0.0.0.0/0:443", "10.0.192.0/22:5432", "10.0.196.0/22:5432", "10.21.0.0/16:5432", "10.64.0.0/10:5432",
    ]);
  });

  it("a Fargate service of the configured image in the runner subnets, serving its region only, ECS exec on, database URL from the control plane's secret", () => {
    const r = get("platform-eu-west-1");
    const td = plain(byTypeName(r, "aws:ecs/taskDefinition:TaskDefinition", "runner-euw1"));
    const [container] = json(td.containerDefinitions) as Record<string, unknown>[];
    expect(container).toMatchObject({
      name: "runner",
      image: "111111111111.dkr.ecr.eu-west-1.amazonaws.com/tenancy-control-plane:0.1.0",
      environment: [{ name: "TENANCY_WORKER_REGIONS", value: "eu-west-1" }],
      // The control plane's secret in us-east-1, by full ARN (read through the StackReference).
      secrets: [{ name: "DATABASE_URL", valueFrom: (platformReferenceOutputs(fleet, "organization/saas-tenancy/platform-us-east-1")!.stack as Record<string, unknown>).databaseUrlSecretArn }],
    });
    expect(td).toMatchObject({ requiresCompatibilities: ["FARGATE"], networkMode: "awsvpc", cpu: "1024", memory: "4096", taskRoleArn: expect.stringContaining(":role/tenancy-runner-eu-west-1") });
    const svc = plain(byTypeName(r, "aws:ecs/service:Service", "runner-euw1"));
    expect(svc).toMatchObject({
      launchType: "FARGATE", desiredCount: 1, enableExecuteCommand: true,
      networkConfiguration: { subnets: ["eu-west-1a", "eu-west-1b"].map((az) => mockId(T.subnet, `hub-euw1-network-private-${az}`, "platform-eu-west-1")), securityGroups: [mockId(T.sg, "runner-euw1-sg", "platform-eu-west-1")], assignPublicIp: false },
    });
    const policy = json(plain(byTypeName(r, T.rolePolicy, "runner-euw1-role")).policy) as { Statement: { Action: unknown; Resource: unknown }[] };
    expect(policy.Statement[0]).toMatchObject({ Action: "sts:AssumeRole", Resource: "arn:aws:iam::111111111111:role/tenancy-deployer" });
  });
});

describe("control plane", () => {
  const r = () => get("platform-us-east-1");

  it("ALB: HTTPS with the validated certificate for api.<domain>, HTTP only redirects, default 404", () => {
    expect(strip(byTypeName(r(), "aws:acm/certificate:Certificate", "control-plane-cert"))).toEqual({ domainName: "api.tenancy.example.com", validationMethod: "DNS" });
    const https = plain(byTypeName(r(), "aws:lb/listener:Listener", "control-plane-https"));
    expect(https).toMatchObject({ port: 443, protocol: "HTTPS", sslPolicy: "ELBSecurityPolicy-TLS13-1-2-2021-06", defaultActions: [{ type: "fixed-response", fixedResponse: { statusCode: "404" } }] });
    const http = plain(byTypeName(r(), "aws:lb/listener:Listener", "control-plane-http"));
    expect(http).toMatchObject({ port: 80, protocol: "HTTP", defaultActions: [{ type: "redirect", redirect: { protocol: "HTTPS", port: "443", statusCode: "HTTP_301" } }] });
    expect(plain(byTypeName(r(), "aws:lb/loadBalancer:LoadBalancer", "control-plane"))).toMatchObject({ internal: false, dropInvalidHeaderFields: true });
  });

  it("only /webhooks/stripe is public; /api/* and /console/* only from the operator CIDRs", () => {
    const rules = ofType(r(), "aws:lb/listenerRule:ListenerRule").map(plain).map((x) => ({ priority: x.priority, conditions: x.conditions }));
    expect(rules.sort((a, b) => Number(a.priority) - Number(b.priority))).toEqual([
      { priority: 10, conditions: [{ pathPattern: { values: ["/webhooks/stripe"] } }] },
      { priority: 100, conditions: [{ pathPattern: { values: ["/api/*"] } }, { sourceIp: { values: ["198.51.100.0/24"] } }] },
      { priority: 200, conditions: [{ pathPattern: { values: ["/console/*"] } }, { sourceIp: { values: ["198.51.100.0/24"] } }] },
    ]);
  });

  it("security groups: the tasks admit the ALB's group alone; the database admits the tasks and the runner subnets of every region, nothing else", () => {
    const alb = mockId(T.sg, "control-plane-alb-sg", "platform-us-east-1");
    const task = mockId(T.sg, "control-plane-task-sg", "platform-us-east-1");
    const db = mockId(T.sg, "control-plane-db-sg", "platform-us-east-1");
    const ingress = ofType(r(), T.ingress).map(strip);
    expect(ingress.filter((x) => x.securityGroupId === task)).toEqual([{ securityGroupId: task, referencedSecurityGroupId: alb, ipProtocol: "tcp", fromPort: 8080, toPort: 8080 }]);
    expect(ingress.filter((x) => x.securityGroupId === db).map((x) => x.referencedSecurityGroupId === task ? "task" : `${x.cidrIpv4}:${x.fromPort}`).sort()).toEqual([
      "10.0.0.0/20:5432", "10.0.16.0/20:5432", "10.255.0.0/20:5432", "10.255.16.0/20:5432", "task",
    ]);
    expect(ingress.filter((x) => x.securityGroupId === alb).map((x) => `${x.cidrIpv4}:${x.fromPort}`).sort()).toEqual(["0.0.0.0/0:443", "0.0.0.0/0:80"]);
    expect(plain(byTypeName(r(), T.rds, "control-plane-db"))).toMatchObject({ vpcSecurityGroupIds: [db], publiclyAccessible: false, multiAz: true, deletionProtection: true });
  });

  it("secrets in the global namespace of the platform env; the control-plane role keeps its name; the deployer trusts the runners only", () => {
    expect(ofType(r(), T.secret).map((x) => plain(x).name).sort()).toEqual([
      "tenancy/prod/global/control-plane/api-keys",
      "tenancy/prod/global/control-plane/database",
      "tenancy/prod/global/control-plane/database-url",
      "tenancy/prod/global/control-plane/stripe-webhook-secret",
    ]);
    expect(plain(byTypeName(r(), T.role, "control-plane-role")).name).toBe("tenancy-control-plane");
    expect(byTypeName(r(), T.role, "control-plane-role").options.protect).toBe(true);
    const trust = json(plain(byTypeName(r(), T.role, "control-plane-deployer")).assumeRolePolicy);
    expect(trust).toEqual({
      Version: "2012-10-17",
      Statement: [{
        Sid: "RunnersAssume", Effect: "Allow", Principal: { AWS: "arn:aws:iam::111111111111:root" }, Action: "sts:AssumeRole",
        Condition: { ArnEquals: { "aws:PrincipalArn": ["arn:aws:iam::111111111111:role/tenancy-runner-us-east-1", "arn:aws:iam::111111111111:role/tenancy-runner-eu-west-1"] } },
      }],
    });
  });

  it("the service runs behind the target group in the services subnets with the control-plane role as its task role", () => {
    const svc = plain(byTypeName(r(), "aws:ecs/service:Service", "control-plane"));
    expect(svc).toMatchObject({
      launchType: "FARGATE",
      networkConfiguration: { subnets: ["us-east-1a", "us-east-1b"].map((az) => mockId(T.subnet, `hub-use1-services-${az}`, "platform-us-east-1")), securityGroups: [mockId(T.sg, "control-plane-task-sg", "platform-us-east-1")], assignPublicIp: false },
      loadBalancers: [{ containerName: "control-plane", containerPort: 8080 }],
    });
    const td = plain(byTypeName(r(), "aws:ecs/taskDefinition:TaskDefinition", "control-plane"));
    expect(td.taskRoleArn).toBe("arn:aws:iam::111111111111:role/tenancy-control-plane");
    // It takes no stack runs: the regions' runners do (they alone reach their region's databases).
    const [container] = json(td.containerDefinitions) as Record<string, unknown>[];
    expect(container!.environment).toEqual([
      { name: "PORT", value: "8080" },
      { name: "TENANCY_WORKER_REGIONS", value: "none" },
      { name: "TENANCY_TRUST_PROXY", value: "10.0.128.0/24,10.0.129.0/24" },
    ]);
    // Secrets from Secrets Manager, by ARN: the database URL and the Stripe endpoint's signing secret.
    const arn = (secret: string) => expect.stringMatching(new RegExp(`^arn:aws:secretsmanager:us-east-1:111111111111:secret:tenancy/prod/global/control-plane/${secret}-[0-9a-f]{6}$`));
    expect(container!.secrets).toEqual([
      { name: "DATABASE_URL", valueFrom: arn("database-url") },
      { name: "STRIPE_WEBHOOK_SECRET", valueFrom: arn("stripe-webhook-secret") },
    ]);
  });

  it("X-Forwarded-For is believed from the subnets the ALB lives in, and from nowhere else", () => {
    const alb = plain(byTypeName(r(), "aws:lb/loadBalancer:LoadBalancer", "control-plane"));
    const publicIds = ["us-east-1a", "us-east-1b"].map((az) => mockId(T.subnet, `hub-use1-egress-public-${az}`, "platform-us-east-1"));
    expect(alb.subnets).toEqual(publicIds);
    const albCidrs = ofType(r(), T.subnet).filter((x) => x.name.startsWith("hub-use1-egress-public-")).map((x) => plain(x).cidrBlock).sort();
    const [container] = json(plain(byTypeName(r(), "aws:ecs/taskDefinition:TaskDefinition", "control-plane")).containerDefinitions) as { environment: { name: string; value: string }[] }[];
    const trust = container!.environment.find((e) => e.name === "TENANCY_TRUST_PROXY")!.value;
    expect(trust.split(",")).toEqual(albCidrs);
    // The control plane reads the value as a list of CIDRs (a hop count or "off" would be wrong here).
    const lines: string[] = [];
    expect(httpSettingsFrom((n) => (n === "TENANCY_TRUST_PROXY" ? trust : undefined), lines).trustProxy).toEqual(["10.0.128.0/24", "10.0.129.0/24"]);
    expect(lines).toEqual([]);
  });
});

describe("listener rule planner", () => {
  it("chunks operator CIDRs by 4 per rule (5 condition values with the path), priorities stable per path", () => {
    const cidrs = ["10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24", "10.4.0.0/24", "10.5.0.0/24"];
    expect(planListenerRules(cidrs).map((x) => [x.key, x.priority, x.paths.length + (x.sourceCidrs?.length ?? 0)])).toEqual([
      ["public-0", 10, 1], ["operators-api-0", 100, 5], ["operators-api-1", 101, 2], ["operators-console-0", 200, 5], ["operators-console-1", 201, 2],
    ]);
  });

  it("refuses no operator CIDR and the whole internet", () => {
    expect(() => planListenerRules([])).toThrow(/operatorCidrs is empty/);
    expect(() => planListenerRules(["0.0.0.0/0"])).toThrow(/whole internet/);
  });
});
