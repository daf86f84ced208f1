/** Property tests of placement (chooseCell) and dedicated CIDR allocation (infra/model/placement.ts). */
import { resolve } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { contains, formatCidr, nthSubnet, overlaps, parseCidr, type Cidr } from "../../infra/model/cidr.ts";
import { cellResidents, type Cell, type Fleet } from "../../infra/model/fleet.ts";
import { cellStackName } from "../../infra/model/naming.ts";
import { allocateDedicatedCidrs, chooseCell, DEDICATED_VPC_PREFIX, PlacementError, takenCidrs } from "../../infra/model/placement.ts";
import { loadPlatform, type Platform } from "../../infra/model/platform.ts";
import { makeTenantSchema, type Tenant } from "../../infra/model/schema.ts";
import type { LoadedTenant } from "../../infra/model/tenantFile.ts";
import { parseYamlMap, type YamlFile } from "../../infra/model/yamlFile.ts";

const basePlatform = loadPlatform(resolve(import.meta.dirname, "../.."));
const ENVS = ["prod", "staging"] as const;
const REGIONS = ["us-east-1", "eu-west-1"] as const;
const CODE: Record<(typeof REGIONS)[number], string> = { "us-east-1": "use1", "eu-west-1": "euw1" };
const schema = makeTenantSchema({ regions: basePlatform.regions, environments: basePlatform.environments });

const dummyYaml = (() => {
  const y = parseYamlMap("generated.yaml", "id: generated\n");
  if (Array.isArray(y)) throw new Error("unreachable");
  return y;
})();

function loaded(tenant: Tenant, yaml: YamlFile = dummyYaml): LoadedTenant {
  return { tenant, file: `${tenant.id}.yaml`, yaml };
}

function pooled(id: string, env: string, region: string, cell: string): Tenant {
  return schema.parse({ id, displayName: id, tier: "free", deployment: "pooled", region, environments: { [env]: {} }, placement: { [env]: cell } });
}

function dedicated(id: string, cidrs: string[], migratingFrom?: { env: string; cell: string }): Tenant {
  const envs = ["prod", "staging", "dev"].slice(0, cidrs.length);
  return schema.parse({
    id, displayName: id, tier: "dedicated", deployment: "dedicated", region: "us-east-1",
    environments: Object.fromEntries(envs.map((e) => [e, {}])),
    dedicated: Object.fromEntries(envs.map((e, i) => [e, { cidr: cidrs[i] }])),
    ...(migratingFrom ? { migration: { phase: "copying", from: { [migratingFrom.env]: migratingFrom.cell }, fromTier: "standard", startedAt: "2026-01-01T00:00:00Z" } } : {}),
  });
}

function cell(env: string, region: (typeof REGIONS)[number], n: number, capacity: number, cidr = "10.1.0.0/16"): Cell {
  const id = `${CODE[region]}-${String(n).padStart(2, "0")}`;
  return {
    id, env, region, capacity, stack: cellStackName(env, id), file: `stacks/Pulumi.${cellStackName(env, id)}.yaml`,
    config: { cidr, azs: [`${region}a`, `${region}b`], ingressHostname: `ingress.${id}.example.com` },
  };
}

function fleetOf(cells: Cell[], tenants: Tenant[], platform: Platform = basePlatform): Fleet {
  return {
    platform,
    dirs: { projectDir: "/nonexistent", tenantsDir: "/nonexistent/tenants", stacksDir: "/nonexistent/stacks" },
    tenants: new Map(tenants.map((t) => [t.id, loaded(t)])),
    stacks: new Map(),
    cells: new Map(cells.map((c) => [c.stack, c])),
  };
}

