/**
 * Versioned SQL migrations: `db/migrations/NNN_name.sql`, applied in order, each in its own
 * transaction, recorded in schema_migrations with a checksum. A session advisory lock keeps two
 * processes from migrating at once. An applied file that was edited afterwards stops start-up:
 * add a new migration instead.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Pool } from "pg";

export const MIGRATIONS_DIR = join(import.meta.dirname, "migrations");
/** pg_advisory_lock key of the migration runner. */
const MIGRATION_LOCK = 7_240_001;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  const out: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    const m = /^(\d+)_([\w-]+)\.sql$/.exec(file);
    if (!m) continue;
    const sql = readFileSync(join(dir, file), "utf8");
    out.push({ version: Number(m[1]), name: m[2]!, sql, checksum: createHash("sha256").update(sql).digest("hex") });
  }
  const seen = new Set<number>();
  for (const mig of out) {
    if (seen.has(mig.version)) throw new Error(`two migrations have version ${mig.version} in ${dir}`);
    seen.add(mig.version);
  }
  return out;
}

export class MigrationError extends Error {}

/** Applies pending migrations; returns the versions it applied. */
export async function migrate(pool: Pool, migrations: readonly Migration[] = loadMigrations()): Promise<number[]> {
  const client = await pool.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number; checksum: string }>("SELECT version, checksum FROM schema_migrations");
    const applied = new Map(rows.map((r) => [r.version, r.checksum]));
    const done: number[] = [];
    for (const mig of migrations) {
      const prior = applied.get(mig.version);
      if (prior !== undefined) {
        if (prior !== mig.checksum) {
          throw new MigrationError(`migration ${mig.version}_${mig.name} changed after it was applied; restore it and add a new migration`);
        }
        continue;
      }
      await client.query("BEGIN");
      try {
        await client.query(mig.sql);
        await client.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [mig.version, mig.name, mig.checksum]);
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK");
        throw new MigrationError(`migration ${mig.version}_${mig.name} failed: ${(err as Error).message}`);
      }
      done.push(mig.version);
    }
    return done;
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK]).catch(() => undefined);
    client.release();
  }
}
