/**
 * The migration files and their configuration without a database: names, order, checksums,
 * the Pulumi.yaml value and every error's wording; the applied-versions check.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { assertVersion, loadMigrationSet, loadProjectMigrations, migrationSet, MigrationFilesError, sha256 } from "../../automation/schemaMigrations/files.ts";
import { KeyedLimiter } from "../../automation/schemaMigrations/limiter.ts";
import { verifyApplied } from "../../automation/schemaMigrations/tenantSchema.ts";
import { parseSchemaMigrationsConfig, SchemaMigrationsConfigError } from "../../infra/model/schemaMigrations.ts";

const files = (o: Record<string, string>) => new Map(Object.entries(o).map(([k, v]) => [k, Buffer.from(v)]));
const errorOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error("expected an error");
};

let tmp: string | undefined;
afterEach(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
});

describe("migration files", () => {
  it("orders by version, pairs down files, hashes the up file", () => {
    const set = migrationSet("/m", files({ "0002_b.up.sql": "B", "0001_a.up.sql": "A", "0001_a.down.sql": "undo A", "README.md": "x" }));
    expect(set.head).toBe(2);
    expect(set.migrations.map((m) => [m.version, m.name, m.up.file, m.down?.file])).toEqual([
      [1, "a", "0001_a.up.sql", "0001_a.down.sql"],
      [2, "b", "0002_b.up.sql", undefined],
    ]);
    expect(set.migrations[0]!.up.checksum).toBe(sha256("A"));
    expect(sha256("A")).toBe("559aead08264d5795d3909718cdd05abd49572e84fe55590eef31a88a08fdffd");
  });

  it("collects every problem, each naming the file and the fix", () => {
    const err = errorOf(() =>
      migrationSet("/m", files({ "1_short.up.sql": "x", "0001_a.up.sql": "A", "0001_other.up.sql": "B", "0002_c.down.sql": "y", "0003_empty.up.sql": "  \n", "0000_zero.up.sql": "z" })),
    );
    expect(err.split("\n")).toEqual([
      "/m/0000_zero.up.sql: version 0000 is the empty schema; number migrations from 0001",
      "/m/0001_other.up.sql: version 0001 is also a; each version has one name (rename one of them to the next free number)",
      "/m/0003_empty.up.sql: is empty; a migration holds at least one statement",
      "/m/1_short.up.sql: not a migration file name; expected NNNN_name.up.sql or NNNN_name.down.sql (4 digits, lower-case name)",
      "/m/0002_c.down.sql: has no 0002_c.up.sql; a down file undoes an up file of the same name",
    ]);
  });

  it("a missing directory names it and the setting", () => {
    expect(errorOf(() => loadMigrationSet("/nonexistent/dir"))).toBe(
      "/nonexistent/dir: cannot be read (ENOENT); create it or fix saas-tenancy:schemaMigrations.path in Pulumi.yaml",
    );
  });

  it("the template version must be a version of the set", () => {
    const set = migrationSet("/m", files({ "0001_a.up.sql": "A" }));
    expect(() => assertVersion(set, 1, "x")).not.toThrow();
    expect(() => assertVersion(set, 0, "x")).not.toThrow();
    expect(errorOf(() => assertVersion(set, 2, "templateVersion"))).toBe("templateVersion: 2 is not a migration in /m (versions: 1); name an existing version or 0");
  });
});

describe("saas-tenancy:schemaMigrations in Pulumi.yaml", () => {
  it("applies the documented defaults", () => {
    expect(parseSchemaMigrationsConfig({ path: "db", templateVersion: 2 }, "w", "/p")).toEqual({
      path: "db", templateVersion: 2, perDatabaseConcurrency: 4, lockTimeoutMs: 5000, statementTimeoutMs: 600000, dir: "/p/db",
    });
  });

  it("refuses bad values with the path of each", () => {
    const err = errorOf(() => parseSchemaMigrationsConfig({ path: "../elsewhere", templateVersion: -1, perDatabaseConcurrency: 0, extra: 1 }, "Pulumi.yaml: config.saas-tenancy:schemaMigrations.value", "/p"));
    expect(err.split("\n")).toEqual([
      "Pulumi.yaml: config.saas-tenancy:schemaMigrations.value.path: must be a directory inside the project, relative to Pulumi.yaml (e.g. tenant-migrations)",
      "Pulumi.yaml: config.saas-tenancy:schemaMigrations.value.templateVersion: Too small: expected number to be >=0",
      "Pulumi.yaml: config.saas-tenancy:schemaMigrations.value.perDatabaseConcurrency: Too small: expected number to be >=1",
      'Pulumi.yaml: config.saas-tenancy:schemaMigrations.value: Unrecognized key: "extra"',
    ]);
  });

  it("a project without the key, or whose template version has no file, is refused", () => {
    tmp = mkdtempSync(join(tmpdir(), "schema-migrations-"));
    writeFileSync(join(tmp, "Pulumi.yaml"), "name: x\nconfig: {}\n");
    expect(() => loadProjectMigrations(tmp!)).toThrow(SchemaMigrationsConfigError);
    expect(errorOf(() => loadProjectMigrations(tmp!))).toContain("config.saas-tenancy:schemaMigrations is missing");
    writeFileSync(join(tmp, "Pulumi.yaml"), "name: x\nconfig:\n  saas-tenancy:schemaMigrations:\n    value: { path: m, templateVersion: 5 }\n");
    expect(() => loadProjectMigrations(tmp!)).toThrow(MigrationFilesError);
  });
});

describe("applied versions against the files", () => {
  const set = migrationSet("/m", files({ "0001_a.up.sql": "A", "0002_b.up.sql": "B", "0003_c.up.sql": "C" }));
  const row = (version: number, name: string, sql: string) => ({ version, name, checksum: sha256(sql), appliedAt: "", runId: "r" });

  it("returns the schema's version when every applied file is unchanged", () => {
    expect(verifyApplied("tenant_a", set, [row(1, "a", "A"), row(2, "b", "B")])).toBe(2);
    expect(verifyApplied("tenant_a", set, [])).toBe(0);
  });

  it("refuses a changed file, a deleted one and one added below the applied version", () => {
    expect(errorOf(() => verifyApplied("tenant_a", set, [row(1, "a", "A (old)")]))).toBe(
      `tenant_a: /m/0001_a.up.sql changed after it was applied (sha256 applied ${sha256("A (old)").slice(0, 12)}, file now ${sha256("A").slice(0, 12)}): restore it and put the change in a new migration`,
    );
    expect(errorOf(() => verifyApplied("tenant_a", set, [row(1, "a", "A"), row(2, "b", "B"), row(3, "c", "C"), row(4, "d", "D")]))).toBe(
      "tenant_a: version 4 (d) is applied but /m has no 0004_d.up.sql: restore the file (applied migrations are never deleted)",
    );
    expect(errorOf(() => verifyApplied("tenant_a", set, [row(1, "a", "A"), row(3, "c", "C")]))).toBe(
      "tenant_a: /m/0002_b.up.sql is older than the applied version 3 but was never applied: number new migrations after the last one",
    );
  });
});

describe("KeyedLimiter", () => {
  it("never runs more than the limit per key, keys apart, and hands a slot over without a gap", async () => {
    const limiter = new KeyedLimiter(2);
    let active = 0;
    let peak = 0;
    const task = async () => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 2));
      active--;
    };
    await Promise.all([...Array.from({ length: 20 }, () => limiter.run("a", task)), limiter.run("b", async () => undefined)]);
    expect(peak).toBe(2);
    expect(limiter.peak("a")).toBe(2);
    expect(limiter.peak("b")).toBe(1);
    expect(() => new KeyedLimiter(0)).toThrow("a limiter needs a positive integer limit, got 0");
  });
});
