/**
 * Applies the application's migrations to ONE tenant schema (docs/schema-migrations.md), on a
 * session of the database's master user:
 *
 * - one transaction per schema: every pending file and its version row commit together or not at
 *   all, so a crash or a failure leaves the schema at a version it really has;
 * - as the tenant's role: `SET LOCAL ROLE tenant_<id>` and the files run inside a transient
 *   SECURITY DEFINER function owned by that role with `search_path` pinned to the schema.
 *   PostgreSQL refuses SET ROLE / RESET ROLE / set_config('role') inside a security-definer
 *   function (42501), so a file cannot leave the tenant's role, and a file naming another tenant's
 *   schema fails with 42501 (the role has no USAGE there). Objects a migration creates are owned
 *   by the tenant's role; PUBLIC gets no EXECUTE on its functions nor USAGE on its types;
 * - `lock_timeout` and `statement_timeout` for the transaction: a migration waiting behind a
 *   tenant's long transaction fails (and is retried later) instead of queueing the tenant's
 *   writers behind its own lock;
 * - `<schema>.schema_migrations (version, name, checksum, applied_at, run_id)` records what was
 *   applied; every recorded checksum must match its file, or nothing runs (a changed applied
 *   file is an error naming it);
 * - an advisory lock per schema: two migrators of one schema queue (within lock_timeout);
 * - few round trips (migrationTransaction): the per-schema cost is mostly waiting, on a loaded
 *   server, for each answer. A transactional batch is four: open, lock and check; become the
 *   tenant, prepare and read the versions; each file with its version row (one call of the apply
 *   function); drop the function and commit. Default privileges are written only when they are not
 *   already as they must be.
 */
import pg from "pg";
import { qi } from "../lifecycle/pg/sql.ts";
import type { Migration, MigrationFile, MigrationSet } from "./files.ts";

export const VERSIONS_TABLE = "schema_migrations";
/** The transient function the files run in (created and dropped inside the transaction). */
const APPLY_FUNCTION = "schema_migrations_apply";

export interface TenantSchema {
  /** Schema name, `tenant_<id>` (pgTenantIdent). */
  schema: string;
  /** The role that owns it; the migration runs as this role. Same name as the schema on this platform. */
  role: string;
}

export interface ApplyOptions {
  /** Who applied it: the fleet migration's id, or `tenantctl` / `new-tenant` for other callers. */
  runId: string;
  lockTimeoutMs: number;
  statementTimeoutMs: number;
}

export interface SchemaOutcome {
  schema: string;
  from: number;
  to: number;
  /** Versions applied (migrate, ascending) or reverted (rollback, descending). */
  versions: number[];
}

export interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
  appliedAt: string;
  runId: string;
}

export interface SchemaStatus {
  schema: string;
  /** False when the schema does not exist in that database (not provisioned yet, or offboarded). */
  exists: boolean;
  version: number;
  applied: AppliedRow[];
}

/** A migration failed or cannot run for one schema; `code` is PostgreSQL's SQLSTATE when it came from the server. */
export class SchemaMigrationError extends Error {
  constructor(
    readonly schema: string,
    message: string,
    readonly code?: string,
    readonly file?: string,
  ) {
    super(`${schema}: ${message}`);
  }
}

function pgCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/**
 * Runs `fn` in a transaction as the tenant's role, the schema pinned, timeouts set and the
 * schema's advisory lock held. The master user must be a member of the role with SET (it created
 * it, so on PostgreSQL 16+ it has ADMIN OPTION and grants itself that membership here).
 */
