/**
 * Fleet schema migrations as the API and tenantctl see them (docs/schema-migrations.md): plan the
 * waves from a checkout of the fleet (the rollout rings of Pulumi.yaml over its cell and dedicated
 * stacks, each stack's tenant schemas), start a migration or a one-tenant rollback, answer a dry
 * run with what each schema would get, and report versions per schema. The engine does the work.
 */
import { stacksOfTenant, tenantsOfStack, type Fleet } from "../../infra/model/fleet.ts";
import { FleetError } from "../../infra/model/problems.ts";
import { parseStackName, pgTenantIdent } from "../../infra/model/naming.ts";
import { loadSchemaMigrationsConfig } from "../../infra/model/schemaMigrations.ts";
import { loadRings, planWaves, rolloutTargets } from "../../infra/model/rings.ts";
import type { FleetCache } from "../git/fleetCache.ts";
import type { DatabaseLocator } from "../lifecycle/ports.ts";
import { unitKey, type DbMigrationAction, type DbMigrationEngine, type DbMigrationRecord, type SchemaRecord, type SchemaRunPort, type SchemaState, type SchemaUnit, type SchemaWave } from "./fleetEngine.ts";
import { assertVersion, loadProjectMigrations, type ProjectMigrations } from "./files.ts";
import { SchemaMigrator, type SchemaResult, type SchemaTarget } from "./migrator.ts";
import type { SchemaOutcome } from "./tenantSchema.ts";

export class DbMigrationRequestError extends Error {}

export interface DbMigrationRequest {
  action: DbMigrationAction;
  /** Target version; default (migrate) the template version of Pulumi.yaml. Required for a rollback. */
  to?: number;
  /** Only this tenant's schemas (every env). Required for a rollback. */
  tenant?: string;
  requestedBy?: string;
}

export interface DryRunSchema extends SchemaUnit {
  wave: number;
  current: number | null;
  /** Versions the migration would apply (or revert, newest first); empty when at the target. */
  versions: number[];
  error?: string;
}

export interface DbMigrationView {
  migration: DbMigrationRecord;
  waves: { index: number; ring: string; parallelism: number; failureBudgetPercent: number; counts: Record<SchemaState, number>; schemas: SchemaRecord[] }[];
}

export interface SchemaStatusRow extends SchemaUnit {
  version: number | null;
  /** Behind the template version. */
  outdated: boolean;
  /** The last fleet migration's failure for this schema, when its last attempt failed. */
  lastError: string | null;
  /** Why the version could not be read (database unreachable, schema missing). */
  error?: string;
}

/** Which database holds the schemas of a stack: the cell's or the tenant's dedicated one. */
export async function stackDatabase(locator: DatabaseLocator, stack: string, environments: readonly string[]) {
  const ref = parseStackName(stack, environments);
  if (ref.kind === "shared") return locator.cell(ref.env, ref.cell);
  if (ref.kind === "dedicated") return locator.dedicated(ref.tenant, ref.env);
  throw new DbMigrationRequestError(`stack ${stack} holds no tenant schema`);
}

/**
 * The fleet of the working copy as the control plane's fleet cache has it (automation/git/fleetCache.ts):
 * loaded again only when HEAD or a fleet file changed. Loading 1,100 tenants' files costs 1-2 s,
 * and the migration ticker asks every few seconds (busy), the console's tenant page on every view.
 */
export async function currentFleet(fleet: FleetCache): Promise<Fleet> {
  const { fleet: f, problems } = await fleet.get();
  if (!f) throw new FleetError(problems);
  return f;
}

/**
 * The engine's port on real databases: the master-user connection of each stack's database
 * (DatabaseLocator) and a SchemaMigrator per round, on the migration files of the checkout as
 * they are now (their checksums are verified against what each schema applied).
 *
 * A schema whose database cannot be located (the stack never ran, its connection document or
 * its line in TENANCY_LIFECYCLE_DATABASES is missing) is a failed result of its own, naming the
 * stack, the database and what to do: never a throw, which would leave every schema of the round
 * running until its lease ran out, and the migration never halting.
 */
