/**
 * The platform network as pure data (docs/network.md): each region's hub VPC layout, what its
 * route tables send to the Transit Gateway, which hubs peer, which CIDRs a spoke's database
 * admits, and the names of the Transit Gateway resources a spoke refers to. The platform stack's
 * components and the cell/dedicated spokes both read these functions, so the two sides of a
 * route can never disagree; the tests check them directly.
 */
import { formatCidr, nthSubnet, parseCidr } from "./cidr.ts";
import { regionCode } from "./naming.ts";
import { hubOf, type Platform } from "./platform.ts";
import { AZ_LETTERS, planSubnets, type PlannedSubnet } from "./subnets.ts";

/**
 * Prefix delta (from the /16) of the services subnets: the control plane's tasks, its database
 * and the interface endpoints. /22s, at slot 48 + AZ letter, i.e. the fourth quarter of the
 * VPC: clear of the runner subnets (first half) and the public /24s (from slot 128 of /24s).
 */
export const SERVICES_PREFIX_DELTA = 6;
export const SERVICES_SLOT_BASE = 48;

export interface HubLayout {
  region: string;
  cidr: string;
  azs: readonly string[];
  /** Where the runner's tasks run (and the Transit Gateway attachment's ENIs): the CIDRs spokes admit on 5432. */
  runner: readonly PlannedSubnet[];
  /** The control plane's tasks and database, and the interface endpoints. Tenant databases never admit these. */
  services: readonly PlannedSubnet[];
  /** NAT gateways and the control plane's load balancer; nothing else gets an address here. */
  public: readonly PlannedSubnet[];
}

/** The hub VPC of a region, carved deterministically from its /16 (keyed by AZ letter, never by position). */
export function hubLayout(platform: Pick<Platform, "hubs">, region: string): HubLayout {
  const hub = hubOf(platform, region);
  const plan = planSubnets({ vpcCidr: hub.cidr, azs: hub.azs, publicSubnets: true });
  const vpc = parseCidr(hub.cidr);
  const services = hub.azs.map((az) => ({
    az,
    cidr: formatCidr(nthSubnet(vpc, vpc.prefix + SERVICES_PREFIX_DELTA, SERVICES_SLOT_BASE + AZ_LETTERS.indexOf(az.slice(-1)))),
  }));
  return { region, cidr: hub.cidr, azs: hub.azs, runner: plan.private, services, public: plan.public };
}

/** The CIDRs a spoke's database admits on 5432: the runner subnets of its own region, nothing else. */
export function runnerCidrs(platform: Pick<Platform, "hubs">, region: string): string[] {
  return hubLayout(platform, region).runner.map((s) => s.cidr);
}

/** runnerCidrs() as the admin CIDRs of a spoke's database group, keyed by AZ (rule names `db-from-runner-<az>`). */
export function runnerAdminCidrs(platform: Pick<Platform, "hubs">, region: string): { key: string; cidr: string }[] {
  return hubLayout(platform, region).runner.map((s) => ({ key: `runner-${s.az}`, cidr: s.cidr }));
}

/**
 * The regions whose hub a region's hub peers with over the Transit Gateway: the control plane's
 * region peers with every other one; every other region only with the control plane's (a star:
 * runners reach the control plane's database, and nothing else crosses a region).
 */
export function peerRegions(platform: Pick<Platform, "regions" | "controlPlane">, region: string): string[] {
  const cp = platform.controlPlane.region;
  return region === cp ? platform.regions.filter((r) => r !== cp) : [cp];
}

/** A destination the hub VPC sends to its Transit Gateway. `key` names the route resources: stable. */
export interface HubDestination {
  key: string;
  cidr: string;
  /** Why it is routed: the spoke kind, or the peered hub. */
  via: "dedicated-supernet" | "cell" | "peer-hub";
}

/**
 * Everything the hub VPC routes to the Transit Gateway: the dedicated supernet (every dedicated
 * VPC; the TGW's `hub` table knows only this region's, so another region's tenant gets no route),
 * each cell of the region, and the hubs it peers with. Adding a cell adds routes here: the
 * platform stack of the cell's region is updated before the cell (docs/deploying.md).
 */
export function hubDestinations(
  platform: Pick<Platform, "hubs" | "regions" | "controlPlane" | "dedicatedSupernet">,
  cells: Iterable<{ stack: string; region: string; config: { cidr: string } }>,
  region: string,
): HubDestination[] {
  const out: HubDestination[] = [{ key: "dedicated", cidr: platform.dedicatedSupernet, via: "dedicated-supernet" }];
  const local = [...cells].filter((c) => c.region === region).sort((a, b) => a.stack.localeCompare(b.stack));
  for (const c of local) out.push({ key: c.stack, cidr: c.config.cidr, via: "cell" });
  for (const peer of peerRegions(platform, region)) out.push({ key: `hub-${peer}`, cidr: hubOf(platform, peer).cidr, via: "peer-hub" });
  return out;
}

