/**
 * Compares, syncs and dumps a tenant schema between two PostgreSQL servers inside the control
 * plane, with COPY in text format streamed from one connection to the other (pg-copy-streams).
 * The bulk copy itself (`copySchema`, binary where it can, verified against the bytes sent) is in
 * bulkCopy.ts.
 *
 * - `syncDelta`: the final delta at cutover, once writes to the source have stopped. For each
 *   table with a key it ships (key, md5 of the row) from the source into a temporary table on the
 *   target, deletes target rows whose hash differs or whose key is gone, and copies the missing
 *   keys' rows from the source. Rows inserted, updated or deleted since the bulk copy are all
 *   caught, and only they travel. A table without any key is compared by checksum and recopied
 *   when it differs. Then sequences are set, foreign keys added, and everything verified again.
 * - `tableChecksums`: per table, the row count and an order-independent digest (the sum of the
 *   md5 of every row's text, as two 64-bit halves), computed by each server on its own data.
 *
 * Needs nothing from RDS beyond the master user (no logical replication, no parameter-group
 * change, no reboot): it reads and writes with the privileges of the tenant's role on both sides
 * (see `ensureMember`) and hands what it creates to the target schema's owner.
 */
import { createHash } from "node:crypto";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import { from as copyFrom, to as copyTo } from "pg-copy-streams";
import {
  copyColumns, describeSchema, emptySchema, foreignKeyDdl, postDataDdl, preDataDdl, readSchema, sequenceValues, setvalSql,
  assertCopyable, type SchemaDef, type TableDef,
} from "./catalog.ts";
import { qi, qn } from "./sql.ts";

export interface TableChecksum {
  table: string;
  rows: number;
  digest: string;
}

export interface VerifyReport {
  tables: TableChecksum[];
  sequences: Record<string, string>;
}

export class VerificationError extends Error {
  constructor(readonly schema: string, readonly differences: readonly string[]) {
    super(`copy of ${schema} does not match its source: ${differences.join("; ")}`);
  }
}

/** Streams `COPY ... TO STDOUT` on `from` into `COPY ... FROM STDIN` on `to`; returns the rows written. */
export async function streamCopy(from: pg.ClientBase, toClient: pg.ClientBase, selectSql: string, targetTable: string): Promise<number> {
  const source = from.query(copyTo(`COPY (${selectSql}) TO STDOUT`));
  const sink = toClient.query(copyFrom(`COPY ${targetTable} FROM STDIN`));
  await pipeline(source, sink);
  return sink.rowCount ?? 0;
}

function columnList(cols: readonly string[]): string {
  return cols.map(qi).join(", ");
}

/** Row count and digest of every table of `d`, computed on the session's server. */
export async function tableChecksums(c: pg.ClientBase, d: SchemaDef): Promise<TableChecksum[]> {
  const out: TableChecksum[] = [];
  for (const t of d.tables) {
    const { rows } = await c.query<{ n: string; s1: string; s2: string }>(
      `SELECT count(*)::text AS n,
              coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0)::text AS s1,
              coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)::text AS s2
         FROM (SELECT md5(r::text) AS h FROM ${qn(d.schema, t.name)} r) x`,
    );
    const r = rows[0]!;
    out.push({ table: t.name, rows: Number(r.n), digest: createHash("sha256").update(`${r.n}/${r.s1}/${r.s2}`).digest("hex").slice(0, 32) });
  }
  return out;
}

async function report(c: pg.ClientBase, d: SchemaDef): Promise<VerifyReport> {
  const seqs = await sequenceValues(c, d);
  return {
    tables: await tableChecksums(c, d),
    sequences: Object.fromEntries([...seqs].map(([k, v]) => [k, `${v.last}/${v.called}`])),
  };
}

/**
 * Compares structure, rows and (when `sequences`) sequence values of `schema` on both sides.
 * Throws VerificationError listing every difference; returns the source's report otherwise.
 */
