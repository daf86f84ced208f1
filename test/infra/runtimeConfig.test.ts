/**
 * Runtime config documents (docs/runtime-config.md): one SSM parameter per tenant and env, in the
 * stack that serves the tenant, with exact inputs; what each tenant field changes in it; the
 * document during an upgrade; the size bound of an SSM Standard parameter.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { Fleet } from "../../infra/model/fleet.ts";
import { routeOf } from "../../infra/model/routes.ts";
import {
  renderRuntimeConfig, runtimeConfigOf, runtimeConfigParameter, SSM_STANDARD_MAX_BYTES, type RuntimeConfig,
} from "../../infra/model/runtimeConfig.ts";
import type { Tenant } from "../../infra/model/schema.ts";
import type { RenderedStack } from "../../plan/types.ts";
import { byTypeName, diffRenders, editYaml, exampleFleet, ofType, plain, render, T, tempFleet, upgradingStartupAlpha } from "./support.ts";

const fleet = exampleFleet();
const renders = new Map<string, RenderedStack>();
const get = (name: string) => renders.get(name)!;

beforeAll(async () => {
  for (const name of fleet.stacks.keys()) renders.set(name, await render(fleet, name));
}, 120_000);

function doc(r: RenderedStack, tenant: string): RuntimeConfig {
  return JSON.parse(String(plain(byTypeName(r, T.parameter, `tenant-${tenant}-config`)).insecureValue)) as RuntimeConfig;
}

describe("one document per tenant and env, published by the stack serving it", () => {
  it("every tenant env of the example fleet has exactly one parameter, in the stack routeOf names, and no other stack has one", () => {
    const expected = [...fleet.tenants.values()]
      .flatMap(({ tenant }) => Object.keys(tenant.environments).map((env) => `${routeOf(fleet, tenant, env).stack} /tenancy/${env}/tenants/${tenant.id}/config`))
      .sort();
    const found = [...renders.values()].flatMap((r) => ofType(r, T.parameter).filter((p) => String(plain(p).name).endsWith("/config")).map((p) => `${r.name} ${String(plain(p).name)}`)).sort();
    expect(found).toEqual(expected);
    expect(found).toHaveLength(12);
  });

  it("a dedicated tenant (acme, prod): exact inputs of its parameter", () => {
    const p = byTypeName(get("dedicated-acme-prod"), T.parameter, "tenant-acme-config");
    const { insecureValue, ...rest } = plain(p);
    expect(rest).toEqual({
      name: "/tenancy/prod/tenants/acme/config",
      description: "Runtime configuration of tenant acme (prod)",
      type: "String",
      tier: "Standard",
      dataType: "text",
      tags: { tenant: "acme", env: "prod", stack: "dedicated-acme-prod", "managed-by": "saas-tenancy" },
    });
    expect(JSON.parse(String(insecureValue))).toEqual({
      schemaVersion: 1,
      tenant: "acme",
      env: "prod",
      tier: "dedicated",
      deployment: "dedicated",
      region: "us-east-1",
      lifecycle: "active",
      stack: "dedicated-acme-prod",
      limits: { apiRatePerMinute: 10_000, storageGb: 1_000, maxDbConnections: 200, statementTimeoutMs: 60_000 },
      features: { sso: false, customModel: false },
      url: "https://acme.dedicated.tenancy.example.com",
      connectionDocument: "tenancy/prod/tenants/acme/database",
      storage: { bucket: "tenancy-prod-acme-data-111111111111", prefix: "tenants/acme/" },
    });
    // Plain text on purpose: not a secret, so a plan shows its diff.
    expect(p.inputs.value).toBeUndefined();
  });

  it("pooled tenants: the cell's bucket and the tier's limits with the file's overrides; a suspended tenant says so", () => {
    expect(doc(get("shared-staging-use1-01"), "startup-alpha")).toEqual({
      schemaVersion: 1,
      tenant: "startup-alpha",
      env: "staging",
      tier: "standard",
      deployment: "pooled",
      region: "us-east-1",
      lifecycle: "active",
      stack: "shared-staging-use1-01",
      limits: { apiRatePerMinute: 600, storageGb: 25, maxDbConnections: 20, statementTimeoutMs: 15_000 },
      features: { sso: false, customModel: false },
      url: "https://startup-alpha.staging.tenancy.example.com",
      connectionDocument: "tenancy/staging/tenants/startup-alpha/database",
      storage: {
        bucket: "tenancy-staging-use1-01-data-111111111111", prefix: "tenants/startup-alpha/",
        // The metric the application publishes the prefix's bytes to: the cell's storage alarm watches it.
        usageMetric: { namespace: "tenancy/Tenants", name: "ObjectStorageBytes", dimensions: { Env: "staging", Tenant: "startup-alpha" } },
      },
    });
    const beta = doc(get("shared-prod-use1-02"), "company-beta");
    expect([beta.tier, beta.limits, beta.features]).toEqual([
      "enterprise", { apiRatePerMinute: 3_000, storageGb: 250, maxDbConnections: 80, statementTimeoutMs: 30_000 }, { sso: true, customModel: false },
    ]);
    expect(doc(get("shared-prod-use1-02"), "gamma-labs").lifecycle).toBe("suspended");
  });

  it("never names a secret value: no password, no key material, only the connection document's name", () => {
    for (const r of renders.values()) {
      for (const p of ofType(r, T.parameter).filter((x) => x.name.endsWith("-config"))) {
        const text = String(plain(p).insecureValue);
        expect(text, p.urn).not.toMatch(/password|secret":|BEGIN|rotated-/i);
        expect(Object.keys(JSON.parse(text) as object).sort(), p.urn).toEqual(
          ["connectionDocument", "deployment", "env", "features", "lifecycle", "limits", "region", "schemaVersion", "stack", "storage", "tenant", "tier", "url"],
        );
      }
    }
  });
});

describe("every field does something", () => {
  it("apiRatePerMinute, storageGb and customModel in the file change exactly the tenant's parameter, to those values, and storageGb its storage alarm", async () => {
    const edited = tempFleet((dir) => editYaml(dir, "tenants/freebie-one.yaml", (d) => {
      d.limits = { apiRatePerMinute: 90, storageGb: 3 };
      d.features = { customModel: true, sso: true };
    }));
    const after = await render(edited, "shared-prod-use1-01");
    const diff = diffRenders(get("shared-prod-use1-01"), after);
    // The role's connection limit and timeout come from the same limits; untouched here. storageGb
    // is also the threshold of the tenant's storage alarm (infra/model/storageAlarms.ts).
    const alarm = byTypeName(after, "aws:cloudwatch/metricAlarm:MetricAlarm", "storage-alarms-freebie-one-object-storage");
    expect(diff).toEqual({ added: [], removed: [], changed: [byTypeName(after, T.parameter, "tenant-freebie-one-config").urn, alarm.urn].sort() });
    expect(plain(alarm).threshold).toBe(3 * 1024 ** 3);
    const d = doc(after, "freebie-one");
    expect([d.limits, d.features]).toEqual([{ apiRatePerMinute: 90, storageGb: 3, maxDbConnections: 5, statementTimeoutMs: 5_000 }, { sso: true, customModel: true }]);
  });
});

describe("during an upgrade the document changes hands with the tenant's identity", () => {
  function migrating(phase: "provisioning" | "copying" | "cutover" | "cleanup"): Fleet {
    return upgradingStartupAlpha(phase);
  }
  const pooledDoc = () => doc(get("shared-prod-use1-01"), "startup-alpha");

  it("before cutover the cell publishes it unchanged (the cell's tier and limits), retained on delete; the dedicated stack has none", async () => {
    for (const phase of ["provisioning", "copying"] as const) {
      const f = migrating(phase);
      const cell = await render(f, "shared-prod-use1-01");
      expect(doc(cell, "startup-alpha")).toEqual(pooledDoc());
      expect(byTypeName(cell, T.parameter, "tenant-startup-alpha-config").options.retainOnDelete).toBe(true);
      expect(ofType(await render(f, "dedicated-startup-alpha-prod"), T.parameter)).toEqual([]);
    }
  });

  it("from cutover the dedicated stack publishes it (dedicated tier, its bucket and URL) under the moved URN; the cell has none", async () => {
    const f = migrating("cutover");
    const cell = await render(f, "shared-prod-use1-01");
    expect(ofType(cell, T.parameter).filter((p) => p.name === "tenant-startup-alpha-config")).toEqual([]);
    const ded = await render(f, "dedicated-startup-alpha-prod");
    const p = byTypeName(ded, T.parameter, "tenant-startup-alpha-config");
    expect(plain(p).name).toBe("/tenancy/prod/tenants/startup-alpha/config");
    expect(p.options.retainOnDelete).toBe(true);
    // The state move at cutover gave the component this URN; the program claims it by alias.
    expect(byTypeName(ded, "saas-tenancy:components:RuntimeConfig", "tenant-startup-alpha-config").options.aliases).toEqual([
      "urn:pulumi:dedicated-startup-alpha-prod::saas-tenancy::saas-tenancy:components:PooledTenant$saas-tenancy:components:RuntimeConfig::tenant-startup-alpha-config",
    ]);
    expect(doc(ded, "startup-alpha")).toEqual({
      ...pooledDoc(),
      tier: "dedicated",
      deployment: "dedicated",
      stack: "dedicated-startup-alpha-prod",
      limits: { apiRatePerMinute: 10_000, storageGb: 1_000, maxDbConnections: 200, statementTimeoutMs: 60_000 },
      url: "https://startup-alpha.dedicated.tenancy.example.com",
      storage: { bucket: "tenancy-prod-startup-alpha-data-111111111111", prefix: "tenants/startup-alpha/" },
    });
  });
});

describe("a cell move: the serving cell's bucket, whichever cell that is", () => {
  it("the cell left until the switch, the cell moved to from then on", () => {
    const t = fleet.tenants.get("startup-alpha")!.tenant;
    if (t.deployment !== "pooled") throw new Error("startup-alpha is pooled in the example fleet");
    const move = (phase: string) => ({
      ...t, placement: { ...t.placement, prod: "use1-02" },
      move: { phase, from: { prod: "use1-01" }, workflowId: "0b5a4a4e-6a8e-4c31-9d1e-3f1f6a3c2b10", startedAt: "2026-12-01T10:00:00Z" },
    }) as Tenant;
    for (const [phase, cell] of [["provisioning", "use1-01"], ["copying", "use1-01"], ["cutover", "use1-02"], ["cleanup", "use1-02"]] as const) {
      const d = runtimeConfigOf(fleet.platform, move(phase), "prod");
      expect([d.stack, d.storage.bucket], phase).toEqual([`shared-prod-${cell}`, `tenancy-prod-${cell}-data-111111111111`]);
    }
  });
});

describe("size: always an SSM Standard parameter", () => {
  it("the longest ids and names the schema allows stay far under 4,096 bytes (under 1 KiB)", () => {
    const platform = { ...fleet.platform, appName: "abcdefghijkl", domain: `${"d".repeat(60)}.${"e".repeat(60)}.example.com` };
    const id = "a".repeat(24);
    const t = {
      ...fleet.tenants.get("startup-alpha")!.tenant,
      id,
      lifecycle: "offboarding",
      environments: { staging: { teams: {} } },
      placement: { staging: "apse2-99" },
      limits: { apiRatePerMinute: Number.MAX_SAFE_INTEGER, storageGb: Number.MAX_SAFE_INTEGER, maxDbConnections: 5000, statementTimeoutMs: 3_600_000 },
    } as Tenant;
    const p = runtimeConfigParameter(platform, t, "staging");
    expect(p.name).toBe(`/abcdefghijkl/staging/tenants/${id}/config`);
    expect(new TextEncoder().encode(p.value).length).toBeLessThan(1024);
  });

  it("a document over the limit is refused with the reason (negative control)", () => {
    const d = runtimeConfigOf(fleet.platform, fleet.tenants.get("acme")!.tenant, "prod");
    expect(() => renderRuntimeConfig({ ...d, url: `https://${"x".repeat(SSM_STANDARD_MAX_BYTES)}` })).toThrow(
      /runtime config of acme \(prod\) is \d+ bytes, over the 4096 of an SSM Standard parameter/,
    );
  });

  it("an env the tenant does not have is an error naming the declared ones", () => {
    expect(() => runtimeConfigOf(fleet.platform, fleet.tenants.get("acme")!.tenant, "staging")).toThrow("tenant acme has no environment staging (declared: prod)");
  });
});