/** Cells (unique by env and id) with a resident count each, possibly at or over capacity. */
const cellsArb = fc
  .uniqueArray(
    fc.record({
      env: fc.constantFrom(...ENVS),
      region: fc.constantFrom(...REGIONS),
      n: fc.integer({ min: 1, max: 12 }),
      capacity: fc.integer({ min: 1, max: 6 }),
      load: fc.integer({ min: 0, max: 7 }),
      migrating: fc.integer({ min: 0, max: 2 }),
    }),
    { selector: (c) => `${c.env}/${CODE[c.region]}-${c.n}`, maxLength: 10 },
  )
  .map((specs) => {
    const cells: Cell[] = [];
    const tenants: Tenant[] = [];
    let k = 0;
    for (const s of specs) {
      const c = cell(s.env, s.region, s.n, s.capacity);
      cells.push(c);
      for (let i = 0; i < s.load; i++) tenants.push(pooled(`t${k++}`, c.env, c.region, c.id));
      // Tenants upgrading to dedicated still live in the cell they are leaving.
      for (let i = 0; i < s.migrating; i++) tenants.push(dedicated(`m${k++}`, ["10.64.0.0/16"], { env: c.env, cell: c.id }));
    }
    return { cells, tenants };
  });

const ratio = (fleet: Fleet, c: Cell) => cellResidents(fleet, c).length / c.capacity;

describe("chooseCell", () => {
  it("picks the least-loaded cell with room in the env and region (ties: lowest id), and never a full one", () => {
    fc.assert(
      fc.property(cellsArb, fc.constantFrom(...ENVS), fc.constantFrom(...REGIONS), ({ cells, tenants }, env, region) => {
        const fleet = fleetOf(cells, tenants);
        const withRoom = cells.filter((c) => c.env === env && c.region === region && cellResidents(fleet, c).length < c.capacity);
        if (withRoom.length === 0) {
          expect(() => chooseCell(fleet, env, region)).toThrow(PlacementError);
          expect(() => chooseCell(fleet, env, region)).toThrow(`no cell with room in ${env}/${region}`);
          return;
        }
        const chosen = chooseCell(fleet, env, region);
        expect(chosen.env).toBe(env);
        expect(chosen.region).toBe(region);
        expect(cellResidents(fleet, chosen).length).toBeLessThan(chosen.capacity);
        for (const c of withRoom) {
          expect(ratio(fleet, chosen)).toBeLessThanOrEqual(ratio(fleet, c));
          if (ratio(fleet, chosen) === ratio(fleet, c)) expect(chosen.id <= c.id).toBe(true);
        }
        expect(chooseCell(fleet, env, region)).toBe(chosen); // deterministic
      }),
    );
  });

  it("onboarding tenants one by one never overfills a cell and fails only when every cell is full", () => {
    fc.assert(
      fc.property(cellsArb, fc.constantFrom(...ENVS), fc.constantFrom(...REGIONS), ({ cells, tenants }, env, region) => {
        const all = [...tenants];
        const before = new Map(cells.map((c) => [c.stack, cellResidents(fleetOf(cells, all), c).length]));
        for (let i = 0; i < 40; i++) {
          const fleet = fleetOf(cells, all);
          let chosen: Cell;
          try {
            chosen = chooseCell(fleet, env, region);
          } catch (err) {
            expect(err).toBeInstanceOf(PlacementError);
            for (const c of cells.filter((x) => x.env === env && x.region === region)) {
              expect(cellResidents(fleet, c).length).toBeGreaterThanOrEqual(c.capacity);
            }
            break;
          }
          all.push(pooled(`new${i}`, env, region, chosen.id));
        }
        const after = fleetOf(cells, all);
        for (const c of cells) {
          const load = cellResidents(after, c).length;
          // A cell already over capacity is never chosen, so it does not grow; others stay within capacity.
          expect(load).toBeLessThanOrEqual(Math.max(c.capacity, before.get(c.stack)!));
        }
      }),
    );
  });
});