export async function verifyCopy(
  source: pg.ClientBase, target: pg.ClientBase, schema: string, opts: { sequences: boolean; foreignKeys: boolean },
): Promise<VerifyReport> {
  const sd = await readSchema(source, schema);
  const td = await readSchema(target, schema);
  const differences: string[] = [];
  const strip = (d: SchemaDef): SchemaDef =>
    opts.foreignKeys ? d : { ...d, tables: d.tables.map((t) => ({ ...t, constraints: t.constraints.filter((k) => k.type !== "f") })) };
  if (describeSchema(strip(sd)) !== describeSchema(strip(td))) differences.push("table, column, constraint, index or sequence definitions differ");
  const a = await report(source, sd);
  const b = await report(target, sd);
  for (const s of a.tables) {
    const t = b.tables.find((x) => x.table === s.table);
    if (!t || t.rows !== s.rows || t.digest !== s.digest) {
      differences.push(`table ${s.table}: source ${s.rows} rows (${s.digest}), target ${t ? `${t.rows} rows (${t.digest})` : "missing"}`);
    }
  }
  if (opts.sequences) {
    for (const [name, v] of Object.entries(a.sequences)) {
      if (b.sequences[name] !== v) differences.push(`sequence ${name}: source ${v}, target ${b.sequences[name] ?? "missing"}`);
    }
  }
  if (differences.length > 0) throw new VerificationError(schema, differences);
  return a;
}

async function setSequences(source: pg.ClientBase, target: pg.ClientBase, d: SchemaDef): Promise<void> {
  for (const [name, v] of await sequenceValues(source, d)) await target.query(setvalSql(d.schema, name, v));
}

export interface DeltaResult {
  tables: TableChecksum[];
  /** Per table: rows deleted from and inserted into the target. */
  changes: Record<string, { deleted: number; inserted: number }>;
}

/**
 * The final delta, for a source nobody writes to any more. Runs in the caller's transactions
 * (the target's must already hold its locks); adds the foreign keys and verifies everything,
 * sequences included. Idempotent: on a target already in sync it changes nothing.
 */
export async function syncDelta(source: pg.ClientBase, target: pg.ClientBase, schema: string): Promise<DeltaResult> {
  await assertCopyable(source, schema);
  const d = await readSchema(source, schema);
  const changes: DeltaResult["changes"] = {};
  for (const t of d.tables) changes[t.name] = t.key.length > 0 ? await syncKeyed(source, target, schema, t) : await syncUnkeyed(source, target, schema, d, t);
  await setSequences(source, target, d);
  const present = new Set((await readSchema(target, schema)).tables.flatMap((t) => t.constraints.filter((k) => k.type === "f").map((k) => `${t.name}.${k.name}`)));
  for (const fk of foreignKeyDdl(d)) if (!present.has(`${fk.table}.${fk.name}`)) await target.query(fk.sql);
  const verified = await verifyCopy(source, target, schema, { sequences: true, foreignKeys: true });
  return { tables: verified.tables, changes };
}

async function syncKeyed(source: pg.ClientBase, target: pg.ClientBase, schema: string, t: TableDef): Promise<{ deleted: number; inserted: number }> {
  const keyTypes = t.key.map((k) => {
    const col = t.columns.find((c) => c.name === k)!;
    return `${qi(k)} ${col.type}${col.collation ? ` COLLATE ${col.collation}` : ""}`;
  });
  const keys = columnList(t.key);
  const match = (a: string, b: string) => t.key.map((k) => `${a}.${qi(k)} = ${b}.${qi(k)}`).join(" AND ");
  await target.query(`CREATE TEMP TABLE lc_src_hash (${keyTypes.join(", ")}, h text NOT NULL) ON COMMIT DROP`);
  await target.query(`CREATE TEMP TABLE lc_need (${keyTypes.join(", ")}) ON COMMIT DROP`);
  try {
    await streamCopy(source, target, `SELECT ${keys}, md5(r::text) FROM ${qn(schema, t.name)} r`, "pg_temp.lc_src_hash");
    await target.query("ANALYZE pg_temp.lc_src_hash");
    const del = await target.query(
      `DELETE FROM ${qn(schema, t.name)} r WHERE NOT EXISTS (SELECT 1 FROM pg_temp.lc_src_hash s WHERE ${match("s", "r")} AND s.h = md5(r::text))`,
    );
    const need = await target.query(
      `INSERT INTO pg_temp.lc_need SELECT ${t.key.map((k) => `s.${qi(k)}`).join(", ")} FROM pg_temp.lc_src_hash s
        WHERE NOT EXISTS (SELECT 1 FROM ${qn(schema, t.name)} r WHERE ${match("s", "r")})`,
    );
    let inserted = 0;
    if ((need.rowCount ?? 0) > 0) {
      await source.query(`CREATE TEMP TABLE lc_keys (${keyTypes.join(", ")})`);
      try {
        await streamCopy(target, source, `SELECT ${keys} FROM pg_temp.lc_need`, "pg_temp.lc_keys");
        const cols = copyColumns(t);
        inserted = await streamCopy(
          source, target,
          `SELECT ${cols.map((c) => `r.${qi(c)}`).join(", ")} FROM ${qn(schema, t.name)} r JOIN pg_temp.lc_keys k ON ${match("k", "r")}`,
          `${qn(schema, t.name)} (${columnList(cols)})`,
        );
      } finally {
        await source.query("DROP TABLE IF EXISTS pg_temp.lc_keys");
      }
    }
    return { deleted: del.rowCount ?? 0, inserted };
  } finally {
    await target.query("DROP TABLE IF EXISTS pg_temp.lc_src_hash, pg_temp.lc_need");
  }
}

