/**
 * Fleet-level checks of the files against what AWS offers the platform account: AZs per region
 * (infra/model/regions.ts), cell engine versions against the platform's minor-upgrade setting,
 * and service quotas (what every stack creates, counted here against the table of
 * infra/model/quotas.ts). Run by loadFleet, so validate, plan, tenantctl new and the control
 * plane's writer all refuse a fleet AWS would refuse.
 */
import { engineVersionProblem } from "./database.ts";
import { GATEWAY_ENDPOINTS_PER_VPC } from "./endpoints.ts";
import { PLATFORM_KEY, PROJECT, type Platform } from "./platform.ts";
import type { Problem } from "./problems.ts";
import { QUOTAS, quotaLimit, type QuotaDefinition, type QuotaName } from "./quotas.ts";
import { azProblem, regionAzs } from "./regions.ts";
import { cellResidents, residentsByCell, residentsKey, routeOf } from "./routes.ts";
import type { Tenant } from "./schema.ts";
import { cellRoutingParameters, type RoutingCell } from "./routingDocument.ts";
import { CELL_KEY, type StackFile } from "./stackFile.ts";
import { ALARM_TOPICS_PER_STACK } from "./storageAlarms.ts";
import { dedicatedAzCount } from "./subnets.ts";
import type { LoadedTenant } from "./tenantFile.ts";
import { parseYamlMap, problemAt, type YamlFile } from "./yamlFile.ts";

/**
 * What these checks read of a fleet: the files loadFleet parsed (a Fleet of infra/model/fleet.ts
 * fits). Spelled out here, not imported, because loadFleet runs these checks.
 */
export interface FleetFiles {
  platform: Platform;
  /** By stack name. */
  stacks: ReadonlyMap<string, StackFile>;
  /** By tenant id. */
  tenants: ReadonlyMap<string, LoadedTenant>;
  /** By stack name: the cells (their routing pages count against the SSM quota). */
  cells: ReadonlyMap<string, RoutingCell & { config: { ingressHostname: string } }>;
}

/**
 * The SSM parameters a cell or dedicated stack writes (docs/runtime-config.md): the runtime config
 * document of every tenant env it serves (routeOf: the serving stack publishes it) and its share
 * of the routing document (a cell's pages, a dedicated stack's one share once it serves).
 */
export function ssmParameterCount(fleet: FleetFiles, stack: StackFile, residentsIndex?: ReadonlyMap<string, readonly Tenant[]>): number {
  const served = (t: { id: string; environments: Record<string, unknown> } & Parameters<typeof routeOf>[1], env: string) =>
    env in t.environments && routeOf(fleet, t, env).stack === stack.ref.name;
  if (stack.ref.kind === "shared") {
    const cell = fleet.cells.get(stack.ref.name);
    if (!cell) return 0;
    // With the index of every cell's residents (routes.ts residentsByCell), no scan of the tenants per cell.
    const residents = residentsIndex ? (residentsIndex.get(residentsKey(cell.env, cell.id)) ?? []) : cellResidents(fleet, cell);
    const documents = residents.filter((t) => served(t, cell.env)).length;
    let pages = 1;
    try {
      pages = cellRoutingParameters(fleet, cell, residents).length;
    } catch {
      // A resident served by a cell without a stack file: reported by the cross-file checks; one page is the least the cell writes.
    }
    return documents + pages;
  }
  if (stack.ref.kind === "dedicated") {
    const t = fleet.tenants.get(stack.ref.tenant)?.tenant;
    return t && t.deployment === "dedicated" && served(t, stack.ref.env) ? 2 : 0;
  }
  return 0;
}

/** YAML path of the platform object inside Pulumi.yaml (with or without the `value:` wrapper). */
function platformPath(y: YamlFile): PropertyKey[] {
  const config = (y.value as { config?: Record<string, unknown> }).config ?? {};
  const key = `${PROJECT}:${PLATFORM_KEY}` in config ? `${PROJECT}:${PLATFORM_KEY}` : PLATFORM_KEY;
  const entry = config[key];
  return ["config", key, ...(entry && typeof entry === "object" && "value" in entry ? ["value"] : [])];
}

/** Problems on Pulumi.yaml: `paths` are relative to the platform object. */
function platformProblemsAt(pulumiYaml: PulumiYaml, found: { path: PropertyKey[]; message: string }[]): Problem[] {
  if (found.length === 0) return [];
  const { file, text } = pulumiYaml;
  const y = text === undefined ? undefined : parseYamlMap(file, text);
  if (!y || Array.isArray(y)) return found.map((f) => ({ file, path: f.path.join("."), message: f.message }));
  const base = platformPath(y);
  return found.map((f) => problemAt(y, [...base, ...f.path], f.message));
}

