import { records, str, strings } from "../lib/resource.ts";
import { T } from "../lib/stack.ts";
import type { Report, ResourcePolicyDefinition } from "../registry.ts";

/** Role and schema names of tenants (naming.ts pgTenantIdent). */
const TENANT_IDENT = /^tenant_[a-z0-9_]+$/;

/** Role attributes no tenant role has: input name -> the Postgres attribute. */
export const FORBIDDEN_ATTRIBUTES: ReadonlyArray<readonly [string, string]> = [
  ["superuser", "SUPERUSER"],
  ["createDatabase", "CREATEDB"],
  ["createRole", "CREATEROLE"],
  ["bypassRowLevelSecurity", "BYPASSRLS"],
  ["replication", "REPLICATION"],
];

/** Roles whose membership gives a tenant more than its own schema. */
const POWERFUL_ROLES = new Set([
  "rds_superuser",
  "rds_replication",
  "pg_read_all_data",
  "pg_write_all_data",
  "pg_read_server_files",
  "pg_write_server_files",
  "pg_execute_server_program",
  "azure_pg_admin",
  "cloudsqlsuperuser",
]);

/** Database-level privileges a tenant role may hold on the shared database. */
const TENANT_DATABASE_PRIVILEGES = new Set(["CONNECT", "TEMPORARY", "TEMP"]);

const isPublic = (role: string | undefined): boolean => role === undefined || role === "" || role.toLowerCase() === "public";
const isTenantRole = (role: string | undefined): role is string => role !== undefined && TENANT_IDENT.test(role);

function checkRole(props: Readonly<Record<string, unknown>>, report: Report): void {
  const name = str(props.name);
  if (!isTenantRole(name)) return;
  for (const [input, attribute] of FORBIDDEN_ATTRIBUTES) {
    if (props[input] === true) report(`tenant role "${name}" has ${attribute} (${input}: true); no tenant role is superuser, createdb, createrole, bypassrls or replication`);
  }
  const searchPath = strings(props.searchPaths);
  if (searchPath.length === 0 || searchPath.some((s) => s !== name)) {
    report(`tenant role "${name}" has search_path ${JSON.stringify(searchPath)}; pin it to ["${name}"]`);
  }
  for (const member of strings(props.roles)) {
    if ((isTenantRole(member) && member !== name) || POWERFUL_ROLES.has(member) || isPublic(member)) {
      report(`tenant role "${name}" is a member of role "${member}"`);
    }
  }
}

function checkSchema(props: Readonly<Record<string, unknown>>, report: Report): void {
  const schema = str(props.name) ?? "<unnamed>";
  const owner = str(props.owner);
  if (isTenantRole(owner) && owner !== schema) report(`schema "${schema}" is owned by tenant role "${owner}", which may own only schema "${owner}"`);
  for (const policy of records(props.policies)) {
    const role = str(policy.role);
    const granted = [
      ...(policy.usage === true || policy.usageWithGrant === true ? ["USAGE"] : []),
      ...(policy.create === true || policy.createWithGrant === true ? ["CREATE"] : []),
    ];
    if (granted.length === 0) continue;
    if (isPublic(role)) report(`schema "${schema}" grants ${granted.join(", ")} to PUBLIC`);
    else if (isTenantRole(role) && role !== schema) report(`schema "${schema}" grants ${granted.join(", ")} to tenant role "${role}", which may use only schema "${role}"`);
  }
}

function checkGrant(props: Readonly<Record<string, unknown>>, report: Report): void {
  const role = str(props.role);
  const objectType = str(props.objectType) ?? "<unset>";
  const privileges = strings(props.privileges).map((p) => p.toUpperCase());
  const schema = str(props.schema);
  const database = str(props.database) ?? "<unset>";
  const target = objectType === "database" ? `database "${database}"` : `${objectType} in schema "${schema ?? "<unset>"}"`;
  // Grant with no privileges revokes: that is how PUBLIC loses CREATE on public and CONNECT on the database.
  if (privileges.length === 0) return;
  if (isPublic(role)) {
    report(`grants ${privileges.join(", ")} on ${target} to PUBLIC`);
    return;
  }
  if (!isTenantRole(role)) return;
  if (objectType === "database") {
    const extra = privileges.filter((p) => !TENANT_DATABASE_PRIVILEGES.has(p));
    if (extra.length > 0) report(`grants ${extra.join(", ")} on ${target} to tenant role "${role}"; a tenant role gets only CONNECT (and TEMPORARY) on a database`);
    return;
  }
  if (schema !== role) report(`grants ${privileges.join(", ")} on ${target} to tenant role "${role}", which may touch only schema "${role}"`);
}

function checkDefaultPrivileges(props: Readonly<Record<string, unknown>>, report: Report): void {
  const role = str(props.role);
  const objectType = str(props.objectType) ?? "<unset>";
  const privileges = strings(props.privileges).map((p) => p.toUpperCase());
  const schema = str(props.schema);
  if (privileges.length === 0) return;
  const scope = schema === undefined || schema === "" ? "every schema" : `schema "${schema}"`;
  if (isPublic(role)) {
    report(`default privileges grant ${privileges.join(", ")} on new ${objectType}s in ${scope} to PUBLIC`);
    return;
  }
  if (isTenantRole(role) && schema !== role) {
    report(`default privileges grant ${privileges.join(", ")} on new ${objectType}s in ${scope} to tenant role "${role}", which may touch only schema "${role}"`);
  }
}

export const postgresTenantGrants: ResourcePolicyDefinition = {
  kind: "resource",
  name: "postgres-tenant-grants",
  description:
    "No tenant role is superuser, createdb, createrole, bypassrls or replication, and its search_path is pinned; Schemas, Grants and DefaultPrivileges for role tenant_x touch only schema tenant_x; nothing is granted to PUBLIC.",
  severity: "critical",
  enforcementLevel: "advisory",
  remediationSteps:
    "Derive role and schema from pgTenantIdent(tenant) in infra/model/naming.ts and grant the role only on its own schema; revoke from PUBLIC with a Grant whose privileges are [].",
  types: [T.pgRole, T.pgSchema, T.pgGrant, T.pgDefaultPrivileges],
  validate({ type, props }, _ctx, report) {
    if (type === T.pgRole) checkRole(props, report);
    else if (type === T.pgSchema) checkSchema(props, report);
    else if (type === T.pgGrant) checkGrant(props, report);
    else checkDefaultPrivileges(props, report);
  },
};