async function syncUnkeyed(
  source: pg.ClientBase, target: pg.ClientBase, schema: string, d: SchemaDef, t: TableDef,
): Promise<{ deleted: number; inserted: number }> {
  const one: SchemaDef = { ...d, tables: [t] };
  const [a] = await tableChecksums(source, one);
  const [b] = await tableChecksums(target, one);
  if (a!.digest === b!.digest) return { deleted: 0, inserted: 0 };
  const del = await target.query(`DELETE FROM ${qn(schema, t.name)}`);
  const cols = copyColumns(t);
  const inserted = await streamCopy(source, target, `SELECT ${columnList(cols)} FROM ${qn(schema, t.name)}`, `${qn(schema, t.name)} (${columnList(cols)})`);
  return { deleted: del.rowCount ?? 0, inserted };
}

// --- dumps -------------------------------------------------------------------------------------------

/**
 * A plain-SQL dump of the schema in psql's format (DDL, `COPY ... FROM stdin` blocks, setval),
 * restorable with `psql -v ON_ERROR_STOP=1 -f` or `restoreDump`. Taken in one REPEATABLE READ
 * snapshot held until the stream ends. Marker comments (`--@<nonce> ...`) delimit the sections so
 * `restoreDump` needs no SQL parser; psql ignores them.
 */
export function dumpSchema(source: pg.ClientBase, schema: string, label: string, onChecksums?: (tables: TableChecksum[]) => void): Readable {
  const nonce = createHash("sha256").update(`${label}/${schema}`).digest("hex").slice(0, 12);
  const mark = `--@${nonce}`;
  async function* generate(): AsyncGenerator<Buffer | string> {
    await source.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    try {
      await assertCopyable(source, schema);
      const d = await readSchema(source, schema);
      // The checksums of exactly what this dump holds (same snapshot): deletion compares them with
      // the live tables so nothing written after the dump is dropped unseen.
      if (onChecksums) onChecksums(await tableChecksums(source, d));
      yield `-- saas-tenancy dump of schema ${schema} (${label}). Restore: psql -v ON_ERROR_STOP=1 -f <file> (or restoreDump).\n`;
      yield `${mark} marker\n`;
      yield `${mark} sql\nSET client_encoding = 'UTF8';\n${mark} sql\nSET standard_conforming_strings = on;\n`;
      yield `${mark} sql\nCREATE SCHEMA IF NOT EXISTS ${qi(schema)};\n`;
      for (const sql of preDataDdl(d)) yield `${mark} sql\n${sql};\n`;
      for (const t of d.tables) {
        const cols = copyColumns(t);
        yield `${mark} copy\nCOPY ${qn(schema, t.name)} (${columnList(cols)}) FROM stdin;\n`;
        for await (const chunk of source.query(copyTo(`COPY (SELECT ${columnList(cols)} FROM ${qn(schema, t.name)}) TO STDOUT`))) {
          yield chunk as Buffer;
        }
        yield "\\.\n";
      }
      for (const sql of [...postDataDdl(d), ...foreignKeyDdl(d).map((f) => f.sql)]) yield `${mark} sql\n${sql};\n`;
      for (const [name, v] of await sequenceValues(source, d)) yield `${mark} sql\n${setvalSql(schema, name, v)};\n`;
      yield `${mark} end\n`;
    } finally {
      await source.query("ROLLBACK").catch(() => undefined);
    }
  }
  return Readable.from(generate());
}

