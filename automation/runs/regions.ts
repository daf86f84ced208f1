/**
 * Region routing of stack runs (docs/control-plane.md, "Region routing"; docs/network.md): every
 * run carries its stack's region and its job goes to that region's queue, `stack-run-<region>`;
 * a worker takes jobs only from the regions it serves (TENANCY_WORKER_REGIONS), and its claim in
 * the runs table filters on region too (RunStore.start): an eu-west-1 stack's databases are
 * reachable only from the eu-west-1 runner.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { parseStackName, regionCode } from "../../infra/model/naming.ts";
import type { Platform } from "../../infra/model/platform.ts";

/** pg-boss queue of a region's stack runs; a run queued before regions existed (null) is on the legacy queue. */
export function stackRunQueue(region: string | null): string {
  return region === null ? LEGACY_STACK_RUN_QUEUE : `stack-run-${region}`;
}
/**
 * The single queue of before region routing: every worker drains it, and a job found there for
 * a run of a region gets a new job on that region's queue (RunStore.start) unless served here.
 */
export const LEGACY_STACK_RUN_QUEUE = "stack-run";

export class StackRegionError extends Error {}

/**
 * The region of a stack, from what the repository says: a platform stack's name; the stack
 * file's `aws:region`; else (a stack whose file was removed, e.g. a destroy) a cell's region
 * code or a dedicated tenant's tenant file. Throws StackRegionError naming what was looked at.
 */
export function stackRegion(repoDir: string, platform: Pick<Platform, "regions" | "environments">, stack: string): string {
  const ref = parseStackName(stack, platform.environments);
  if (ref.kind === "platform") return ref.region;
  const fromFile = regionInYaml(join(repoDir, "stacks", `Pulumi.${stack}.yaml`), (doc) => (doc as { config?: Record<string, unknown> }).config?.["aws:region"]);
  if (fromFile) return fromFile;
  if (ref.kind === "shared") {
    const code = /^([a-z]{2,4}[0-9])-/.exec(ref.cell)?.[1];
    const region = platform.regions.find((r) => regionCode(r) === code);
    if (region) return region;
  } else {
    const fromTenant = regionInYaml(join(repoDir, "tenants", `${ref.tenant}.yaml`), (doc) => (doc as { region?: unknown }).region);
    if (fromTenant) return fromTenant;
  }
  throw new StackRegionError(
    `the region of stack ${stack} is unknown: stacks/Pulumi.${stack}.yaml has no aws:region` +
      (ref.kind === "dedicated" ? ` and tenants/${ref.tenant}.yaml no region` : ` and cell ${ref.cell} has no region code of ${platform.regions.join(", ")}`) +
      "; its run cannot be routed to a region's worker",
  );
}

function regionInYaml(path: string, pick: (doc: unknown) => unknown): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  try {
    const v = pick(parse(text) ?? {});
    return typeof v === "string" ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * TENANCY_WORKER_REGIONS: the regions this process's stack-run workers serve. Unset: every
 * platform region (one process does everything: development, tests). `none`: no stack-run
 * workers (the control plane's own service; the regional runners do the runs).
 */
export function parseWorkerRegions(value: string | undefined, platformRegions: readonly string[]): string[] {
  if (value === undefined || value.trim() === "") return [...platformRegions];
  if (value.trim() === "none") return [];
  const regions = value.split(",").map((r) => r.trim()).filter((r) => r !== "");
  const unknown = regions.filter((r) => !platformRegions.includes(r));
  if (unknown.length > 0) {
    throw new StackRegionError(`TENANCY_WORKER_REGIONS: ${unknown.join(", ")} ${unknown.length > 1 ? "are not platform regions" : "is not a platform region"} (${platformRegions.join(", ")}, or none)`);
  }
  return [...new Set(regions)];
}
