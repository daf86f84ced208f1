/**
 * Region of a stack for run routing (automation/runs/regions.ts) and the worker-regions setting:
 * from the platform stack's name, the stack file, or (file removed) the cell code / tenant file.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadPlatform } from "../../infra/model/platform.ts";
import { parseWorkerRegions, stackRegion, stackRunQueue, StackRegionError } from "../../automation/runs/regions.ts";

const REPO = resolve(import.meta.dirname, "../..");
const platform = loadPlatform(REPO);
const empty = mkdtempSync(join(tmpdir(), "regions-"));
mkdirSync(join(empty, "stacks"));
mkdirSync(join(empty, "tenants"));
afterAll(() => rmSync(empty, { recursive: true, force: true }));

describe("stackRegion", () => {
  it("reads the example fleet's stacks: platform name, stack files", () => {
    expect(stackRegion(REPO, platform, "platform-eu-west-1")).toBe("eu-west-1");
    expect(stackRegion(REPO, platform, "shared-prod-euw1-01")).toBe("eu-west-1");
    expect(stackRegion(REPO, platform, "dedicated-delta-health-prod")).toBe("eu-west-1");
    expect(stackRegion(REPO, platform, "dedicated-acme-prod")).toBe("us-east-1");
  });

  it("without a stack file: the cell's region code, the tenant file's region, else a clear error", () => {
    expect(stackRegion(empty, platform, "shared-prod-euw1-07")).toBe("eu-west-1");
    writeFileSync(join(empty, "tenants", "gone.yaml"), "id: gone\nregion: eu-west-1\n");
    expect(stackRegion(empty, platform, "dedicated-gone-prod")).toBe("eu-west-1");
    expect(() => stackRegion(empty, platform, "dedicated-nobody-prod")).toThrow(StackRegionError);
    expect(() => stackRegion(empty, platform, "shared-prod-apse2-01")).toThrow(/the region of stack shared-prod-apse2-01 is unknown/);
  });

  it("one queue per region, the legacy queue for runs queued before regions", () => {
    expect(stackRunQueue("eu-west-1")).toBe("stack-run-eu-west-1");
    expect(stackRunQueue(null)).toBe("stack-run");
  });
});

describe("parseWorkerRegions (TENANCY_WORKER_REGIONS)", () => {
  it("unset: every platform region; none: no region; a list: those, checked", () => {
    expect(parseWorkerRegions(undefined, platform.regions)).toEqual(["us-east-1", "eu-west-1"]);
    expect(parseWorkerRegions("none", platform.regions)).toEqual([]);
    expect(parseWorkerRegions("eu-west-1, eu-west-1", platform.regions)).toEqual(["eu-west-1"]);
    expect(() => parseWorkerRegions("eu-west-1,ap-south-1", platform.regions)).toThrow(
      "TENANCY_WORKER_REGIONS: ap-south-1 is not a platform region (us-east-1, eu-west-1, or none)",
    );
  });
});
