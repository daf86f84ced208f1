/**
 * New tenants start current (docs/schema-migrations.md): after a stack's `up` succeeds, every
 * tenant schema of that stack (a cell: its residents' schemas; a dedicated stack: its tenant's)
 * that was never brought to the template version is brought there now, by replaying the
 * migrations as the tenant's role (tenantSchema.ts), the same code path as a fleet migration.
 *
 * Exactly once, idempotent on retry, recorded: `tenant_schema_inits` (migration 301) holds one
 * row per (stack, tenant). A 'succeeded' row is final: later runs of the stack never touch that
 * schema again (fleet migrations do). A schema that already has versions (it existed before this
 * table, or an upgrade copied it with its `schema_migrations`) is adopted as it is. A run that
 * dies between its `up` and this step is taken over and runs the step again: the schema's own
 * `schema_migrations` rows make the replay a no-op for what was applied.
 *
 * A tenant a lifecycle workflow is moving (its file has a `migration` block: the pooled ->
 * dedicated upgrade) is left alone: its new schema is filled by the workflow's copy, versions
 * included.
 *
 * The migration files and the template version are those of the commit the run applied (its
 * checkout), so a tenant created together with a new migration starts at that migration. The
 * fleet of that commit is loaded once and kept for the next runs at the same commit.
 */
import type pg from "pg";
import { requireFleet, tenantsOfStack, type Fleet } from "../../infra/model/fleet.ts";
import { pgTenantIdent } from "../../infra/model/naming.ts";
import type { Logger } from "../log.ts";
import type { DatabaseLocator } from "../lifecycle/ports.ts";
import { loadProjectMigrations } from "./files.ts";
import { SchemaMigrator, type SchemaResult } from "./migrator.ts";
import { stackDatabase } from "./service.ts";
import { migrateSchema, schemaStatus } from "./tenantSchema.ts";

export interface NewSchemaOutcome {
  tenant: string;
  schema: string;
  state: "succeeded" | "failed";
  /**
   * migrated: it was empty at version 0 and got `to`; adopted: it already had versions or objects
   * and was left as it is; missing: the schema does not exist (not recorded, looked at again next run).
   */
  outcome?: "migrated" | "adopted" | "missing";
  from?: number;
  to?: number;
  versions?: number[];
  error?: string;
  code?: string;
}

export interface NewSchemaReport {
  templateVersion: number;
  /** Tenants of the stack done by an earlier run (never touched again). */
  alreadyDone: number;
  /** Tenants left to a lifecycle workflow that is moving them. */
  inMotion: string[];
  schemas: NewSchemaOutcome[];
  /** Why the stack's database could not be located (then nothing was done). */
  unlocated?: string;
}

/** Whether the schema holds any table, sequence, view, function or type of its own. */
async function holdsObjects(c: pg.ClientBase, schema: string): Promise<boolean> {
  const { rows } = await c.query<{ any: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = n.oid)
         OR EXISTS (SELECT 1 FROM pg_proc WHERE pronamespace = n.oid)
         OR EXISTS (SELECT 1 FROM pg_type WHERE typnamespace = n.oid AND typrelid = 0 AND typcategory <> 'A') AS any
       FROM pg_namespace n WHERE n.nspname = $1`,
    [schema],
  );
  return rows[0]?.any === true;
}

/** The run's `up` succeeded but a new schema could not be brought to the template version. */
export class NewSchemaError extends Error {
  constructor(readonly report: NewSchemaReport) {
    const failed = report.schemas.filter((s) => s.state === "failed");
    super(
      `the stack is up, but ${failed.length} new tenant schema(s) could not be brought to version ${report.templateVersion}: ` +
        failed.map((f) => `${f.error ?? f.schema}`).join("; ") +
        `. Each stays at the version it had and is tried again by the stack's next successful run; fix the migration (or the database) and run the stack again, or run tenantctl db migrate --tenant <id>`,
    );
  }
}

export interface NewSchemaInitializerOptions {
  /** The control plane's database (tenant_schema_inits). */
  pool: pg.Pool;
  /** Master-user connections of the stacks' databases. */
  databases: DatabaseLocator;
  log?: Logger;
}

/** Fleets kept by commit: a rollout wave's runs all apply one commit. */
const FLEETS_KEPT = 4;

export class NewSchemaInitializer {
  /** The fleet of each recent commit a run applied, least recently used first. */
  private readonly fleets = new Map<string, Fleet>();

  constructor(private readonly opts: NewSchemaInitializerOptions) {}

  /**
   * The fleet of a run's checkout, loaded once per commit: every run of a rollout wave applies the
   * same commit, and loading 1,100 tenants' files costs 1-2 s of the control plane's event loop a
   * run. A commit's tree does not change (the checkout's only writable files are its stacks'
   * config files, whose secrets salt the fleet does not read). Without a commit: loaded every time.
   */
  private fleetOf(workDir: string, commit: string | undefined): Fleet {
    if (commit === undefined) return requireFleet({ projectDir: workDir });
    const kept = this.fleets.get(commit);
    this.fleets.delete(commit);
    const fleet = kept ?? requireFleet({ projectDir: workDir });
    this.fleets.set(commit, fleet);
    for (const old of this.fleets.keys()) {
      if (this.fleets.size <= FLEETS_KEPT) break;
      this.fleets.delete(old);
    }
    return fleet;
  }

