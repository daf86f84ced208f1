/**
 * Which VPC endpoints each kind of VPC gets, in which AZs, and what that costs against the VPC
 * endpoint quotas (docs/network.md, "VPC endpoints"). Pure: the VpcEndpoints component, the
 * quota check and the tests read these, so what is built and what is counted cannot disagree.
 */
import { isProd } from "./database.ts";

/** The kinds of VPC the program builds. */
export type VpcKind = "hub" | "cell" | "dedicated";

/**
 * The hub's interface endpoints (service name suffix after `com.amazonaws.<region>.`): what the
 * runner and the control plane call without their NAT (secrets, keys, role sessions, logs, and
 * their image from ECR, whose layers come through the S3 gateway endpoint).
 */
export const HUB_INTERFACE_ENDPOINTS = ["secretsmanager", "kms", "sts", "logs", "ecr.api", "ecr.dkr"] as const;

/**
 * A cell's or dedicated VPC's interface endpoints: what a workload there needs to read its
 * tenant's connection document and secrets (Secrets Manager), its runtime configuration document
 * (SSM Parameter Store, docs/runtime-config.md), to use its key (KMS), to assume its tenant role
 * (STS) and to ship its logs (CloudWatch Logs). Cells have no NAT, and a dedicated VPC has one
 * only with `features.egress`: without these the workloads could reach none of them. No ECR: the
 * program runs no compute in a spoke; a workload image pulled from ECR would need `ecr.api` and
 * `ecr.dkr` here (each one more endpoint per AZ, see the cost in docs/network.md).
 */
export const SPOKE_INTERFACE_ENDPOINTS = ["secretsmanager", "ssm", "kms", "sts", "logs"] as const;

/**
 * AWS's default quota "Interface and Gateway Load Balancer endpoints per VPC" (Service Quotas vpc
 * L-29B6F2EB), https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-limits-endpoints.html
 * (read 2026-12-06). The sets above are far below it; interfaceEndpoints() refuses a set above it.
 */
export const INTERFACE_ENDPOINTS_PER_VPC = 50;

/** The interface endpoints of a VPC kind. */
export function interfaceEndpoints(kind: VpcKind): readonly string[] {
  const services = kind === "hub" ? HUB_INTERFACE_ENDPOINTS : SPOKE_INTERFACE_ENDPOINTS;
  if (services.length > INTERFACE_ENDPOINTS_PER_VPC) {
    throw new Error(`${kind} VPCs would get ${services.length} interface endpoints, over the quota of ${INTERFACE_ENDPOINTS_PER_VPC} per VPC`);
  }
  return services;
}

/** Every VPC gets one S3 gateway endpoint (free; counted against "Gateway VPC endpoints per Region"). */
export const GATEWAY_ENDPOINTS_PER_VPC = 1;

/** Resource name key of an endpoint service (`ecr.api` -> `ecr-api`): part of URNs, never change it. */
export function endpointKey(service: string): string {
  return service.replaceAll(".", "-");
}

/**
 * The AZs whose subnets hold the interface endpoints' network interfaces (each is billed per AZ
 * and hour). The hub and prod spokes: every AZ, so an AZ outage leaves the others their endpoints.
 * Non-prod spokes: the first AZ only (a third to a half of the hourly charge; workloads of the other
 * AZs cross an AZ to reach it, and an outage of that AZ cuts them off: the same trade as the single
 * NAT of non-prod, docs/stacks.md).
 */
export function endpointAzs(kind: VpcKind, env: string, azs: readonly string[]): string[] {
  const first = azs[0];
  if (first === undefined) throw new Error(`a ${kind} VPC without AZs has nowhere to place its endpoints`);
  return kind === "hub" || isProd(env) ? [...azs] : [first];
}