async function asTenant<T>(c: pg.ClientBase, t: TenantSchema, opts: Pick<ApplyOptions, "lockTimeoutMs" | "statementTimeoutMs">, write: boolean, fn: () => Promise<T>): Promise<T> {
  await c.query("BEGIN");
  try {
    await c.query(`SET LOCAL lock_timeout = ${Math.trunc(opts.lockTimeoutMs)}`);
    await c.query(`SET LOCAL statement_timeout = ${Math.trunc(opts.statementTimeoutMs)}`);
    const exists = await c.query<{ owner: string }>("SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = $1", [t.schema]);
    if (exists.rowCount === 0) throw new SchemaMigrationError(t.schema, `schema ${t.schema} does not exist in database ${await currentDatabase(c)}; its stack creates it (run the stack first)`);
    if (exists.rows[0]!.owner !== t.role) {
      throw new SchemaMigrationError(t.schema, `schema ${t.schema} is owned by ${exists.rows[0]!.owner}, not by the tenant's role ${t.role}; migrations run as the owner role only`);
    }
    if (write) await c.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`tenancy:schema-migrations:${t.schema}`]);
    const member = await c.query<{ ok: boolean; superuser: boolean }>(
      "SELECT pg_has_role(current_user, $1, 'SET') AS ok, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser",
      [t.role],
    );
    if (!member.rows[0]!.ok && !member.rows[0]!.superuser) await c.query(`GRANT ${qi(t.role)} TO CURRENT_USER WITH INHERIT FALSE, SET TRUE`);
    await c.query(`SET LOCAL ROLE ${qi(t.role)}`);
    await c.query(`SET LOCAL search_path = ${qi(t.schema)}`);
    const out = await fn();
    await c.query(write ? "COMMIT" : "ROLLBACK");
    return out;
  } catch (err) {
    await c.query("ROLLBACK").catch(() => undefined);
    throw asSchemaError(t, opts, err);
  }
}

async function currentDatabase(c: pg.ClientBase): Promise<string> {
  return (await c.query<{ d: string }>("SELECT current_database() AS d")).rows[0]!.d;
}

async function tableExists(c: pg.ClientBase, schema: string): Promise<boolean> {
  const { rows } = await c.query<{ r: string | null }>("SELECT to_regclass($1) AS r", [`${qi(schema)}.${qi(VERSIONS_TABLE)}`]);
  return rows[0]!.r !== null;
}

async function readApplied(c: pg.ClientBase, schema: string): Promise<AppliedRow[]> {
  if (!(await tableExists(c, schema))) return [];
  const { rows } = await c.query<{ version: number; name: string; checksum: string; applied_at: Date; run_id: string }>(
    `SELECT version, name, checksum, applied_at, run_id FROM ${qi(schema)}.${qi(VERSIONS_TABLE)} ORDER BY version`,
  );
  return rows.map((r) => ({ version: r.version, name: r.name, checksum: r.checksum, appliedAt: r.applied_at.toISOString(), runId: r.run_id }));
}

/**
 * Every applied version must have its file, unchanged; no file may sit between applied versions
 * without having been applied (a migration added "in the past" would never run). Returns the
 * schema's version.
 */
export function verifyApplied(schema: string, set: MigrationSet, applied: readonly AppliedRow[]): number {
  const byVersion = new Map(set.migrations.map((m) => [m.version, m]));
  const problems: string[] = [];
  for (const row of applied) {
    const m = byVersion.get(row.version);
    if (!m) {
      problems.push(`version ${row.version} (${row.name}) is applied but ${set.dir} has no ${String(row.version).padStart(4, "0")}_${row.name}.up.sql: restore the file (applied migrations are never deleted)`);
    } else if (m.up.checksum !== row.checksum) {
      problems.push(
        `${set.dir}/${m.up.file} changed after it was applied (sha256 applied ${row.checksum.slice(0, 12)}, file now ${m.up.checksum.slice(0, 12)}): restore it and put the change in a new migration`,
      );
    }
  }
  const version = applied.at(-1)?.version ?? 0;
  const done = new Set(applied.map((r) => r.version));
  for (const m of set.migrations) {
    if (m.version < version && !done.has(m.version)) problems.push(`${set.dir}/${m.up.file} is older than the applied version ${version} but was never applied: number new migrations after the last one`);
  }
  if (problems.length > 0) throw new SchemaMigrationError(schema, problems.join("; "), undefined, undefined);
  return version;
}

