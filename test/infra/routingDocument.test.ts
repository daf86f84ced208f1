/**
 * The routing document of an env and region (infra/model/routingDocument.ts,
 * docs/runtime-config.md): each stack's share rendered with exact inputs, the merge a router
 * makes of them for the example fleet, the hand-over of a tenant at an upgrade's cutover (never
 * unroutable whichever stack updates first), and pages that stay SSM Standard at thousands of
 * tenants per cell.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { Fleet } from "../../infra/model/fleet.ts";
import { routingParameterPath } from "../../infra/model/naming.ts";
import { cellRoutingParameters, mergeRouting, type RoutingShare } from "../../infra/model/routingDocument.ts";
import { SSM_STANDARD_MAX_BYTES } from "../../infra/model/runtimeConfig.ts";
import type { Tenant } from "../../infra/model/schema.ts";
import type { RenderedStack } from "../../plan/types.ts";
import { byTypeName, editYaml, exampleFleet, ofType, plain, render, T, tempFleet, writeYaml, upgradingStartupAlpha } from "./support.ts";

const fleet = exampleFleet();
const renders = new Map<string, RenderedStack>();

beforeAll(async () => {
  for (const name of fleet.stacks.keys()) renders.set(name, await render(fleet, name));
}, 120_000);

/** Every routing share a set of renders holds, by parameter name. */
function sharesOf(rs: Iterable<RenderedStack>): Map<string, RoutingShare> {
  const out = new Map<string, RoutingShare>();
  for (const r of rs) {
    for (const p of ofType(r, T.parameter)) {
      const name = String(plain(p).name);
      if (name.includes("/routing/")) out.set(name, JSON.parse(String(plain(p).insecureValue)) as RoutingShare);
    }
  }
  return out;
}

function read(shares: Map<string, RoutingShare>, env: string, region: string) {
  const path = routingParameterPath("tenancy", env, region);
  return mergeRouting(env, region, [...shares].filter(([n]) => n.startsWith(path)).map(([, s]) => s));
}

describe("the example fleet's routing documents", () => {
  it("each share has exact inputs; only cell and dedicated stacks write one, each under its own name", () => {
    const names = [...renders.values()].flatMap((r) => ofType(r, T.parameter).filter((p) => String(plain(p).name).includes("/routing/")).map((p) => `${r.name} ${String(plain(p).name)}`));
    expect(names.sort()).toEqual([
      "dedicated-acme-prod /tenancy/prod/routing/us-east-1/dedicated/acme",
      "dedicated-delta-health-prod /tenancy/prod/routing/eu-west-1/dedicated/delta-health",
      "dedicated-megacorp-prod /tenancy/prod/routing/us-east-1/dedicated/megacorp",
      "dedicated-megacorp-staging /tenancy/staging/routing/us-east-1/dedicated/megacorp",
      "shared-prod-euw1-01 /tenancy/prod/routing/eu-west-1/cells/euw1-01/00",
      "shared-prod-use1-01 /tenancy/prod/routing/us-east-1/cells/use1-01/00",
      "shared-prod-use1-02 /tenancy/prod/routing/us-east-1/cells/use1-02/00",
      "shared-staging-use1-01 /tenancy/staging/routing/us-east-1/cells/use1-01/00",
    ]);
    const page = byTypeName(renders.get("shared-prod-use1-02")!, T.parameter, "routing-00");
    const { insecureValue, ...rest } = plain(page);
    expect(rest).toEqual({
      name: "/tenancy/prod/routing/us-east-1/cells/use1-02/00",
      description: "Routing of prod in us-east-1: the share of shared-prod-use1-02",
      type: "String",
      tier: "Standard",
      dataType: "text",
      tags: { tenant: "shared", env: "prod", stack: "shared-prod-use1-02", "managed-by": "saas-tenancy" },
    });
    expect(JSON.parse(String(insecureValue))).toEqual({
      schemaVersion: 1, env: "prod", region: "us-east-1", source: "shared-prod-use1-02", kind: "cell",
      routes: { "company-beta": "ingress.shared-prod-use1-02.tenancy.example.com", "gamma-labs": "ingress.shared-prod-use1-02.tenancy.example.com" },
      forwards: {},
    });
    const ded = byTypeName(renders.get("dedicated-acme-prod")!, T.parameter, "routing-00");
    expect(plain(ded).tags).toEqual({ tenant: "acme", env: "prod", stack: "dedicated-acme-prod", "managed-by": "saas-tenancy" });
    expect(JSON.parse(String(plain(ded).insecureValue))).toEqual({
      schemaVersion: 1, env: "prod", region: "us-east-1", source: "dedicated-acme-prod", kind: "dedicated", routes: { acme: "acme.dedicated.tenancy.example.com" }, forwards: {},
    });
  });

  it("read per env and region, the shares route every tenant of it and no other, without conflicts", () => {
    const shares = sharesOf(renders.values());
    const ingress = (stack: string) => `ingress.${stack}.tenancy.example.com`;
    expect(read(shares, "prod", "us-east-1")).toEqual({
      routes: {
        acme: "acme.dedicated.tenancy.example.com",
        "company-beta": ingress("shared-prod-use1-02"),
        "freebie-one": ingress("shared-prod-use1-01"),
        "gamma-labs": ingress("shared-prod-use1-02"),
        megacorp: "megacorp.dedicated.tenancy.example.com",
        "startup-alpha": ingress("shared-prod-use1-01"),
      },
      conflicts: [],
    });
    expect(read(shares, "prod", "eu-west-1")).toEqual({
      routes: { bigcorp: ingress("shared-prod-euw1-01"), "delta-health": "delta-health.dedicated.tenancy.example.com", "freebie-two": ingress("shared-prod-euw1-01") },
      conflicts: [],
    });
    expect(Object.keys(read(shares, "staging", "us-east-1").routes)).toEqual(["gamma-labs", "megacorp", "startup-alpha"]);
    expect(read(shares, "staging", "eu-west-1")).toEqual({ routes: {}, conflicts: [] });
  });

  it("a share of another env or region, or of an unknown version, is refused by the reader", () => {
    const shares = [...sharesOf(renders.values()).values()];
    const staging = shares.find((s) => s.env === "staging")!;
    expect(() => mergeRouting("prod", "us-east-1", [staging])).toThrow(`routing share of ${staging.source} is for staging/us-east-1, read as prod/us-east-1`);
    expect(() => mergeRouting("staging", "us-east-1", [{ ...staging, schemaVersion: 2 as 1 }])).toThrow(/has schema version 2; this reader knows 1/);
  });
});

