/**
 * Service quotas a fleet consumes, per AWS account and region, and the fleet-level check that
 * validate and plan run (through loadFleet): what every stack will create, counted from the
 * tenant and stack files, against the quota table in Pulumi.yaml (`platform.quotas`). A fleet
 * that would exceed a quota is refused before a `pulumi up` fails half-way on LimitExceeded.
 *
 * Defaults are AWS's documented defaults (each cited below, read 2026-12-05); an account with a
 * raised quota says so in Pulumi.yaml (`quotas.<name>` for every region, `quotas.regions.<r>.<name>`
 * for one region). Pure: no AWS call; Service Quotas codes are given so the increase can be requested.
 */
import { z } from "zod";
import type { Fleet } from "./fleet.ts";
import { dedicatedAzCount } from "./subnets.ts";

export type QuotaScope = "region" | "account";

export interface QuotaDefinition {
  scope: QuotaScope;
  /** AWS's name of the quota. */
  label: string;
  /** Service Quotas service and quota code (for `aws service-quotas request-service-quota-increase`). */
  serviceCode: string;
  quotaCode: string;
  /** AWS's documented default. */
  awsDefault: number;
  source: string;
}

export const QUOTAS = {
  vpcsPerRegion: {
    scope: "region", label: "VPCs per Region", serviceCode: "vpc", quotaCode: "L-F678F1CE", awsDefault: 5,
    source: "https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html",
  },
  elasticIpsPerRegion: {
    scope: "region", label: "EC2-VPC Elastic IPs", serviceCode: "ec2", quotaCode: "L-0263D0A3", awsDefault: 5,
    source: "https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html",
  },
  rdsInstancesPerRegion: {
    scope: "region", label: "DB instances", serviceCode: "rds", quotaCode: "L-7B6409FD", awsDefault: 40,
    source: "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/CHAP_Limits.html",
  },
  hostedZonesPerAccount: {
    scope: "account", label: "Hosted zones", serviceCode: "route53", quotaCode: "L-4EA4796A", awsDefault: 500,
    source: "https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/DNSLimitations.html",
  },
  iamRolesPerAccount: {
    scope: "account", label: "Roles per account", serviceCode: "iam", quotaCode: "L-FE177D64", awsDefault: 1000,
    source: "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html",
  },
} as const satisfies Record<string, QuotaDefinition>;

export type QuotaName = keyof typeof QUOTAS;
export const QUOTA_NAMES = Object.keys(QUOTAS) as QuotaName[];

const positive = z.number().int().positive();
const regionalOverrides = z
  .object({ vpcsPerRegion: positive.optional(), elasticIpsPerRegion: positive.optional(), rdsInstancesPerRegion: positive.optional() })
  .strict();

export const QuotasSchema = z
  .object({
    vpcsPerRegion: positive.default(QUOTAS.vpcsPerRegion.awsDefault),
    elasticIpsPerRegion: positive.default(QUOTAS.elasticIpsPerRegion.awsDefault),
    rdsInstancesPerRegion: positive.default(QUOTAS.rdsInstancesPerRegion.awsDefault),
    hostedZonesPerAccount: positive.default(QUOTAS.hostedZonesPerAccount.awsDefault),
    iamRolesPerAccount: positive.default(QUOTAS.iamRolesPerAccount.awsDefault),
    /** Raised values of one region (Service Quotas increases are per region). */
    regions: z.record(z.string(), regionalOverrides).default({}),
  })
  .strict()
  .prefault({});
export type Quotas = z.output<typeof QuotasSchema>;

/** What one stack (or the platform itself) takes of a quota. */
export interface QuotaUse {
  quota: QuotaName;
  region: string;
  /** The stack name, or what outside any stack holds it ("control plane", "parent zone"). */
  holder: string;
  count: number;
}

/** Everything the fleet's stacks create that counts against a quota. */
export function quotaUsage(fleet: Pick<Fleet, "platform" | "stacks" | "tenants">): QuotaUse[] {
  const { platform } = fleet;
  const out: QuotaUse[] = [];
  const use = (quota: QuotaName, region: string, holder: string, count: number) => {
    if (count > 0) out.push({ quota, region: QUOTAS[quota].scope === "account" ? "all regions" : region, holder, count });
  };
  // Outside the stacks: the control plane's VPC and role, the parent public zone.
  use("vpcsPerRegion", platform.controlPlane.region, "control plane", 1);
  use("iamRolesPerAccount", platform.controlPlane.region, "control plane", 1);
  use("hostedZonesPerAccount", platform.controlPlane.region, "parent zone", 1);
  for (const s of fleet.stacks.values()) {
    if (s.ref.kind === "shared") {
      use("vpcsPerRegion", s.region, s.ref.name, 1);
      use("rdsInstancesPerRegion", s.region, s.ref.name, 1);
    } else if (s.ref.kind === "dedicated") {
      const t = fleet.tenants.get(s.ref.tenant)?.tenant;
      if (!t || t.deployment !== "dedicated") continue;
      const net = t.dedicated[s.ref.env];
      use("vpcsPerRegion", s.region, s.ref.name, 1);
      use("rdsInstancesPerRegion", s.region, s.ref.name, 1);
      // Egress: a NAT gateway (one Elastic IP) per AZ in prod, one elsewhere (components/egress.ts).
      if (t.features.egress) use("elasticIpsPerRegion", s.region, s.ref.name, s.ref.env === "prod" ? dedicatedAzCount(s.ref.env, net?.azCount) : 1);
      // The delegated public zone and the private zone (components/dedicatedDns.ts).
      use("hostedZonesPerAccount", s.region, s.ref.name, 2);
      // The tenant role and the flow-log delivery role.
      use("iamRolesPerAccount", s.region, s.ref.name, 2);
    }
  }
  // Pooled tenants: one role per env, in the stack of the cell they are placed in.
  for (const { tenant: t } of fleet.tenants.values()) {
    if (t.deployment !== "pooled") continue;
    for (const [env, cell] of Object.entries(t.placement)) {
      if (cell) use("iamRolesPerAccount", t.region, `shared-${env}-${cell}`, 1);
    }
  }
  return out;
}

/** The quota in force for `quota` in `region` (a raised regional value, the platform value, the AWS default). */
export function quotaLimit(quotas: Quotas, quota: QuotaName, region: string): number {
  const overrides: Partial<Record<QuotaName, number>> | undefined = quotas.regions[region];
  const regional = QUOTAS[quota].scope === "region" ? overrides?.[quota] : undefined;
  return regional ?? quotas[quota];
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
export function quotaExcesses(fleet: Pick<Fleet, "platform" | "stacks" | "tenants">): QuotaExcess[] {
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
    const def = QUOTAS[quota];
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
        `request an increase (Service Quotas ${def.serviceCode} ${def.quotaCode}) and set quotas.${regional ? `regions.${region}.` : ""}${quota} in Pulumi.yaml, or place the new stacks elsewhere`,
    });
  }
  return out.sort((a, b) => a.quota.localeCompare(b.quota) || a.region.localeCompare(b.region));
}