/**
 * Names of a region's Transit Gateway resources in its platform stack. A spoke reads their ids
 * through a StackReference (the offline renderer answers it with the ids these names get under
 * the mock runtime). Part of every URN of the platform stack: never change them.
 */
export function transitNames(region: string): { gateway: string; hubTable: string; spokesTable: string; hubAttachment: string } {
  const n = `transit-${regionCode(region)}`;
  return { gateway: n, hubTable: `${n}-hub`, spokesTable: `${n}-spokes`, hubAttachment: `${n}-hub-vpc` };
}

/** The Pulumi name of a region's hub VPC (HubNetwork `hub-<code>` -> Network `-network` -> `-vpc`). */
export function hubVpcName(region: string): string {
  return `hub-${regionCode(region)}-network-vpc`;
}

/** The one export of every stack (infra/index.ts): an object holding the builder's outputs. */
export const STACK_EXPORT = "stack";

/** The outputs of a platform stack that other stacks read (StackReference, inside STACK_EXPORT). Renaming one breaks every spoke. */
export const PLATFORM_OUTPUTS = {
  transitGatewayId: "transitGatewayId",
  hubRouteTableId: "hubRouteTableId",
  spokesRouteTableId: "spokesRouteTableId",
  /** The hub VPC: a dedicated tenant's private zone is associated with it (the runner resolves its names). */
  hubVpcId: "hubVpcId",
  databaseUrlSecretArn: "databaseUrlSecretArn",
} as const;

/**
 * The fully qualified StackReference name of a platform stack. `organization` is the fixed
 * organization of a self-managed (DIY) backend; on Pulumi Cloud it is the org owning the project.
 */
export function platformStackReference(organization: string, project: string, region: string): string {
  return `${organization}/${project}/platform-${region}`;
}

/** Port the control plane's container listens on (automation/config.ts DEFAULT_PORT). */
export const CONTROL_PLANE_PORT = 8080;
/** The only public path of the control plane: Stripe's webhook deliveries (signature-checked). */
export const PUBLIC_PATHS = ["/webhooks/stripe"] as const;
/** Paths served to operators only (source IP in controlPlane.operatorCidrs). */
export const OPERATOR_PATHS = ["/api/*", "/console/*"] as const;
/**
 * An ALB rule carries at most 5 condition values in total (AWS "Quotas for your Application Load
 * Balancers": condition values per rule), so a rule holds one path and at most 4 source CIDRs.
 */
export const MAX_RULE_CONDITION_VALUES = 5;

export interface ListenerRulePlan {
  /** Resource name suffix: stable for a given path and CIDR chunk. */
  key: string;
  priority: number;
  paths: string[];
  /** Absent: any source (the public webhook path). */
  sourceCidrs?: string[];
}

/**
 * The HTTPS listener's forward rules; everything else gets the listener's default 404. The
 * public path first, then per operator path the operator CIDRs in chunks of 4. Priorities are
 * spaced by path (100 per path) so adding a CIDR never renumbers another path's rules.
 */
export function planListenerRules(operatorCidrs: readonly string[]): ListenerRulePlan[] {
  if (operatorCidrs.length === 0) throw new Error("controlPlane.operatorCidrs is empty: /api/* would be unreachable; list the operators' networks");
  for (const c of operatorCidrs) {
    if (c.endsWith("/0")) throw new Error(`controlPlane.operatorCidrs: ${c} is the whole internet; only /webhooks/stripe is public`);
  }
  const perRule = MAX_RULE_CONDITION_VALUES - 1;
  if (operatorCidrs.length > 99 * perRule) throw new Error(`controlPlane.operatorCidrs: at most ${99 * perRule} CIDRs fit the rule plan; summarise them`);
  const rules: ListenerRulePlan[] = PUBLIC_PATHS.map((p, i) => ({ key: `public-${i}`, priority: 10 + i, paths: [p] }));
  OPERATOR_PATHS.forEach((path, p) => {
    for (let i = 0; i * perRule < operatorCidrs.length; i++) {
      rules.push({
        key: `operators-${path.replace(/[^a-z]/g, "")}-${i}`,
        priority: 100 * (p + 1) + i,
        paths: [path],
        sourceCidrs: operatorCidrs.slice(i * perRule, (i + 1) * perRule),
      });
    }
  });
  return rules;
}