describe("an upgrade's cutover: the tenant stays routable whichever stack updates first", () => {
  function migrating(phase: string): Fleet {
    return upgradingStartupAlpha(phase);
  }
  const CELL = "shared-prod-use1-01";
  const DED = "dedicated-startup-alpha-prod";
  const CELL_ROUTE = "ingress.shared-prod-use1-01.tenancy.example.com";
  const DED_ROUTE = "startup-alpha.dedicated.tenancy.example.com";

  it("copying, then each order of the two updates after the cutover commit, then cleanup", async () => {
    const copying = migrating("copying");
    const cutover = migrating("cutover");
    const cleanup = tempFleet((dir) => {
      editYaml(dir, "tenants/startup-alpha.yaml", (d) => {
        d.tier = "dedicated";
        delete d.placement;
        d.dedicated = { prod: { cidr: "10.68.0.0/16" }, staging: { cidr: "10.69.0.0/16" } };
      });
      for (const env of ["prod", "staging"]) writeYaml(dir, `stacks/Pulumi.dedicated-startup-alpha-${env}.yaml`, { config: { "aws:region": "us-east-1" } });
    });
    const at = async (f: Fleet, stack: string) => render(f, stack);
    const route = async (cell: RenderedStack, ded: RenderedStack) => {
      const merged = read(sharesOf([cell, ded]), "prod", "us-east-1");
      return [merged.routes["startup-alpha"], merged.conflicts];
    };
    // One render at a time (the mock runtime is process-wide).
    const cellCopy = await at(copying, CELL);
    const dedCopy = await at(copying, DED);
    const cellCut = await at(cutover, CELL);
    const dedCut = await at(cutover, DED);
    const cellDone = await at(cleanup, CELL);
    const dedDone = await at(cleanup, DED);
    // Before cutover the dedicated stack writes no share; the cell routes the tenant.
    expect(ofType(dedCopy, T.parameter).filter((p) => String(plain(p).name).includes("/routing/"))).toEqual([]);
    expect(await route(cellCopy, dedCopy)).toEqual([CELL_ROUTE, []]);
    // After the commit: the cell first (it forwards), or the dedicated stack first (its claim outranks the cell's stale one).
    expect(await route(cellCut, dedCopy)).toEqual([DED_ROUTE, []]);
    expect(await route(cellCopy, dedCut)).toEqual([DED_ROUTE, []]);
    expect(await route(cellCut, dedCut)).toEqual([DED_ROUTE, []]);
    expect(JSON.parse(String(plain(byTypeName(cellCut, T.parameter, "routing-00")).insecureValue)).forwards).toEqual({ "startup-alpha": DED_ROUTE });
    // Cleanup: the cell no longer lists it; the dedicated share alone routes it.
    expect(JSON.stringify(plain(byTypeName(cellDone, T.parameter, "routing-00")))).not.toContain("startup-alpha");
    expect(await route(cellDone, dedCut)).toEqual([DED_ROUTE, []]);
    expect(await route(cellDone, dedDone)).toEqual([DED_ROUTE, []]);
  }, 60_000);
});

