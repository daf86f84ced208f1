/**
 * Fleet schema migrations as the API and tenantctl see them (docs/schema-migrations.md): plan the
 * waves from a checkout of the fleet (the rollout rings of Pulumi.yaml over its cell and dedicated
 * stacks, each stack's tenant schemas), start a migration or a one-tenant rollback, answer a dry
 * run with what each schema would get, and report versions per schema. The engine does the work.
 */
import { requireFleet, stacksOfTenant, tenantsOfStack, type Fleet } from "../../infra/model/fleet.ts";
import { parseStackName } from "../../infra/model/naming.ts";
import { loadSchemaMigrationsConfig } from "../../infra/model/schemaMigrations.ts";
import { loadRings, planWaves, rolloutTargets } from "../../infra/model/rings.ts";
import type { DatabaseLocator } from "../lifecycle/ports.ts";
import { unitKey, type DbMigrationAction, type DbMigrationEngine, type DbMigrationRecord, type SchemaRecord, type SchemaRunPort, type SchemaState, type SchemaUnit, type SchemaWave } from "./fleetEngine.ts";
import { assertVersion, loadProjectMigrations, type ProjectMigrations } from "./files.ts";
import { SchemaMigrator, type SchemaTarget } from "./migrator.ts";

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
 * The engine's port on real databases: the master-user connection of each stack's database
 * (DatabaseLocator) and a SchemaMigrator per round, on the migration files of the checkout as
 * they are now (their checksums are verified against what each schema applied).
 */
export function locatorRunPort(projectDir: string, locator: DatabaseLocator, busy?: () => Promise<ReadonlySet<string>>): SchemaRunPort {
  return {
    async run(units, action, to, runId) {
      const { config, set } = loadProjectMigrations(projectDir);
      const fleet = requireFleet({ projectDir });
      const migrator = new SchemaMigrator(set, config);
      try {
        const targets: SchemaTarget[] = await Promise.all(units.map(async (u) => ({ ...u, database: await stackDatabase(locator, u.stack, fleet.platform.environments) })));
        return action === "migrate" ? await migrator.migrate(targets, runId, to) : await migrator.rollback(targets, runId, to);
      } finally {
        await migrator.close();
      }
    },
    async stale(units) {
      return staleUnits(requireFleet({ projectDir }), units);
    },
    perStackLimit() {
      return loadSchemaMigrationsConfig(projectDir).perDatabaseConcurrency;
    },
    ...(busy ? { busy } : {}),
  };
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
export function tenantsInMotion(projectDir: string): () => Promise<ReadonlySet<string>> {
  return async () => {
    const fleet = requireFleet({ projectDir });
    return new Set(
      [...fleet.tenants.values()]
        .map((f) => f.tenant)
        .filter((t) => (t.deployment === "dedicated" && t.migration !== undefined) || (t.deployment === "pooled" && t.move !== undefined))
        .map((t) => t.id),
    );
  };
}

export class SchemaMigrationService {
  constructor(
    readonly engine: DbMigrationEngine,
    private readonly projectDir: string,
    private readonly locator: DatabaseLocator,
  ) {}

  /** The waves of a request over the checkout's fleet: the rollout's stack waves, each with its tenant schemas. */
  plan(req: DbMigrationRequest): { project: ProjectMigrations; to: number; waves: SchemaWave[] } {
    const project = loadProjectMigrations(this.projectDir);
    const fleet = requireFleet({ projectDir: this.projectDir });
    if (req.tenant !== undefined && !fleet.tenants.has(req.tenant)) throw new DbMigrationRequestError(`tenant "${req.tenant}" is not in the fleet (tenants/${req.tenant}.yaml does not exist)`);
    if (req.action === "rollback" && (req.tenant === undefined || req.to === undefined)) throw new DbMigrationRequestError("a rollback names the tenant and the version to go back to");
    const to = req.to ?? project.config.templateVersion;
    if (req.to !== undefined) assertVersion(project.set, req.to, "to");
    const stackWaves = planWaves(loadRings(this.projectDir), rolloutTargets(fleet));
    const waves: SchemaWave[] = stackWaves
      .map((w) => ({ ...w, schemas: w.stacks.flatMap((stack) => schemasOf(fleet, stack).filter((u) => req.tenant === undefined || u.tenant === req.tenant)) }))
      .filter((w) => w.schemas.length > 0)
      .map((w, index) => ({ ...w, index, stacks: [...new Set(w.schemas.map((s) => s.stack))] }));
    if (req.action === "rollback") {
      // One tenant's schemas go back together, one at a time, halting on the first failure.
      const schemas = waves.flatMap((w) => w.schemas);
      return { project, to, waves: [{ index: 0, ring: "rollback", parallelism: 1, bakeMs: 0, failureBudgetPercent: 0, stacks: [...new Set(schemas.map((s) => s.stack))], schemas }] };
    }
    return { project, to, waves };
  }

  async start(req: DbMigrationRequest): Promise<DbMigrationRecord> {
    const { to, waves } = this.plan(req);
    return this.engine.start({ action: req.action, to, waves, ...(req.requestedBy ? { requestedBy: req.requestedBy } : {}) });
  }

  /** What a request would do to each schema, from the schemas' versions now; nothing is written. */
  async dryRun(req: DbMigrationRequest): Promise<{ action: DbMigrationAction; to: number; schemas: DryRunSchema[] }> {
    const { project, to, waves } = this.plan(req);
    const status = await this.readVersions(project, waves.flatMap((w) => w.schemas));
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
    const fleet = requireFleet({ projectDir: this.projectDir });
    const units = [...fleet.stacks.keys()].flatMap((s) => schemasOf(fleet, s)).filter((u) => tenant === undefined || u.tenant === tenant);
    const versions = await this.readVersions(project, units);
    const last = await this.engine.lastOutcomes();
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

  private async readVersions(project: ProjectMigrations, units: readonly SchemaUnit[]): Promise<Map<string, { version: number | null; error?: string }>> {
    const environments = requireFleet({ projectDir: this.projectDir }).platform.environments;
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

/** The tenant schemas a stack's database holds (a cell: its residents; a dedicated stack: its tenant). */
function schemasOf(fleet: Fleet, stack: string): SchemaUnit[] {
  return tenantsOfStack(fleet, stack).map((t) => ({ stack, tenant: t.id }));
}