export function locatorRunPort(fleet: FleetCache, locator: DatabaseLocator, busy?: () => Promise<ReadonlySet<string>>): SchemaRunPort {
  const projectDir = fleet.projectDir;
  return {
    async run(units, action, to, runId) {
      const { config, set } = loadProjectMigrations(projectDir);
      const environments = (await currentFleet(fleet)).platform.environments;
      const located = await Promise.all(
        units.map(async (u): Promise<SchemaTarget | SchemaResult<SchemaOutcome>> => {
          try {
            return { ...u, database: await stackDatabase(locator, u.stack, environments) };
          } catch (err) {
            return { stack: u.stack, tenant: u.tenant, ok: false, error: databaseNotFound(u, environments, (err as Error).message, runId) };
          }
        }),
      );
      const targets = located.filter((x): x is SchemaTarget => "database" in x);
      const migrator = new SchemaMigrator(set, config);
      let ran: SchemaResult<SchemaOutcome>[];
      try {
        ran = targets.length === 0 ? [] : action === "migrate" ? await migrator.migrate(targets, runId, to) : await migrator.rollback(targets, runId, to);
      } finally {
        await migrator.close();
      }
      // In the order of `units` (the engine pairs each result with its claim by position).
      const byKey = new Map(ran.map((r) => [unitKey(r), r]));
      return located.map((x) => ("database" in x ? byKey.get(unitKey(x))! : x));
    },
    async stale(units) {
      return staleUnits(await currentFleet(fleet), units);
    },
    perStackLimit() {
      return loadSchemaMigrationsConfig(projectDir).perDatabaseConcurrency;
    },
    ...(busy ? { busy } : {}),
  };
}

/** The failure of a schema whose stack's database could not be located: which database, why, and what to do. */
function databaseNotFound(u: SchemaUnit, environments: readonly string[], why: string, runId: string): string {
  const ref = parseStackName(u.stack, environments);
  const which = ref.kind === "shared" ? `the cell database of stack ${u.stack}` : `the dedicated database of stack ${u.stack}`;
  return (
    `${pgTenantIdent(u.tenant)}: ${which} could not be located, so the schema was not touched: ${why.replace(/\.$/, "")}. ` +
    `If the stack has not run yet, run it first (it creates the database); then resume this migration: tenantctl db resume ${runId}`
  );
}

/**
 * Units whose tenant's schema is no longer in the unit's stack according to `fleet` (the checkout
 * as it is now), keyed by unitKey, with the reason: the tenant moved since the migration was
 * planned (a pooled -> dedicated upgrade finished and its cell schema was cleaned up, or an upgrade
 * was rolled back), or it left the fleet. The fleet engine skips them (docs/schema-migrations.md).
 */
export function staleUnits(fleet: Fleet, units: readonly SchemaUnit[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const u of units) {
    if (tenantsOfStack(fleet, u.stack).some((t) => t.id === u.tenant)) continue;
    const t = fleet.tenants.get(u.tenant)?.tenant;
    if (!t) {
      out.set(unitKey(u), `tenant ${u.tenant} left the fleet since this migration was planned (tenants/${u.tenant}.yaml is gone); its schema in ${u.stack} was not touched`);
      continue;
    }
    const env = parseStackName(u.stack, fleet.platform.environments).env;
    const now = stacksOfTenant(t).filter((s) => parseStackName(s, fleet.platform.environments).env === env);
    out.set(
      unitKey(u),
      `tenant ${u.tenant} moved since this migration was planned: its schema is no longer in ${u.stack}` +
        (now.length > 0 ? ` but in ${now.join(", ")}` : "") +
        `; not run against the old location (tenantctl db status --tenant ${u.tenant} shows its version, tenantctl db migrate --tenant ${u.tenant} brings it to the target)`,
    );
  }
  return out;
}

