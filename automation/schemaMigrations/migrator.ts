/**
 * Migrates (or rolls back, or reads) many tenant schemas at once, never more than K at a time on
 * one PostgreSQL instance (a cell's database is shared by its tenants: docs/schema-migrations.md).
 * Each schema is its own transaction (tenantSchema.ts); a failure is recorded for that tenant with
 * its error and the others go on. Connections: one pool per database (createPool, at most K
 * clients), on the master user's credentials the caller resolves (DatabaseLocator).
 */
import type pg from "pg";
import { pgTenantIdent } from "../../infra/model/naming.ts";
import { createPool } from "../db/database.ts";
import type { MigrationSet } from "./files.ts";
import { acquireSlot } from "./instanceSlots.ts";
import { KeyedLimiter } from "./limiter.ts";
import { migrateSchema, rollbackSchema, schemaStatus, SchemaMigrationError, type ApplyOptions, type SchemaOutcome, type SchemaStatus, type TenantSchema } from "./tenantSchema.ts";

export interface SchemaTarget {
  tenant: string;
  /** The stack whose database holds the schema (a cell or the tenant's dedicated stack). */
  stack: string;
  /** The master user's connection to that database. */
  database: pg.ClientConfig;
}

export type SchemaResult<T> = { tenant: string; stack: string; ok: true; value: T } | { tenant: string; stack: string; ok: false; error: string; code?: string };

export interface MigratorOptions {
  /** K: the most schemas migrated at once on one database, by this migrator and by every other process (instanceSlots.ts). */
  perDatabaseConcurrency: number;
  lockTimeoutMs: number;
  statementTimeoutMs: number;
  /**
   * Each session that migrates holds one of the database's K migration slots, from its first
   * migration until it closes, so the bound holds across processes (instanceSlots.ts). Off, only
   * this migrator's own in-process bound applies.
   * @default true
   */
  crossProcessSlots?: boolean;
  /** How long a schema waits for a free slot before it fails (another process holds all K). @default twice statementTimeoutMs */
  slotWaitMs?: number;
}

export function tenantSchema(tenant: string): TenantSchema {
  const ident = pgTenantIdent(tenant);
  return { schema: ident, role: ident };
}

/** The PostgreSQL instance a connection goes to (host:port): the unit of the concurrency bound. */
export function instanceKey(c: pg.ClientConfig): string {
  if (c.connectionString) {
    const u = new URL(c.connectionString);
    return `${u.hostname}:${u.port || "5432"}`;
  }
  return `${c.host ?? "localhost"}:${c.port ?? 5432}`;
}

function databaseKey(c: pg.ClientConfig): string {
  return c.connectionString ?? `${c.user ?? ""}@${c.host ?? "localhost"}:${c.port ?? 5432}/${c.database ?? ""}`;
}

export class SchemaMigrator {
  readonly limiter: KeyedLimiter;
  private readonly pools = new Map<string, pg.Pool>();
  /** Sessions that hold a slot of their database (until they close: pg reuses a pool's Client objects). */
  private readonly slotted = new WeakSet<pg.PoolClient>();
  private closed = false;

  constructor(
    readonly set: MigrationSet,
    private readonly opts: MigratorOptions,
  ) {
    this.limiter = new KeyedLimiter(opts.perDatabaseConcurrency);
  }

  private pool(c: pg.ClientConfig): pg.Pool {
    if (this.closed) throw new Error("the schema migrator was closed (the control plane is stopping); the schema was not touched");
    const key = databaseKey(c);
    let p = this.pools.get(key);
    if (!p) {
      p = createPool({ ...c, connectionTimeoutMillis: c.connectionTimeoutMillis ?? 10_000 }, this.opts.perDatabaseConcurrency);
      this.pools.set(key, p);
    }
    return p;
  }

  /**
   * Runs `op` for one schema under the instance's bound (this process's, and unless `slot` is
   * false, one of the database's K slots shared with every other process); any error becomes a
   * failed result. Reads pass `slot: false`: the bound is for migrations.
   *
   * A session keeps its slot between schemas and lets it go by closing (close(), the pool's idle
   * timeout, or a broken session discarded): taking and giving back a slot per schema would be two
   * more round trips each, and a session of this pool only ever runs this migrator's schemas, at
   * most K at once (the limiter), so it holds no slot it would not use.
   */
  async one<T>(target: SchemaTarget, op: (c: pg.PoolClient, t: TenantSchema) => Promise<T>, opts: { slot?: boolean } = {}): Promise<SchemaResult<T>> {
    const useSlot = (opts.slot ?? true) && this.opts.crossProcessSlots !== false;
    const base = { tenant: target.tenant, stack: target.stack };
    try {
      const value = await this.limiter.run(instanceKey(target.database), async () => {
        const client = await this.pool(target.database).connect();
        // A checked-out client has no listener of the pool's: a server terminating the session
        // between two queries must fail the schema's next query, not crash the process.
        const onError = (): void => undefined;
        client.on("error", onError);
        let broken: Error | undefined;
        try {
          if (useSlot && !this.slotted.has(client)) {
            await acquireSlot(client, this.opts.perDatabaseConcurrency, this.opts.slotWaitMs ?? 2 * this.opts.statementTimeoutMs);
            this.slotted.add(client);
          }
          return await op(client, tenantSchema(target.tenant));
        } catch (err) {
          // A session cut off mid-transaction must not go back to the pool.
          if (!(err instanceof SchemaMigrationError) || err.code?.startsWith("57") || err.code?.startsWith("08")) broken = err as Error;
          throw err;
        } finally {
          client.off("error", onError);
          client.release(broken);
        }
      });
      return { ...base, ok: true, value };
    } catch (err) {
      const code = err instanceof SchemaMigrationError ? err.code : (err as { code?: string }).code;
      return { ...base, ok: false, error: (err as Error).message, ...(code ? { code } : {}) };
    }
  }

  private apply(runId: string): ApplyOptions {
    return { runId, lockTimeoutMs: this.opts.lockTimeoutMs, statementTimeoutMs: this.opts.statementTimeoutMs };
  }

  migrate(targets: readonly SchemaTarget[], runId: string, to?: number): Promise<SchemaResult<SchemaOutcome>[]> {
    return Promise.all(targets.map((t) => this.one(t, (c, s) => migrateSchema(c, s, this.set, { ...this.apply(runId), ...(to !== undefined ? { to } : {}) }))));
  }

  rollback(targets: readonly SchemaTarget[], runId: string, to: number): Promise<SchemaResult<SchemaOutcome>[]> {
    return Promise.all(targets.map((t) => this.one(t, (c, s) => rollbackSchema(c, s, this.set, { ...this.apply(runId), to }))));
  }

  status(targets: readonly SchemaTarget[]): Promise<SchemaResult<SchemaStatus>[]> {
    return Promise.all(targets.map((t) => this.one(t, (c, s) => schemaStatus(c, s, this.opts), { slot: false })));
  }

  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
  }
}
