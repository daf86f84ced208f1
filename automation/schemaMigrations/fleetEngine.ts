/**
 * Fleet schema migrations: the application's migrations applied to every tenant schema through
 * the rollout rings (docs/schema-migrations.md). The waves are the rollout's stack waves
 * (infra/model/rings.ts planWaves), each expanded to the tenant schemas of its stacks; the failure
 * budget and the halt reason are the rollouts' (rollouts/waveBudget.ts).
 *
 * State lives in `db_migrations` / `db_migration_schemas` (migration 300), so any control-plane
 * process can advance a migration and a crash resumes where the database says:
 * - a schema is claimed (running, with a lease) in a short transaction and migrated outside it, in
 *   its own transaction on the tenant database; its outcome is recorded afterwards. A claim whose
 *   lease ran out (the process died) returns to pending; running it again is safe, the schema's
 *   own `schema_migrations` rows say what it already has;
 * - at most `parallelism` schemas of a wave are claimed at once (the ring's), and at most the
 *   port's `perStackLimit` (K, perDatabaseConcurrency) of one stack, whatever the number of
 *   control-plane processes claiming: a stack's database is one PostgreSQL instance (a cell's is
 *   shared by its tenants). That keeps processes from claiming what they cannot run now; the hard
 *   bound is the migrator's: each migrating session holds one of K slots in the tenant database
 *   (instanceSlots.ts), so a takeover after a lease ran out waits for the sessions of a dead
 *   process that are still migrating instead of running beside them;
 * - failures are recorded per schema with the error and SQLSTATE; the others go on while the
 *   wave's failures are within its budget; beyond it the migration halts and nothing more starts
 *   until a person resumes (the failed schemas of the wave run again) or aborts it;
 * - a claim is never left running by an error of the round (a port that throws, a fleet that does
 *   not load) or a schema the port reported nothing for: each is recorded failed with the error, so
 *   the budget sees it now, not when the leases run out; outcomes are paired with claims by schema;
 * - a tenant the port reports busy (mid-upgrade or mid-move) is not claimed: its schema waits;
 * - a claimed unit the port reports stale (the tenant's schema is no longer in that stack's
 *   database: the upgrade that made it wait has moved it since the migration was planned) is
 *   skipped with the port's reason: never run against the old location, never a failure.
 */
import type { Pool, PoolClient } from "pg";
import type { PlannedWave } from "../../infra/model/rings.ts";
import { withTransaction } from "../db/tx.ts";
import { DB_MIGRATIONS_LOCK, notInMotionSql } from "./guard.ts";
import { haltReason } from "../rollouts/waveBudget.ts";
import type { SchemaResult } from "./migrator.ts";
import type { SchemaOutcome } from "./tenantSchema.ts";

export const DB_MIGRATION_STATES = ["running", "halted", "succeeded", "aborted"] as const;
export type DbMigrationState = (typeof DB_MIGRATION_STATES)[number];
export const SCHEMA_STATES = ["pending", "running", "succeeded", "failed", "skipped"] as const;
export type SchemaState = (typeof SCHEMA_STATES)[number];
export type DbMigrationAction = "migrate" | "rollback";
const TICK_LOCK = DB_MIGRATIONS_LOCK;

export interface SchemaUnit {
  stack: string;
  tenant: string;
  /** This schema's own target (a wave's rollback: the version it had before); default the migration's. */
  to?: number;
}

/** A planned wave: the ring's settings, its stacks, and the tenant schemas of those stacks. */
export interface SchemaWave extends PlannedWave {
  schemas: SchemaUnit[];
}

/** What the engine needs to touch tenant databases. */
export interface SchemaRunPort {
  /** Migrates (or rolls back) the schemas to `to`; a failure is a result, never a throw. */
  run(units: readonly SchemaUnit[], action: DbMigrationAction, to: number, runId: string): Promise<SchemaResult<SchemaOutcome>[]>;
  /** Tenants whose schema must wait (a lifecycle workflow is moving them). */
  busy?(): Promise<ReadonlySet<string>>;
  /**
   * Of these claimed units, those whose tenant's schema is no longer in the unit's stack (the
   * tenant moved since the migration was planned), keyed by unitKey, with the reason.
   */
  stale?(units: readonly SchemaUnit[]): Promise<ReadonlyMap<string, string>>;
  /** The most schemas of one stack (its database's instance) being migrated at once, across every process. @default unbounded */
  perStackLimit?(): number;
}

