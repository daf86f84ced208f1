/**
 * Replays the `postgresql:*` resources of a rendered stack against a live PostgreSQL, executing the
 * SQL that terraform-provider-postgresql (the provider behind @pulumi/postgresql) executes for each.
 * It exists so tests can prove on a real server what the program declares; it is not a deployment
 * tool and covers only the inputs the program uses (anything else is refused, never ignored).
 *
 * Mirrored from cyrilgdn/terraform-provider-postgresql, postgresql/, one file per concern:
 *  - role.ts             resource_postgresql_role.go
 *  - schema.ts           resource_postgresql_schema.go
 *  - grant.ts            resource_postgresql_grant.go
 *  - defaultPrivileges.ts resource_postgresql_default_privileges.go
 *  - database.ts         resource_postgresql_database.go
 *  - membership.ts       helpers.go withRolesGranted, isMemberOfRole, resolveOwners
 *  - privileges.ts       helpers.go allowedPrivileges, resourcePrivilegesEqual, getRoleOID
 *  - sql.ts              lib/pq QuoteIdentifier, helpers.go pqQuoteLiteral
 * and, the replay's own: api.ts (types, options, errors), inputs.ts (declared inputs),
 * provider.ts and resources.ts (reading a render), session.ts (sessions, transactions, the
 * record of writes), apply.ts (the driver and its state).
 */
export {
  PG_TYPES,
  ReplayError,
  type ExecutedStatement,
  type ReplayOptions,
  type ReplayResult,
  type ReplayState,
  type SqlSession,
} from "./api.ts";
export { replayPostgres } from "./apply.ts";
export { createDatabaseSql, type DatabaseSpec } from "./database.ts";
export { defaultPrivilegesSql, type DefaultPrivilegesSpec } from "./defaultPrivileges.ts";
export { grantSql, type GrantObjectType, type GrantSpec } from "./grant.ts";
export { privilegesEqual } from "./privileges.ts";
export type { PgProvider } from "./provider.ts";
export { pgResources, type PgResource } from "./resources.ts";
export { createRoleSql, updateRoleSql, type RoleRead, type RoleSpec } from "./role.ts";
export { createSchemaSql, type SchemaSpec } from "./schema.ts";
export { quoteIdent, quoteLiteral } from "./sql.ts";
