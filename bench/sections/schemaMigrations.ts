/**
 * 17. Fleet schema migrations (`schema-migrations`): one embedded PostgreSQL 17 holding a cell
 * database of 500 tenant schemas (`tenant_<id>`, role and schema as the stacks leave them), each
 * with two tables (10,000 rows each in the issue; 2,000 by default, see DEFAULT_ROWS), migrated by the real per-schema migrator (SchemaMigrator +
 * migrateSchema: one transaction per schema as the tenant's role, version rows, checksums, the
 * schema's advisory lock, lock and statement timeouts) to a version that adds a column and an
 * index to both tables, at concurrency 1, 4 and 8 on the instance. See BENCHMARKS.md section 17.
 *
 * Per concurrency:
 * - throughput: schemas migrated per second (wall time from the first schema started to the last
 *   finished);
 * - the writer's lock wait: one writer per sampled tenant (every 50th schema) inserts into the
 *   migrated table as the tenant's role every WRITE_INTERVAL_MS for the whole run; a write whose
 *   time in flight overlaps its own schema's migration transaction counts as "during", the others
 *   (the same writers, the rest of the fleet migrating around them) are the writer's own baseline;
 *   p99 of each;
 * - baseline, same run, same data, same writers: the same SQL applied by a plain loop (one
 *   transaction per schema, SET LOCAL ROLE + search_path, nothing else: no version table, no
 *   checksum, no advisory lock, no SECURITY DEFINER wrapper), as a hand-written script would.
 * Between two measured passes every schema is rolled back with the down file (not measured), so
 * each pass starts from the same tables. Nothing is deployed; PostgreSQL is the only server.
 */
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import type pg from "pg";
import { migrationSet, type MigrationSet } from "../../automation/schemaMigrations/files.ts";
import { SchemaMigrator, type SchemaTarget } from "../../automation/schemaMigrations/migrator.ts";
import { migrateSchema, rollbackSchema } from "../../automation/schemaMigrations/tenantSchema.ts";
import { startPostgres, type PgServer } from "../../test/support/postgres.ts";
import { clientConfig, connect, provisionTenantsInDb, qi, type DbRef } from "../../test/lifecycle/tenantDb.ts";
import { percentile } from "../lib/stats.ts";
import { round, target, type Section } from "../lib/report.ts";

type Log = (s: string) => void;

const CONCURRENCIES = [1, 4, 8] as const;
/**
 * The issue's cell: 500 schemas, two tables of 10,000 rows each. The default runs 2,000 rows a
 * table so the section takes a few minutes on a shared 2-core machine (at 10,000 it took about
 * 15: the 10M-row load, its vacuum and the serial pass at concurrency 1 dominate);
 * BENCH_SCHEMA_ROWS=10000 runs the issue's size, BENCH_SCHEMA_COUNT another number of schemas.
 * The table and results.json say which ran.
 */
const ISSUE_SCHEMAS = 500;
const ISSUE_ROWS = 10_000;
const DEFAULT_ROWS = 2_000;
/** Every SAMPLE_EVERY-th schema has a writer (10 of 500). */
const SAMPLE_EVERY = 50;
const WRITE_INTERVAL_MS = 10;
/**
 * Room for the 10M-row load without a checkpoint every few seconds (RDS sizes max_wal_size the
 * same way); a CHECKPOINT is taken between passes instead, so none lands inside a measured one.
 */
