/**
 * Naming conventions (docs/stacks.md, "Naming and isolation conventions"). Every name a resource, a policy or a tool uses
 * comes from here. Changing any function below renames live resources (a renamed RDS instance
 * or schema is a replacement, i.e. data loss): treat the output as a stable external contract.
 */

/** The Pulumi project name (Pulumi.yaml `name`), the second part of every URN. */
export const PROJECT = "saas-tenancy";

export const MANAGED_BY = "saas-tenancy";
/** Tenant tag value of cell (shared) infrastructure. */
export const SHARED_TENANT = "shared";

/**
 * RFC 1123 label, lower case, at most 24 chars: with an app name of <= 12 chars and an env of <= 7
 * the longest derived name (the dedicated bucket, 63 max) stays within AWS limits.
 */
export const TENANT_ID_MAX = 24;
// No "--": RDS identifiers and S3 bucket names built from the id reject consecutive hyphens.
export const TENANT_ID_PATTERN = /^(?!.*--)[a-z](?:[a-z0-9-]{0,22}[a-z0-9])?$/;
/** App names appear in every secret, alias, role and bucket name. */
export const APP_NAME_PATTERN = /^[a-z][a-z0-9-]{1,11}$/;

/** Ids that would collide with platform host names or reserved words. */
export const RESERVED_IDS: ReadonlySet<string> = new Set([
  "www", "api", "admin", "app", "mail", "smtp", "imap", "pop", "ftp", "ns", "ns1", "ns2", "dns",
  "status", "static", "assets", "cdn", "auth", "login", "sso", "docs", "help", "support", "billing",
  "dashboard", "console", "internal", "dedicated", "shared", "global", "cells", "tenants", "public",
  "postgres", "root", "system", "suspended", "test", "localhost",
]);

/**
 * Tenant secret names the program itself uses under `<app>/<env>/tenants/<tenant>/`: `database`
 * (the connection document, and `database/master` below it) and `config` (the runtime config
 * document). A declared secret of the same name would be a second resource with the same name.
 */
export const RESERVED_SECRET_NAMES: ReadonlySet<string> = new Set(["database", "config"]);

/** Secret, team and cell names: lower-case snake/kebab words; nothing that can leave a namespace. */
export const SECRET_NAME_PATTERN = /^[a-z][a-z0-9_-]{0,62}$/;
export const TEAM_NAME_PATTERN = /^[a-z][a-z0-9-]{0,30}$/;
/**
 * Cell id: region code and a number, e.g. use1-01. Tenant ids never have this shape (the schema
 * refuses them): a tenant and a cell share name patterns (`<app>-<env>-<id>` RDS identifiers,
 * buckets, parameter and subnet groups), so the two id spaces must be disjoint.
 */
export const CELL_ID_PATTERN = /^[a-z]{2,4}[0-9]-[0-9]{2}$/;

export type StackRef =
  | { kind: "platform"; name: string; env: string; region: string }
  | { kind: "shared"; name: string; env: string; cell: string }
  | { kind: "dedicated"; name: string; env: string; tenant: string };

export type StackKind = StackRef["kind"];

/** AWS region names as the platform lists them (us-east-1). */
export const REGION_PATTERN = /^[a-z]{2}-[a-z]+-\d$/;

/** Component type tokens: `saas-tenancy:components:<Class>`. Part of every child's URN: never rename. */
export function componentType(className: string): string {
  return `saas-tenancy:components:${className}`;
}

export function cellStackName(env: string, cell: string): string {
  return `shared-${env}-${cell}`;
}

export function dedicatedStackName(tenant: string, env: string): string {
  return `dedicated-${tenant}-${env}`;
}

/** One platform stack per region: hub network, Transit Gateway, runner (and the control plane in its region). */
export function platformStackName(region: string): string {
  return `platform-${region}`;
}

export class StackNameError extends Error {}

