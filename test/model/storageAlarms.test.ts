/**
 * Per-tenant storage alarm specs (infra/model/storageAlarms.ts): exact specs per tier for the
 * example fleet, who would declare them through an upgrade (the serving cell until cutover, the
 * dedicated stack from provisioning on), names unique per declaring stack, thresholds following the
 * tenant's limits, and CloudWatch's own limits on every spec. The renders are tested in
 * test/infra/storageAlarms.test.ts (docs/runtime-config.md).
 */
import { describe, expect, it } from "vitest";
import type { Tenant } from "../../infra/model/schema.ts";
import { alarmSpecProblems, cellStorageAlarms, dedicatedStorageAlarms, GIB, pooledStorageAlarms, storageAlarmName, type StorageAlarmSpec } from "../../infra/model/storageAlarms.ts";
import { exampleFleet } from "../infra/support.ts";

const fleet = exampleFleet();
const tenant = (id: string) => fleet.tenants.get(id)!.tenant;

describe("pooled: the application's per-tenant metric against storageGb, declared by the serving cell", () => {
  it("startup-alpha (standard, 25 GiB) in shared-prod-use1-01: exact spec", () => {
    expect(pooledStorageAlarms(fleet.platform, tenant("startup-alpha"), "prod", "shared-prod-use1-01")).toEqual([{
      key: "object-storage",
      tenant: "startup-alpha",
      alarmName: "tenancy/prod/tenants/startup-alpha/object-storage/shared-prod-use1-01",
      description: "Objects of tenant startup-alpha (prod) under tenants/startup-alpha/ in tenancy-prod-use1-01-data-111111111111 exceed storageGb 25 GiB (reported by the application)",
      namespace: "tenancy/Tenants",
      metricName: "ObjectStorageBytes",
      dimensions: { Env: "prod", Tenant: "startup-alpha" },
      statistic: "Maximum",
      period: 86400,
      evaluationPeriods: 1,
      threshold: 25 * GIB,
      comparisonOperator: "GreaterThanThreshold",
      treatMissingData: "missing",
    }]);
  });

  it("negative control: no spec in a stack that does not serve the tenant, nor for a dedicated tenant", () => {
    expect(pooledStorageAlarms(fleet.platform, tenant("startup-alpha"), "prod", "shared-prod-use1-02")).toEqual([]);
    expect(pooledStorageAlarms(fleet.platform, tenant("acme"), "prod", "dedicated-acme-prod")).toEqual([]);
  });

  it("the threshold follows the tenant's limits (a tier change or a storageGb override changes it in place)", () => {
    const t = tenant("freebie-one");
    expect(pooledStorageAlarms(fleet.platform, t, "prod", "shared-prod-use1-01")[0]!.threshold).toBe(1 * GIB);
    const raised = { ...t, limits: { ...t.limits, storageGb: 7 } } as Tenant;
    expect(pooledStorageAlarms(fleet.platform, raised, "prod", "shared-prod-use1-01")[0]!.threshold).toBe(7 * GIB);
  });
});

