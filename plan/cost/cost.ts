/**
 * Monthly cost of a stack from its rendered resources and the dated price table, and each
 * tenant's part of it: a dedicated tenant pays its whole stack; a pooled tenant pays its own
 * resources (tagged with its id) plus an equal share of the cell's shared ones (tagged `shared`),
 * split among the cell's residents. Equal shares are a convention, not metering: the cell
 * database serves tenants of very different sizes, and usage-based allocation needs usage data.
 */
import { tenantsOfStack, type Fleet } from "../../infra/model/fleet.ts";
import { SHARED_TENANT } from "../../infra/model/naming.ts";
import { unwrapSecrets, type RenderedResource, type RenderedStack } from "../types.ts";
import { ASSUMPTIONS, HOSTED_ZONE_MONTH, HOURS_PER_MONTH, REGION_PRICES, type Price, type RegionPrices } from "./prices.ts";

export interface CostLine {
  urn: string;
  type: string;
  name: string;
  /** The resource's tenant tag, `shared` for cell infrastructure (and for untagged resources). */
  tenant: string;
  /** What is charged, e.g. "db.r6g.large Multi-AZ × 730 h". */
  item: string;
  monthlyUsd: number;
  /** Rests on a figure not confirmed on a published page (see prices.ts). */
  unverified: boolean;
}

export interface Unpriced {
  urn: string;
  type: string;
  name: string;
  reason: string;
}