/** The schema's applied versions (read as its role, in a transaction rolled back). */
export async function schemaStatus(c: pg.ClientBase, t: TenantSchema, opts: Pick<ApplyOptions, "lockTimeoutMs" | "statementTimeoutMs">): Promise<SchemaStatus> {
  const exists = await c.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [t.schema]);
  if (exists.rowCount === 0) return { schema: t.schema, exists: false, version: 0, applied: [] };
  const applied = await asTenant(c, t, opts, false, () => readApplied(c, t.schema));
  return { schema: t.schema, exists: true, version: applied.at(-1)?.version ?? 0, applied };
}

const VERSIONS_DDL = `(version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), run_id text NOT NULL)`;
/** The apply function's argument types (its signature, for DROP FUNCTION). */
const APPLY_ARGS = "text, integer, text, text, text";

/** The results of a simple-protocol query of several statements (pg answers an array then, one result otherwise). */
async function simple(c: pg.ClientBase, text: string): Promise<pg.QueryResult[]> {
  const r = (await c.query(text)) as unknown as pg.QueryResult | pg.QueryResult[];
  return Array.isArray(r) ? r : [r];
}

interface SchemaFacts {
  owner: string | null;
  database: string;
  member: boolean | null;
  superuser: boolean;
  defaults_revoked: boolean;
}

/**
 * A migration's transaction on one schema, in as few round trips as it can be (each one waits for
 * the server's answer, and on a loaded server for a core too):
 * 1. `BEGIN`, the timeouts, the schema's advisory lock, and what must be checked as the master user
 *    (the schema's owner, membership in its role, whether its default privileges already keep
 *    PUBLIC off functions and types), as one message;
 * 2. (only when the master user is not yet a member of the role: the GRANT)
 * 3. `SET LOCAL ROLE` and `search_path`, the versions table if missing, the default privileges if
 *    not as they must be, the transient apply function, and the applied versions, as one message;
 * then `fn` runs the files (runFile: one call each, its version row written by the same call) and
 * says whether to commit; 4. `DROP FUNCTION` and `COMMIT` as one message (or `ROLLBACK`: nothing to
 * keep). Everything is one transaction, as before: a crash anywhere leaves the schema as it was.
 */