describe("dedicated: its bucket's size and its database's free storage", () => {
  it("acme prod: exact specs", () => {
    const specs = dedicatedStorageAlarms(fleet.platform, tenant("acme"), "prod", "dedicated-acme-prod");
    expect(specs.map(({ description: _d, ...rest }) => rest)).toEqual([
      {
        key: "bucket-size", tenant: "acme", alarmName: "tenancy/prod/tenants/acme/bucket-size/dedicated-acme-prod",
        namespace: "AWS/S3", metricName: "BucketSizeBytes", dimensions: { BucketName: "tenancy-prod-acme-data-111111111111", StorageType: "StandardStorage" },
        statistic: "Average", period: 86400, evaluationPeriods: 1, threshold: 1000 * GIB, comparisonOperator: "GreaterThanThreshold", treatMissingData: "notBreaching",
      },
      {
        key: "db-free-storage", tenant: "acme", alarmName: "tenancy/prod/tenants/acme/db-free-storage/dedicated-acme-prod",
        namespace: "AWS/RDS", metricName: "FreeStorageSpace", dimensions: { DBInstanceIdentifier: "tenancy-prod-acme" },
        statistic: "Minimum", period: 300, evaluationPeriods: 6, threshold: Math.round(200 * 0.1 * GIB), comparisonOperator: "LessThanThreshold", treatMissingData: "missing",
      },
    ]);
    expect(specs[1]!.description).toBe("Database tenancy-prod-acme of tenant acme (prod) has had under 10% of its 200 GiB free for 30 minutes: storage autoscaling is at its ceiling or waiting");
  });

  it("negative control: none for a pooled tenant", () => {
    expect(dedicatedStorageAlarms(fleet.platform, tenant("startup-alpha"), "prod", "dedicated-startup-alpha-prod")).toEqual([]);
  });
});

describe("through an upgrade (startup-alpha to dedicated, from cell use1-01)", () => {
  const upgraded = (phase?: "provisioning" | "copying" | "cutover" | "cleanup"): Tenant => {
    const t = tenant("startup-alpha");
    return {
      ...t, tier: "dedicated", deployment: "dedicated", placement: undefined,
      dedicated: { prod: { cidr: "10.68.0.0/16" }, staging: { cidr: "10.69.0.0/16" } },
      ...(phase ? { migration: { phase, from: { prod: "use1-01", staging: "use1-01" }, fromTier: "standard", startedAt: "2026-01-10T09:00:00Z" } } : {}),
    } as unknown as Tenant;
  };

  it("the cell's alarm until cutover (with the cell tier's limit), the dedicated stack's from provisioning; the names never collide", () => {
    const got: Record<string, string[]> = {};
    for (const phase of ["provisioning", "copying", "cutover", "cleanup", undefined] as const) {
      const t = upgraded(phase);
      got[String(phase)] = [
        ...pooledStorageAlarms(fleet.platform, t, "prod", "shared-prod-use1-01").map((a) => `${a.alarmName} ${a.threshold / GIB}`),
        ...dedicatedStorageAlarms(fleet.platform, t, "prod", "dedicated-startup-alpha-prod").map((a) => a.alarmName),
      ];
    }
    const cell = ["tenancy/prod/tenants/startup-alpha/object-storage/shared-prod-use1-01 25"];
    const ded = ["tenancy/prod/tenants/startup-alpha/bucket-size/dedicated-startup-alpha-prod", "tenancy/prod/tenants/startup-alpha/db-free-storage/dedicated-startup-alpha-prod"];
    expect(got).toEqual({ provisioning: [...cell, ...ded], copying: [...cell, ...ded], cutover: ded, cleanup: ded, undefined: ded });
  });

  it("names carry the declaring stack: two cells of a move never share one", () => {
    expect(storageAlarmName("tenancy", "prod", "freebie-one", "object-storage", "shared-prod-use1-01"))
      .not.toBe(storageAlarmName("tenancy", "prod", "freebie-one", "object-storage", "shared-prod-use1-02"));
  });
});