export interface StackCost {
  stack: string;
  kind: RenderedStack["kind"];
  region: string;
  lines: CostLine[];
  /** Resources that cost money but have no price in the table: the total understates by them. */
  unpriced: Unpriced[];
  monthlyUsd: number;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function tenantTag(inputs: Record<string, unknown>): string {
  const tags = inputs.tags;
  const t = tags && typeof tags === "object" ? (tags as Record<string, unknown>).tenant : undefined;
  return typeof t === "string" && t !== "" ? t : SHARED_TENANT;
}

/** Keeps sums free of floating-point noise: prices have at most four decimals. */
function round(usd: number): number {
  return Math.round(usd * 10_000) / 10_000;
}

/**
 * The cost lines of one resource. Resources AWS does not bill by the hour or month (VPCs,
 * subnets, security groups, IAM, records, database roles and schemas) have none.
 */
export function resourceCost(
  r: RenderedResource,
  region: string,
  stack: { flowLogDestinations?: readonly string[] } = {},
): { lines: CostLine[]; unpriced?: Unpriced } {
  const inputs = unwrapSecrets(r.inputs) as Record<string, unknown>;
  const at = str(inputs.region) ?? region;
  const prices: RegionPrices | undefined = REGION_PRICES[at];
  const base = { urn: r.urn, type: r.type, name: r.name, tenant: tenantTag(inputs) };
  const line = (item: string, quantity: number, price: Price): CostLine => ({
    ...base, item, monthlyUsd: round(quantity * price.usd), unverified: !price.verified,
  });
  const missing = (reason: string) => ({ lines: [], unpriced: { urn: r.urn, type: r.type, name: r.name, reason } });
  const billed = [
    "aws:rds/instance:Instance", "aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip", "aws:kms/key:Key",
    "aws:secretsmanager/secret:Secret", "aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2", "aws:cloudwatch/logGroup:LogGroup",
    "aws:ec2/flowLog:FlowLog", "aws:ec2/vpcEndpoint:VpcEndpoint", "aws:cloudwatch/metricAlarm:MetricAlarm",
  ];
  if (r.type === "aws:route53/zone:Zone") return { lines: [line("hosted zone × 1 month", 1, HOSTED_ZONE_MONTH)] };
  if (!billed.includes(r.type)) return { lines: [] };
  if (!prices) return missing(`no prices for region ${at} in plan/cost/prices.ts`);

  switch (r.type) {
    case "aws:rds/instance:Instance": {
      const cls = str(inputs.instanceClass);
      const multiAz = inputs.multiAz === true;
      const classPrice = cls ? prices.rdsPostgres[cls] : undefined;
      if (!cls || !classPrice) return missing(`no price for RDS PostgreSQL ${cls ?? "(no instanceClass)"} in ${at}; add it to plan/cost/prices.ts`);
      const gb = num(inputs.allocatedStorage) ?? 0;
      // The provider defaults storageType to gp2 (io1 when iops is set); RDS prices gp2 and gp3 alike.
      const storageType = str(inputs.storageType) ?? (inputs.iops !== undefined ? "io1" : "gp2");
      if (storageType !== "gp2" && storageType !== "gp3") return missing(`no price for RDS ${storageType} storage in ${at}`);
      const storage = prices.rdsStorageGbMonth[storageType];
      const az = multiAz ? "Multi-AZ" : "Single-AZ";
      return {
        lines: [
          line(`${cls} ${az} × ${HOURS_PER_MONTH} h`, HOURS_PER_MONTH, multiAz ? classPrice.multiAz : classPrice.singleAz),
          line(`${gb} GB ${storageType} ${az}`, gb, multiAz ? storage.multiAz : storage.singleAz),
        ],
      };
    }
    case "aws:ec2/natGateway:NatGateway": {
      if (str(inputs.connectivityType) === "private") {
        return { lines: [line(`private NAT gateway × ${HOURS_PER_MONTH} h`, HOURS_PER_MONTH, prices.natGatewayHour)] };
      }
      return {
        lines: [
          line(`NAT gateway × ${HOURS_PER_MONTH} h`, HOURS_PER_MONTH, prices.natGatewayHour),
          line(`NAT data processing, ${ASSUMPTIONS.natGbPerMonth} GB (assumed)`, ASSUMPTIONS.natGbPerMonth, prices.natGatewayGb),
        ],
      };
    }
    case "aws:ec2/eip:Eip":
      return { lines: [line(`public IPv4 address × ${HOURS_PER_MONTH} h`, HOURS_PER_MONTH, prices.publicIpv4Hour)] };
    case "aws:kms/key:Key":
      return { lines: [line("KMS key × 1 month", 1, prices.kmsKeyMonth)] };
    case "aws:secretsmanager/secret:Secret": {
      const replicas = Array.isArray(inputs.replicas) ? inputs.replicas.length : 0;
      return { lines: [line(`secret${replicas ? ` + ${replicas} replicas` : ""} × 1 month`, 1 + replicas, prices.secretMonth)] };
    }
    case "aws:s3/bucket:Bucket":
    case "aws:s3/bucketV2:BucketV2":
      return { lines: [line(`S3 Standard, ${ASSUMPTIONS.s3GbPerBucket} GB (assumed)`, ASSUMPTIONS.s3GbPerBucket, prices.s3StandardGbMonth)] };
    case "aws:cloudwatch/logGroup:LogGroup": {
      // A flow log's group is fed by the flow log, whose vended-log delivery is its ingestion: counted there.
      const name = str(inputs.name);
      if (name && (stack.flowLogDestinations ?? []).some((d) => d === name || d.endsWith(`:log-group:${name}`) || d.endsWith(`:log-group:${name}:*`))) {
        return { lines: [] };
      }
      return { lines: [line(`log ingestion, ${ASSUMPTIONS.logGroupGbPerMonth} GB (assumed)`, ASSUMPTIONS.logGroupGbPerMonth, prices.logsIngestGb)] };
    }
    case "aws:ec2/flowLog:FlowLog": {
      const toS3 = str(inputs.logDestinationType) === "s3";
      return {
        lines: [
          line(
            `flow logs to ${toS3 ? "S3" : "CloudWatch Logs"}, ${ASSUMPTIONS.flowLogGbPerMonth} GB (assumed)`,
            ASSUMPTIONS.flowLogGbPerMonth,
            toS3 ? prices.vendedLogsToS3Gb : prices.vendedLogsToCloudWatchGb,
          ),
        ],
      };
    }
    case "aws:ec2/vpcEndpoint:VpcEndpoint": {
      if (str(inputs.vpcEndpointType) !== "Interface") return { lines: [] };
      const azs = Array.isArray(inputs.subnetIds) ? Math.max(1, inputs.subnetIds.length) : 1;
      return { lines: [line(`interface endpoint in ${azs} AZ × ${HOURS_PER_MONTH} h`, azs * HOURS_PER_MONTH, prices.interfaceEndpointHour)] };
    }
    case "aws:cloudwatch/metricAlarm:MetricAlarm":
      // SNS topics cost nothing to keep; the first million publishes a month are free.
      return { lines: [line("metric alarm × 1 month", 1, prices.metricAlarmMonth)] };
    default:
      return { lines: [] };
  }
}

/** The monthly cost of a rendered stack in `region` (the stack file's aws:region). */
export function costOfStack(stack: RenderedStack, region: string): StackCost {
  const lines: CostLine[] = [];
  const unpriced: Unpriced[] = [];
  const flowLogDestinations = stack.resources
    .filter((r) => r.type === "aws:ec2/flowLog:FlowLog")
    .flatMap((r) => {
      const i = unwrapSecrets(r.inputs) as Record<string, unknown>;
      return [str(i.logDestination), str(i.logGroupName)].filter((d): d is string => d !== undefined);
    });
  for (const r of stack.resources) {
    if (!r.custom) continue;
    const c = resourceCost(r, region, { flowLogDestinations });
    lines.push(...c.lines);
    if (c.unpriced) unpriced.push(c.unpriced);
  }
  return { stack: stack.name, kind: stack.kind, region, lines, unpriced, monthlyUsd: round(lines.reduce((s, l) => s + l.monthlyUsd, 0)) };
}

export interface TenantStackCost {
  stack: string;
  /** Resources tagged with the tenant (all of a dedicated stack). */
  ownUsd: number;
  /** Its equal share of the cell's shared resources. */
  shareUsd: number;
  /** Residents the shared part was split among. */
  residents: number;
}

export interface TenantCost {
  tenant: string;
  stacks: TenantStackCost[];
  monthlyUsd: number;
}

export interface Allocation {
  tenants: TenantCost[];
  /** Cost nobody is allocated: an empty cell's shared infrastructure, or resources tagged with a tenant the cell does not hold. */
  unallocated: { stack: string; usd: number; reason: string }[];
}

/** Splits stack costs among tenants (see the module comment for the rule). */
export function allocate(fleet: Fleet, costs: readonly StackCost[]): Allocation {
  const perTenant = new Map<string, TenantStackCost[]>();
  const unallocated: Allocation["unallocated"] = [];
  const add = (tenant: string, entry: TenantStackCost) => perTenant.set(tenant, [...(perTenant.get(tenant) ?? []), entry]);
  for (const c of costs) {
    const residents = tenantsOfStack(fleet, c.stack).map((t) => t.id);
    if (c.kind === "dedicated") {
      const [tenant] = residents;
      if (tenant) add(tenant, { stack: c.stack, ownUsd: c.monthlyUsd, shareUsd: 0, residents: 1 });
      else unallocated.push({ stack: c.stack, usd: c.monthlyUsd, reason: "dedicated stack without its tenant" });
      continue;
    }
    const own = new Map<string, number>();
    let shared = 0;
    let stray = 0;
    for (const l of c.lines) {
      if (l.tenant === SHARED_TENANT) shared += l.monthlyUsd;
      else if (residents.includes(l.tenant)) own.set(l.tenant, (own.get(l.tenant) ?? 0) + l.monthlyUsd);
      else stray += l.monthlyUsd;
    }
    if (stray > 0) unallocated.push({ stack: c.stack, usd: round(stray), reason: "resources tagged with a tenant that does not live in this cell" });
    if (residents.length === 0) {
      if (shared > 0) unallocated.push({ stack: c.stack, usd: round(shared), reason: "cell without residents" });
      continue;
    }
    const share = round(shared / residents.length);
    for (const t of residents) add(t, { stack: c.stack, ownUsd: round(own.get(t) ?? 0), shareUsd: share, residents: residents.length });
  }
  const tenants = [...perTenant.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([tenant, stacks]) => ({ tenant, stacks, monthlyUsd: round(stacks.reduce((s, x) => s + x.ownUsd + x.shareUsd, 0)) }));
  return { tenants, unallocated };
}

/** `$1,234.56`; deltas get a sign: `+$12.00`, `-$0.40`. */
export function formatUsd(usd: number, signed = false): string {
  const abs = Math.abs(usd).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  if (!signed) return `${usd < 0 ? "-" : ""}$${abs}`;
  if (Math.round(usd * 100) === 0) return "±$0.00";
  return `${usd > 0 ? "+" : "-"}$${abs}`;
}
