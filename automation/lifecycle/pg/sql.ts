/** Small SQL helpers shared by the copy, dump and cutover code. */
import type pg from "pg";

/** Always-quoted identifier (safe for any name, including upper case and reserved words). */
export function qi(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function ql(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** `"schema"."name"` */
export function qn(schema: string, name: string): string {
  return `${qi(schema)}.${qi(name)}`;
}

/**
 * Puts a session in the one configuration every catalog read, COPY and checksum uses on both
 * servers: names come out schema-qualified (search_path is pg_catalog only), and the text form of
 * every value is the same on both sides (dates, intervals, floats, bytea), which the row checksums
 * and the COPY text format rely on. No timeout may cut a copy short.
 */
export async function prepareSession(c: pg.ClientBase): Promise<void> {
  await c.query(
    [
      "SET search_path = pg_catalog",
      "SET DateStyle = 'ISO, YMD'",
      "SET IntervalStyle = 'postgres'",
      "SET TimeZone = 'UTC'",
      "SET extra_float_digits = 1",
      "SET bytea_output = 'hex'",
      "SET standard_conforming_strings = on",
      "SET client_encoding = 'UTF8'",
      "SET statement_timeout = 0",
      "SET idle_in_transaction_session_timeout = 0",
    ].join("; "),
  );
}

/**
 * Gives the platform's master user the privileges of the tenant's role. On RDS the master is not
 * SUPERUSER: it reads and writes the tenant's tables only as a member of the owning role, and may
 * hand objects to that role (ALTER ... OWNER) only with SET on it. It created the role (through
 * the postgresql provider), so PostgreSQL 16+ gave it ADMIN OPTION and it may grant the
 * membership to itself, as the terraform provider does (withRolesGranted). The session keeps its
 * own identity (no SET ROLE): temporary tables need the database's TEMP privilege, which the
 * tenant role does not have (the hardening revokes everything from PUBLIC).
 */
export async function ensureMember(c: pg.ClientBase, role: string): Promise<void> {
  const { rows } = await c.query<{ superuser: boolean; member: boolean }>(
    `SELECT r.rolsuper AS superuser, pg_has_role(current_user, $1, 'USAGE') AND pg_has_role(current_user, $1, 'SET') AS member
       FROM pg_roles r WHERE r.rolname = current_user`,
    [role],
  );
  const me = rows[0];
  if (me && !me.superuser && !me.member) await c.query(`GRANT ${qi(role)} TO CURRENT_USER WITH INHERIT TRUE, SET TRUE`);
}

/** Runs `fn` in a transaction on `c`; rolls back on error. */
export async function inTransaction<T>(c: pg.ClientBase, begin: string, fn: () => Promise<T>): Promise<T> {
  await c.query(begin);
  try {
    const out = await fn();
    await c.query("COMMIT");
    return out;
  } catch (err) {
    await c.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}