/** `stack/tenant`: how units are keyed in the port's answers. */
export const unitKey = (u: Pick<SchemaUnit, "stack" | "tenant">): string => `${u.stack}/${u.tenant}`;

export interface DbMigrationRecord {
  id: string;
  action: DbMigrationAction;
  targetVersion: number;
  state: DbMigrationState;
  waves: SchemaWave[];
  wave: number;
  haltReason: string | null;
  requestedBy: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

export interface SchemaRecord {
  wave: number;
  stack: string;
  tenant: string;
  state: SchemaState;
  fromVersion: number | null;
  toVersion: number | null;
  error: string | null;
  code: string | null;
  attempts: number;
  startedAt: string | null;
  finishedAt: string | null;
}

export class DbMigrationStateError extends Error {}

interface Row {
  id: string; action: DbMigrationAction; target_version: number; state: DbMigrationState; waves: SchemaWave[]; wave: number;
  wave_done_at: Date | null; halt_reason: string | null; requested_by: string | null; created_at: Date; updated_at: Date; finished_at: Date | null;
}
interface SchemaRow {
  wave: number; stack: string; tenant: string; state: SchemaState; from_version: number | null; to_version: number | null; error: string | null;
  code: string | null; attempts: number; started_at: Date | null; finished_at: Date | null;
}
const iso = (d: Date | null) => (d ? d.toISOString() : null);
const toRecord = (r: Row): DbMigrationRecord => ({
  id: r.id, action: r.action, targetVersion: r.target_version, state: r.state, waves: r.waves, wave: r.wave, haltReason: r.halt_reason,
  requestedBy: r.requested_by, createdAt: r.created_at.toISOString(), updatedAt: r.updated_at.toISOString(), finishedAt: iso(r.finished_at),
});
const toSchema = (r: SchemaRow): SchemaRecord => ({
  wave: r.wave, stack: r.stack, tenant: r.tenant, state: r.state, fromVersion: r.from_version, toVersion: r.to_version, error: r.error, code: r.code,
  attempts: r.attempts, startedAt: iso(r.started_at), finishedAt: iso(r.finished_at),
});

export interface DbMigrationEngineOptions {
  /** How long a claimed schema may run before another process may claim it again. @default 15 minutes */
  leaseMs?: number;
  onHalt?: (m: DbMigrationRecord) => void;
  /**
   * Lifecycle workflow kinds whose open workflows make a tenant's schemas wait (those that move
   * or restore its schema: WorkflowDef.schema). @default - none (only the port's busy set)
   */
  inMotionKinds?: readonly string[];
  /** Every schema outcome (metrics). */
  onSchema?: (action: DbMigrationAction, result: SchemaResult<SchemaOutcome>) => void;
  /** Every unit skipped as stale (metrics). */
  onSkip?: (action: DbMigrationAction, unit: SchemaUnit, reason: string) => void;
}

export const DEFAULT_LEASE_MS = 15 * 60_000;

export class DbMigrationEngine {
  constructor(
    private readonly pool: Pool,
    private readonly port: SchemaRunPort,
    private readonly opts: DbMigrationEngineOptions = {},
  ) {}

