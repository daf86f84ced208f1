/**
 * A control-plane process that only advances fleet schema migrations, for the per-database slot
 * tests (schemaMigrations.slots.test.ts): the parent kills it with SIGKILL while its migrations
 * are in flight on the tenant database. Input (JSON in CHILD_INPUT): the control database and the
 * cell database (master user), the migration files, K, the lease and the timeouts. It ticks the
 * active migration once and prints `ticking`; it never exits by itself while a migration waits.
 */
import { createPool } from "../../../automation/db/database.ts";
import { migrationSet } from "../../../automation/schemaMigrations/files.ts";
import { DbMigrationEngine } from "../../../automation/schemaMigrations/fleetEngine.ts";
import { SchemaMigrator } from "../../../automation/schemaMigrations/migrator.ts";

const input = JSON.parse(process.env.CHILD_INPUT ?? "{}") as {
  control: { host: string; port: number; user: string; password: string; database: string };
  cell: { host: string; port: number; user: string; password: string; database: string };
  files: Record<string, string>;
  k: number;
  leaseMs: number;
  lockTimeoutMs: number;
  statementTimeoutMs: number;
};
const set = migrationSet("/fleet", new Map(Object.entries(input.files).map(([k, v]) => [k, Buffer.from(v)])));
const control = createPool(input.control, 2);
const engine = new DbMigrationEngine(
  control,
  {
    async run(units, action, to, runId) {
      const m = new SchemaMigrator(set, { perDatabaseConcurrency: input.k, lockTimeoutMs: input.lockTimeoutMs, statementTimeoutMs: input.statementTimeoutMs });
      try {
        const targets = units.map((u) => ({ ...u, database: input.cell }));
        return action === "migrate" ? await m.migrate(targets, runId, to) : await m.rollback(targets, runId, to);
      } finally {
        await m.close();
      }
    },
    perStackLimit: () => input.k,
  },
  { leaseMs: input.leaseMs },
);
process.stdout.write("ticking\n");
await engine.tick();
