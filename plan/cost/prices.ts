/**
 * AWS on-demand list prices for what the stacks create, in USD, for the platform's regions
 * (us-east-1, eu-west-1). A dated snapshot, not a live price feed: `tenantctl cost` and the PR
 * comment are estimates for comparing changes, not invoices.
 *
 * Figures taken on 2026-11-22 from the pages cited next to each one (the cited pages state their
 * own dates, 2024-2026). `verified: false` marks a figure that could not be confirmed on a
 * published page that day: it is a best estimate, and `tenantctl cost` labels it "unverified".
 * To refresh: check https://aws.amazon.com/rds/postgresql/pricing/, https://aws.amazon.com/vpc/pricing/,
 * https://aws.amazon.com/kms/pricing/, https://aws.amazon.com/secrets-manager/pricing/,
 * https://aws.amazon.com/route53/pricing/, https://aws.amazon.com/cloudwatch/pricing/ and
 * https://aws.amazon.com/s3/pricing/ (or the AWS Price List API), update the figures, the
 * sources and PRICES_AS_OF together.
 */

export const PRICES_AS_OF = "2026-11-22";

/** AWS bills hourly resources per hour; a month is 730 hours in AWS's own calculator. */
export const HOURS_PER_MONTH = 730;

export interface Price {
  usd: number;
  /** Where the figure comes from. */
  source: string;
  /** False: not confirmed on a published page on PRICES_AS_OF. */
  verified: boolean;
}

export interface RdsClassPrice {
  /** Per instance-hour. */
  singleAz: Price;
  /** Per instance-hour with a Multi-AZ standby (AWS bills primary and standby). */
  multiAz: Price;
}

export interface RegionPrices {
  /** RDS for PostgreSQL, per instance class. The classes the tiers and cells use (infra/model/tiers.ts, Pulumi.yaml). */
  rdsPostgres: Readonly<Record<string, RdsClassPrice>>;
  /** RDS General Purpose storage per GB-month; Multi-AZ bills the standby's copy too. */
  rdsStorageGbMonth: Readonly<Record<"gp2" | "gp3", { singleAz: Price; multiAz: Price }>>;
  natGatewayHour: Price;
  natGatewayGb: Price;
  /** Public IPv4 address (an Elastic IP, e.g. a NAT gateway's) per hour, since 2024-02-01. */
  publicIpv4Hour: Price;
  kmsKeyMonth: Price;
  secretMonth: Price;
  /** CloudWatch Logs ingestion (standard class) per GB. */
  logsIngestGb: Price;
  /** Vended logs (VPC flow logs) delivered to CloudWatch Logs, per GB (first 10 TB). */
  vendedLogsToCloudWatchGb: Price;
  /** Vended logs delivered to S3, per GB (first 10 TB). */
  vendedLogsToS3Gb: Price;
  /** S3 Standard, first 50 TB, per GB-month. */
  s3StandardGbMonth: Price;
  /** Interface VPC endpoint, per endpoint per AZ per hour. */
  interfaceEndpointHour: Price;
  /** CloudWatch metric alarm, standard resolution, one metric, per month (the storage alarms). */
  metricAlarmMonth: Price;
}

const RDS_PG = "https://aws.amazon.com/rds/postgresql/pricing/";
const INFRATALLY = "https://infratally.com/articles/aws-rds-pricing-explained-2026.html (us-east-1, 2026)";
const USAGE_AI = "https://www.usage.ai/blogs/aws/reserved-instances/rds/pricing-calculator/ (us-east-1, June 2026)";
const BESCLOUD = "https://blog.thebescloud.com/rds-gp3-volumes-decrypting-the-latest-storage-announcement-from-aws (eu-west-1 RDS gp2 = gp3)";
const DOIT_RDS = "https://engineering.doit.com/rds-storage-gp3-gp2-and-provisioned-iops-cost-comparison-dc70216b6dca (RDS gp2 = gp3 per GB)";
const RDS_MULTI_AZ = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_OnDemandDBInstances.html (Multi-AZ bills primary and standby compute and storage)";
const NAT = "https://basavytix.com/blog/aws-nat-gateway-pricing (us-east-1 $0.045/h, $0.045/GB)";
const NAT_EU = "https://cloudpipelines.pages.dev/guides/aws-nat-gateway-pricing-2026/ (Europe ~$0.048-0.052)";
const IPV4 = "https://aws.amazon.com/blogs/networking-and-content-delivery/identify-and-optimize-public-ipv4-address-usage-on-aws/ ($0.005/IP-hour from 2024-02-01)";
const KMS = "https://aws.amazon.com/kms/pricing/ ($1/month per key; rotation adds $1/month per rotated backing key)";
const SECRETS = "https://aws.amazon.com/secrets-manager/pricing/ ($0.40 per secret per month)";
const ROUTE53 = "https://aws.amazon.com/route53/pricing/ (via https://ns1.com/resources/aws-dns: $0.50 per hosted zone-month, first 25 zones)";
const CW_LOGS = "https://c3x.dev/blog/cloudwatch-logs-cost-optimization (us-east-1 June 2026: ingestion $0.50/GB, vended logs to S3 $0.25/GB)";
const S3 = "https://aws.amazon.com/s3/pricing/ (via https://gist.github.com/EverettBerry: S3 Standard first 50 TB $0.023/GB)";
const CW_ALARMS = "https://aws.amazon.com/cloudwatch/pricing/ ($0.10 per standard-resolution alarm metric per month; the free tier's 10 alarms not counted)";
const ENDPOINT = "https://knbrlo.com/notes/aws/nat-gateway-data-processing (interface endpoint ~$0.01 per hour per AZ)";

