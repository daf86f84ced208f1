/**
 * Where the application's tenant schema migrations live and how they are applied: the
 * `saas-tenancy:schemaMigrations` value of Pulumi.yaml (docs/schema-migrations.md). Pure parsing
 * and defaults; reading the migration files themselves is automation/schemaMigrations/files.ts.
 *
 *   saas-tenancy:schemaMigrations:
 *     value:
 *       path: tenant-migrations     # relative to Pulumi.yaml
 *       templateVersion: 3          # the version every new tenant schema starts at
 *       perDatabaseConcurrency: 4   # schemas migrated at once on one PostgreSQL instance
 *       lockTimeoutMs: 5000
 *       statementTimeoutMs: 600000
 */
import { readFileSync } from "node:fs";
import { isAbsolute, join, normalize } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { PROJECT } from "./platform.ts";

export const SCHEMA_MIGRATIONS_KEY = "schemaMigrations";

/** Schemas migrated at once on one PostgreSQL instance (a cell's database is shared by its tenants). */
export const DEFAULT_PER_DATABASE_CONCURRENCY = 4;
/** How long a migration waits for a lock on a tenant's table before it fails (the tenant's writers keep going). */
export const DEFAULT_LOCK_TIMEOUT_MS = 5_000;
/** The longest one statement of a migration may run. */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 600_000;

export const SchemaMigrationsConfigSchema = z
  .object({
    /** Directory of the `NNNN_name.up.sql` / `.down.sql` files, relative to Pulumi.yaml. */
    path: z
      .string()
      .min(1)
      .refine((p) => !isAbsolute(p) && !normalize(p).startsWith(".."), "must be a directory inside the project, relative to Pulumi.yaml (e.g. tenant-migrations)"),
    /** The version new tenant schemas are created at and `tenantctl db migrate` moves the fleet to by default. */
    templateVersion: z.number().int().min(0),
    /** @default 4 */
    perDatabaseConcurrency: z.number().int().min(1).max(64).default(DEFAULT_PER_DATABASE_CONCURRENCY),
    /** @default 5000 */
    lockTimeoutMs: z.number().int().min(1).max(600_000).default(DEFAULT_LOCK_TIMEOUT_MS),
    /** @default 600000 */
    statementTimeoutMs: z.number().int().min(1).max(86_400_000).default(DEFAULT_STATEMENT_TIMEOUT_MS),
  })
  .strict();

export type SchemaMigrationsConfig = z.infer<typeof SchemaMigrationsConfigSchema> & {
  /** `path` resolved against the project directory. */
  dir: string;
};

export class SchemaMigrationsConfigError extends Error {}

/** Parses the value; every problem on its own line, naming where and the fix. */
export function parseSchemaMigrationsConfig(value: unknown, where: string, projectDir: string): SchemaMigrationsConfig {
  const result = SchemaMigrationsConfigSchema.safeParse(value);
  if (!result.success) {
    throw new SchemaMigrationsConfigError(
      result.error.issues.map((i) => `${where}${i.path.length ? "." + i.path.join(".") : ""}: ${i.message}`).join("\n"),
    );
  }
  return { ...result.data, dir: join(projectDir, result.data.path) };
}

/** Reads `config.saas-tenancy:schemaMigrations.value` from the project's Pulumi.yaml. */
export function loadSchemaMigrationsConfig(projectDir: string): SchemaMigrationsConfig {
  const file = join(projectDir, "Pulumi.yaml");
  let doc: { config?: Record<string, unknown> } | null;
  try {
    doc = parse(readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null;
  } catch (err) {
    throw new SchemaMigrationsConfigError(`${file}: cannot be read: ${(err as Error).message}`);
  }
  const key = `${PROJECT}:${SCHEMA_MIGRATIONS_KEY}`;
  const entry = doc?.config?.[key];
  if (entry === undefined) {
    throw new SchemaMigrationsConfigError(
      `${file}: config.${key} is missing: declare { path: <directory of NNNN_name.up.sql files>, templateVersion: N } there (docs/schema-migrations.md)`,
    );
  }
  const value = entry && typeof entry === "object" && "value" in entry ? entry.value : entry;
  return parseSchemaMigrationsConfig(value, `${file}: config.${key}.value`, projectDir);
}