describe("what CloudWatch accepts (PutMetricAlarm limits)", () => {
  const every = (): StorageAlarmSpec[] => {
    const out: StorageAlarmSpec[] = [];
    for (const s of fleet.stacks.values()) {
      if (s.ref.kind === "dedicated") out.push(...dedicatedStorageAlarms(fleet.platform, tenant(s.ref.tenant), s.ref.env, s.ref.name));
      if (s.ref.kind !== "shared") continue;
      out.push(...cellStorageAlarms(fleet.platform, fleet.cells.get(s.ref.name)!, s.ref.name));
      for (const { tenant: t } of fleet.tenants.values()) if (s.ref.env in t.environments) out.push(...pooledStorageAlarms(fleet.platform, t, s.ref.env, s.ref.name));
    }
    return out;
  };

  it("every spec of the example fleet passes; names are unique across the fleet", () => {
    const specs = every();
    // 8 pooled tenant envs served by cells, 4 cell databases, 4 dedicated stacks with 2 each.
    expect(specs.length).toBe(20);
    expect(specs.flatMap(alarmSpecProblems)).toEqual([]);
    expect(new Set(specs.map((a) => a.alarmName)).size).toBe(specs.length);
  });

  it("the longest name the schemas allow fits in 255 characters (12-character app, 7-character env, 24-character tenant)", () => {
    const app = "a".repeat(12), env = "e".repeat(7), id = "t".repeat(24);
    const name = storageAlarmName(app, env, id, "db-free-storage", `dedicated-${id}-${env}`);
    expect(name.length).toBe(112);
    const spec = dedicatedStorageAlarms(fleet.platform, tenant("acme"), "prod", "dedicated-acme-prod")[1]!;
    expect(alarmSpecProblems({ ...spec, alarmName: name })).toEqual([]);
  });

  it("negative controls: each limit is caught with its message", () => {
    const day = pooledStorageAlarms(fleet.platform, tenant("startup-alpha"), "prod", "shared-prod-use1-01")[0]!;
    expect(alarmSpecProblems({ ...day, evaluationPeriods: 2 })).toEqual([
      "tenancy/prod/tenants/startup-alpha/object-storage/shared-prod-use1-01 evaluates 86400 s x 2 periods = 172800 s; CloudWatch allows at most 86400 s (one day)",
    ]);
    expect(alarmSpecProblems({ ...day, alarmName: "x".repeat(256) })).toEqual([`alarm name "${"x".repeat(256)}" has 256 characters; CloudWatch allows 1-255`]);
    expect(alarmSpecProblems({ ...day, period: 120, evaluationPeriods: 1 })).toEqual([]);
    expect(alarmSpecProblems({ ...day, period: 45, evaluationPeriods: 1 })).toEqual([`period 45 s of ${day.alarmName}: CloudWatch allows 10, 20, 30 or a multiple of 60`]);
    expect(alarmSpecProblems({ ...day, namespace: "tenancy:Tenants" })).toEqual([`namespace "tenancy:Tenants" of ${day.alarmName} contains ':', which CloudWatch refuses`]);
  });
});

describe("a cell's own database (shared by its pooled tenants)", () => {
  it("shared-prod-use1-01: free storage under 10% of the cell's allocated storage for 30 minutes; a cell's own size wins over the default", () => {
    const cell = fleet.cells.get("shared-prod-use1-01")!;
    const [spec] = cellStorageAlarms(fleet.platform, cell, "shared-prod-use1-01");
    const gb = cell.config.dbAllocatedStorageGb ?? fleet.platform.cellDefaults.dbAllocatedStorageGb;
    expect(spec).toEqual({
      key: "db-free-storage", tenant: "shared", alarmName: "tenancy/prod/cells/use1-01/db-free-storage/shared-prod-use1-01",
      description: `Database tenancy-prod-use1-01 of cell use1-01 (prod), shared by its pooled tenants, has had under 10% of its ${gb} GiB free for 30 minutes: storage autoscaling is at its ceiling or waiting`,
      namespace: "AWS/RDS", metricName: "FreeStorageSpace", dimensions: { DBInstanceIdentifier: "tenancy-prod-use1-01" },
      statistic: "Minimum", period: 300, evaluationPeriods: 6, threshold: Math.round(gb * 0.1 * GIB), comparisonOperator: "LessThanThreshold", treatMissingData: "missing",
    });
    const bigger = { ...cell, config: { ...cell.config, dbAllocatedStorageGb: 1000 } };
    expect(cellStorageAlarms(fleet.platform, bigger, "shared-prod-use1-01")[0]!.threshold).toBe(Math.round(100 * GIB));
  });
});
