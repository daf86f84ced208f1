/**
 * The cutover bench's same-run comparison (BENCHMARKS.md section 11): the upgrade's bulk copy and
 * `pg_dump | pg_restore` of the same schema and data, between the same two PostgreSQL 15 servers,
 * alternating, in one `npm run bench -- cutover`. PostgreSQL 15 because Debian's pg_dump is 15 and
 * refuses a newer server (bench/lib/pg15.ts); the bench's upgrade itself runs on 17.
 *
 * - ours: what the `copy.data` step does for one env (cdc/capture.ts): publication and slot with an
 *   exported snapshot, the bulk copy in that snapshot with its full verification, the first
 *   catch-up of the stream; the slot dropped afterwards (not timed);
 * - theirs: `pg_dump -Fc -n <schema> | pg_restore --no-owner` into an empty database, the command a
 *   person would type (default compression, one pipe, so no `-j`).
 * Both into a fresh database of the second server, with no writer on the source (pg_dump has no
 * stream to catch up with), as the servers' superuser (PostgreSQL 15 has no `GRANT ... WITH SET`,
 * which the RDS-like master of the 17 servers relies on).
 */
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { catchUp, startCapture, stopCapture, type CaptureTarget } from "../../automation/lifecycle/pg/cdc/capture.ts";
import { slotName } from "../../automation/lifecycle/pg/cdc/slot.ts";
import { prepareSession } from "../../automation/lifecycle/pg/sql.ts";
import { startPostgres, type PgServer } from "../../test/support/postgres.ts";
import { createApplicationSchema, qi, type DbRef } from "../../test/lifecycle/tenantDb.ts";
import { summarize } from "../lib/stats.ts";
import { pg15Binaries, pgDump15 } from "../lib/pg15.ts";

type Log = (s: string) => void;

export interface ComparisonSample {
  sizeMiB: number;
  tableBytes: number;
  /** Milliseconds of each run (ours first in even pairs, pg_dump's first in odd ones). */
  oursMs: number[];
  pgDumpMs: number[];
  oursMiBs: number;
  pgDumpMiBs: number;
}

export type Comparison = { serverVersion: string; pgDumpVersion: string; samples: ComparisonSample[] } | { notMeasured: string };

const TENANT_PASSWORD = "bench-pg15-tenant";

export interface Pg15Pair {
  source: PgServer;
  target: PgServer;
  serverVersion: string;
  pgDumpVersion: string;
  stop(): Promise<void>;
}

/** Starts the two PostgreSQL 15 servers, or says why the comparison cannot run (with how to fix it). */
export async function startPg15Pair(log: Log): Promise<Pg15Pair | { notMeasured: string }> {
  const tools = pgDump15();
  if ("missing" in tools) return { notMeasured: tools.missing };
  const binaries = pg15Binaries(log);
  const [source, target] = await Promise.all([startPostgres({ binaries, logicalReplication: true }), startPostgres({ binaries })]);
  return { source, target, serverVersion: binaries.version, pgDumpVersion: tools.version, stop: async () => void (await Promise.all([source.stop(), target.stop()])) };
}

/**
 * One size: the tenant schema (the lifecycle tests' application tables plus `fill`'s payload) on
 * the source, then `rounds` pairs of runs, ours and pg_dump's, each into a fresh database.
 */