async function migrationTransaction<T>(
  c: pg.ClientBase,
  t: TenantSchema,
  opts: Pick<ApplyOptions, "lockTimeoutMs" | "statementTimeoutMs">,
  fn: (applied: AppliedRow[]) => Promise<{ commit: boolean; value: T }>,
): Promise<T> {
  const s = qi(t.schema);
  const lit = pg.escapeLiteral;
  try {
    const opened = await simple(
      c,
      `BEGIN; SET LOCAL lock_timeout = ${Math.trunc(opts.lockTimeoutMs)}; SET LOCAL statement_timeout = ${Math.trunc(opts.statementTimeoutMs)};
       SELECT pg_advisory_xact_lock(hashtextextended(${lit(`tenancy:schema-migrations:${t.schema}`)}, 0));
       SELECT pg_get_userbyid(n.nspowner) AS owner, current_database() AS database,
              CASE WHEN pg_get_userbyid(n.nspowner) = ${lit(t.role)} THEN pg_has_role(current_user, ${lit(t.role)}, 'SET') END AS member,
              (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
              (SELECT count(*) = 2 FROM pg_default_acl d
                WHERE d.defaclrole = n.nspowner AND d.defaclnamespace = 0 AND d.defaclobjtype IN ('f', 'T')
                  AND NOT EXISTS (SELECT 1 FROM aclexplode(d.defaclacl) a WHERE a.grantee = 0)) AS defaults_revoked
         FROM (SELECT 1) one LEFT JOIN pg_namespace n ON n.nspname = ${lit(t.schema)}`,
    );
    const f = opened.at(-1)!.rows[0] as SchemaFacts;
    if (f.owner === null) throw new SchemaMigrationError(t.schema, `schema ${t.schema} does not exist in database ${f.database}; its stack creates it (run the stack first)`);
    if (f.owner !== t.role) throw new SchemaMigrationError(t.schema, `schema ${t.schema} is owned by ${f.owner}, not by the tenant's role ${t.role}; migrations run as the owner role only`);
    if (!f.member && !f.superuser) await c.query(`GRANT ${qi(t.role)} TO CURRENT_USER WITH INHERIT FALSE, SET TRUE`);
    const prepared = await simple(
      c,
      `SET LOCAL ROLE ${qi(t.role)}; SET LOCAL search_path = ${s};
       CREATE TABLE IF NOT EXISTS ${s}.${qi(VERSIONS_TABLE)} ${VERSIONS_DDL};
       ${
         // Functions and types are usable by PUBLIC by default; a tenant's are for the tenant only.
         f.defaults_revoked
           ? ""
           : `ALTER DEFAULT PRIVILEGES FOR ROLE ${qi(t.role)} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
              ALTER DEFAULT PRIVILEGES FOR ROLE ${qi(t.role)} REVOKE USAGE ON TYPES FROM PUBLIC;`
       }
       CREATE FUNCTION ${s}.${qi(APPLY_FUNCTION)}(migration text, v integer, n text, sum text, run text) RETURNS void
         LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${s}
         AS $apply$ BEGIN
           EXECUTE migration;
           IF n IS NULL THEN DELETE FROM ${s}.${qi(VERSIONS_TABLE)} WHERE version = v;
           ELSE INSERT INTO ${s}.${qi(VERSIONS_TABLE)} (version, name, checksum, run_id) VALUES (v, n, sum, run); END IF;
         END $apply$;
       SELECT version, name, checksum, applied_at, run_id FROM ${s}.${qi(VERSIONS_TABLE)} ORDER BY version`,
    );
    const applied = (prepared.at(-1)!.rows as { version: number; name: string; checksum: string; applied_at: Date; run_id: string }[]).map((r) => ({
      version: r.version, name: r.name, checksum: r.checksum, appliedAt: r.applied_at.toISOString(), runId: r.run_id,
    }));
    const out = await fn(applied);
    await c.query(out.commit ? `DROP FUNCTION ${s}.${qi(APPLY_FUNCTION)}(${APPLY_ARGS}); COMMIT` : "ROLLBACK");
    return out.value;
  } catch (err) {
    await c.query("ROLLBACK").catch(() => undefined);
    throw asSchemaError(t, opts, err);
  }
}

function asSchemaError(t: TenantSchema, opts: Pick<ApplyOptions, "lockTimeoutMs">, err: unknown): SchemaMigrationError {
  if (err instanceof SchemaMigrationError) return err;
  const code = pgCode(err);
  if (code === "55P03") return new SchemaMigrationError(t.schema, `lock_timeout (${opts.lockTimeoutMs} ms) reached waiting for a lock: ${(err as Error).message}; a tenant transaction held it, retry later`, code);
  return new SchemaMigrationError(t.schema, (err as Error).message, code);
}

/** Runs one file in the apply function, which then writes (`record`) or deletes (`undo`) its version row: one round trip. */
async function runFile(c: pg.ClientBase, t: TenantSchema, file: string, sql: string, row: { version: number } & ({ record: { name: string; checksum: string; runId: string } } | { undo: true })): Promise<void> {
  const r = "record" in row ? row.record : undefined;
  try {
    await c.query(`SELECT ${qi(t.schema)}.${qi(APPLY_FUNCTION)}($1, $2, $3, $4, $5)`, [sql, row.version, r?.name ?? null, r?.checksum ?? null, r?.runId ?? null]);
  } catch (err) {
    const code = pgCode(err);
    throw new SchemaMigrationError(t.schema, `${file} failed: ${(err as Error).message}${code ? ` (SQLSTATE ${code})` : ""}`, code, file);
  }
}

/**
 * Brings the schema to `to` (default the set's head): applies every pending up file in order, the
 * consecutive transactional ones in one transaction, a non-transactional one on its own
 * (applyNonTransactional). A schema already at `to` is left alone; one past it is an error
 * (rolling back is `rollbackSchema`).
 */
