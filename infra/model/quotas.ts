/**
 * The AWS service quotas a fleet is checked against: the quota table, its defaults and the
 * `platform.quotas` section of Pulumi.yaml. What every stack will create is counted against it by
 * the fleet-level check in infra/model/fleetLimits.ts (validate and plan, through loadFleet): a
 * fleet that would exceed a quota is refused before a `pulumi up` fails half-way on LimitExceeded.
 *
 * Defaults are AWS's documented defaults (each cited below, read 2026-12-05); an account with a
 * raised quota says so in Pulumi.yaml (`quotas.<name>` for every region, `quotas.regions.<r>.<name>`
 * for one region). Pure: no AWS call; Service Quotas codes are given so the increase can be requested.
 */
import { z } from "zod";

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
  /**
   * Set when AWS does not raise the quota: what to do instead (the message says it in place of
   * "request an increase"), and the schema refuses a value above the default.
   */
  notAdjustable?: string;
}

const SSM_TIERS_PAGE = "https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html";

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
  // One S3 gateway endpoint per VPC (infra/model/endpoints.ts); up to 255 per VPC, but 20 per Region by default.
  gatewayEndpointsPerRegion: {
    scope: "region", label: "Gateway VPC endpoints per Region", serviceCode: "vpc", quotaCode: "L-1B52E74A", awsDefault: 20,
    source: "https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-limits-endpoints.html",
  },
  hostedZonesPerAccount: {
    scope: "account", label: "Hosted zones", serviceCode: "route53", quotaCode: "L-4EA4796A", awsDefault: 500,
    source: "https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/DNSLimitations.html",
  },
  iamRolesPerAccount: {
    scope: "account", label: "Roles per account", serviceCode: "iam", quotaCode: "L-FE177D64", awsDefault: 1000,
    source: "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html",
  },
  // One standard topic per cell and dedicated stack, for its storage alarms
  // (infra/components/storageAlarms.ts). Topics are regional; the quota is "Topics per Account" in
  // each Region. The alarms themselves count against nothing: CloudWatch has "no limit on the total
  // number of alarms per account" (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_limits.html);
  // their per-alarm limits are checked on every spec (alarmSpecProblems, infra/model/storageAlarms.ts).
  snsTopicsPerRegion: {
    scope: "region", label: "SNS topics per account", serviceCode: "sns", quotaCode: "L-61103206", awsDefault: 100_000,
    source: "https://docs.aws.amazon.com/general/latest/gr/sns.html",
  },
  // Parameter Store: "Total number of parameters allowed (per AWS account and AWS Region)", a fixed
  // number per tier (the tiers page has no increase; Service Quotas lists no code for it). The
  // fleet's documents count against the tier `ssmParameterTier` (Pulumi.yaml) puts them in.
  ssmStandardParametersPerRegion: {
    scope: "region", label: "Parameter Store standard parameters", serviceCode: "ssm", quotaCode: "(none)", awsDefault: 10_000,
    source: SSM_TIERS_PAGE,
    notAdjustable: "set ssmParameterTier: Advanced in Pulumi.yaml (100,000 per account and region, USD 0.05 per parameter-month; a Standard parameter becomes Advanced in place, never back), or place tenants in another account or region",
  },
  ssmAdvancedParametersPerRegion: {
    scope: "region", label: "Parameter Store advanced parameters", serviceCode: "ssm", quotaCode: "(none)", awsDefault: 100_000,
    source: SSM_TIERS_PAGE,
    notAdjustable: "place tenants in another account or region",
  },
} as const satisfies Record<string, QuotaDefinition>;

export type QuotaName = keyof typeof QUOTAS;
export const QUOTA_NAMES = Object.keys(QUOTAS) as QuotaName[];

const positive = z.number().int().positive();
/**
 * A quota AWS does not raise: a lower value is allowed (room kept for parameters made outside the
 * fleet), a higher one is refused.
 */
const fixed = (quota: QuotaName) => {
  const def: QuotaDefinition = QUOTAS[quota];
  return positive.max(def.awsDefault, `cannot exceed ${def.awsDefault}: AWS does not raise "${def.label}" (${def.source}); ${def.notAdjustable ?? ""}`);
};
const regionalOverrides = z
  .object({
    vpcsPerRegion: positive.optional(),
    elasticIpsPerRegion: positive.optional(),
    rdsInstancesPerRegion: positive.optional(),
    gatewayEndpointsPerRegion: positive.optional(),
    snsTopicsPerRegion: positive.optional(),
    ssmStandardParametersPerRegion: fixed("ssmStandardParametersPerRegion").optional(),
    ssmAdvancedParametersPerRegion: fixed("ssmAdvancedParametersPerRegion").optional(),
  })
  .strict();

export const QuotasSchema = z
  .object({
    vpcsPerRegion: positive.default(QUOTAS.vpcsPerRegion.awsDefault),
    elasticIpsPerRegion: positive.default(QUOTAS.elasticIpsPerRegion.awsDefault),
    rdsInstancesPerRegion: positive.default(QUOTAS.rdsInstancesPerRegion.awsDefault),
    gatewayEndpointsPerRegion: positive.default(QUOTAS.gatewayEndpointsPerRegion.awsDefault),
    snsTopicsPerRegion: positive.default(QUOTAS.snsTopicsPerRegion.awsDefault),
    hostedZonesPerAccount: positive.default(QUOTAS.hostedZonesPerAccount.awsDefault),
    iamRolesPerAccount: positive.default(QUOTAS.iamRolesPerAccount.awsDefault),
    ssmStandardParametersPerRegion: fixed("ssmStandardParametersPerRegion").default(QUOTAS.ssmStandardParametersPerRegion.awsDefault),
    ssmAdvancedParametersPerRegion: fixed("ssmAdvancedParametersPerRegion").default(QUOTAS.ssmAdvancedParametersPerRegion.awsDefault),
    /** Raised values of one region (Service Quotas increases are per region). */
    regions: z.record(z.string(), regionalOverrides).default({}),
  })
  .strict()
  .prefault({});
export type Quotas = z.output<typeof QuotasSchema>;

/** The quota in force for `quota` in `region` (a raised regional value, the platform value, the AWS default). */
export function quotaLimit(quotas: Quotas, quota: QuotaName, region: string): number {
  const overrides: Partial<Record<QuotaName, number>> | undefined = quotas.regions[region];
  const regional = QUOTAS[quota].scope === "region" ? overrides?.[quota] : undefined;
  return regional ?? quotas[quota];
}
