import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import { cellStackName, dedicatedStackName } from "../../infra/model/naming.ts";

export const PROJECT_DIR = resolve(import.meta.dirname, "../..");

export interface SyntheticFleet {
  dir: string;
  cells: string[];
  dedicated: string[];
}

/**
 * A dedicated VPC is a /16 of the dedicated supernet (10.128.0.0/9 here), and the eu-west-1 hub
 * holds 10.255.0.0/16: 10.128-10.254 leaves 127.
 */
export const MAX_SYNTHETIC_DEDICATED = 127;

const TIER_CYCLE = ["free", "standard", "standard", "enterprise"] as const;

/**
 * Writes a synthetic fleet into a temporary project: `pooled` tenants spread over `cells` cells
 * (prod, us-east-1) and `dedicated` dedicated tenants with a /16 each. Uses the project's real
 * Pulumi.yaml so platform settings are the real ones. `capacity` 0 = room for everyone.
 */
export function writeSyntheticFleet(opts: { pooled: number; cells: number; dedicated: number; capacity?: number; extraPooled?: number }): SyntheticFleet {
  const dir = mkdtempSync(join(tmpdir(), "tenancy-bench-"));
  // The real platform settings, with a /9 supernet so up to 128 dedicated tenants fit.
  // The service quotas are raised to what a fleet this size would have asked AWS for
  // (infra/model/quotas.ts): with the defaults, validation refuses a synthetic fleet of 1,000.
  const project = readFileSync(join(PROJECT_DIR, "Pulumi.yaml"), "utf8")
    .replace(/dedicatedSupernet: \S+/, "dedicatedSupernet: 10.128.0.0/9")
    .replace(/iamRolesPerAccount: \d+/, "iamRolesPerAccount: 100000")
    .replace(/hostedZonesPerAccount: \d+/, "hostedZonesPerAccount: 100000")
    .replace(/us-east-1: \{ vpcsPerRegion: \d+, elasticIpsPerRegion: \d+ \}/, "us-east-1: { vpcsPerRegion: 1000, elasticIpsPerRegion: 1000, rdsInstancesPerRegion: 1000, gatewayEndpointsPerRegion: 1000 }")
    // A document per tenant env: 10,000 tenants in one region exceed the 10,000 Standard SSM
    // parameters AWS allows (not adjustable), so the synthetic fleet uses the Advanced tier.
    .replace(/^( +)appName: (\S+)$/m, "$1appName: $2\n$1ssmParameterTier: Advanced");
  if (!project.includes("ssmParameterTier: Advanced")) throw new Error("Pulumi.yaml has no appName line to put ssmParameterTier after (bench/lib/fleetGen.ts)");
  if (!project.includes("10.128.0.0/9")) throw new Error("Pulumi.yaml has no dedicatedSupernet to widen");
  if (!project.includes("iamRolesPerAccount: 100000") || !project.includes("gatewayEndpointsPerRegion: 1000 }")) throw new Error("Pulumi.yaml's quotas changed shape: raise them for the synthetic fleet in bench/lib/fleetGen.ts");
  writeFileSync(join(dir, "Pulumi.yaml"), project);
  mkdirSync(join(dir, "tenants"));
  mkdirSync(join(dir, "stacks"));
  // The platform stacks of the real project (every platform region has one; validation requires them).
  for (const f of readdirSync(join(PROJECT_DIR, "stacks")).filter((n) => n.startsWith("Pulumi.platform-"))) {
    writeFileSync(join(dir, "stacks", f), readFileSync(join(PROJECT_DIR, "stacks", f), "utf8"));
  }
  const cells: string[] = [];
  const perCell = Math.ceil(opts.pooled / Math.max(1, opts.cells));
  for (let c = 0; c < opts.cells; c++) {
    const id = `use1-${String(c + 1).padStart(2, "0")}`;
    const stack = cellStackName("prod", id);
    cells.push(stack);
    writeFileSync(
      join(dir, "stacks", `Pulumi.${stack}.yaml`),
      stringify({
        config: {
          "aws:region": "us-east-1",
          "saas-tenancy:cell": {
            cidr: `10.${c + 1}.0.0/16`,
            azs: ["us-east-1a", "us-east-1b"],
            ingressHostname: `ingress.${stack}.tenancy.example.com`,
            capacity: opts.capacity && opts.capacity > 0 ? opts.capacity : perCell + (opts.extraPooled ?? 0) + 1,
          },
        },
      }),
    );
  }
  for (let i = 0; i < opts.pooled; i++) {
    const id = `t${String(i).padStart(5, "0")}`;
    const cell = `use1-${String((i % Math.max(1, opts.cells)) + 1).padStart(2, "0")}`;
    writePooled(dir, id, TIER_CYCLE[i % TIER_CYCLE.length]!, cell);
  }
  const dedicated: string[] = [];
  for (let i = 0; i < opts.dedicated; i++) {
    const id = `d${String(i).padStart(4, "0")}`;
    if (i >= MAX_SYNTHETIC_DEDICATED) throw new Error(`at most ${MAX_SYNTHETIC_DEDICATED} synthetic dedicated tenants`);
    const env = "prod";
    writeFileSync(
      join(dir, "tenants", `${id}.yaml`),
      stringify({
        id, displayName: id, tier: "dedicated", region: "us-east-1",
        environments: { [env]: {} },
        dedicated: { [env]: { cidr: `10.${128 + i}.0.0/16` } },
      }),
    );
    const stack = dedicatedStackName(id, env);
    dedicated.push(stack);
    writeFileSync(join(dir, "stacks", `Pulumi.${stack}.yaml`), stringify({ config: { "aws:region": "us-east-1" } }));
  }
  return { dir, cells, dedicated };
}

export function writePooled(dir: string, id: string, tier: string, cell: string): void {
  writeFileSync(
    join(dir, "tenants", `${id}.yaml`),
    stringify({ id, displayName: id, tier, region: "us-east-1", secrets: ["api_token"], environments: { prod: {} }, placement: { prod: cell } }),
  );
}