/**
 * The stack name decides the stack kind. `environments` are the platform's; the env is the
 * segment after `shared-` or the last segment of a dedicated name (tenant ids may contain dashes).
 * A platform stack belongs to the platform env (prod when listed, else the first env): it serves
 * every env, and its tags and global secrets carry that one. Whether the region is one of the
 * platform's is checked with the stack file (aws:region must equal it).
 */
export function parseStackName(name: string, environments: readonly string[]): StackRef {
  const envs = environments.join("|");
  const platform = /^platform-(.+)$/.exec(name);
  if (platform) {
    const region = platform[1]!;
    if (!REGION_PATTERN.test(region)) {
      throw new StackNameError(`stack "${name}": "${region}" is not an AWS region name (platform-<region>, e.g. platform-us-east-1)`);
    }
    const env = environments.includes("prod") ? "prod" : environments[0] ?? "prod";
    return { kind: "platform", name, env, region };
  }
  const shared = new RegExp(`^shared-(${envs})-(.+)$`).exec(name);
  if (shared) {
    const [, env, cell] = shared as unknown as [string, string, string];
    if (!CELL_ID_PATTERN.test(cell)) {
      throw new StackNameError(
        `stack "${name}": cell id "${cell}" is not of the form <region code><n>-<nn> (e.g. use1-01)`,
      );
    }
    return { kind: "shared", name, env, cell };
  }
  const dedicated = new RegExp(`^dedicated-(.+)-(${envs})$`).exec(name);
  if (dedicated) {
    const [, tenant, env] = dedicated as unknown as [string, string, string];
    if (!TENANT_ID_PATTERN.test(tenant)) {
      throw new StackNameError(`stack "${name}": tenant id "${tenant}" is not a DNS label`);
    }
    return { kind: "dedicated", name, env, tenant };
  }
  throw new StackNameError(
    `unknown stack name "${name}": expected platform-<region> (e.g. platform-us-east-1), shared-<env>-<cell> ` +
      `(e.g. shared-prod-use1-01) or dedicated-<tenant>-<env> (e.g. dedicated-acme-prod), with <env> one of: ${environments.join(", ")}`,
  );
}

/** Region code used in cell ids: us-east-1 -> use1, eu-west-1 -> euw1, ap-southeast-2 -> apse2. */
export function regionCode(region: string): string {
  const m = /^([a-z]{2})-([a-z]+)-(\d+)$/.exec(region);
  if (!m) throw new Error(`"${region}" is not an AWS region name`);
  const [, geo, dir, n] = m as unknown as [string, string, string, string];
  const dirCode = dir
    .replace("northeast", "ne").replace("southeast", "se").replace("northwest", "nw").replace("southwest", "sw")
    .replace("north", "n").replace("south", "s").replace("east", "e").replace("west", "w").replace("central", "c");
  return `${geo}${dirCode}${n}`;
}

// --- Secrets Manager -------------------------------------------------------------------------

export function tenantSecretPrefix(app: string, env: string, tenant: string): string {
  return `${app}/${env}/tenants/${tenant}/`;
}
export function tenantSecretName(app: string, env: string, tenant: string, name: string): string {
  return `${tenantSecretPrefix(app, env, tenant)}${name}`;
}
export function teamSecretName(app: string, env: string, tenant: string, team: string, name: string): string {
  return `${tenantSecretPrefix(app, env, tenant)}teams/${team}/${name}`;
}
export function globalSecretPrefix(app: string, env: string): string {
  return `${app}/${env}/global/`;
}
export function globalSecretName(app: string, env: string, name: string): string {
  return `${globalSecretPrefix(app, env)}${name}`;
}
/** The tenant's application connection document. */
export function databaseSecretName(app: string, env: string, tenant: string): string {
  return tenantSecretName(app, env, tenant, "database");
}
/**
 * A dedicated database's master credentials (inside the tenant namespace, not RDS-managed; the
 * tenant role is denied them explicitly, see accessPolicies.ts).
 */
