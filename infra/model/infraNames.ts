/**
 * Physical names of infrastructure that naming.ts (the tenant-facing conventions of docs/stacks.md)
 * does not cover: RDS identifiers, parameter and subnet groups, snapshots, flow-log plumbing.
 * Same contract as naming.ts: changing any of these replaces a live resource (a renamed RDS
 * identifier is a new, empty database). Never change them for deployed stacks.
 */
import { globalSecretPrefix, tenantSecretPrefix } from "./naming.ts";

/** RDS identifier of a cell's database, e.g. tenancy-prod-use1-01. */
export function cellDbIdentifier(app: string, env: string, cell: string): string {
  return `${app}-${env}-${cell}`;
}

/** RDS identifier of a dedicated tenant's database, e.g. tenancy-prod-acme (<= 12+1+7+1+24 = 45 chars). */
export function dedicatedDbIdentifier(app: string, env: string, tenant: string): string {
  return `${app}-${env}-${tenant}`;
}

/**
 * The snapshot RDS takes when a prod instance is deleted: `<identifier>-final-<suffix>`, the suffix
 * random per instance (drawn when the instance is created), so the second deletion of an
 * identifier (a tenant onboarded again, a replaced cell database) does not fail on
 * DBSnapshotAlreadyExists. Found by the prefix `finalSnapshotPrefix()`.
 */
export function finalSnapshotIdentifier(dbIdentifier: string, suffix: string): string {
  return `${finalSnapshotPrefix(dbIdentifier)}${suffix}`;
}
export function finalSnapshotPrefix(dbIdentifier: string): string {
  return `${dbIdentifier}-final-`;
}

/**
 * Parameter group per engine major: a major upgrade needs a new group of the new family, so the
 * family is part of the name and the two can coexist during the upgrade.
 */
export function dbParameterGroupName(dbIdentifier: string, family: string): string {
  return `${dbIdentifier}-${family}`;
}

export function dbSubnetGroupName(dbIdentifier: string): string {
  return dbIdentifier;
}

/**
 * CloudWatch log group of a dedicated VPC's flow logs. Inside the tenant's namespace (the same
 * prefix as its secrets, with a leading slash as log groups conventionally have).
 */
export function flowLogGroupName(app: string, env: string, tenant: string): string {
  return `/${tenantSecretPrefix(app, env, tenant)}vpc-flow-logs`;
}

/**
 * The role VPC Flow Logs assumes to write to the log group. Deliberately not of the tenant-role
 * shape `<app>-<env>-t-<tenant>` (tenantRoleName): the control plane never assumes it.
 * <= 12+1+7+10+24 = 54 chars (IAM limit 64).
 */
export function flowLogRoleName(app: string, env: string, tenant: string): string {
  return `${app}-${env}-flowlogs-${tenant}`;
}

/** CloudWatch log group of a cell VPC's flow logs, in the env's global namespace beside the cell's database secret. */
export function cellFlowLogGroupName(app: string, env: string, cell: string): string {
  return `/${globalSecretPrefix(app, env)}cells/${cell}/vpc-flow-logs`;
}

/** The delivery role of a cell's flow logs: `-cell-` keeps it apart from any tenant's flowLogRoleName(). */
export function cellFlowLogRoleName(app: string, env: string, cell: string): string {
  return `${app}-${env}-flowlogs-cell-${cell}`;
}

/** Retention of flow logs: a year, the usual audit horizon. */
export const FLOW_LOG_RETENTION_DAYS = 365;