describe("pages: always SSM Standard, at any number of tenants in a cell", () => {
  const cell = fleet.cells.get("shared-prod-use1-01")!;
  const alpha = fleet.tenants.get("startup-alpha")!.tenant;
  const many = (n: number): Tenant[] =>
    Array.from({ length: n }, (_, i) => ({ ...alpha, id: `t${String(i).padStart(5, "0")}-${"x".repeat(17)}` }));

  it("3,000 tenants with 24-character ids: every page under 4,096 bytes, each tenant on exactly one page, ids in order", () => {
    const pages = cellRoutingParameters(fleet, cell, many(3000));
    expect(pages.length).toBeGreaterThan(40);
    for (const p of pages) expect(new TextEncoder().encode(p.value).length).toBeLessThanOrEqual(SSM_STANDARD_MAX_BYTES);
    expect(pages.map((p) => p.name).slice(0, 2)).toEqual(["/tenancy/prod/routing/us-east-1/cells/use1-01/00", "/tenancy/prod/routing/us-east-1/cells/use1-01/01"]);
    const ids = pages.flatMap((p) => Object.keys(p.document.routes));
    expect(ids).toEqual(many(3000).map((t) => t.id));
    expect(mergeRouting("prod", "us-east-1", pages.map((p) => p.document)).conflicts).toEqual([]);
  });

  it("pages are filled greedily by the size of their own text: each page's first tenant would not have fit on the page before", () => {
    // Ids of varying length, so page breaks fall at different counts (the size is kept incrementally, not re-measured).
    const residents = Array.from({ length: 700 }, (_, i) => ({ ...alpha, id: `t${i}-${"y".repeat(i % 37)}` }));
    const pages = cellRoutingParameters(fleet, cell, residents);
    const size = (doc: RoutingShare) => Buffer.byteLength(JSON.stringify(doc), "utf8");
    expect(pages.length).toBeGreaterThan(5);
    for (const [i, p] of pages.entries()) {
      expect(p.value).toBe(JSON.stringify(p.document));
      expect(size(p.document)).toBeLessThanOrEqual(SSM_STANDARD_MAX_BYTES);
      if (i === 0) continue;
      const [firstId, endpoint] = Object.entries(p.document.routes)[0]!;
      const prev = pages[i - 1]!.document;
      expect(size({ ...prev, routes: { ...prev.routes, [firstId]: endpoint } })).toBeGreaterThan(SSM_STANDARD_MAX_BYTES);
    }
    expect(pages.flatMap((p) => Object.keys(p.document.routes))).toEqual(residents.map((t) => t.id).sort((a, b) => a.localeCompare(b)));
  });

  it("an empty cell still writes its one page (a router sees the cell has nobody)", () => {
    expect(cellRoutingParameters(fleet, cell, []).map((p) => p.document.routes)).toEqual([{}]);
  });

  it("negative control: two shares claiming one tenant with different endpoints are a conflict, not a guess", () => {
    const base = { schemaVersion: 1 as const, env: "prod", region: "us-east-1", kind: "cell" as const, forwards: {} };
    expect(mergeRouting("prod", "us-east-1", [
      { ...base, source: "shared-prod-use1-01", routes: { a: "x" } },
      { ...base, source: "shared-prod-use1-02", routes: { a: "y" } },
    ])).toEqual({ routes: {}, conflicts: ["a"] });
    // A dedicated claim outranks a cell's; a cell's claim outranks a forward.
    expect(mergeRouting("prod", "us-east-1", [
      { ...base, source: "shared-prod-use1-01", routes: { a: "x" }, forwards: { b: "z" } },
      { ...base, source: "dedicated-a-prod", kind: "dedicated", routes: { a: "y" } },
      { ...base, source: "shared-prod-use1-02", routes: { b: "w" } },
    ])).toEqual({ routes: { a: "y", b: "w" }, conflicts: [] });
  });
});
