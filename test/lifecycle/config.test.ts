/** Lifecycle settings from the environment, and the JSON-file database locator. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { JsonFileDatabaseLocator } from "../../automation/lifecycle/adapters/databases.ts";
import { DEFAULT_LIFECYCLE_CONFIG, lifecycleConfigFrom } from "../../automation/lifecycle/config.ts";
import { backoffMs } from "../../automation/lifecycle/engine/engine.ts";

/** The workflow settings from `values` (as the environment or config file gives them), and the problem lines. */
function readConfig(values: Record<string, string>): { config: ReturnType<typeof lifecycleConfigFrom>; lines: string[] } {
  const lines: string[] = [];
  const config = lifecycleConfigFrom((name) => values[name], lines);
  return { config, lines };
}

describe("lifecycleConfigFrom", () => {
  it("has the documented defaults and takes overrides by name", () => {
    expect(readConfig({})).toEqual({ config: { graceDays: 30, retentionDays: 7, secretRecoveryDays: 30, pollSeconds: 60, maxAttempts: 5, cutoverTimeoutMs: 30_000, rotationOverlapMinutes: 60 }, lines: [] });
    expect(readConfig({ TENANCY_OFFBOARDING_GRACE_DAYS: "45", TENANCY_MIGRATION_RETENTION_DAYS: "0", TENANCY_SECRET_RECOVERY_DAYS: "7" })).toEqual({
      config: { ...DEFAULT_LIFECYCLE_CONFIG, graceDays: 45, retentionDays: 0, secretRecoveryDays: 7 },
      lines: [],
    });
  });

  it("names the setting, the value and the rule when a value is wrong (the shared settings reader's words), and reads it as its default", () => {
    expect(readConfig({ TENANCY_OFFBOARDING_GRACE_DAYS: "a month" })).toEqual({
      config: DEFAULT_LIFECYCLE_CONFIG,
      lines: ['TENANCY_OFFBOARDING_GRACE_DAYS: must be an integer from 0 to 3650, got "a month"'],
    });
    expect(readConfig({ TENANCY_SECRET_RECOVERY_DAYS: "3", TENANCY_LIFECYCLE_MAX_ATTEMPTS: "0" }).lines).toEqual([
      'TENANCY_SECRET_RECOVERY_DAYS: must be an integer from 7 to 30 (the recovery windows Secrets Manager allows), got "3"',
      'TENANCY_LIFECYCLE_MAX_ATTEMPTS: must be an integer from 1 to 100, got "0"',
    ]);
  });

  it("backs off 1, 2, 4 ... minutes up to an hour", () => {
    expect([1, 2, 3, 7, 8, 20].map((n) => backoffMs(n) / 60_000)).toEqual([1, 2, 4, 60, 60, 60]);
  });
});

describe("JsonFileDatabaseLocator", () => {
  it("maps stacks to connection strings and says which stack is missing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lifecycle-dbs-"));
    try {
      const file = join(dir, "databases.json");
      writeFileSync(file, JSON.stringify({ "shared-prod-use1-01": "postgres://a@cell/cell", "dedicated-acme-prod": "postgresql://a@acme/app" }));
      const l = new JsonFileDatabaseLocator(file);
      expect(await l.cell("prod", "use1-01")).toEqual({ connectionString: "postgres://a@cell/cell" });
      expect(await l.dedicated("acme", "prod")).toEqual({ connectionString: "postgresql://a@acme/app" });
      await expect(l.dedicated("acme", "staging")).rejects.toThrow(`${file} has no connection string for stack dedicated-acme-staging`);
      writeFileSync(file, JSON.stringify({ "shared-prod-use1-01": "mysql://x" }));
      expect(() => new JsonFileDatabaseLocator(file)).toThrow("shared-prod-use1-01: expected a postgres:// connection string");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