const SERVER_SETTINGS = { max_wal_size: "8GB", checkpoint_timeout: "30min", shared_buffers: "256MB" };
const PASSWORD = "bench-tenant-password";
const TIMEOUTS = { lockTimeoutMs: 5_000, statementTimeoutMs: 120_000 };
/** Our targets (the issue names the figures, not their values): see BENCHMARKS.md section 17. */
const LOCK_WAIT_P99_TARGET_MS = 1_000;
const OVERHEAD_TARGET_RATIO = 0.75;

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}=${raw}: expected a positive integer`);
  return n;
}

const UP = `ALTER TABLE orders ADD COLUMN note text;
CREATE INDEX orders_customer_idx ON orders (customer, created_at);
ALTER TABLE events ADD COLUMN source text;
CREATE INDEX events_kind_idx ON events (kind, at);
`;
const DOWN = `DROP INDEX events_kind_idx;
ALTER TABLE events DROP COLUMN source;
DROP INDEX orders_customer_idx;
ALTER TABLE orders DROP COLUMN note;
`;

function migrations(rows: number): MigrationSet {
  const base = `CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer text NOT NULL, total_cents bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text NOT NULL, payload text, at timestamptz NOT NULL DEFAULT now());
INSERT INTO orders (customer, total_cents, created_at) SELECT 'customer-' || (g % 997), g * 7 % 100000, now() - g * interval '1 minute' FROM generate_series(1, ${rows}) g;
INSERT INTO events (kind, payload, at) SELECT 'kind-' || (g % 31), 'payload ' || g, now() - g * interval '1 second' FROM generate_series(1, ${rows}) g;
`;
  return migrationSet(
    "/bench/schema-migrations",
    new Map([
      ["0001_base.up.sql", Buffer.from(base)],
      ["0002_add_column_and_index.up.sql", Buffer.from(UP)],
      ["0002_add_column_and_index.down.sql", Buffer.from(DOWN)],
    ]),
  );
}

interface Write {
  sent: number;
  done: number;
  ok: boolean;
}

interface Writer {
  tenant: string;
  writes: Write[];
  stop(): Promise<void>;
}

/** Inserts into its tenant's `orders` as the tenant's role until stopped; every write is timed. */
async function startWriter(ref: DbRef, ident: string): Promise<Writer> {
  const c = await connect(ref, { user: ident, password: PASSWORD });
  const writes: Write[] = [];
  let stopping = false;
  const done = (async () => {
    while (!stopping) {
      const sent = performance.now();
      let ok = true;
      try {
        await c.query("INSERT INTO orders (customer, total_cents) VALUES ('writer', 1)");
      } catch {
        ok = false;
      }
      writes.push({ sent, done: performance.now(), ok });
      await new Promise((r) => setTimeout(r, WRITE_INTERVAL_MS));
    }
  })();
  return {
    tenant: ident,
    writes,
    async stop() {
      stopping = true;
      await done;
      await c.end();
    },
  };
}

type Windows = Map<string, [number, number]>;

/** Ours: the SchemaMigrator at concurrency k, each schema's migrateSchema timed. */
async function runMigrator(set: MigrationSet, targets: readonly SchemaTarget[], k: number, action: "migrate" | "rollback"): Promise<Windows> {
  const migrator = new SchemaMigrator(set, { perDatabaseConcurrency: k, ...TIMEOUTS });
  const windows: Windows = new Map();
  try {
    const results = await Promise.all(
      targets.map((t) =>
        migrator.one(t, async (c, s) => {
          const started = performance.now();
          try {
            const opts = { runId: `bench-${action}-${k}`, ...TIMEOUTS };
            return action === "migrate" ? await migrateSchema(c, s, set, { ...opts, to: 2 }) : await rollbackSchema(c, s, set, { ...opts, to: 1 });
          } finally {
            windows.set(s.schema, [started, performance.now()]);
          }
        }),
      ),
    );
    const failed = results.filter((r) => !r.ok);
    if (failed.length > 0) throw new Error(`${action} at concurrency ${k}: ${failed.length} schemas failed, first: ${!failed[0]!.ok ? failed[0]!.error : ""}`);
  } finally {
    await migrator.close();
  }
  return windows;
}

/** The baseline: a plain loop, k sessions, one transaction per schema with the same SQL and nothing else. */
async function runPlain(ref: DbRef, idents: readonly string[], k: number, sql: string): Promise<Windows> {
  const clients = await Promise.all(Array.from({ length: k }, () => connect(ref)));
  const windows: Windows = new Map();
  let next = 0;
  try {
    await Promise.all(
      clients.map(async (c) => {
        for (let i = next++; i < idents.length; i = next++) {
          const ident = idents[i]!;
          const started = performance.now();
          await c.query("BEGIN");
          try {
            await c.query(`SET LOCAL ROLE ${qi(ident)}`);
            await c.query(`SET LOCAL search_path = ${qi(ident)}`);
            await c.query(sql);
            await c.query("COMMIT");
          } catch (err) {
            await c.query("ROLLBACK").catch(() => undefined);
            throw new Error(`plain loop at concurrency ${k}, ${ident}: ${(err as Error).message}`, { cause: err });
          }
          windows.set(ident, [started, performance.now()]);
        }
      }),
    );
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
  return windows;
}

export interface PassFigures {
  concurrency: number;
  kind: "migrator" | "plain";
  wallMs: number;
  schemasPerSecond: number;
  /** Writes of the sampled writers overlapping their own schema's migration transaction. */
  duringWrites: number;
  duringP50Ms: number;
  duringP99Ms: number;
  duringMaxMs: number;
  /** The same writers' other writes in the same pass (the fleet migrating around them). */
  outsideWrites: number;
  outsideP99Ms: number;
  failedWrites: number;
  perSchemaP50Ms: number;
  /** The machine's 1-minute load average at the pass's start and end (os.loadavg): how shared the 2 cores were. */
  loadAverage: { start: number; end: number };
}

function figures(kind: PassFigures["kind"], k: number, windows: Windows, writers: readonly Writer[]): Omit<PassFigures, "loadAverage"> {
  const spans = [...windows.values()];
  const first = Math.min(...spans.map((w) => w[0]));
  const last = Math.max(...spans.map((w) => w[1]));
  const during: number[] = [];
  const outside: number[] = [];
  let failedWrites = 0;
  for (const w of writers) {
    const win = windows.get(w.tenant);
    if (!win) throw new Error(`no migration window recorded for ${w.tenant}`);
    for (const x of w.writes) {
      if (!x.ok) failedWrites++;
      (x.done >= win[0] && x.sent <= win[1] ? during : outside).push(x.done - x.sent);
    }
  }
  if (during.length === 0) throw new Error(`${kind} at ${k}: no write overlapped its schema's migration (writers too slow to start?)`);
  const wallMs = last - first;
  return {
    concurrency: k, kind, wallMs, schemasPerSecond: windows.size / (wallMs / 1000),
    duringWrites: during.length, duringP50Ms: percentile(during, 50), duringP99Ms: percentile(during, 99), duringMaxMs: Math.max(...during),
    outsideWrites: outside.length, outsideP99Ms: outside.length > 0 ? percentile(outside, 99) : 0,
    failedWrites,
    perSchemaP50Ms: percentile(spans.map((w) => w[1] - w[0]), 50),
  };
}

