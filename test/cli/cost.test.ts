import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { costCommand, costReport } from "../../cli/commands/cost.ts";
import { allocate, costOfStack, formatUsd, resourceCost, type StackCost } from "../../plan/cost/cost.ts";
import { ASSUMPTIONS, HOSTED_ZONE_MONTH, HOURS_PER_MONTH, PRICES_AS_OF, REGION_PRICES } from "../../plan/cost/prices.ts";
import { bufferIo } from "../../cli/io.ts";
import { requireFleet } from "../../infra/model/fleet.ts";
import { DEDICATED_PROD_SIZING } from "../../infra/model/tiers.ts";
import type { RenderedResource, RenderedStack } from "../../plan/types.ts";
import { defineStack as fixtureProgram } from "./affected-fixture/program.ts";

const US = REGION_PRICES["us-east-1"]!;
const EU = REGION_PRICES["eu-west-1"]!;
const H = HOURS_PER_MONTH;

function res(type: string, inputs: Record<string, unknown>, name = "r"): RenderedResource {
  return {
    urn: `urn:pulumi:s::saas-tenancy::${type}::${name}`, type, name, parent: "", inputs, custom: true,
    options: { protect: false, retainOnDelete: false, deleteBeforeReplace: false, provider: "", ignoreChanges: [] },
  };
}

const total = (r: RenderedResource, region = "us-east-1") => resourceCost(r, region).lines.reduce((s, l) => s + l.monthlyUsd, 0);
const close = (actual: number, expected: number) => expect(actual).toBeCloseTo(expected, 4);

