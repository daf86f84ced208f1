/**
 * `tenantctl network check FILE` (docs/network.md): the reachability analysis over a plan JSON or
 * a stack export; exit 0 when every property holds, 1 with one line per finding, 2 on usage errors.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { networkFleet, syntheticNetworkSpec } from "../../bench/lib/networkFleet.ts";
import { bufferIo } from "../../cli/io.ts";
import { main } from "../../cli/main.ts";
import type { PlanDocument, RenderedStack } from "../../plan/types.ts";
import { find, remove } from "../plan/network/support.ts";

const projectDir = resolve(import.meta.dirname, "../..");
const tmp = mkdtempSync(join(tmpdir(), "network-check-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function planFile(name: string, stacks: RenderedStack[]): string {
  const doc: PlanDocument = { stacks: stacks.map((s) => ({ ...s, violations: [] })) };
  const path = join(tmp, name);
  writeFileSync(path, JSON.stringify(doc));
  return path;
}

async function run(...args: string[]) {
  const io = bufferIo();
  const code = await main(["network", "check", "--project", projectDir, ...args], io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

const fleet = () => networkFleet(syntheticNetworkSpec({ cells: 2, dedicated: 2 }));

describe("tenantctl network check", () => {
  it("exits 0 on a fleet where every property holds, with a summary on stderr", async () => {
    const r = await run(planFile("ok.json", fleet()));
    expect(r).toEqual({
      code: 0,
      stdout: [],
      stderr: ["network: 6 runner -> database paths proven (4 postgresql providers, 2 runners), 4 tenant VPCs checked for isolation; 0 finding(s)"],
    });
  });

  it("--verbose prints each proven path hop by hop", async () => {
    const r = await run(planFile("ok2.json", fleet()), "--verbose");
    expect(r.code).toBe(0);
    expect(r.stdout.filter((l) => !l.startsWith("  "))).toEqual([
      "shared-prod-c00000: runner use1 -> db tenancy-prod-c00000:5432: reachable",
      "shared-prod-c00001: runner euw1 -> db tenancy-prod-c00001:5432: reachable",
      "dedicated-d00000-prod: runner use1 -> db tenancy-prod-d00000:5432: reachable",
      "dedicated-d00001-prod: runner euw1 -> db tenancy-prod-d00001:5432: reachable",
      "platform-us-east-1: runner use1 -> db tenancy-control-plane:5432: reachable",
      "platform-us-east-1: runner euw1 -> db tenancy-control-plane:5432: reachable",
    ]);
    expect(r.stdout.filter((l) => l.startsWith("  ")).length).toBeGreaterThan(6 * 5);
  });

  it("exits 1 with one line per finding", async () => {
    const s = fleet();
    remove(s, "dedicated-d00001-prod", "tenant-d00001-db", "aws:rds/subnetGroup:SubnetGroup");
    const db = find(s, "dedicated-d00001-prod", "tenant-d00001-db", "pulumi:providers:postgresql");
    const r = await run(planFile("bad.json", s));
    expect(r.code).toBe(1);
    expect(r.stdout).toEqual([
      "dedicated-d00001-prod: cannot join: Instance tenant-d00001-db: dbSubnetGroupName tenancy-prod-d00001 is no subnet group of any stack",
      `dedicated-d00001-prod: provider tenant-d00001-db -> ${db.inputs.host}:5432: no RDS instance of any stack has this address`,
    ]);
  });

  it("exits 2 on a file that is not JSON or not a plan", async () => {
    writeFileSync(join(tmp, "x.json"), "{");
    expect((await run(join(tmp, "x.json"))).code).toBe(2);
    writeFileSync(join(tmp, "y.json"), "{}");
    const r = await run(join(tmp, "y.json"));
    expect(r.code).toBe(2);
    expect(r.stderr.join("\n")).toMatch(/expected a plan JSON/);
    expect((await run(join(tmp, "missing.json"))).code).toBe(2);
  });
});