/** Splits a byte stream into lines (keeping the newline). */
function lines(): Transform {
  let rest = "";
  return new Transform({
    readableObjectMode: true,
    transform(chunk: Buffer, _enc, done) {
      const text = rest + chunk.toString("utf8");
      const parts = text.split("\n");
      rest = parts.pop() ?? "";
      for (const p of parts) this.push(`${p}\n`);
      done();
    },
    flush(done) {
      if (rest) this.push(rest);
      done();
    },
  });
}

/** Restores a `dumpSchema` stream into the session's database (in the caller's transaction, if any). */
export async function restoreDump(target: pg.ClientBase, dump: Readable): Promise<void> {
  let mark: string | undefined;
  let mode: "head" | "sql" | "copy-head" | "copy-data" | "end" = "head";
  let buf = "";
  let copyLines: string[] = [];
  const flushSql = async () => {
    const sql = buf.trim();
    buf = "";
    if (sql) await target.query(sql.replace(/;$/, ""));
  };
  for await (const raw of dump.pipe(lines())) {
    const line = raw as string;
    if (mode === "copy-data") {
      if (line === "\\.\n") {
        const stmt = buf.trim().replace(/;$/, "").replace(/FROM stdin$/, "FROM STDIN");
        buf = "";
        await pipeline(Readable.from(copyLines), target.query(copyFrom(stmt)));
        copyLines = [];
        mode = "sql";
      } else copyLines.push(line);
      continue;
    }
    const m = /^(--@[0-9a-f]{12}) (marker|sql|copy|end)\n$/.exec(line);
    if (m && (mark === undefined || m[1] === mark)) {
      mark = m[1];
      if (mode === "sql") await flushSql();
      if (m[2] === "end") mode = "end";
      else if (m[2] === "copy") mode = "copy-head";
      else if (m[2] === "sql") mode = "sql";
      continue;
    }
    if (mode === "copy-head") {
      buf = line;
      mode = "copy-data";
    } else if (mode === "sql") buf += line;
  }
  if (mode !== "end") throw new Error("the dump is truncated: its end marker is missing");
}

export class ChangedSinceBackupError extends Error {}

/**
 * Empties the schema (see emptySchema) only if its tables still hold exactly what the final
 * backup holds: all tables locked against writes, checksums compared with `expected`, dropped in
 * the same transaction. The caller's session must not be in a transaction.
 */
export async function emptySchemaIfUnchanged(c: pg.ClientBase, schema: string, expected: readonly TableChecksum[]): Promise<number> {
  await c.query("BEGIN");
  try {
    const d = await readSchema(c, schema);
    if (d.tables.length === 0 && d.sequences.length === 0 && d.enums.length === 0) {
      // Emptied already: the drop below is one transaction, so this is a re-run after it committed.
      await c.query("COMMIT");
      return 0;
    }
    const tables = d.tables.map((t) => qn(schema, t.name));
    if (tables.length > 0) await c.query(`LOCK TABLE ${tables.join(", ")} IN ACCESS EXCLUSIVE MODE`);
    const now = await tableChecksums(c, d);
    const same = (a: TableChecksum, b: TableChecksum) => a.table === b.table && a.rows === b.rows && a.digest === b.digest;
    const changed = now.filter((t) => !expected.some((e) => same(e, t))).map((t) => t.table);
    const gone = expected.filter((e) => !now.some((t) => t.table === e.table)).map((e) => e.table);
    if (changed.length > 0 || gone.length > 0) {
      throw new ChangedSinceBackupError(
        `schema ${schema} changed after its final backup (tables ${[...changed, ...gone].join(", ")}); nothing was dropped. ` +
          "Take the backup again (re-run the backup step) before deleting",
      );
    }
    const n = await emptySchema(c, schema);
    await c.query("COMMIT");
    return n;
  } catch (err) {
    await c.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}