  async start(input: { action: DbMigrationAction; to: number; waves: readonly SchemaWave[]; requestedBy?: string }): Promise<DbMigrationRecord> {
    const waves = input.waves.filter((w) => w.schemas.length > 0).map((w, index) => ({ ...w, index }));
    if (waves.length === 0) throw new DbMigrationStateError("no tenant schema to migrate (no tenant matches)");
    const id = await withTransaction(this.pool, async (c) => {
      await c.query("SELECT pg_advisory_xact_lock($1)", [TICK_LOCK]);
      const active = await c.query<{ id: string; state: string }>("SELECT id, state FROM db_migrations WHERE state IN ('running', 'halted')");
      if (active.rows[0]) {
        throw new DbMigrationStateError(`schema migration ${active.rows[0].id} is ${active.rows[0].state}; resume or abort it before starting another`);
      }
      const { rows } = await c.query<{ id: string }>(
        "INSERT INTO db_migrations (action, target_version, state, waves, requested_by) VALUES ($1, $2, 'running', $3::jsonb, $4) RETURNING id",
        [input.action, input.to, JSON.stringify(waves), input.requestedBy ?? null],
      );
      const mid = rows[0]!.id;
      await c.query(
        `INSERT INTO db_migration_schemas (migration_id, wave, stack, tenant, state, target_version)
         SELECT $1, w.ordinality - 1, s.value ->> 'stack', s.value ->> 'tenant', 'pending', (s.value ->> 'to')::integer
           FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS w(value, ordinality),
                jsonb_array_elements(w.value -> 'schemas') AS s(value)`,
        [mid, JSON.stringify(waves)],
      );
      return mid;
    });
    return (await this.get(id))!;
  }