export function masterSecretName(app: string, env: string, tenant: string): string {
  return tenantSecretName(app, env, tenant, "database/master");
}
// --- SSM Parameter Store (docs/runtime-config.md) -----------------------------------------------

/**
 * SSM refuses a parameter name that begins with "aws" or "ssm", case-insensitive, also as the first
 * segment of a hierarchy (`/aws/testparam1` fails): PutParameter,
 * https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html, and
 * https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-parameter-name-constraints.html.
 * Every document of the program is `/<app>/...`, so such an app name would fail every cell's and
 * dedicated stack's first `up` on its first parameter.
 */
export const SSM_RESERVED_NAME_PREFIXES = ["aws", "ssm"] as const;

/** Why SSM would refuse parameters under `/<app>/`, or undefined. */
export function ssmAppNameProblem(app: string): string | undefined {
  if (!SSM_RESERVED_NAME_PREFIXES.some((p) => app.toLowerCase().startsWith(p))) return undefined;
  return `"${app}" begins with "${app.slice(0, 3)}": SSM Parameter Store refuses parameter names whose first segment begins with aws or ssm (case-insensitive), and every runtime config and routing document is named /<appName>/...; choose an appName that does not begin with aws or ssm`;
}

/**
 * The tenant's runtime configuration document in one env: an SSM parameter. SSM requires a
 * leading "/" on a name with a path (a hierarchy); after it the name is the tenant's namespace
 * `<app>/<env>/tenants/<id>/config` (docs/runtime-config.md).
 */
export function runtimeConfigParameterName(app: string, env: string, tenant: string): string {
  return `/${tenantSecretName(app, env, tenant, "config")}`;
}
/** Everything of the routing document of an env and region: the router reads it with GetParametersByPath. */
export function routingParameterPath(app: string, env: string, region: string): string {
  return `/${app}/${env}/routing/${region}/`;
}
/** One page of a cell's share of the routing document (pages numbered from 0, two digits). */
export function routingCellPageName(app: string, env: string, region: string, cell: string, page: number): string {
  return `${routingParameterPath(app, env, region)}cells/${cell}/${String(page).padStart(2, "0")}`;
}
/** A dedicated tenant's share of the routing document. */
export function routingDedicatedName(app: string, env: string, region: string, tenant: string): string {
  return `${routingParameterPath(app, env, region)}dedicated/${tenant}`;
}

export function cellDatabaseSecretName(app: string, env: string, cell: string): string {
  return globalSecretName(app, env, `cells/${cell}/database`);
}

// --- KMS ---------------------------------------------------------------------------------------

export function tenantKmsAlias(app: string, env: string, tenant: string): string {
  return `alias/${app}/${env}/tenants/${tenant}`;
}
export function cellKmsAlias(app: string, env: string, cell: string): string {
  return `alias/${app}/${env}/cells/${cell}`;
}

// --- PostgreSQL --------------------------------------------------------------------------------

/** Role and schema name of a tenant: dashes become underscores (a quoted identifier is never needed). */
export function pgTenantIdent(tenant: string): string {
  return `tenant_${tenant.replace(/-/g, "_")}`;
}
/** Database name inside a dedicated instance. */
export const DEDICATED_DATABASE = "app";
/** Database name inside a cell instance. */
export const CELL_DATABASE = "cell";

// --- IAM ---------------------------------------------------------------------------------------

/**
 * The control-plane role the tenant roles trust (it assumes them with a tenant session tag).
 * Created by the platform stack of the control plane's region; its name (hence ARN) was fixed
 * before that stack existed: never change it, every tenant role's trust policy names it.
 */
