/**
 * A connection to an existing control-plane database from outside the control plane (tenantctl):
 * a small pool, and whether the control plane has applied its migrations there.
 */
import type pg from "pg";
import { createPool } from "./database.ts";

export interface ControlPlaneConnection {
  pool: pg.Pool;
  /** False when the database has no lifecycle tables: the control plane never started on it. */
  ready: boolean;
}

/** Opens a pool of `max` connections on `url`; the caller ends it (pool.end()). */
export async function connectControlPlane(url: string, max = 2): Promise<ControlPlaneConnection> {
  const pool = createPool(url, max);
  try {
    const { rows } = await pool.query<{ t: string | null }>("SELECT to_regclass('lifecycle_workflows')::text AS t");
    return { pool, ready: Boolean(rows[0]?.t) };
  } catch (err) {
    await pool.end();
    throw err;
  }
}