/** Pulumi.yaml as problems name it (relative when inside the working directory) and its text, if readable. */
export interface PulumiYaml {
  file: string;
  text: string | undefined;
}

export function fleetLimitProblems(fleet: FleetFiles, pulumiYaml: PulumiYaml): Problem[] {
  const problems: Problem[] = [];
  const onPlatform: { path: PropertyKey[]; message: string }[] = [];
  const { platform } = fleet;

  platform.regions.forEach((r, i) => {
    if (!regionAzs(r)) onPlatform.push({ path: ["regions", i], message: `region ${r} is not in the AZ table (infra/model/regions.ts); add its AZ letters there before using it` });
  });

  for (const s of fleet.stacks.values()) {
    if (s.ref.kind !== "shared" || !s.cell) continue;
    if (regionAzs(s.region)) {
      const problem = azProblem(s.region, s.cell.azs);
      if (problem) problems.push(problemAt(s.yaml, ["config", CELL_KEY, "azs"], `${problem}; list AZs of the region`));
    }
    if (s.cell.dbEngineVersion !== undefined) {
      const problem = engineVersionProblem(s.cell.dbEngineVersion, platform.cellDefaults.autoMinorVersionUpgrade);
      if (problem) problems.push(problemAt(s.yaml, ["config", CELL_KEY, "dbEngineVersion"], problem));
    }
  }

  for (const lt of fleet.tenants.values()) {
    const t = lt.tenant;
    if (t.deployment !== "dedicated") continue;
    const azs = regionAzs(t.region);
    if (!azs) continue;
    for (const [env, net] of Object.entries(t.dedicated)) {
      if (!net) continue;
      const count = dedicatedAzCount(env, net.azCount);
      if (count <= azs.length) continue;
      const set = net.azCount !== undefined;
      problems.push(
        problemAt(
          lt.yaml,
          set ? ["dedicated", env, "azCount"] : ["dedicated", env],
          `${set ? `azCount ${count}` : `the default of ${count} AZs in ${env}`} exceeds the ${azs.length} AZs of ${t.region} (${azs.join(", ")}); set azCount to at most ${azs.length}`,
        ),
      );
    }
  }

  for (const e of quotaExcesses(fleet)) onPlatform.push({ path: e.path, message: e.message });
  return [...problems, ...platformProblemsAt(pulumiYaml, onPlatform)];
}

/** What one stack (or the platform itself) takes of a quota. */
export interface QuotaUse {
  quota: QuotaName;
  region: string;
  /** The stack name, or what outside any stack holds it ("control plane", "parent zone"). */
  holder: string;
  count: number;
}