/** VACUUM ANALYZE of every tenant table on 4 sessions (hint bits and statistics set before the first measured pass). */
async function vacuumAll(ref: DbRef, idents: readonly string[]): Promise<void> {
  const bootstrap = ref.server.bootstrap;
  const sessions = await Promise.all(Array.from({ length: 4 }, () => ref.server.connect({ ...bootstrap, database: ref.database })));
  let next = 0;
  try {
    await Promise.all(
      sessions.map(async (c) => {
        for (let i = next++; i < idents.length; i = next++) await c.query(`VACUUM ANALYZE ${qi(idents[i]!)}.orders, ${qi(idents[i]!)}.events`);
      }),
    );
  } finally {
    await Promise.all(sessions.map((c) => c.end()));
  }
}

async function countMigrated(su: pg.Client, prefix: string): Promise<number> {
  const { rows } = await su.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_indexes WHERE indexname = 'orders_customer_idx' AND schemaname LIKE $1", [`${prefix}%`]);
  return rows[0]!.n;
}

/** One measured pass with the writers running; checks every schema moved. */
async function pass(ref: DbRef, su: pg.Client, sampled: readonly string[], expected: number, k: number, kind: PassFigures["kind"], run: () => Promise<Windows>): Promise<PassFigures> {
  const loadStart = loadavg()[0]!;
  const writers = await Promise.all(sampled.map((t) => startWriter(ref, t)));
  let windows: Windows;
  try {
    // Each writer is writing before the first schema starts.
    while (writers.some((w) => w.writes.length < 5)) await new Promise((r) => setTimeout(r, 10));
    windows = await run();
  } finally {
    await Promise.all(writers.map((w) => w.stop()));
  }
  const migrated = await countMigrated(su, "tenant_b");
  if (migrated !== expected) throw new Error(`${kind} at ${k}: ${migrated} of ${expected} schemas have the new index`);
  return { ...figures(kind, k, windows, writers), loadAverage: { start: round(loadStart, 2), end: round(loadavg()[0]!, 2) } };
}