describe("allocateDedicatedCidrs", () => {
  /** A supernet in 10.0.0.0/8 with 1..32 /16s, cells and the control plane's hub anywhere in 10/8, existing dedicated /16s in the supernet. */
  const scenario = fc
    .record({
      superPrefix: fc.integer({ min: 11, max: 16 }),
      superIndex: fc.nat(),
      controlPlane: fc.record({ p: fc.integer({ min: 12, max: 24 }), i: fc.nat() }),
      cells: fc.array(fc.record({ p: fc.integer({ min: 12, max: 24 }), i: fc.nat() }), { maxLength: 6 }),
      dedicated: fc.array(fc.nat(), { maxLength: 12 }),
      count: fc.integer({ min: 1, max: 4 }),
    })
    .map((s) => {
      const eight = parseCidr("10.0.0.0/8");
      const pick = (p: number, i: number) => nthSubnet(eight, p, i % 2 ** (p - 8));
      const supernet = pick(s.superPrefix, s.superIndex);
      const slots = 2 ** (DEDICATED_VPC_PREFIX - supernet.prefix);
      const dedicatedBlocks = [...new Set(s.dedicated.map((i) => i % slots))].map((i) => formatCidr(nthSubnet(supernet, DEDICATED_VPC_PREFIX, i)));
      const cells = s.cells.map((c, n) => cell("prod", "us-east-1", n + 1, 50, formatCidr(pick(c.p, c.i))));
      const tenants = dedicatedBlocks.map((b, n) => dedicated(`d${n}`, [b]));
      const platform: Platform = {
        ...basePlatform,
        dedicatedSupernet: formatCidr(supernet),
        // The control plane's region's hub anywhere in 10/8 (the other hubs stay as in Pulumi.yaml).
        hubs: { ...basePlatform.hubs, [basePlatform.controlPlane.region]: { ...basePlatform.hubs[basePlatform.controlPlane.region]!, cidr: formatCidr(pick(s.controlPlane.p, s.controlPlane.i)) } },
      };
      return { fleet: fleetOf(cells, tenants, platform), supernet, count: s.count };
    });

  it("returns /16s inside the supernet that overlap no cell, control plane, tenant, or each other", () => {
    fc.assert(
      fc.property(scenario, ({ fleet, supernet, count }) => {
        const taken = takenCidrs(fleet);
        // Independent count of the free /16s, to know whether allocation must succeed.
        const free = Array.from({ length: 2 ** (DEDICATED_VPC_PREFIX - supernet.prefix) }, (_, i) => nthSubnet(supernet, DEDICATED_VPC_PREFIX, i))
          .filter((b) => !taken.some((t) => overlaps(t, b)));
        if (free.length < count) {
          expect(() => allocateDedicatedCidrs(fleet, count)).toThrow(PlacementError);
          return;
        }
        const got = allocateDedicatedCidrs(fleet, count).map(parseCidr);
        expect(got).toHaveLength(count);
        got.forEach((b: Cidr, i) => {
          expect(b.prefix).toBe(DEDICATED_VPC_PREFIX);
          expect(contains(supernet, b)).toBe(true);
          for (const hub of Object.values(fleet.platform.hubs)) expect(overlaps(b, parseCidr(hub.cidr))).toBe(false);
          for (const c of fleet.cells.values()) expect(overlaps(b, parseCidr(c.config.cidr))).toBe(false);
          for (const t of taken) expect(overlaps(b, t)).toBe(false);
          for (const other of got.slice(0, i)) expect(overlaps(b, other)).toBe(false);
        });
        expect(allocateDedicatedCidrs(fleet, count)).toEqual(got.map(formatCidr)); // deterministic
      }),
    );
  });

  it("takenCidrs lists the hubs (the control plane's region's first), every cell and every dedicated environment", () => {
    fc.assert(
      fc.property(scenario, ({ fleet }) => {
        const taken = takenCidrs(fleet).map(formatCidr);
        expect(taken[0]).toBe(fleet.platform.hubs[fleet.platform.controlPlane.region]!.cidr);
        for (const hub of Object.values(fleet.platform.hubs)) expect(taken).toContain(hub.cidr);
        for (const c of fleet.cells.values()) expect(taken).toContain(c.config.cidr);
        for (const { tenant } of fleet.tenants.values()) {
          if (tenant.deployment === "dedicated") for (const net of Object.values(tenant.dedicated)) expect(taken).toContain(net!.cidr);
        }
      }),
    );
  });
});