  /**
   * Brings the new tenant schemas of `stack` to the template version of the checkout in
   * `workDir`; throws NewSchemaError (with the report) when any failed, after recording every outcome.
   * A stack that holds no tenant schema (platform) gives an empty report.
   */
  async afterUp(input: { runId: string; stack: string; workDir: string; commit?: string }): Promise<NewSchemaReport | undefined> {
    const fleet = this.fleetOf(input.workDir, input.commit);
    const stack = fleet.stacks.get(input.stack);
    if (!stack || stack.ref.kind === "platform") return undefined;
    const tenants = tenantsOfStack(fleet, input.stack);
    if (tenants.length === 0) return undefined;
    const { config, set } = loadProjectMigrations(input.workDir);
    // An upgrade or a cell move brings the schema with its data: the copy fills the new one.
    const inMotion = tenants.filter((t) => (t.deployment === "dedicated" && t.migration !== undefined) || (t.deployment === "pooled" && t.move !== undefined)).map((t) => t.id);
    // An offboarding tenant's schema is on its way out: never brought anywhere.
    const leaving = new Set(tenants.filter((t) => t.lifecycle === "offboarding").map((t) => t.id));
    const done = new Set(
      (
        await this.opts.pool.query<{ tenant: string }>("SELECT tenant FROM tenant_schema_inits WHERE stack = $1 AND state = 'succeeded' AND tenant = ANY($2::text[])", [
          input.stack,
          tenants.map((t) => t.id),
        ])
      ).rows.map((r) => r.tenant),
    );
    const todo = tenants.filter((t) => !done.has(t.id) && !inMotion.includes(t.id) && !leaving.has(t.id)).map((t) => t.id);
    const report: NewSchemaReport = { templateVersion: config.templateVersion, alreadyDone: done.size, inMotion, schemas: [] };
    if (todo.length === 0) return report;

    let database: pg.ClientConfig;
    try {
      database = await stackDatabase(this.opts.databases, input.stack, fleet.platform.environments);
    } catch (err) {
      // The control plane does not know this stack's database (a databases file without it, no
      // connection document): nothing is done nor recorded; the next run looks again.
      report.unlocated = (err as Error).message;
      this.opts.log?.warn({ stack: input.stack, tenants: todo, error: report.unlocated }, `new tenant schemas of ${input.stack} not brought to version ${config.templateVersion}: its database is unknown to the control plane; tenantctl db migrate does it once it is known`);
      return report;
    }
    const migrator = new SchemaMigrator(set, config);
    let results: SchemaResult<Omit<NewSchemaOutcome, "tenant" | "state">>[];
    try {
      const runId = `run:${input.runId}`;
      results = await Promise.all(
        todo.map((tenant) =>
          migrator.one({ tenant, stack: input.stack, database }, async (c, t): Promise<Omit<NewSchemaOutcome, "tenant" | "state">> => {
            const now = await schemaStatus(c, t, config);
            if (!now.exists) return { schema: t.schema, outcome: "missing" };
            // Only an empty schema is new: one holding objects no migration recorded (the
            // application created them itself) is adopted as it is, never replayed onto.
            if (now.version > 0 || (await holdsObjects(c, t.schema))) return { schema: t.schema, outcome: "adopted", from: now.version, to: now.version, versions: [] };
            const out = await migrateSchema(c, t, set, { runId, lockTimeoutMs: config.lockTimeoutMs, statementTimeoutMs: config.statementTimeoutMs, to: config.templateVersion });
            return { schema: t.schema, outcome: out.from === 0 ? "migrated" : "adopted", from: out.from, to: out.to, versions: out.versions };
          }),
        ),
      );
    } finally {
      await migrator.close();
    }
    for (const r of results) {
      const schema = pgTenantIdent(r.tenant);
      if (r.ok && r.value.outcome === "missing") {
        // Not created (yet, or any more): nothing to bring, nothing recorded; the next run looks again.
        report.schemas.push({ tenant: r.tenant, state: "succeeded", ...r.value });
        continue;
      }
      const o: NewSchemaOutcome = r.ok
        ? { tenant: r.tenant, state: "succeeded", ...r.value }
        : { tenant: r.tenant, schema, state: "failed", error: r.error, ...(r.code ? { code: r.code } : {}) };
      report.schemas.push(o);
      await this.opts.pool.query(
        `INSERT INTO tenant_schema_inits (stack, tenant, state, outcome, run_id, from_version, to_version, error, code)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (stack, tenant) DO UPDATE SET state = EXCLUDED.state, outcome = EXCLUDED.outcome, run_id = EXCLUDED.run_id,
           from_version = EXCLUDED.from_version, to_version = EXCLUDED.to_version, error = EXCLUDED.error, code = EXCLUDED.code,
           attempts = tenant_schema_inits.attempts + 1, updated_at = now()
         WHERE tenant_schema_inits.state <> 'succeeded'`,
        [input.stack, r.tenant, o.state, o.outcome ?? null, input.runId, o.from ?? null, o.to ?? null, o.error ?? null, o.code ?? null],
      );
      this.opts.log?.info({ stack: input.stack, tenant: r.tenant, state: o.state, from: o.from, to: o.to }, o.state === "succeeded" ? `new tenant schema ${schema} ${o.outcome} at version ${o.to}` : `new tenant schema ${schema} not brought to version ${config.templateVersion}`);
    }
    if (report.schemas.some((s) => s.state === "failed")) throw new NewSchemaError(report);
    return report;
  }
}