/**
 * Tenants a workflow is moving to another database, as their files say: an upgrade (a `migration`
 * block, which only a dedicated tenant file carries: the pooled -> dedicated upgrade) or a cell
 * move (a `move` block on a pooled tenant, from its first commit until its cleanup). Their schemas
 * wait until it ends, even when the control plane that runs the migration did not start the
 * workflow (its open workflows are the other half of the check: notInMotionSql).
 */
export function tenantsInMotion(fleet: FleetCache): () => Promise<ReadonlySet<string>> {
  return async () => {
    return new Set(
      [...(await currentFleet(fleet)).tenants.values()]
        .map((f) => f.tenant)
        .filter((t) => (t.deployment === "dedicated" && t.migration !== undefined) || (t.deployment === "pooled" && t.move !== undefined))
        .map((t) => t.id),
    );
  };
}

export class SchemaMigrationService {
  constructor(
    readonly engine: DbMigrationEngine,
    /** The control plane's fleet cache of its working copy (the checkout the waves are planned from). */
    private readonly fleet: FleetCache,
    private readonly locator: DatabaseLocator,
  ) {}

  private get projectDir(): string {
    return this.fleet.projectDir;
  }

  /** The waves of a request over the checkout's fleet: the rollout's stack waves, each with its tenant schemas. */
  async plan(req: DbMigrationRequest): Promise<{ project: ProjectMigrations; to: number; waves: SchemaWave[] }> {
    const project = loadProjectMigrations(this.projectDir);
    const fleet = await currentFleet(this.fleet);
    if (req.tenant !== undefined && !fleet.tenants.has(req.tenant)) throw new DbMigrationRequestError(`tenant "${req.tenant}" is not in the fleet (tenants/${req.tenant}.yaml does not exist)`);
    if (req.action === "rollback" && (req.tenant === undefined || req.to === undefined)) throw new DbMigrationRequestError("a rollback names the tenant and the version to go back to");
    const to = req.to ?? project.config.templateVersion;
    if (req.to !== undefined) assertVersion(project.set, req.to, "to");
    const stackWaves = planWaves(loadRings(this.projectDir), rolloutTargets(fleet));
    const waves: SchemaWave[] = stackWaves
      .map((w) => ({ ...w, schemas: w.stacks.flatMap((stack) => schemasOf(fleet, stack).filter((u) => req.tenant === undefined || u.tenant === req.tenant)) }))
      .filter((w) => w.schemas.length > 0)
      .map((w, index) => ({ ...w, index, stacks: [...new Set(w.schemas.map((s) => s.stack))] }));
    if (req.tenant !== undefined) return { project, to, waves: oneTenantWaves(waves, req.action) };
    return { project, to, waves };
  }

  async start(req: DbMigrationRequest): Promise<DbMigrationRecord> {
    const { to, waves } = await this.plan(req);
    return this.engine.start({ action: req.action, to, waves, ...(req.requestedBy ? { requestedBy: req.requestedBy } : {}) });
  }

  /** What a request would do to each schema, from the schemas' versions now; nothing is written. */
  async dryRun(req: DbMigrationRequest): Promise<{ action: DbMigrationAction; to: number; schemas: DryRunSchema[] }> {
    const { project, to, waves } = await this.plan(req);
    const status = await this.readVersions(project, (await currentFleet(this.fleet)).platform.environments, waves.flatMap((w) => w.schemas));
    const schemas = waves.flatMap((w) =>
      w.schemas.map((u): DryRunSchema => {
        const s = status.get(`${u.stack}/${u.tenant}`)!;
        if (s.error !== undefined) return { ...u, wave: w.index, current: null, versions: [], error: s.error };
        const cur = s.version!;
        const versions = project.set.migrations.map((m) => m.version);
        const moved = req.action === "migrate" ? versions.filter((v) => v > cur && v <= to) : versions.filter((v) => v > to && v <= cur).reverse();
        return { ...u, wave: w.index, current: cur, versions: moved };
      }),
    );
    return { action: req.action, to, schemas };
  }

