/**
 * Schema migrations and the workflows that move a tenant's schema to another database (the
 * pooled -> dedicated upgrade, a cell move) keep out of each other's way (docs/schema-migrations.md):
 *
 * - such a workflow is refused while the tenant's schema is in an active schema migration and not
 *   done with it (pending, being migrated, or failed in a halted one): the copy would take a
 *   schema half-way between two versions, or leave the migration a unit in a database the tenant
 *   has left. The refusal names the migration and how to finish or abort it;
 * - while such a workflow (or the rollback of one) is open, the tenant's schemas are not claimed
 *   by a fleet migration: they wait in their wave until it ends.
 *
 * Both sides decide under the fleet engine's tick lock, in the transaction that records their
 * decision, so a claim and a workflow's creation never both go ahead.
 */
import type pg from "pg";
import { lockKey } from "../db/tx.ts";

/** Taken by every transaction that starts, claims for or ends a fleet schema migration. */
export const DB_MIGRATIONS_LOCK = lockKey("tenancy:db-migrations:tick");

/** The workflow states in which a tenant's schema is "in motion" (lifecycle OPEN_STATES). */
const OPEN = ["pending", "running", "waiting"];

/**
 * Why a workflow that moves `tenant`'s schema must not start now, or undefined. Call inside the
 * transaction that records the workflow; takes DB_MIGRATIONS_LOCK until it ends.
 */
export async function schemaMigrationRefusal(c: pg.ClientBase, tenant: string, what: string): Promise<string | undefined> {
  await c.query("SELECT pg_advisory_xact_lock($1)", [DB_MIGRATIONS_LOCK]);
  const { rows } = await c.query<{ id: string; action: string; target_version: number; state: string; wave: number; waves: number; stack: string; schema_state: string; error: string | null }>(
    `SELECT m.id, m.action, m.target_version, m.state, m.wave, jsonb_array_length(m.waves) AS waves, s.stack, s.state AS schema_state, s.error
       FROM db_migrations m JOIN db_migration_schemas s ON s.migration_id = m.id
      WHERE m.state IN ('running', 'halted') AND s.tenant = $1 AND s.state NOT IN ('succeeded', 'skipped')
      ORDER BY s.stack`,
    [tenant],
  );
  const r = rows[0];
  if (!r) return undefined;
  const where = rows.map((x) => `${x.stack} (${x.schema_state === "running" ? "being migrated now" : x.schema_state}${x.error ? `: ${x.error}` : ""})`).join(", ");
  const how =
    r.state === "halted"
      ? `fix the cause and resume it (tenantctl db resume ${r.id}) or abort it (tenantctl db abort ${r.id})`
      : `wait for it to finish (tenantctl db show ${r.id}) or abort it (tenantctl db abort ${r.id})`;
  return (
    `${what} of tenant ${tenant} refused: its schema is mid-migration in schema migration ${r.id} ` +
    `(${r.action} to version ${r.target_version}, ${r.state}, wave ${r.wave + 1} of ${r.waves}): ${where}; ${how}, then ask again`
  );
}

/** SQL condition: the tenant column `col` names no tenant with an open workflow of `kinds` ($n is the kinds array). */
export function notInMotionSql(col: string, param: string): string {
  return `${col} <> ALL(SELECT tenant_id FROM lifecycle_workflows WHERE state = ANY('{${OPEN.join(",")}}'::text[]) AND kind = ANY(${param}::text[]))`;
}
