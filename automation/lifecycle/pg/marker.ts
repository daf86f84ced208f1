/**
 * The cutover's record inside the dedicated database. Committed in the same transaction as the
 * final delta, so "the delta is applied" and "the delta is recorded" cannot come apart: a
 * resumed cutover sees the marker and never runs the delta again (which would undo what the
 * application has written on the dedicated side since). Kept in a schema of its own that the
 * tenant's role cannot see.
 */
import type pg from "pg";
import type { TableChecksum } from "./copy.ts";

export const MARKER_SCHEMA = "saas_tenancy";
export const MARKER_TABLE = `${MARKER_SCHEMA}.migration_cutover`;

export interface CutoverMarker {
  workflowId: string;
  tenantId: string;
  env: string;
  completedAt: Date;
  tables: TableChecksum[];
}

export async function readMarkers(c: pg.ClientBase, tenantId: string): Promise<CutoverMarker[]> {
  const { rows: exists } = await c.query<{ t: string | null }>("SELECT to_regclass($1)::text AS t", [MARKER_TABLE]);
  if (!exists[0]?.t) return [];
  const { rows } = await c.query<{ workflow_id: string; tenant_id: string; env: string; completed_at: Date; tables: TableChecksum[] }>(
    `SELECT workflow_id, tenant_id, env, completed_at, tables FROM ${MARKER_TABLE} WHERE tenant_id = $1 ORDER BY completed_at`,
    [tenantId],
  );
  return rows.map((r) => ({ workflowId: r.workflow_id, tenantId: r.tenant_id, env: r.env, completedAt: r.completed_at, tables: r.tables }));
}

/** Inside the caller's transaction. */
export async function writeMarker(c: pg.ClientBase, m: CutoverMarker): Promise<void> {
  await c.query(`CREATE SCHEMA IF NOT EXISTS ${MARKER_SCHEMA}`);
  await c.query(
    `CREATE TABLE IF NOT EXISTS ${MARKER_TABLE} (
       workflow_id uuid NOT NULL, tenant_id text NOT NULL, env text NOT NULL, completed_at timestamptz NOT NULL,
       tables jsonb NOT NULL, PRIMARY KEY (workflow_id, env))`,
  );
  await c.query(`INSERT INTO ${MARKER_TABLE} (workflow_id, tenant_id, env, completed_at, tables) VALUES ($1, $2, $3, $4, $5)`, [
    m.workflowId, m.tenantId, m.env, m.completedAt, JSON.stringify(m.tables),
  ]);
}