export async function compareAtSize(
  pair: Pg15Pair, sizeMiB: number, rounds: number, fill: (ref: DbRef, ident: string, mib: number, password: string) => Promise<{ rows: number; bytes: number }>, log: Log,
): Promise<ComparisonSample> {
  const su = pair.source.bootstrap;
  const ident = `tenant_cmp${Math.round(sizeMiB)}`;
  const srcDb = `cmp_src_${Math.round(sizeMiB)}`;
  await asSuperuser(pair.source, "postgres", [`CREATE DATABASE ${qi(srcDb)}`]);
  await asSuperuser(pair.source, srcDb, [`CREATE ROLE ${qi(ident)} LOGIN PASSWORD '${TENANT_PASSWORD}'`, `CREATE SCHEMA ${qi(ident)} AUTHORIZATION ${qi(ident)}`]);
  await asSuperuser(pair.target, "postgres", [`DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${ident}') THEN CREATE ROLE ${qi(ident)}; END IF; END$$`]);
  const ref: DbRef = { server: pair.source, admin: su, database: srcDb };
  await createApplicationSchema(ref, ident, TENANT_PASSWORD, 50);
  const { bytes } = await fill(ref, ident, sizeMiB, TENANT_PASSWORD);
  const oursMs: number[] = [];
  const pgDumpMs: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // Alternating, and which goes first too: neither always finds the other's leftovers (caches, WAL, checkpoints).
    const a = () => ours(pair, srcDb, ident, `cmp_ours_${Math.round(sizeMiB)}_${i}`).then((ms) => void oursMs.push(ms));
    const b = () => theirs(pair, srcDb, ident, `cmp_dump_${Math.round(sizeMiB)}_${i}`).then((ms) => void pgDumpMs.push(ms));
    if (i % 2 === 0) await a().then(b);
    else await b().then(a);
    // 1 GiB each: the databases go once measured.
    await asSuperuser(pair.target, "postgres", [`DROP DATABASE ${qi(`cmp_ours_${Math.round(sizeMiB)}_${i}`)}`, `DROP DATABASE ${qi(`cmp_dump_${Math.round(sizeMiB)}_${i}`)}`]);
    log(`cutover ${sizeMiB} MiB on PostgreSQL ${pair.serverVersion}: bulk copy ${Math.round(oursMs.at(-1)!)} ms, pg_dump | pg_restore ${Math.round(pgDumpMs.at(-1)!)} ms`);
  }
  await asSuperuser(pair.source, "postgres", [`DROP DATABASE ${qi(srcDb)}`]);
  const mibs = (ms: number) => bytes / 2 ** 20 / (ms / 1000);
  return { sizeMiB, tableBytes: bytes, oursMs, pgDumpMs, oursMiBs: mibs(summarize(oursMs).median), pgDumpMiBs: mibs(summarize(pgDumpMs).median) };
}

async function asSuperuser(server: PgServer, database: string, statements: readonly string[]): Promise<void> {
  const c = await server.connect({ ...server.bootstrap, database });
  try {
    for (const sql of statements) await c.query(sql);
  } finally {
    await c.end();
  }
}

/** A fresh target database, as the dedicated one is (synchronous_commit off like the bench's dedicated database). */
async function freshTarget(pair: Pg15Pair, name: string): Promise<void> {
  await asSuperuser(pair.target, "postgres", [`CREATE DATABASE ${qi(name)}`, `ALTER DATABASE ${qi(name)} SET synchronous_commit = off`]);
}

async function ours(pair: Pg15Pair, srcDb: string, ident: string, dstDb: string): Promise<number> {
  await freshTarget(pair, dstDb);
  await asSuperuser(pair.target, dstDb, [`CREATE SCHEMA ${qi(ident)} AUTHORIZATION ${qi(ident)}`]);
  const cell = await pair.source.connect({ ...pair.source.bootstrap, database: srcDb });
  const dedicated = await pair.target.connect({ ...pair.target.bootstrap, database: dstDb });
  const workflowId = randomUUID();
  const t: CaptureTarget = {
    cell, dedicated, schema: ident, owner: ident, workflowId, env: "bench", tenant: ident, slot: slotName(workflowId, "bench"),
    replication: { host: pair.source.host, port: pair.source.port, user: pair.source.bootstrap.user, password: pair.source.bootstrap.password, database: srcDb },
  };
  try {
    await prepareSession(cell);
    await prepareSession(dedicated);
    const started = performance.now();
    await startCapture(t, 60_000);
    await catchUp(t, 60_000);
    const ms = performance.now() - started;
    await stopCapture(t);
    return ms;
  } finally {
    await cell.end();
    await dedicated.end();
  }
}

function theirs(pair: Pg15Pair, srcDb: string, ident: string, dstDb: string): Promise<number> {
  return freshTarget(pair, dstDb).then(() => {
    const s = pair.source;
    const d = pair.target;
    const q = (a: string | number) => `'${String(a).replace(/'/g, "'\\''")}'`;
    const started = performance.now();
    execFileSync("bash", ["-o", "pipefail", "-c",
      `PGPASSWORD=${q(s.bootstrap.password)} pg_dump -h ${q(s.host)} -p ${q(s.port)} -U ${q(s.bootstrap.user)} -d ${q(srcDb)} -Fc -n ${q(ident)} | ` +
      `PGPASSWORD=${q(d.bootstrap.password)} pg_restore --no-owner --exit-on-error -h ${q(d.host)} -p ${q(d.port)} -U ${q(d.bootstrap.user)} -d ${q(dstDb)}`,
    ], { stdio: "pipe" });
    return performance.now() - started;
  });
}
