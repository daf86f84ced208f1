/**
 * Database facts shared by cell and dedicated RDS instances, and the tenant's database access
 * decisions (LOGIN by lifecycle and migration phase). Pure.
 */
import { MIN_BACKUP_RETENTION_DAYS } from "./tiers.ts";
import type { Tenant } from "./schema.ts";

/** Postgres port; the security groups and the connection documents use it. */
export const POSTGRES_PORT = 5432;

/**
 * Master user of every instance. RDS gives it rds_superuser, not SUPERUSER: the postgresql
 * provider must run with `superuser: false`. Changing it replaces the instance.
 */
export const MASTER_USERNAME = "platform_admin";

/** Backup retention of a cell database: a prod cell holds many tenants, so it keeps as long as a dedicated prod one. */
export const CELL_BACKUP_RETENTION_DAYS_PROD = 14;
export const CELL_BACKUP_RETENTION_DAYS_NONPROD = MIN_BACKUP_RETENTION_DAYS;

/** Length of generated database passwords (alphanumeric only: no escaping in connection strings). */
export const DB_PASSWORD_LENGTH = 32;

/**
 * SSL mode of the postgresql provider and of the connection documents: verify-full checks the
 * server certificate against the RDS CA bundle and its host name, so a spoofed endpoint (DNS,
 * routing) cannot collect the password; `require` encrypts but trusts any certificate.
 */
export const PG_SSLMODE = "verify-full";
/**
 * The RDS certificate bundle of every region (AWS: "Using SSL/TLS to encrypt a connection to a DB
 * instance", https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.SSL.html).
 * Applications fetch it from here (the connection document names it); the runner image keeps a
 * copy at the platform's `rdsCaBundlePath`.
 */
export const RDS_CA_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem";
/** Where the runner (which runs `pulumi up`) has the bundle when Pulumi.yaml does not say. */
export const DEFAULT_RDS_CA_BUNDLE_PATH = "/etc/ssl/certs/rds-global-bundle.pem";

/** RDS log exports: PostgreSQL's own log to CloudWatch Logs (errors, slow statements, connections). */
export const RDS_LOG_EXPORTS: readonly string[] = ["postgresql"];

/**
 * The databases every PostgreSQL instance has besides its own (`postgres`, the maintenance
 * database tools connect to, and `template1`, the template of CREATE DATABASE). PUBLIC has CONNECT
 * and TEMP on both by default, so every tenant role could connect there and create temporary
 * tables; the stacks revoke both. On RDS both belong to the master user (only `rdsadmin` and
 * `template0` are `rdsadmin`'s; RDS setup guides revoke there as the master, e.g.
 * http://www.asheiduk.de/post/setup-pg-on-rds/), so the master may revoke and keeps its own CONNECT
 * as owner. Where it is not the owner, PostgreSQL revokes nothing with a WARNING (docs/operations.md).
 * `template0` accepts no connections at all (datallowconn false).
 */
export const MAINTENANCE_DATABASES: readonly string[] = ["postgres", "template1"];

/**
 * Storage autoscaling ceiling (maxAllocatedStorage, GiB) of a cell database: RDS grows gp3
 * storage up to it without downtime, never beyond, so a cell's bill cannot grow without limit.
 * Dedicated ceilings are part of the tier sizing (tiers.ts). Never below the allocated size.
 */
export const CELL_MAX_ALLOCATED_STORAGE_GB = { prod: 2000, nonprod: 500 } as const;

export function storageCeiling(allocatedGb: number, ceilingGb: number): number {
  return Math.max(allocatedGb, ceilingGb);
}

export class EngineVersionError extends Error {}

/** A PostgreSQL engine version as RDS takes it: a major ("16") or a major and minor ("16.4"). */
const ENGINE_VERSION = /^(\d+)(?:\.(\d+))?$/;

/**
 * Why an engine version cannot be configured (one line), or undefined. With automatic minor
 * upgrades RDS moves the instance to newer minors; a pinned minor in the program would then
 * ask for a downgrade on the next refreshed up (and RDS stops creating old minors anyway).
 */
export function engineVersionProblem(version: string, autoMinorVersionUpgrade: boolean): string | undefined {
  const m = ENGINE_VERSION.exec(version);
  if (!m || Number(m[1]) < 10) return `"${version}" is not a PostgreSQL version; configure the major version, e.g. "16"`;
  if (m[2] !== undefined && autoMinorVersionUpgrade) {
    return `"${version}" pins a minor version while autoMinorVersionUpgrade is on: RDS upgrades the minor itself and the next refreshed up would try to downgrade it; configure the major only ("${m[1]}")`;
  }
  return undefined;
}

/** RDS parameter group family of a PostgreSQL engine version: "16" or "16.4" -> "postgres16". */
export function postgresFamily(engineVersion: string): string {
  const m = /^(\d+)(?:\.\d+)*$/.exec(engineVersion);
  const major = m ? Number(m[1]) : NaN;
  if (!(major >= 10)) {
    throw new EngineVersionError(`PostgreSQL engine version "${engineVersion}" is not a version like 16.4 (major 10 or later)`);
  }
  return `postgres${major}`;
}

/** Where a tenant's database role lives: in a cell (pooled, or the source of a migration) or its own instance. */
export type DatabaseSide = "cell" | "dedicated";

/**
 * Whether the tenant's Postgres role may log in. A suspended tenant keeps its data but loses
 * LOGIN (docs/lifecycle.md). In a cell a migrating tenant loses LOGIN from cutover on: writes
 * must stop before the final delta copy, and nothing may write there again. A tenant moving
 * between cells (`cell` given) may log in to exactly one of them: the one it leaves until the
 * switch, the one it moves to from then on.
 */
export function databaseLoginAllowed(t: Tenant, side: DatabaseSide, cell?: { env: string; id: string }): boolean {
  if (t.lifecycle === "suspended") return false;
  // A cell move (infra/model/cellMove.ts, cellDeclaresIdentity: test/model/cellMove.test.ts holds
  // the two to the same answer): the cell left serves until the switch, the cell moved to from then on.
  if (side === "cell" && cell && t.deployment === "pooled" && t.move) {
    const from = t.move.from[cell.env];
    const beforeSwitch = t.move.phase === "provisioning" || t.move.phase === "copying";
    if (from === cell.id) return beforeSwitch;
    if (from !== undefined && t.placement[cell.env] === cell.id) return !beforeSwitch;
  }
  if (side === "cell" && t.deployment === "dedicated") {
    const phase = t.migration?.phase;
    return phase === "provisioning" || phase === "copying";
  }
  return true;
}

/** Whether prod protections apply (deletion protection, final snapshot, Pulumi protect, multi-AZ for cells). */
export function isProd(env: string): boolean {
  return env === "prod";
}
