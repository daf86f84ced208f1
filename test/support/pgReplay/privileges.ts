/**
 * Privileges shared by grants and default privileges: which are allowed per object type, when a
 * granted set equals a declared one, and the grantee's OID as ACLs name it.
 */
import { ReplayError } from "./api.ts";
import { one, type Tx } from "./session.ts";

/** helpers.go allowedPrivileges (the subset of object types the replay supports). */
const ALLOWED_PRIVILEGES: Readonly<Record<string, readonly string[]>> = {
  database: ["ALL", "CREATE", "CONNECT", "TEMPORARY"],
  table: ["ALL", "SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"],
  sequence: ["ALL", "USAGE", "SELECT", "UPDATE"],
  schema: ["ALL", "CREATE", "USAGE"],
  function: ["ALL", "EXECUTE"],
  type: ["ALL", "USAGE"],
};

export function validatePrivileges(what: string, objectType: string, privileges: string[]): void {
  const allowed = ALLOWED_PRIVILEGES[objectType] ?? [];
  for (const p of privileges) {
    if (!allowed.includes(p)) throw new ReplayError(`${what}: ${p} is not an allowed privilege for object type ${objectType}`);
  }
}

/** resourcePrivilegesEqual: sets equal, or ALL wanted and every privilege of the type granted. */
export function privilegesEqual(objectType: string, granted: readonly string[], wanted: readonly string[]): boolean {
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().join() === [...b].sort().join();
  const g = [...new Set(granted)];
  if (same(g, [...new Set(wanted)])) return true;
  if (!wanted.includes("ALL")) return false;
  return same(g, (ALLOWED_PRIVILEGES[objectType] ?? []).filter((p) => p !== "ALL"));
}

/** getRoleOID: role "public" is the PUBLIC pseudo-role, OID 0. */
export async function roleOid(t: Tx, role: string): Promise<number | undefined> {
  if (role.toLowerCase() === "public") return 0;
  const r = await one(t, "SELECT oid FROM pg_roles WHERE rolname = $1", [role]);
  return r ? Number(r.oid) : undefined;
}