export async function migrateSchema(c: pg.ClientBase, t: TenantSchema, set: MigrationSet, opts: ApplyOptions & { to?: number }): Promise<SchemaOutcome> {
  const to = opts.to ?? set.head;
  let first: number | undefined;
  const versions: number[] = [];
  for (;;) {
    const round = await migrationTransaction(c, t, opts, async (applied): Promise<{ commit: boolean; value: { done: boolean; next?: Migration } }> => {
      const from = verifyApplied(t.schema, set, applied);
      first ??= from;
      if (from > to) throw new SchemaMigrationError(t.schema, `is at version ${from}, past the target ${to}; a rollback (tenantctl db rollback) moves it back`);
      const pending = set.migrations.filter((m) => m.version > from && m.version <= to);
      const batch = pending.slice(0, (pending.findIndex((m) => m.up.steps) + 1 || pending.length + 1) - 1);
      for (const m of batch) await runFile(c, t, m.up.file, m.up.sql, { version: m.version, record: { name: m.name, checksum: m.up.checksum, runId: opts.runId } });
      versions.push(...batch.map((m) => m.version));
      if (batch.length > 0) return { commit: true, value: { done: batch.length === pending.length } };
      // A non-transactional file next: commit the versions table its row goes to; nothing at all: keep nothing.
      return pending[0] ? { commit: true, value: { done: false, next: pending[0] } } : { commit: false, value: { done: true } };
    });
    const next = round.next;
    if (next) {
      await applyNonTransactional(c, t, next.up, opts);
      await asTenant(c, t, opts, true, async () => {
        await c.query(`INSERT INTO ${qi(t.schema)}.${qi(VERSIONS_TABLE)} (version, name, checksum, run_id) VALUES ($1, $2, $3, $4)`, [next.version, next.name, next.up.checksum, opts.runId]);
      });
      versions.push(next.version);
      continue;
    }
    if (round.done) break;
  }
  return { schema: t.schema, from: first ?? 0, to: versions.length > 0 ? to : (first ?? 0), versions };
}

/** Reverts the schema to `to` with the down files of every later applied version (newest first); consecutive transactional ones in one transaction. */
export async function rollbackSchema(c: pg.ClientBase, t: TenantSchema, set: MigrationSet, opts: ApplyOptions & { to: number }): Promise<SchemaOutcome> {
  let first: number | undefined;
  const versions: number[] = [];
  for (;;) {
    const round = await migrationTransaction(c, t, opts, async (applied): Promise<{ commit: boolean; value: { done: boolean; next?: Migration } }> => {
      const from = verifyApplied(t.schema, set, applied);
      first ??= from;
      if (opts.to > from) throw new SchemaMigrationError(t.schema, `is at version ${from}, before the rollback target ${opts.to}; migrating forward is tenantctl db migrate`);
      const undo: Migration[] = set.migrations.filter((m) => m.version > opts.to && m.version <= from).reverse();
      const missing = undo.filter((m) => !m.down).map((m) => `${m.up.file.replace(/\.up\.sql$/, ".down.sql")}`);
      if (missing.length > 0) throw new SchemaMigrationError(t.schema, `cannot go back to ${opts.to}: ${set.dir} has no ${missing.join(", ")}; write the down file(s) first`);
      const batch = undo.slice(0, (undo.findIndex((m) => m.down!.steps) + 1 || undo.length + 1) - 1);
      for (const m of batch) await runFile(c, t, m.down!.file, m.down!.sql, { version: m.version, undo: true });
      versions.push(...batch.map((m) => m.version));
      if (batch.length > 0) return { commit: true, value: { done: batch.length === undo.length } };
      return undo[0] ? { commit: false, value: { done: false, next: undo[0] } } : { commit: false, value: { done: true } };
    });
    const next = round.next;
    if (next) {
      await applyNonTransactional(c, t, next.down!, opts);
      await asTenant(c, t, opts, true, async () => {
        await c.query(`DELETE FROM ${qi(t.schema)}.${qi(VERSIONS_TABLE)} WHERE version = $1`, [next.version]);
      });
      versions.push(next.version);
      continue;
    }
    if (round.done) break;
  }
  return { schema: t.schema, from: first ?? 0, to: versions.length > 0 ? opts.to : (first ?? 0), versions };
}