/** Everything the fleet's stacks create that counts against a quota. */
export function quotaUsage(fleet: FleetFiles): QuotaUse[] {
  const { platform } = fleet;
  const out: QuotaUse[] = [];
  const use = (quota: QuotaName, region: string, holder: string, count: number) => {
    if (count > 0) out.push({ quota, region: QUOTAS[quota].scope === "account" ? "all regions" : region, holder, count });
  };
  // Outside the stacks: the parent public zone.
  use("hostedZonesPerAccount", platform.controlPlane.region, "parent zone", 1);
  for (const s of fleet.stacks.values()) {
    if (s.ref.kind === "platform") {
      const controlPlane = s.region === platform.controlPlane.region;
      // The hub VPC (the control plane runs in its region's hub), a NAT gateway per hub AZ
      // (components/hubNetwork.ts), the runner's task role and the task execution role, and in the
      // control plane's region its own role, the deployer role, an application role per env and its database.
      use("vpcsPerRegion", s.region, s.ref.name, 1);
      use("gatewayEndpointsPerRegion", s.region, s.ref.name, GATEWAY_ENDPOINTS_PER_VPC);
      use("elasticIpsPerRegion", s.region, s.ref.name, platform.hubs[s.region]?.azs.length ?? 0);
      use("iamRolesPerAccount", s.region, s.ref.name, controlPlane ? 4 + platform.environments.length : 2);
      use("rdsInstancesPerRegion", s.region, s.ref.name, controlPlane ? 1 : 0);
    } else if (s.ref.kind === "shared") {
      use("vpcsPerRegion", s.region, s.ref.name, 1);
      use("gatewayEndpointsPerRegion", s.region, s.ref.name, GATEWAY_ENDPOINTS_PER_VPC);
      use("rdsInstancesPerRegion", s.region, s.ref.name, 1);
      // The flow-log delivery role (components/sharedCell.ts); tenants' roles are counted below.
      use("iamRolesPerAccount", s.region, s.ref.name, 1);
      use("snsTopicsPerRegion", s.region, s.ref.name, ALARM_TOPICS_PER_STACK);
    } else if (s.ref.kind === "dedicated") {
      const t = fleet.tenants.get(s.ref.tenant)?.tenant;
      if (!t || t.deployment !== "dedicated") continue;
      const net = t.dedicated[s.ref.env];
      use("vpcsPerRegion", s.region, s.ref.name, 1);
      use("gatewayEndpointsPerRegion", s.region, s.ref.name, GATEWAY_ENDPOINTS_PER_VPC);
      use("rdsInstancesPerRegion", s.region, s.ref.name, 1);
      // Egress: a NAT gateway (one Elastic IP) per AZ in prod, one elsewhere (components/egress.ts).
      if (t.features.egress) use("elasticIpsPerRegion", s.region, s.ref.name, s.ref.env === "prod" ? dedicatedAzCount(s.ref.env, net?.azCount) : 1);
      // The delegated public zone and the private zone (components/dedicatedDns.ts).
      use("hostedZonesPerAccount", s.region, s.ref.name, 2);
      // The tenant role and the flow-log delivery role.
      use("iamRolesPerAccount", s.region, s.ref.name, 2);
      use("snsTopicsPerRegion", s.region, s.ref.name, ALARM_TOPICS_PER_STACK);
    }
  }
  // SSM parameters, in the tier the platform puts its documents in.
  const ssmQuota: QuotaName = platform.ssmParameterTier === "Advanced" ? "ssmAdvancedParametersPerRegion" : "ssmStandardParametersPerRegion";
  const residents = residentsByCell(fleet);
  for (const s of fleet.stacks.values()) use(ssmQuota, s.region, s.ref.name, ssmParameterCount(fleet, s, residents));
  // Pooled tenants: one role per env, in the stack of the cell they are placed in.
  for (const { tenant: t } of fleet.tenants.values()) {
    if (t.deployment !== "pooled") continue;
    for (const [env, cell] of Object.entries(t.placement)) {
      if (cell) use("iamRolesPerAccount", t.region, `shared-${env}-${cell}`, 1);
    }
  }
  return out;
}

export interface QuotaExcess {
  quota: QuotaName;
  region: string;
  needed: number;
  limit: number;
  /** Holders with their counts, largest first then by name. */
  holders: { holder: string; count: number }[];
  /** Where in the platform object the limit is (or would be) set. */
  path: PropertyKey[];
  message: string;
}

/** One entry per quota and region (or account) the fleet would exceed. */
export function quotaExcesses(fleet: FleetFiles): QuotaExcess[] {
  const quotas = fleet.platform.quotas;
  const sums = new Map<string, { quota: QuotaName; region: string; holders: Map<string, number> }>();
  for (const u of quotaUsage(fleet)) {
    const key = `${u.quota}|${u.region}`;
    const entry = sums.get(key) ?? { quota: u.quota, region: u.region, holders: new Map<string, number>() };
    entry.holders.set(u.holder, (entry.holders.get(u.holder) ?? 0) + u.count);
    sums.set(key, entry);
  }
  const out: QuotaExcess[] = [];
  for (const { quota, region, holders } of sums.values()) {
    const def: QuotaDefinition = QUOTAS[quota];
    const limit = quotaLimit(quotas, quota, region);
    const needed = [...holders.values()].reduce((a, b) => a + b, 0);
    if (needed <= limit) continue;
    const list = [...holders].map(([holder, count]) => ({ holder, count })).sort((a, b) => b.count - a.count || a.holder.localeCompare(b.holder));
    const regional = def.scope === "region";
    const path: PropertyKey[] = regional ? ["quotas", "regions", region, quota] : ["quotas", quota];
    const where = regional ? `in ${region}` : "account-wide";
    const isDefault = limit === def.awsDefault ? " (the AWS default)" : "";
    out.push({
      quota, region, needed, limit, holders: list, path,
      message:
        `quota "${def.label}" ${where} of account ${fleet.platform.awsAccountId}: the fleet needs ${needed}, the quota is ${limit}${isDefault}; ` +
        `used by ${list.map((h) => `${h.holder} (${h.count})`).join(", ")}; ` +
        (def.notAdjustable !== undefined
          ? `AWS does not raise this quota: ${def.notAdjustable}`
          : `request an increase (Service Quotas ${def.serviceCode} ${def.quotaCode}) and set quotas.${regional ? `regions.${region}.` : ""}${quota} in Pulumi.yaml, or place the new stacks elsewhere`),
    });
  }
  return out.sort((a, b) => a.quota.localeCompare(b.quota) || a.region.localeCompare(b.region));
}