const v = (usd: number, source: string): Price => ({ usd, source, verified: true });
const u = (usd: number, source: string): Price => ({ usd, source, verified: false });

export const REGION_PRICES: Readonly<Record<string, RegionPrices>> = {
  "us-east-1": {
    rdsPostgres: {
      "db.t4g.medium": { singleAz: v(0.065, INFRATALLY), multiAz: v(0.13, INFRATALLY) },
      "db.t4g.large": { singleAz: u(0.129, RDS_PG), multiAz: u(0.258, RDS_PG) },
      "db.r6g.large": { singleAz: u(0.225, RDS_PG), multiAz: u(0.45, RDS_PG) },
      "db.r6g.xlarge": { singleAz: u(0.45, RDS_PG), multiAz: u(0.9, RDS_PG) },
      "db.r6g.2xlarge": { singleAz: u(0.899, RDS_PG), multiAz: u(1.798, RDS_PG) },
    },
    rdsStorageGbMonth: {
      gp2: { singleAz: v(0.115, DOIT_RDS), multiAz: v(0.23, RDS_MULTI_AZ) },
      gp3: { singleAz: v(0.115, USAGE_AI), multiAz: v(0.23, RDS_MULTI_AZ) },
    },
    natGatewayHour: v(0.045, NAT),
    natGatewayGb: v(0.045, NAT),
    publicIpv4Hour: v(0.005, IPV4),
    kmsKeyMonth: v(1, KMS),
    secretMonth: v(0.4, SECRETS),
    logsIngestGb: v(0.5, CW_LOGS),
    vendedLogsToCloudWatchGb: u(0.5, CW_LOGS),
    vendedLogsToS3Gb: v(0.25, CW_LOGS),
    s3StandardGbMonth: v(0.023, S3),
    interfaceEndpointHour: v(0.01, ENDPOINT),
    metricAlarmMonth: u(0.1, CW_ALARMS),
  },
  "eu-west-1": {
    rdsPostgres: {
      "db.t4g.medium": { singleAz: u(0.072, RDS_PG), multiAz: u(0.144, RDS_PG) },
      "db.t4g.large": { singleAz: u(0.144, RDS_PG), multiAz: u(0.288, RDS_PG) },
      "db.r6g.large": { singleAz: u(0.248, RDS_PG), multiAz: u(0.496, RDS_PG) },
      "db.r6g.xlarge": { singleAz: u(0.496, RDS_PG), multiAz: u(0.992, RDS_PG) },
      "db.r6g.2xlarge": { singleAz: u(0.992, RDS_PG), multiAz: u(1.984, RDS_PG) },
    },
    rdsStorageGbMonth: {
      gp2: { singleAz: v(0.127, BESCLOUD), multiAz: v(0.254, RDS_MULTI_AZ) },
      gp3: { singleAz: v(0.127, BESCLOUD), multiAz: v(0.254, RDS_MULTI_AZ) },
    },
    natGatewayHour: u(0.048, NAT_EU),
    natGatewayGb: u(0.048, NAT_EU),
    publicIpv4Hour: v(0.005, IPV4),
    kmsKeyMonth: v(1, KMS),
    secretMonth: v(0.4, SECRETS),
    logsIngestGb: u(0.57, "https://aws.amazon.com/cloudwatch/pricing/"),
    vendedLogsToCloudWatchGb: u(0.57, "https://aws.amazon.com/cloudwatch/pricing/"),
    vendedLogsToS3Gb: u(0.25, "https://aws.amazon.com/cloudwatch/pricing/"),
    s3StandardGbMonth: u(0.023, "https://aws.amazon.com/s3/pricing/"),
    interfaceEndpointHour: u(0.011, "https://aws.amazon.com/privatelink/pricing/"),
    metricAlarmMonth: u(0.1, CW_ALARMS),
  },
};

/** Route 53 is global: $0.50 per hosted zone-month for the first 25 zones of the account ($0.10 after; not modelled). */
export const HOSTED_ZONE_MONTH: Price = v(0.5, ROUTE53);

/**
 * Usage the rendered program cannot show, assumed per resource. Each is a named constant so the
 * docs and the PR comment can state it; change them here, never inline.
 */
export const ASSUMPTIONS = {
  /** GB processed per NAT gateway per month. */
  natGbPerMonth: 100,
  /** GB of flow logs per VPC flow log per month. */
  flowLogGbPerMonth: 10,
  /** GB ingested per CloudWatch log group per month (RDS exports, application logs). */
  logGroupGbPerMonth: 5,
  /** GB stored per S3 bucket (a cell bucket holds all its tenants' prefixes). */
  s3GbPerBucket: 100,
} as const;

/** Prose for docs/cost.md and the PR comment's footnote. */
export const ASSUMPTION_NOTES: readonly string[] = [
  `on-demand list prices of ${PRICES_AS_OF}, ${HOURS_PER_MONTH} hours a month; no reserved instances, savings plans or free tier`,
  `NAT gateways process ${ASSUMPTIONS.natGbPerMonth} GB a month each; VPC flow logs deliver ${ASSUMPTIONS.flowLogGbPerMonth} GB a month each; log groups ingest ${ASSUMPTIONS.logGroupGbPerMonth} GB a month each; S3 buckets hold ${ASSUMPTIONS.s3GbPerBucket} GB each`,
  "RDS backup storage within the free allowance (100% of provisioned storage); data transfer, API requests (KMS, Secrets Manager), DNS queries and log storage are not counted",
  "a KMS key is priced in its first year: automatic rotation adds $1/month per rotation for the first two rotations",
  "a pooled tenant pays an equal share of its cell's shared infrastructure (VPC, database, NAT, cell key and bucket) plus its own resources (secrets, its KMS key when enterprise); a dedicated tenant pays its whole stack",
];