  async get(id: string): Promise<DbMigrationRecord | undefined> {
    const { rows } = await this.pool.query<Row>("SELECT * FROM db_migrations WHERE id = $1", [id]);
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async list(limit = 50): Promise<DbMigrationRecord[]> {
    const { rows } = await this.pool.query<Row>("SELECT * FROM db_migrations ORDER BY created_at DESC LIMIT $1", [limit]);
    return rows.map(toRecord);
  }

  async schemas(id: string): Promise<SchemaRecord[]> {
    const { rows } = await this.pool.query<SchemaRow>("SELECT * FROM db_migration_schemas WHERE migration_id = $1 ORDER BY wave, stack, tenant", [id]);
    return rows.map(toSchema);
  }

  /** The last recorded outcome of every schema that has one (for status), or of one tenant's schemas. */
  async lastOutcomes(tenant?: string): Promise<Map<string, SchemaRecord & { migrationId: string }>> {
    const { rows } = await this.pool.query<SchemaRow & { migration_id: string }>(
      `SELECT DISTINCT ON (stack, tenant) * FROM db_migration_schemas WHERE finished_at IS NOT NULL AND ($1::text IS NULL OR tenant = $1) ORDER BY stack, tenant, finished_at DESC`,
      [tenant ?? null],
    );
    return new Map(rows.map((r) => [`${r.stack}/${r.tenant}`, { ...toSchema(r), migrationId: r.migration_id }]));
  }

  /** A halted migration runs again; the failed schemas of its current wave start again (the fix is in the files by now). */
  async resume(id: string): Promise<DbMigrationRecord> {
    return this.transition(id, ["halted"], "running", async (c) => {
      await c.query("UPDATE db_migration_schemas SET state = 'pending', error = NULL, code = NULL WHERE migration_id = $1 AND wave = (SELECT wave FROM db_migrations WHERE id = $1) AND state = 'failed'", [id]);
    });
  }

  /**
   * Rolls back one wave of a fleet migration (default: the wave it is at): every schema of that
   * wave the migration moved goes back to the version it had before, with its down files, as a
   * rollback migration of its own (halting on its first failure). The schemas that failed were
   * left at their version by their own transaction and are not touched. A halted migration is
   * aborted first; a running one must be aborted (or halt) before.
   */
  async rollbackWave(id: string, wave?: number, requestedBy?: string): Promise<DbMigrationRecord> {
    const m = await this.get(id);
    if (!m) throw new DbMigrationStateError(`schema migration ${id} does not exist`);
    if (m.action !== "migrate") throw new DbMigrationStateError(`schema migration ${id} is a rollback; only a migration's wave is rolled back`);
    if (m.state === "running") throw new DbMigrationStateError(`schema migration ${id} is running; abort it first (tenantctl db abort ${id}), then roll its wave back`);
    const w = wave ?? Math.min(m.wave, m.waves.length - 1);
    const planned = m.waves[w];
    if (!planned) throw new DbMigrationStateError(`schema migration ${id} has waves 0 to ${m.waves.length - 1}; wave ${w} is not one of them`);
    const moved = (await this.schemas(id)).filter((s) => s.wave === w && s.state === "succeeded" && s.fromVersion !== null && s.toVersion !== null && s.fromVersion < s.toVersion);
    if (moved.length === 0) throw new DbMigrationStateError(`wave ${w} of schema migration ${id} moved no schema; nothing to roll back`);
    if (m.state === "halted") await this.abort(id);
    return this.start({
      action: "rollback",
      to: Math.min(...moved.map((s) => s.fromVersion!)),
      waves: [{
        index: 0, ring: `rollback of wave ${w} (${planned.ring}) of ${id}`, parallelism: planned.parallelism, bakeMs: 0, failureBudgetPercent: 0,
        stacks: [...new Set(moved.map((s) => s.stack))], schemas: moved.map((s) => ({ stack: s.stack, tenant: s.tenant, to: s.fromVersion! })),
      }],
      ...(requestedBy ? { requestedBy } : {}),
    });
  }

  /** Ends it: schemas not yet started never start (one being migrated finishes its transaction). */
  abort(id: string): Promise<DbMigrationRecord> {
    return this.transition(id, ["running", "halted"], "aborted");
  }

  private async transition(id: string, from: readonly DbMigrationState[], to: DbMigrationState, extra?: (c: PoolClient) => Promise<void>): Promise<DbMigrationRecord> {
    await withTransaction(this.pool, async (c) => {
      await c.query("SELECT pg_advisory_xact_lock($1)", [TICK_LOCK]);
      const { rows } = await c.query<{ state: DbMigrationState }>("SELECT state FROM db_migrations WHERE id = $1 FOR UPDATE", [id]);
      const before = rows[0]?.state;
      if (!before) throw new DbMigrationStateError(`schema migration ${id} does not exist`);
      if (!from.includes(before)) throw new DbMigrationStateError(`schema migration ${id} is ${before}; only one that is ${from.join(" or ")} can become ${to}`);
      if (extra) await extra(c);
      await c.query(
        `UPDATE db_migrations SET state = $2, updated_at = now(), halt_reason = CASE WHEN $2 = 'running' THEN NULL ELSE halt_reason END,
                finished_at = CASE WHEN $2 = 'aborted' THEN now() ELSE finished_at END WHERE id = $1`,
        [id, to],
      );
    });
    return (await this.get(id))!;
  }

  /** Advances the active migration until nothing more can start now (every schema claimed ran to its outcome). */
  async tick(): Promise<void> {
    for (let guard = 0; guard < 100_000; guard++) {
      if (!(await this.step())) return;
    }
  }

  /** One claim-run-record round; false when nothing moved. */
  private async step(): Promise<boolean> {
    const busy = this.port.busy ? await this.port.busy() : new Set<string>();
    const perStack = this.port.perStackLimit?.() ?? 2_147_483_647;
    let halted: string | undefined;
    const claim = await withTransaction(this.pool, async (c) => {
      await c.query("SELECT pg_advisory_xact_lock($1)", [TICK_LOCK]);
      const m = (await c.query<Row>("SELECT * FROM db_migrations WHERE state = 'running' FOR UPDATE")).rows[0];
      if (!m) return undefined;
      await c.query("UPDATE db_migration_schemas SET state = 'pending', lease_until = NULL WHERE migration_id = $1 AND state = 'running' AND lease_until < now()", [m.id]);
      const wave = m.waves[m.wave];
      if (!wave) {
        await c.query("UPDATE db_migrations SET state = 'succeeded', finished_at = now(), updated_at = now() WHERE id = $1", [m.id]);
        return { moved: true, units: [] as { unit: SchemaUnit; attempts: number }[], m };
      }
      const counts = new Map(
        (await c.query<{ state: SchemaState; n: number }>("SELECT state, count(*)::int AS n FROM db_migration_schemas WHERE migration_id = $1 AND wave = $2 GROUP BY state", [m.id, m.wave])).rows.map(
          (r) => [r.state, r.n],
        ),
      );
      const failed = counts.get("failed") ?? 0;
      if (failed > 0) {
        const first = (await c.query<{ stack: string; tenant: string; error: string | null }>(
          "SELECT stack, tenant, error FROM db_migration_schemas WHERE migration_id = $1 AND wave = $2 AND state = 'failed' ORDER BY finished_at, stack, tenant LIMIT 1",
          [m.id, m.wave],
        )).rows[0]!;
        const reason = haltReason({ index: m.wave, waveCount: m.waves.length, wave, total: wave.schemas.length, failed, first: { unit: `${first.stack}/${first.tenant}`, error: first.error } }, "schemas");
        if (reason) {
          await c.query("UPDATE db_migrations SET state = 'halted', halt_reason = $2, updated_at = now() WHERE id = $1", [m.id, reason]);
          halted = m.id;
          return { moved: false, units: [], m };
        }
      }
      const running = counts.get("running") ?? 0;
      const pending = counts.get("pending") ?? 0;
      const free = wave.parallelism - running;
      if (pending > 0 && free > 0) {
        // Per stack, only as many as its limit leaves beside those running (claimed by any process).
        // Every claim holds TICK_LOCK, so the counts cannot change under this statement.
        const { rows } = await c.query<{ stack: string; tenant: string; attempts: number; target_version: number | null }>(
          `UPDATE db_migration_schemas s SET state = 'running', attempts = attempts + 1, started_at = now(), finished_at = NULL, error = NULL, code = NULL,
                  lease_until = now() + make_interval(secs => $4::double precision / 1000)
             FROM (SELECT q.stack, q.tenant
                     FROM (SELECT stack, tenant, row_number() OVER (PARTITION BY stack ORDER BY tenant) AS rn
                             FROM db_migration_schemas WHERE migration_id = $1 AND wave = $2 AND state = 'pending' AND tenant <> ALL($5::text[])
                              AND ${notInMotionSql("tenant", "$6")}) q
                    WHERE q.rn + (SELECT count(*) FROM db_migration_schemas r WHERE r.migration_id = $1 AND r.stack = q.stack AND r.state = 'running') <= $7
                    ORDER BY q.stack, q.tenant LIMIT $3) p
            WHERE s.migration_id = $1 AND s.stack = p.stack AND s.tenant = p.tenant
           RETURNING s.stack, s.tenant, s.attempts, s.target_version`,
          [m.id, m.wave, free, this.opts.leaseMs ?? DEFAULT_LEASE_MS, [...busy], [...(this.opts.inMotionKinds ?? [])], perStack],
        );
        return { moved: rows.length > 0, units: rows.map((r) => ({ unit: { stack: r.stack, tenant: r.tenant, ...(r.target_version !== null ? { to: r.target_version } : {}) }, attempts: r.attempts })), m };
      }
      if (pending > 0 || running > 0) return { moved: false, units: [], m };
      if (!m.wave_done_at) await c.query("UPDATE db_migrations SET wave_done_at = now(), updated_at = now() WHERE id = $1", [m.id]);
      const baked = (await c.query<{ baked: boolean }>(
        "SELECT COALESCE(wave_done_at, now()) + make_interval(secs => $2::double precision / 1000) <= now() AS baked FROM db_migrations WHERE id = $1",
        [m.id, wave.bakeMs],
      )).rows[0]!.baked;
      if (!baked) return { moved: false, units: [], m };
      await c.query("UPDATE db_migrations SET wave = wave + 1, wave_done_at = NULL, updated_at = now() WHERE id = $1", [m.id]);
      return { moved: true, units: [], m };
    });
    if (halted && this.opts.onHalt) {
      const r = await this.get(halted);
      if (r) this.opts.onHalt(r);
    }
    if (!claim) return false;
    if (claim.units.length > 0) {
      let stale: ReadonlyMap<string, string>;
      try {
        stale = this.port.stale ? await this.port.stale(claim.units.map((u) => u.unit)) : new Map<string, string>();
      } catch (err) {
        // Not knowing where the schemas are, none is run; each claim is a failure now (a throw would
        // leave them running until their leases ran out, and the wave's budget would never see them).
        const why = `whether the schema is still in this stack could not be checked, so it was not touched: ${(err as Error).message}`;
        await this.record(claim.m, claim.units, claim.units.map((u) => ({ stack: u.unit.stack, tenant: u.unit.tenant, ok: false, error: why })));
        return true;
      }
      for (const u of claim.units) {
        const reason = stale.get(unitKey(u.unit));
        if (reason === undefined) continue;
        this.opts.onSkip?.(claim.m.action, u.unit, reason);
        await this.pool.query(
          `UPDATE db_migration_schemas SET state = 'skipped', error = $5, code = NULL, finished_at = now(), lease_until = NULL
            WHERE migration_id = $1 AND stack = $2 AND tenant = $3 AND attempts = $4 AND state = 'running'`,
          [claim.m.id, u.unit.stack, u.unit.tenant, u.attempts, reason],
        );
      }
      // One port call per target version (a wave's rollback takes each schema to its own).
      const byTarget = new Map<number, { unit: SchemaUnit; attempts: number }[]>();
      for (const u of claim.units.filter((x) => !stale.has(unitKey(x.unit)))) {
        const to = u.unit.to ?? claim.m.target_version;
        byTarget.set(to, [...(byTarget.get(to) ?? []), u]);
      }
      const claimed: { unit: SchemaUnit; attempts: number }[] = [];
      const results: SchemaResult<SchemaOutcome>[] = [];
      for (const [to, group] of byTarget) {
        claimed.push(...group);
        let out: SchemaResult<SchemaOutcome>[];
        try {
          out = await this.port.run(group.map((u) => u.unit), claim.m.action, to, claim.m.id);
        } catch (err) {
          // The port's contract is a result per schema; a throw (the migration files or the fleet
          // cannot be read) must not leave the group running until its leases run out.
          const why = `the ${claim.m.action === "migrate" ? "migration" : "rollback"} could not run: ${(err as Error).message}`;
          out = group.map((u) => ({ stack: u.unit.stack, tenant: u.unit.tenant, ok: false, error: `${why}; once fixed, resume this migration (tenantctl db resume ${claim.m.id})` }));
        }
        // Paired with the claims by schema, not by position; a claim the port gave no outcome for fails.
        const byKey = new Map(out.map((r) => [unitKey(r), r]));
        results.push(
          ...group.map((u): SchemaResult<SchemaOutcome> =>
            byKey.get(unitKey(u.unit)) ?? { stack: u.unit.stack, tenant: u.unit.tenant, ok: false, error: `no outcome was reported for this schema; its own schema_migrations rows say what it has; resume this migration (tenantctl db resume ${claim.m.id})` },
          ),
        );
      }
      await this.record(claim.m, claimed, results);
    }
    return claim.moved;
  }

  /** Records each claim's outcome (results[i] is claims[i]'s). */
  private async record(m: Row, claims: readonly { unit: SchemaUnit; attempts: number }[], results: readonly SchemaResult<SchemaOutcome>[]): Promise<void> {
    for (const [i, r] of results.entries()) {
      this.opts.onSchema?.(m.action, r);
      // Only the claim this process holds is recorded (a lease taken over by another process wins).
      await this.pool.query(
        `UPDATE db_migration_schemas SET state = $5, from_version = $6, to_version = $7, error = $8, code = $9, finished_at = now(), lease_until = NULL
          WHERE migration_id = $1 AND stack = $2 AND tenant = $3 AND attempts = $4 AND state = 'running'`,
        [m.id, r.stack, r.tenant, claims[i]!.attempts, r.ok ? "succeeded" : "failed", r.ok ? r.value.from : null, r.ok ? r.value.to : null, r.ok ? null : r.error, r.ok ? null : (r.code ?? null)],
      );
    }
  }
}