describe("the price table", () => {
  it("is dated and cites a source for every figure", () => {
    expect(PRICES_AS_OF).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    const prices = [HOSTED_ZONE_MONTH];
    for (const r of Object.values(REGION_PRICES)) {
      for (const c of Object.values(r.rdsPostgres)) prices.push(c.singleAz, c.multiAz);
      for (const s of Object.values(r.rdsStorageGbMonth)) prices.push(s.singleAz, s.multiAz);
      prices.push(r.natGatewayHour, r.natGatewayGb, r.publicIpv4Hour, r.kmsKeyMonth, r.secretMonth, r.logsIngestGb, r.vendedLogsToCloudWatchGb, r.vendedLogsToS3Gb, r.s3StandardGbMonth, r.interfaceEndpointHour);
    }
    for (const p of prices) {
      expect(p.usd).toBeGreaterThan(0);
      expect(p.source).toMatch(/https:\/\//);
    }
  });

  it("prices every RDS class the tiers and the platform use, in every platform region", () => {
    const fleet = requireFleet({ projectDir: resolve(import.meta.dirname, "../..") });
    const classes = new Set([fleet.platform.cellDefaults.dbInstanceClass, DEDICATED_PROD_SIZING.instanceClass, "db.t4g.medium"]);
    for (const s of fleet.stacks.values()) if (s.cell?.dbInstanceClass) classes.add(s.cell.dbInstanceClass);
    for (const lt of fleet.tenants.values()) {
      const t = lt.tenant;
      if (t.deployment === "dedicated") for (const e of Object.values(t.dedicated)) if (e?.database?.instanceClass) classes.add(e.database.instanceClass);
    }
    for (const region of fleet.platform.regions) {
      for (const cls of classes) expect(REGION_PRICES[region]?.rdsPostgres[cls], `${cls} in ${region}`).toBeDefined();
    }
  });
});

describe("resourceCost: arithmetic against the table", () => {
  it("RDS: instance hours by class and Multi-AZ, plus storage (Multi-AZ bills the standby's copy)", () => {
    const multi = res("aws:rds/instance:Instance", { instanceClass: "db.r6g.large", multiAz: true, allocatedStorage: 200, storageType: "gp3", tags: { tenant: "acme" } });
    const lines = resourceCost(multi, "us-east-1").lines;
    expect(lines.map((l) => l.item)).toEqual([`db.r6g.large Multi-AZ × ${H} h`, "200 GB gp3 Multi-AZ"]);
    close(lines[0]!.monthlyUsd, H * US.rdsPostgres["db.r6g.large"]!.multiAz.usd);
    close(lines[1]!.monthlyUsd, 200 * US.rdsStorageGbMonth.gp3.multiAz.usd);
    expect(lines.every((l) => l.tenant === "acme")).toBe(true);
    // Unspecified storage type: the provider's default gp2.
    const single = res("aws:rds/instance:Instance", { instanceClass: "db.t4g.medium", allocatedStorage: 50 });
    close(total(single, "eu-west-1"), H * EU.rdsPostgres["db.t4g.medium"]!.singleAz.usd + 50 * EU.rdsStorageGbMonth.gp2.singleAz.usd);
    expect(resourceCost(single, "eu-west-1").lines[0]!.unverified).toBe(!EU.rdsPostgres["db.t4g.medium"]!.singleAz.verified);
  });

  it("names what it cannot price instead of counting it as free", () => {
    expect(resourceCost(res("aws:rds/instance:Instance", { instanceClass: "db.x2g.16xlarge", allocatedStorage: 20 }), "us-east-1")).toEqual({
      lines: [],
      unpriced: { urn: "urn:pulumi:s::saas-tenancy::aws:rds/instance:Instance::r", type: "aws:rds/instance:Instance", name: "r", reason: expect.stringMatching(/db\.x2g\.16xlarge in us-east-1/) },
    });
    expect(resourceCost(res("aws:rds/instance:Instance", { instanceClass: "db.r6g.large", allocatedStorage: 20, storageType: "io1" }), "us-east-1").unpriced?.reason).toMatch(/io1/);
    expect(resourceCost(res("aws:kms/key:Key", {}), "ap-south-1").unpriced?.reason).toMatch(/no prices for region ap-south-1/);
  });

  it("NAT gateway: hours plus the assumed GB processed; a public NAT's address is its EIP", () => {
    close(total(res("aws:ec2/natGateway:NatGateway", { allocationId: "eipalloc-1" })), H * US.natGatewayHour.usd + ASSUMPTIONS.natGbPerMonth * US.natGatewayGb.usd);
    close(total(res("aws:ec2/natGateway:NatGateway", { connectivityType: "private" })), H * US.natGatewayHour.usd);
    close(total(res("aws:ec2/eip:Eip", { domain: "vpc" })), H * US.publicIpv4Hour.usd);
  });

  it("keys, secrets (replicas billed each), zones (global), buckets, logs, flow logs, endpoints, alarms", () => {
    close(total(res("aws:kms/key:Key", {})), US.kmsKeyMonth.usd);
    close(total(res("aws:secretsmanager/secret:Secret", {})), US.secretMonth.usd);
    close(total(res("aws:secretsmanager/secret:Secret", { replicas: [{ region: "eu-west-1" }] })), 2 * US.secretMonth.usd);
    close(total(res("aws:route53/zone:Zone", {}), "eu-west-1"), HOSTED_ZONE_MONTH.usd);
    close(total(res("aws:s3/bucket:Bucket", {})), ASSUMPTIONS.s3GbPerBucket * US.s3StandardGbMonth.usd);
    close(total(res("aws:cloudwatch/logGroup:LogGroup", {})), ASSUMPTIONS.logGroupGbPerMonth * US.logsIngestGb.usd);
    close(total(res("aws:ec2/flowLog:FlowLog", {})), ASSUMPTIONS.flowLogGbPerMonth * US.vendedLogsToCloudWatchGb.usd);
    close(total(res("aws:ec2/flowLog:FlowLog", { logDestinationType: "s3" })), ASSUMPTIONS.flowLogGbPerMonth * US.vendedLogsToS3Gb.usd);
    close(total(res("aws:ec2/vpcEndpoint:VpcEndpoint", { vpcEndpointType: "Interface", subnetIds: ["a", "b", "c"] })), 3 * H * US.interfaceEndpointHour.usd);
    expect(total(res("aws:ec2/vpcEndpoint:VpcEndpoint", { vpcEndpointType: "Gateway" }))).toBe(0);
    // A storage alarm is its tenant's own cost (its tenant tag); its SNS topic costs nothing to keep.
    const alarm = resourceCost(res("aws:cloudwatch/metricAlarm:MetricAlarm", { tags: { tenant: "freebie-one" } }), "eu-west-1");
    expect(alarm.lines.map((l) => [l.item, l.tenant, l.monthlyUsd])).toEqual([["metric alarm × 1 month", "freebie-one", EU.metricAlarmMonth.usd]]);
    expect(EU.metricAlarmMonth.usd).toBe(0.1);
    expect(resourceCost(res("aws:sns/topic:Topic", {}), "us-east-1")).toEqual({ lines: [] });
  });

  it("counts a flow log's own log group once: the flow log's vended-log delivery is that group's ingestion", () => {
    const group = res("aws:cloudwatch/logGroup:LogGroup", { name: "/tenancy/prod/acme/flow-logs" }, "g");
    const other = res("aws:cloudwatch/logGroup:LogGroup", { name: "/tenancy/prod/acme/rds" }, "o");
    const flow = res("aws:ec2/flowLog:FlowLog", { logDestination: "arn:aws:logs:us-east-1:111111111111:log-group:/tenancy/prod/acme/flow-logs" }, "f");
    const c = costOfStack({ name: "dedicated-acme-prod", kind: "dedicated", tenants: ["acme"], outputs: {}, resources: [group, other, flow] }, "us-east-1");
    expect(c.lines.map((l) => l.name)).toEqual(["o", "f"]);
    close(c.monthlyUsd, ASSUMPTIONS.logGroupGbPerMonth * US.logsIngestGb.usd + ASSUMPTIONS.flowLogGbPerMonth * US.vendedLogsToCloudWatchGb.usd);
  });

  it("charges nothing for what AWS does not bill by time, and honours a per-resource region", () => {
    for (const type of ["aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:iam/role:Role", "postgresql:index/schema:Schema", "aws:route53/record:Record", "random:index/randomPassword:RandomPassword"]) {
      expect(resourceCost(res(type, {}), "us-east-1")).toEqual({ lines: [] });
    }
    close(total(res("aws:kms/key:Key", { region: "eu-west-1" }), "us-east-1"), EU.kmsKeyMonth.usd);
    close(total(res("aws:s3/bucket:Bucket", { region: "eu-west-1" }), "us-east-1"), ASSUMPTIONS.s3GbPerBucket * EU.s3StandardGbMonth.usd);
  });

  it("formats money", () => {
    expect(formatUsd(1234.5)).toBe("$1,234.50");
    expect(formatUsd(-0.4)).toBe("-$0.40");
    expect(formatUsd(12, true)).toBe("+$12.00");
    expect(formatUsd(-0.4, true)).toBe("-$0.40");
    expect(formatUsd(0.001, true)).toBe("±$0.00");
  });
});

// --- stacks and tenants, rendered with the fixture program -------------------------------------

const fleet = requireFleet({ projectDir: resolve(import.meta.dirname, "../..") });

describe("cost per stack and per tenant (fixture program over the example fleet)", () => {
  it("a cell: its shared infrastructure split equally among residents, plus each tenant's own resources", async () => {
    const report = await costReport(fleet, ["shared-prod-use1-01"], { program: fixtureProgram });
    const [cell] = report.stacks as [StackCost];
    // The fixture's cell: key, Multi-AZ db.r6g.large (platform default) with 100 GB gp3, one bucket.
    const shared =
      US.kmsKeyMonth.usd +
      H * US.rdsPostgres["db.r6g.large"]!.multiAz.usd +
      fleet.platform.cellDefaults.dbAllocatedStorageGb * US.rdsStorageGbMonth.gp3.multiAz.usd +
      ASSUMPTIONS.s3GbPerBucket * US.s3StandardGbMonth.usd;
    // Residents: freebie-one (free, no secrets) and startup-alpha (standard, one secret).
    const alphaOwn = US.secretMonth.usd;
    close(cell.monthlyUsd, shared + alphaOwn);
    expect(cell.unpriced).toEqual([]);
    const byTenant = new Map(report.allocation.tenants.map((t) => [t.tenant, t]));
    expect([...byTenant.keys()]).toEqual(["freebie-one", "startup-alpha"]);
    close(byTenant.get("freebie-one")!.monthlyUsd, shared / 2);
    close(byTenant.get("startup-alpha")!.monthlyUsd, shared / 2 + alphaOwn);
    expect(byTenant.get("startup-alpha")!.stacks).toEqual([{ stack: "shared-prod-use1-01", ownUsd: alphaOwn, shareUsd: expect.closeTo(shared / 2, 4), residents: 2 }]);
    close(report.monthlyUsd, cell.monthlyUsd);
  });

  it("a dedicated tenant pays its whole stack: sized database, key, zone, secrets, NAT and its address", async () => {
    const report = await costReport(fleet, ["dedicated-megacorp-prod"], { program: fixtureProgram });
    const expected =
      US.kmsKeyMonth.usd +
      H * US.rdsPostgres["db.r6g.xlarge"]!.multiAz.usd + // megacorp's override of the prod class
      500 * US.rdsStorageGbMonth.gp3.multiAz.usd + // and of the storage
      HOSTED_ZONE_MONTH.usd +
      US.secretMonth.usd + // okta_client_secret
      H * US.publicIpv4Hour.usd +
      H * US.natGatewayHour.usd + ASSUMPTIONS.natGbPerMonth * US.natGatewayGb.usd;
    close(report.stacks[0]!.monthlyUsd, expected);
    expect(report.allocation.tenants).toEqual([
      { tenant: "megacorp", stacks: [{ stack: "dedicated-megacorp-prod", ownUsd: report.stacks[0]!.monthlyUsd, shareUsd: 0, residents: 1 }], monthlyUsd: report.stacks[0]!.monthlyUsd },
    ]);
  });

  it("leaves an empty cell's cost unallocated and says so", () => {
    const cost: StackCost = costOfStack(
      { name: "shared-prod-use1-01", kind: "shared", tenants: [], outputs: {}, resources: [res("aws:kms/key:Key", { tags: { tenant: "shared" } }), res("aws:kms/key:Key", { tags: { tenant: "ghost" } }, "g")] } satisfies RenderedStack,
      "us-east-1",
    );
    const empty = { ...fleet, tenants: new Map() };
    expect(allocate(empty, [cost])).toEqual({
      tenants: [],
      unallocated: [
        { stack: "shared-prod-use1-01", usd: US.kmsKeyMonth.usd, reason: "resources tagged with a tenant that does not live in this cell" },
        { stack: "shared-prod-use1-01", usd: US.kmsKeyMonth.usd, reason: "cell without residents" },
      ],
    });
  });

  it("tenantctl cost prints both tables, the date and the assumptions; --json the report", async () => {
    const io = bufferIo();
    const project = resolve(import.meta.dirname, "../..");
    expect(await costCommand({ stack: ["shared-prod-use1-01", "dedicated-acme-prod"], project }, io, { program: fixtureProgram })).toBe(0);
    const text = io.stdout.join("\n");
    expect(text).toMatch(/^STACK\s+KIND\s+REGION\s+TENANTS\s+MONTHLY/);
    expect(text).toMatch(/\nshared-prod-use1-01\s+shared\s+us-east-1\s+2\s+\$/);
    expect(text).toMatch(/\nTENANT\s+STACKS\s+OWN\s+CELL SHARE\s+MONTHLY/);
    expect(text).toMatch(/\nstartup-alpha\s+shared-prod-use1-01 \(1\/2\)/);
    expect(text).toContain(`Prices of ${PRICES_AS_OF}`);
    const json = bufferIo();
    expect(await costCommand({ stack: ["dedicated-acme-prod"], json: true, project }, json, { program: fixtureProgram })).toBe(0);
    const doc = JSON.parse(json.stdout.join("\n")) as { pricesAsOf: string; stacks: StackCost[] };
    expect(doc.pricesAsOf).toBe(PRICES_AS_OF);
    expect(doc.stacks.map((s) => s.stack)).toEqual(["dedicated-acme-prod"]);
    await expect(costCommand({ stack: ["nope"], project }, bufferIo(), { program: fixtureProgram })).rejects.toThrow(/unknown stack nope/);
  });
});