export function controlPlaneRoleName(app: string): string {
  return `${app}-control-plane`;
}
/** The role `pulumi up` runs as (assumed by the runners' task roles). */
export function deployerRoleName(app: string): string {
  return `${app}-deployer`;
}
/** Task role of a region's runner (IAM names are global: the region is part of it). */
export function runnerRoleName(app: string, region: string): string {
  return `${app}-runner-${region}`;
}
/** ECS task execution role of the platform stack of a region (pulls the image, writes logs, reads the task's secrets). */
export function taskExecutionRoleName(app: string, region: string): string {
  return `${app}-ecs-exec-${region}`;
}
/** Secret of the control plane, in the global namespace of the platform env. */
export function controlPlaneSecretName(app: string, env: string, name: "stripe-webhook-secret" | "api-keys" | "database"): string {
  return globalSecretName(app, env, `control-plane/${name}`);
}
/** Host name of the control plane's load balancer ("api" is a reserved tenant id, so no tenant can take it). */
export function controlPlaneHostname(domain: string): string {
  return `api.${domain}`;
}

/**
 * The application's role in an env (the product's services that serve every tenant): reads every
 * tenant's runtime config and the routing document of its env, nothing else of the tenants'.
 * Not of the tenant-role shape `<app>-<env>-t-<tenant>`: the control plane never assumes it.
 * <= 12+1+7+12 = 32 chars.
 */
export function applicationRoleName(app: string, env: string): string {
  return `${app}-${env}-application`;
}

/** A role per tenant and env. At most 64 chars: app <= 12, env <= 7, tenant <= 24. */
export function tenantRoleName(app: string, env: string, tenant: string): string {
  return `${app}-${env}-t-${tenant}`;
}

// --- DNS ---------------------------------------------------------------------------------------

export function pooledHostname(tenant: string, domain: string): string {
  return `${tenant}.${domain}`;
}
export function dedicatedZoneName(tenant: string, domain: string): string {
  return `${tenant}.dedicated.${domain}`;
}
/** A dedicated tenant's private zone: the env is in the name, so prod and staging never share one. */
export function privateZoneName(tenant: string, env: string): string {
  return `${tenant}.${env}.internal`;
}
export function privateDbHostname(tenant: string, env: string): string {
  return `db.${privateZoneName(tenant, env)}`;
}
/** The public URL of a tenant, whichever deployment serves it. */
export function tenantUrl(tenant: string, domain: string, deployment: "pooled" | "dedicated"): string {
  return deployment === "pooled"
    ? `https://${pooledHostname(tenant, domain)}`
    : `https://${dedicatedZoneName(tenant, domain)}`;
}

// --- S3 ----------------------------------------------------------------------------------------

/** Bucket names are global: the account id keeps them unique across the platform's accounts. */
export function cellBucketName(app: string, env: string, cell: string, accountId: string): string {
  return `${app}-${env}-${cell}-data-${accountId}`;
}
export function tenantBucketName(app: string, env: string, tenant: string, accountId: string): string {
  return `${app}-${env}-${tenant}-data-${accountId}`;
}
/**
 * The S3 server access log bucket of an env in a region (docs/security.md, "Object access audit"):
 * every cell and dedicated bucket of that env and region logs there, under `<bucket name>/`.
 * Owned by the region's platform stack, which is deployed before any cell or dedicated stack.
 */
export function accessLogBucketName(app: string, env: string, region: string, accountId: string): string {
  return `${app}-${env}-${regionCode(region)}-access-logs-${accountId}`;
}
export function tenantObjectPrefix(tenant: string): string {
  return `tenants/${tenant}/`;
}

// --- Tags --------------------------------------------------------------------------------------

export type Tags = Readonly<Record<"tenant" | "env" | "stack" | "managed-by", string>>;

export function tags(tenant: string, env: string, stack: string): Tags {
  return { tenant, env, stack, "managed-by": MANAGED_BY };
}

// --- Platform ----------------------------------------------------------------------------------

/** The platform key of a region (control-plane secrets and database, platform log groups). */
export function platformKmsAlias(app: string, env: string, region: string): string {
  return `alias/${app}/${env}/platform/${region}`;
}
/** Log group of a platform service (`runner`, `control-plane`) in a region. */
export function platformLogGroupName(app: string, service: "runner" | "control-plane"): string {
  return `/${app}/platform/${service}`;
}