export async function schemaMigrations(runs: number, log: Log): Promise<Section> {
  const count = envInt("BENCH_SCHEMA_COUNT", ISSUE_SCHEMAS);
  const rows = envInt("BENCH_SCHEMA_ROWS", DEFAULT_ROWS);
  const scaled = count !== ISSUE_SCHEMAS || rows !== ISSUE_ROWS;
  const idents = Array.from({ length: count }, (_, i) => `tenant_b${String(i).padStart(4, "0")}`);
  const sampled = idents.filter((_, i) => i % SAMPLE_EVERY === Math.floor(SAMPLE_EVERY / 2));
  const set = migrations(rows);
  log(`schema-migrations: ${count} schemas x 2 tables x ${rows} rows, concurrency ${CONCURRENCIES.join("/")}, ${sampled.length} writers (BENCH_RUNS=${runs} is not applied: one pass per concurrency)`);

  let server: PgServer | undefined;
  let su: pg.Client | undefined;
  const passes: PassFigures[] = [];
  try {
    server = await startPostgres({ maxConnections: 100, settings: SERVER_SETTINGS });
    const admin = await server.createRdsLikeAdmin("cell_admin");
    const ref: DbRef = { server, admin, database: await server.createDatabase("cell", admin) };
    su = await server.connect({ ...server.bootstrap, database: ref.database });
    let started = performance.now();
    await provisionTenantsInDb(ref, idents, PASSWORD, true);
    log(`schema-migrations: ${count} roles and schemas provisioned in ${round((performance.now() - started) / 1000, 1)} s`);
    const targets: SchemaTarget[] = idents.map((ident) => ({ tenant: ident.slice("tenant_".length), stack: "shared-prod-use1-01", database: clientConfig(ref) }));
    const fill = new SchemaMigrator(set, { perDatabaseConcurrency: 8, ...TIMEOUTS });
    try {
      const r = await fill.migrate(targets, "bench-fill", 1);
      const bad = r.filter((x) => !x.ok);
      if (bad.length > 0) throw new Error(`filling the schemas: ${bad.length} failed, first: ${!bad[0]!.ok ? bad[0]!.error : ""}`);
    } finally {
      await fill.close();
    }
    log(`schema-migrations: filled in ${round((performance.now() - started) / 1000, 1)} s`);
    await vacuumAll(ref, idents);
    await su.query("CHECKPOINT");
    log(`schema-migrations: vacuumed, ready after ${round((performance.now() - started) / 1000, 1)} s`);

    for (const k of CONCURRENCIES) {
      started = performance.now();
      const ours = await pass(ref, su, sampled, count, k, "migrator", () => runMigrator(set, targets, k, "migrate"));
      await runMigrator(set, targets, 8, "rollback");
      const plain = await pass(ref, su, sampled, count, k, "plain", () => runPlain(ref, idents, k, UP));
      await runPlain(ref, idents, 8, DOWN);
      if ((await countMigrated(su, "tenant_b")) !== 0) throw new Error(`after the rollbacks at ${k} some schemas still have the new index`);
      await su.query("CHECKPOINT");
      passes.push(ours, plain);
      log(
        `schema-migrations c=${k}: migrator ${round(ours.schemasPerSecond, 1)} schemas/s, writer during p99 ${round(ours.duringP99Ms, 0)} ms; ` +
          `plain ${round(plain.schemasPerSecond, 1)} schemas/s, p99 ${round(plain.duringP99Ms, 0)} ms (${round((performance.now() - started) / 1000, 1)} s; load average ${ours.loadAverage.start} to ${plain.loadAverage.end})`,
      );
    }
  } finally {
    await su?.end().catch(() => undefined);
    await server?.stop();
  }

  const note = scaled ? `scaled: ${count} schemas x 2 tables x ${rows} rows (the issue's 500 x 10,000: BENCH_SCHEMA_ROWS=10000)` : `${count} schemas x 2 tables x ${rows} rows`;
  const byK = (k: number, kind: PassFigures["kind"]) => passes.find((p) => p.concurrency === k && p.kind === kind)!;
  const rowsOut = CONCURRENCIES.flatMap((k) => {
    const o = byK(k, "migrator");
    const p = byK(k, "plain");
    return [
      [`concurrency ${k}: throughput`, `${round(o.schemasPerSecond, 1)} schemas/s`, `${round(o.wallMs / 1000, 1)} s; per schema p50 ${round(o.perSchemaP50Ms, 0)} ms; load average ${o.loadAverage.start} to ${o.loadAverage.end}; ${note}`],
      [`concurrency ${k}: writer lock wait during own schema, p99`, `${round(o.duringP99Ms, 0)} ms`, `p50 ${round(o.duringP50Ms, 0)}, max ${round(o.duringMaxMs, 0)} ms over ${o.duringWrites} writes; outside own schema p99 ${round(o.outsideP99Ms, 0)} ms (${o.outsideWrites} writes); ${o.failedWrites} failed`],
      [`concurrency ${k}: baseline plain loop, throughput`, `${round(p.schemasPerSecond, 1)} schemas/s`, `same SQL, one transaction per schema, nothing else; migrator/plain ${round(o.schemasPerSecond / p.schemasPerSecond, 2)}`],
      [`concurrency ${k}: baseline plain loop, writer lock wait p99`, `${round(p.duringP99Ms, 0)} ms`, `max ${round(p.duringMaxMs, 0)} ms over ${p.duringWrites} writes; outside p99 ${round(p.outsideP99Ms, 0)} ms`],
    ];
  });
  const targets = CONCURRENCIES.flatMap((k) => {
    const o = byK(k, "migrator");
    const p = byK(k, "plain");
    return [
      target(`schema migrations, concurrency ${k}: writer lock wait during its own schema's migration, p99`, o.duringP99Ms, "ms", "<=", LOCK_WAIT_P99_TARGET_MS),
      target(`schema migrations, concurrency ${k}: throughput migrator / plain loop`, o.schemasPerSecond / p.schemasPerSecond, "x", ">=", OVERHEAD_TARGET_RATIO),
    ];
  });
  targets.push(target("schema migrations: throughput at concurrency 4 / concurrency 1", byK(4, "migrator").schemasPerSecond / byK(1, "migrator").schemasPerSecond, "x", ">=", 1));
  return {
    name: "schema-migrations",
    data: {
      schemas: count, rowsPerTable: rows, scaledDown: scaled, writers: sampled.length, writeIntervalMs: WRITE_INTERVAL_MS, timeouts: TIMEOUTS,
      migration: UP, passes,
      serverSettings: SERVER_SETTINGS,
      note: "one pass per concurrency and kind on one embedded PostgreSQL 17; every schema rolled back between passes (not measured); nothing deployed",
    },
    rows: rowsOut,
    targets,
  };
}
