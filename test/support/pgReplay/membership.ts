/**
 * helpers.go withRolesGranted: a non-superuser admin (RDS) is temporarily made a member (with
 * SET) of each owner role it needs, and revoked again in the same transaction; the reverse
 * membership is revoked and restored around it; owner `pg_database_owner` resolves to the
 * database owner (resolveOwners).
 */
import { quoteIdent } from "./sql.ts";
import { one, type Tx } from "./session.ts";

export async function currentUser(t: Tx): Promise<string> {
  return String((await one(t, "SELECT CURRENT_USER AS u"))!.u);
}

async function isSuperuser(t: Tx, role: string): Promise<boolean> {
  return (await one(t, "SELECT rolsuper FROM pg_roles WHERE rolname = $1", [role]))?.rolsuper === true;
}

async function roleExists(t: Tx, role: string): Promise<boolean> {
  return (await one(t, "SELECT 1 FROM pg_roles WHERE rolname = $1", [role])) !== undefined;
}

/** helpers.go isMemberOfRole: a membership counts only with SET (PG16+ set_option). */
async function isMemberOfRole(t: Tx, role: string, member: string): Promise<boolean> {
  const hasSet = (await one(t, "SELECT 1 FROM information_schema.columns WHERE table_name = 'pg_auth_members' AND column_name = 'set_option'")) !== undefined;
  const q = `SELECT 1 FROM pg_auth_members WHERE pg_get_userbyid(roleid) = $1 AND pg_get_userbyid(member) = $2${hasSet ? " AND set_option" : ""}`;
  return (await one(t, q, [role, member])) !== undefined;
}

export async function grantMembership(t: Tx, role: string, member: string): Promise<boolean> {
  if (member === role || (await isMemberOfRole(t, role, member))) return false;
  await t.exec(`GRANT ${quoteIdent(role)} TO ${quoteIdent(member)}`);
  return true;
}

export async function revokeMembership(t: Tx, role: string, member: string): Promise<boolean> {
  if (member === role || !(await isMemberOfRole(t, role, member))) return false;
  await t.exec(`REVOKE ${quoteIdent(role)} FROM ${quoteIdent(member)}`);
  return true;
}

/** helpers.go withRolesGranted. */
export async function withRolesGranted(t: Tx, roles: string[], fn: () => Promise<void>): Promise<void> {
  if (roles.length === 0) return fn();
  const me = await currentUser(t);
  if (await isSuperuser(t, me)) return fn();
  const granted: string[] = [];
  const revoked: string[] = [];
  for (const role of roles) {
    if (await isSuperuser(t, role)) continue;
    if (await revokeMembership(t, me, role)) revoked.push(role);
    if (await grantMembership(t, role, me)) granted.push(role);
  }
  await fn();
  for (const role of granted) await revokeMembership(t, role, me);
  for (const role of revoked) if (await roleExists(t, role)) await grantMembership(t, me, role);
}

export async function databaseOwner(t: Tx): Promise<string> {
  return String((await one(t, "SELECT pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = current_database()"))!.o);
}

/** helpers.go resolveOwners: pg_database_owner (owner of `public` since PG15) is the database owner. */
export async function resolveOwner(t: Tx, owner: string): Promise<string> {
  return owner === "pg_database_owner" ? databaseOwner(t) : owner;
}