  /** Versions per tenant schema of the fleet (read live), outdated ones and the last failures. */
  async status(tenant?: string): Promise<{ templateVersion: number; head: number; schemas: SchemaStatusRow[] }> {
    const project = loadProjectMigrations(this.projectDir);
    const fleet = await currentFleet(this.fleet);
    const units = [...fleet.stacks.keys()].flatMap((s) => schemasOf(fleet, s)).filter((u) => tenant === undefined || u.tenant === tenant);
    const versions = await this.readVersions(project, fleet.platform.environments, units);
    const last = await this.engine.lastOutcomes(tenant);
    const schemas = units.map((u): SchemaStatusRow => {
      const v = versions.get(`${u.stack}/${u.tenant}`)!;
      const l = last.get(`${u.stack}/${u.tenant}`);
      return {
        ...u,
        version: v.version,
        outdated: v.version !== null && v.version < project.config.templateVersion,
        lastError: l?.state === "failed" ? l.error : null,
        ...(v.error !== undefined ? { error: v.error } : {}),
      };
    });
    return { templateVersion: project.config.templateVersion, head: project.set.head, schemas };
  }

  private async readVersions(project: ProjectMigrations, environments: readonly string[], units: readonly SchemaUnit[]): Promise<Map<string, { version: number | null; error?: string }>> {
    const migrator = new SchemaMigrator(project.set, project.config);
    const out = new Map<string, { version: number | null; error?: string }>();
    try {
      const targets: SchemaTarget[] = [];
      for (const u of units) {
        try {
          targets.push({ ...u, database: await stackDatabase(this.locator, u.stack, environments) });
        } catch (err) {
          out.set(`${u.stack}/${u.tenant}`, { version: null, error: (err as Error).message });
        }
      }
      for (const r of await migrator.status(targets)) {
        if (!r.ok) out.set(`${r.stack}/${r.tenant}`, { version: null, error: r.error });
        else if (!r.value.exists) out.set(`${r.stack}/${r.tenant}`, { version: null, error: `schema ${r.value.schema} does not exist yet (its stack has not run)` });
        else out.set(`${r.stack}/${r.tenant}`, { version: r.value.version });
      }
    } finally {
      await migrator.close();
    }
    return out;
  }

  async view(id: string): Promise<DbMigrationView | undefined> {
    const migration = await this.engine.get(id);
    if (!migration) return undefined;
    const schemas = await this.engine.schemas(id);
    return {
      migration,
      waves: migration.waves.map((w) => {
        const mine = schemas.filter((s) => s.wave === w.index);
        const counts = { pending: 0, running: 0, succeeded: 0, failed: 0, skipped: 0 };
        for (const s of mine) counts[s.state]++;
        return { index: w.index, ring: w.ring, parallelism: w.parallelism, failureBudgetPercent: w.failureBudgetPercent, counts, schemas: mine };
      }),
    };
  }
}

/**
 * The waves of a request for one tenant (a migration with --tenant, a rollback): the rings' order
 * (its non-prod schemas before its prod ones), one schema at a time, no bake time, halting on the
 * first failure (docs/schema-migrations.md, "One tenant"). The rings' bake times and budgets are
 * for shares of the fleet; for a handful of schemas they would only hold the one active migration
 * (and every other schema migration behind it) for the bake of each ring the tenant is in.
 */
export function oneTenantWaves(waves: readonly SchemaWave[], action: DbMigrationAction): SchemaWave[] {
  return waves.map((w, index) => ({ ...w, index, ring: action === "rollback" ? `rollback: ${w.ring}` : `${w.ring} (one tenant)`, parallelism: 1, bakeMs: 0, failureBudgetPercent: 0 }));
}

/** The tenant schemas a stack's database holds (a cell: its residents; a dedicated stack: its tenant). */
function schemasOf(fleet: Fleet, stack: string): SchemaUnit[] {
  return tenantsOfStack(fleet, stack).map((t) => ({ stack, tenant: t.id }));
}
