/**
 * Subnet planner: pure, used by cell and dedicated VPCs.
 *
 * A subnet's block is decided by its AZ's *letter*, not by its position in a list: `us-east-1c`
 * always gets slot 2 of the VPC, whatever other AZs are configured. So adding an AZ (or listing
 * AZs in another order) never moves an existing subnet, and a moved subnet would be a replaced
 * subnet and a replaced RDS subnet group. Never change the slot arithmetic below for a deployed
 * VPC: every existing subnet would be replaced.
 *
 * Layout of a VPC of prefix /p (a /16 in the examples):
 * - private subnet of AZ letter i: the i-th /(p+4) block (for a /16: 10.x.0.0/20, 10.x.16.0/20, ...)
 *   -> slots 0..7 fill the first half of the VPC;
 * - public subnet of AZ letter i: the (128+i)-th /(p+8) block, the start of the second half
 *   (for a /16: 10.x.128.0/24, 10.x.129.0/24, ...). Public subnets only hold NAT gateways.
 * The rest of the second half is left free for later tiers (e.g. endpoints, caches).
 */
import { contains, formatCidr, nthSubnet, overlaps, parseCidr, CidrError, type Cidr } from "./cidr.ts";
import { regionAzs } from "./regions.ts";

/** AZ letters a..h: eight slots in the first half of the VPC. AWS regions have at most six AZs. */
export const AZ_LETTERS = "abcdefgh";
/** Private subnets are 1/16 of the VPC. */
export const PRIVATE_PREFIX_DELTA = 4;
/** Public subnets are 1/256 of the VPC: they hold NAT gateways only. */
export const PUBLIC_PREFIX_DELTA = 8;
/** First public slot: the start of the VPC's second half, in /(p+8) blocks. */
export const PUBLIC_SLOT_BASE = 128;
/** The widest VPC prefix the layout supports: public subnets must stay >= /28 (AWS minimum). */
export const MAX_VPC_PREFIX = 20;
/** AWS maximum VPC size. */
export const MIN_VPC_PREFIX = 16;
/** RDS subnet groups need two AZs. */
export const MIN_AZS = 2;

/** Private subnets per dedicated VPC when the tenant file does not say: 3 in prod (one per AZ), 2 elsewhere. */
export const DEDICATED_AZ_COUNT_PROD = 3;
export const DEDICATED_AZ_COUNT_NONPROD = 2;

export interface PlannedSubnet {
  az: string;
  cidr: string;
}

export interface SubnetPlan {
  vpcCidr: string;
  /** In the order the AZs were given. */
  private: PlannedSubnet[];
  /** Empty unless public subnets were requested. */
  public: PlannedSubnet[];
}

export interface SubnetPlanRequest {
  vpcCidr: string;
  azs: readonly string[];
  /** Public subnets (for NAT gateways); default false. */
  publicSubnets?: boolean;
}

export class SubnetPlanError extends Error {}

const AZ_RE = /^([a-z]{2}-[a-z]+-\d)([a-z])$/;

function azSlot(az: string): number {
  return AZ_LETTERS.indexOf(AZ_RE.exec(az)?.[2] ?? "?");
}

/**
 * Plans private (and optionally public) subnets for the given AZs. Every problem is collected
 * into one error, so a bad stack file is fixed in one round.
 */
export function planSubnets(req: SubnetPlanRequest): SubnetPlan {
  const problems: string[] = [];
  let vpc: Cidr | undefined;
  try {
    vpc = parseCidr(req.vpcCidr);
  } catch (err) {
    if (!(err instanceof CidrError)) throw err;
    problems.push(err.message);
  }
  if (vpc && (vpc.prefix < MIN_VPC_PREFIX || vpc.prefix > MAX_VPC_PREFIX)) {
    problems.push(
      `VPC ${req.vpcCidr} is a /${vpc.prefix}; the subnet layout needs a /${MIN_VPC_PREFIX} to /${MAX_VPC_PREFIX} ` +
        `(private subnets are /${vpc.prefix + PRIVATE_PREFIX_DELTA}, public /${vpc.prefix + PUBLIC_PREFIX_DELTA})`,
    );
  }
  if (req.azs.length < MIN_AZS) problems.push(`${req.azs.length} AZ(s) given (${req.azs.join(", ") || "none"}); at least ${MIN_AZS} are needed for an RDS subnet group`);
  const regions = new Set<string>();
  const seen = new Set<string>();
  for (const az of req.azs) {
    const m = AZ_RE.exec(az);
    if (!m) {
      problems.push(`"${az}" is not an AZ name like us-east-1a`);
      continue;
    }
    regions.add(m[1]!);
    if (azSlot(az) < 0) problems.push(`AZ "${az}": letters ${AZ_LETTERS[0]}-${AZ_LETTERS.at(-1)} are supported`);
    if (seen.has(az)) problems.push(`AZ "${az}" is listed twice`);
    seen.add(az);
  }
  if (regions.size > 1) problems.push(`AZs span several regions (${[...regions].join(", ")}); a VPC lives in one region`);
  if (problems.length > 0 || !vpc) {
    throw new SubnetPlanError(`Invalid subnet plan for VPC ${req.vpcCidr}:\n${problems.map((p) => ` - ${p}`).join("\n")}`);
  }
  const v = vpc;
  const priv = req.azs.map((az) => ({ az, cidr: formatCidr(nthSubnet(v, v.prefix + PRIVATE_PREFIX_DELTA, azSlot(az))) }));
  const pub = req.publicSubnets
    ? req.azs.map((az) => ({ az, cidr: formatCidr(nthSubnet(v, v.prefix + PUBLIC_PREFIX_DELTA, PUBLIC_SLOT_BASE + azSlot(az))) }))
    : [];
  return { vpcCidr: req.vpcCidr, private: priv, public: pub };
}

/** Every block of a plan, for checks: inside the VPC and pairwise disjoint by construction. */
export function planBlocks(plan: SubnetPlan): Cidr[] {
  return [...plan.private, ...plan.public].map((s) => parseCidr(s.cidr));
}

/** Checks a plan's invariants; returns the violations (empty when sound). Used by the tests and as a guard. */
export function planViolations(plan: SubnetPlan): string[] {
  const vpc = parseCidr(plan.vpcCidr);
  const blocks = planBlocks(plan);
  const out: string[] = [];
  blocks.forEach((b, i) => {
    if (!contains(vpc, b)) out.push(`${formatCidr(b)} is outside ${plan.vpcCidr}`);
    for (let j = 0; j < i; j++) if (overlaps(b, blocks[j]!)) out.push(`${formatCidr(b)} overlaps ${formatCidr(blocks[j]!)}`);
  });
  return out;
}

/** Private subnets of a dedicated VPC in `env` when the tenant file does not set azCount. */
export function dedicatedAzCount(env: string, azCount: number | undefined): number {
  return azCount ?? (env === "prod" ? DEDICATED_AZ_COUNT_PROD : DEDICATED_AZ_COUNT_NONPROD);
}

/**
 * AZs of a dedicated VPC: the first `count` AZs of the region's table (infra/model/regions.ts; no
 * getAvailabilityZones invoke). validate refuses a count the region does not have; a region
 * outside the table falls back to consecutive letters.
 */
export function dedicatedAzs(region: string, env: string, azCount: number | undefined): string[] {
  const count = dedicatedAzCount(env, azCount);
  const known = regionAzs(region);
  return known ? known.slice(0, count) : [...AZ_LETTERS.slice(0, count)].map((l) => `${region}${l}`);
}