/**
 * Runs a non-transactional file's steps (CREATE/DROP/REINDEX INDEX CONCURRENTLY, validated when
 * the files were read) one by one on the session, outside any transaction, as the tenant's role
 * (`SET ROLE`, `search_path` pinned), under the schema's advisory lock held for the session.
 * Each step is sent alone with the extended protocol (one statement per message, nothing else can
 * ride along). Each step first looks at what a previous, interrupted attempt left:
 * - create: a valid index of that name means the step is done; an INVALID one (a build cut off by
 *   a crash, a lock or statement timeout) is dropped concurrently and built again;
 * - drop: no index of that name means it is done;
 * - reindex: always run again (REINDEX CONCURRENTLY leaves `<name>_ccnew` on failure: dropped first).
 * The tenant's role has no USAGE on any other schema and a CREATE INDEX runs the index's
 * expressions as the table owner in a security-restricted operation, so a step reaches nothing
 * outside the schema (42501). The version row is written by the caller afterwards: a crash before
 * it leaves the version unapplied and the next attempt resumes at the first step not done.
 */
async function applyNonTransactional(c: pg.ClientBase, t: TenantSchema, f: MigrationFile, opts: Pick<ApplyOptions, "lockTimeoutMs" | "statementTimeoutMs">): Promise<void> {
  const lockKey = `tenancy:schema-migrations:${t.schema}`;
  await c.query(`SET lock_timeout = ${Math.trunc(opts.lockTimeoutMs)}`);
  await c.query(`SET statement_timeout = ${Math.trunc(opts.statementTimeoutMs)}`);
  let locked = false;
  try {
    try {
      await c.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [lockKey]);
    } catch (err) {
      throw new SchemaMigrationError(t.schema, `${f.file}: waiting for the schema's migration lock: ${(err as Error).message}`, pgCode(err), f.file);
    }
    locked = true;
    await c.query(`SET ROLE ${qi(t.role)}`);
    await c.query(`SET search_path = ${qi(t.schema)}`);
    for (const [i, step] of f.steps!.entries()) {
      const state = await indexState(c, t.schema, step.index);
      if (step.kind === "create" && state === "valid") continue;
      if (step.kind === "drop" && state === "absent") continue;
      try {
        if (step.kind === "create" && state === "invalid") await extended(c, `DROP INDEX CONCURRENTLY ${qi(t.schema)}.${qi(step.index)}`);
        if (step.kind === "reindex" && (await indexState(c, t.schema, `${step.index}_ccnew`)) !== "absent") {
          await extended(c, `DROP INDEX CONCURRENTLY ${qi(t.schema)}.${qi(`${step.index}_ccnew`)}`);
        }
        await extended(c, step.sql);
      } catch (err) {
        const code = pgCode(err);
        throw new SchemaMigrationError(t.schema, `${f.file} step ${i + 1} (${step.kind} index ${step.index}) failed: ${(err as Error).message}${code ? ` (SQLSTATE ${code})` : ""}; the next attempt resumes at this step`, code, f.file);
      }
    }
  } finally {
    // The session goes back to the pool as it came (a broken one is discarded by the caller).
    await c.query("RESET ROLE").catch(() => undefined);
    await c.query("RESET search_path").catch(() => undefined);
    await c.query("RESET lock_timeout").catch(() => undefined);
    await c.query("RESET statement_timeout").catch(() => undefined);
    if (locked) await c.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [lockKey]).catch(() => undefined);
  }
}

/** One statement alone in an extended-protocol message (Parse refuses a second one). `queryMode` is pg's, missing from its typings. */
async function extended(c: pg.ClientBase, text: string): Promise<void> {
  await c.query({ text, queryMode: "extended" } as pg.QueryConfig);
}

async function indexState(c: pg.ClientBase, schema: string, index: string): Promise<"absent" | "valid" | "invalid"> {
  const { rows } = await c.query<{ valid: boolean }>(
    `SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_namespace n ON n.oid = x.relnamespace WHERE n.nspname = $1 AND x.relname = $2`,
    [schema, index],
  );
  return rows[0] ? (rows[0].valid ? "valid" : "invalid") : "absent";
}
