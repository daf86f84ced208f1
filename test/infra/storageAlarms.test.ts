/**
 * Per-tenant storage alarms (infra/model/storageAlarms.ts, docs/runtime-config.md): the exact
 * alarms and inputs each cell and dedicated stack declares per tenant, their topic, and who
 * declares them through an upgrade (the alarm goes with the tenant: the cell's until cutover, the
 * dedicated stack's from provisioning), never retained on delete.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { requireFleet } from "../../infra/model/fleet.ts";
import { moveStartEdit } from "../../infra/model/fleetFiles/index.ts";
import type { RenderedStack } from "../../plan/types.ts";
import { byTypeName, editYaml, exampleFleet, ofType, plain, render, tempFleet, upgradingStartupAlpha } from "./support.ts";

const ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm";
const TOPIC = "aws:sns/topic:Topic";
const GIB = 1024 ** 3;

function alarms(r: RenderedStack): Record<string, Record<string, unknown>> {
  return Object.fromEntries(ofType(r, ALARM).map((a) => [a.name, plain(a)]));
}
const names = (r: RenderedStack) => ofType(r, ALARM).map((a) => a.name).sort();
const topicArn = (r: RenderedStack) => `arn:aws:sns:us-east-1:111111111111:tenancy-prod-${r.name === "dedicated-acme-prod" ? "acme" : "use1-01"}-alarms`;

describe("storage alarms of the example fleet", () => {
  it("a cell: one alarm per tenant it serves, on the application's metric, against the tenant's storageGb; its topic", async () => {
    const r = await render(exampleFleet(), "shared-prod-use1-01");
    expect(ofType(r, TOPIC).map((t) => [t.name, plain(t).name, (plain(t).tags as Record<string, string>).tenant])).toEqual([
      ["storage-alarms-topic", "tenancy-prod-use1-01-alarms", "shared"],
    ]);
    const got = alarms(r);
    expect(Object.keys(got).sort()).toEqual(["storage-alarms-freebie-one-object-storage", "storage-alarms-shared-db-free-storage", "storage-alarms-startup-alpha-object-storage"]);
    // Its own database, shared by the tenants: 10% of the rendered instance's allocated storage, tagged shared.
    const db = plain(ofType(r, "aws:rds/instance:Instance")[0]!);
    const { alarmActions: _a, okActions: _o, alarmDescription: _d, ...cellDb } = got["storage-alarms-shared-db-free-storage"]!;
    expect(cellDb).toEqual({
      name: "tenancy/prod/cells/use1-01/db-free-storage/shared-prod-use1-01",
      namespace: "AWS/RDS", metricName: "FreeStorageSpace", dimensions: { DBInstanceIdentifier: db.identifier },
      statistic: "Minimum", period: 300, evaluationPeriods: 6, threshold: Math.round(Number(db.allocatedStorage) * 0.1 * GIB),
      comparisonOperator: "LessThanThreshold", treatMissingData: "missing",
      tags: { tenant: "shared", env: "prod", stack: "shared-prod-use1-01", "managed-by": "saas-tenancy" },
    });
    const { alarmActions, okActions, ...rest } = got["storage-alarms-startup-alpha-object-storage"]!;
    expect(rest).toEqual({
      name: "tenancy/prod/tenants/startup-alpha/object-storage/shared-prod-use1-01",
      alarmDescription: "Objects of tenant startup-alpha (prod) under tenants/startup-alpha/ in tenancy-prod-use1-01-data-111111111111 exceed storageGb 25 GiB (reported by the application)",
      namespace: "tenancy/Tenants",
      metricName: "ObjectStorageBytes",
      dimensions: { Env: "prod", Tenant: "startup-alpha" },
      statistic: "Maximum",
      period: 86400,
      evaluationPeriods: 1,
      threshold: 25 * GIB,
      comparisonOperator: "GreaterThanThreshold",
      treatMissingData: "missing",
      tags: { tenant: "startup-alpha", env: "prod", stack: "shared-prod-use1-01", "managed-by": "saas-tenancy" },
    });
    // The mock runtime gives the topic an ARN; both actions go to it.
    expect(alarmActions).toEqual(okActions);
    expect((alarmActions as unknown[]).length).toBe(1);
    expect(got["storage-alarms-freebie-one-object-storage"]!.threshold).toBe(1 * GIB);
  });

  it("a dedicated stack: its bucket's size against storageGb and its database's free storage", async () => {
    const r = await render(exampleFleet(), "dedicated-acme-prod");
    expect(ofType(r, TOPIC).map((t) => [plain(t).name, (plain(t).tags as Record<string, string>).tenant])).toEqual([["tenancy-prod-acme-alarms", "acme"]]);
    const got = alarms(r);
    const strip = (a: Record<string, unknown>) => { const { alarmActions: _a, okActions: _o, tags: _t, alarmDescription: _d, ...rest } = a; return rest; };
    expect(Object.fromEntries(Object.entries(got).map(([k, v]) => [k, strip(v)]))).toEqual({
      "storage-alarms-acme-bucket-size": {
        name: "tenancy/prod/tenants/acme/bucket-size/dedicated-acme-prod",
        namespace: "AWS/S3", metricName: "BucketSizeBytes", dimensions: { BucketName: "tenancy-prod-acme-data-111111111111", StorageType: "StandardStorage" },
        statistic: "Average", period: 86400, evaluationPeriods: 1, threshold: 1000 * GIB, comparisonOperator: "GreaterThanThreshold", treatMissingData: "notBreaching",
      },
      "storage-alarms-acme-db-free-storage": {
        name: "tenancy/prod/tenants/acme/db-free-storage/dedicated-acme-prod",
        namespace: "AWS/RDS", metricName: "FreeStorageSpace", dimensions: { DBInstanceIdentifier: "tenancy-prod-acme" },
        statistic: "Minimum", period: 300, evaluationPeriods: 6, threshold: expect.any(Number) as unknown, comparisonOperator: "LessThanThreshold", treatMissingData: "missing",
      },
    });
    // 10% of the database's allocated storage (the rendered instance's own value).
    const db = ofType(r, "aws:rds/instance:Instance")[0]!;
    expect(got["storage-alarms-acme-db-free-storage"]!.threshold).toBe(Math.round(Number(plain(db).allocatedStorage) * 0.1 * GIB));
    expect(got["storage-alarms-acme-bucket-size"]!.tags).toEqual({ tenant: "acme", env: "prod", stack: "dedicated-acme-prod", "managed-by": "saas-tenancy" });
  });

  it("no alarm is retained on delete: offboarding or a stack's destroy deletes them with the tenant", async () => {
    for (const name of ["shared-prod-use1-01", "dedicated-acme-prod"]) {
      const r = await render(exampleFleet(), name);
      expect([...ofType(r, ALARM), ...ofType(r, TOPIC)].filter((x) => x.options.retainOnDelete || x.options.protect)).toEqual([]);
      expect(topicArn(r)).toContain(name === "dedicated-acme-prod" ? "acme" : "use1-01");
    }
  });

  it("a tier change in place changes the threshold of the same alarm (no replacement: same name)", async () => {
    const upgraded = tempFleet((dir) => editYaml(dir, "tenants/freebie-one.yaml", (d) => void (d.tier = "standard")));
    const r = await render(upgraded, "shared-prod-use1-01");
    const a = alarms(r)["storage-alarms-freebie-one-object-storage"]!;
    expect([a.name, a.threshold]).toEqual(["tenancy/prod/tenants/freebie-one/object-storage/shared-prod-use1-01", 25 * GIB]);
  });
});

describe("storage alarms through an upgrade to dedicated (startup-alpha, prod, from cell use1-01)", () => {
  function upgraded(phase?: string) {
    return upgradingStartupAlpha(phase);
  }

  it("the cell alarms while it serves the tenant; the dedicated stack from provisioning on; their names never collide", async () => {
    const got: Record<string, string[]> = {};
    for (const phase of ["provisioning", "copying", "cutover", "cleanup", undefined]) {
      const f = upgraded(phase);
      const cell = names(await render(f, "shared-prod-use1-01")).filter((n) => n.includes("startup-alpha"));
      const ded = names(await render(f, "dedicated-startup-alpha-prod"));
      got[String(phase)] = [...cell, ...ded];
    }
    const cell = ["storage-alarms-startup-alpha-object-storage"];
    const ded = ["storage-alarms-startup-alpha-bucket-size", "storage-alarms-startup-alpha-db-free-storage"];
    expect(got).toEqual({ provisioning: [...cell, ...ded], copying: [...cell, ...ded], cutover: ded, cleanup: ded, undefined: ded });
  }, 120_000);
});

describe("the metrics name the resources the stacks render", () => {
  it("dedicated: BucketName is its bucket, DBInstanceIdentifier its instance; a cell's description names its bucket", async () => {
    const ded = await render(exampleFleet(), "dedicated-acme-prod");
    const got = alarms(ded);
    expect(got["storage-alarms-acme-bucket-size"]!.dimensions).toEqual({ BucketName: plain(byTypeName(ded, "aws:s3/bucket:Bucket", "tenant-acme-bucket")).bucket, StorageType: "StandardStorage" });
    expect(got["storage-alarms-acme-db-free-storage"]!.dimensions).toEqual({ DBInstanceIdentifier: plain(byTypeName(ded, "aws:rds/instance:Instance", "tenant-acme-db")).identifier });
    const cell = await render(exampleFleet(), "shared-prod-use1-01");
    const bucket = String(plain(ofType(cell, "aws:s3/bucket:Bucket")[0]!).bucket);
    expect(String(alarms(cell)["storage-alarms-freebie-one-object-storage"]!.alarmDescription)).toContain(` in ${bucket} `);
  });
});

describe("storage alarms through a move between cells (startup-alpha, prod, use1-01 to use1-02)", () => {
  async function moving(phase: string) {
    const base = exampleFleet();
    let dir = "";
    tempFleet((d) => {
      dir = d;
      const path = join(d, "tenants/startup-alpha.yaml");
      const t = base.tenants.get("startup-alpha")!.tenant;
      writeFileSync(path, moveStartEdit(base, readFileSync(path, "utf8"), t, "prod", "use1-02", "0b5a4a4e-6a8e-4c31-9d1e-3f1f6a3c2b10", new Date("2026-12-01T10:00:00Z"))["tenants/startup-alpha.yaml"]!);
      editYaml(d, "tenants/startup-alpha.yaml", (doc) => void ((doc.move as Record<string, unknown>).phase = phase));
    });
    const fleet = requireFleet({ projectDir: dir });
    const mine = (r: RenderedStack) => ofType(r, ALARM).filter((a) => a.name.includes("startup-alpha")).map((a) => String(plain(a).name));
    return [...mine(await render(fleet, "shared-prod-use1-01")), ...mine(await render(fleet, "shared-prod-use1-02"))];
  }

  it("the cell serving the tenant declares its alarm, under a name of its own: the source until the switch, the destination from it", async () => {
    const src = "tenancy/prod/tenants/startup-alpha/object-storage/shared-prod-use1-01";
    const dst = "tenancy/prod/tenants/startup-alpha/object-storage/shared-prod-use1-02";
    const got: Record<string, string[]> = {};
    for (const phase of ["provisioning", "copying", "cutover", "cleanup"]) got[phase] = await moving(phase);
    expect(got).toEqual({ provisioning: [src], copying: [src], cutover: [dst], cleanup: [dst] });
  }, 120_000);
});
