/**
 * The bulk copy of a tenant schema between two PostgreSQL servers, and its full verification
 * (docs/lifecycle.md, "The bulk copy"). What makes it as fast as `pg_dump | pg_restore`:
 *
 * - Each table travels as one `COPY table TO STDOUT` piped into `COPY table FROM STDIN (FREEZE)`
 *   as the server framed it (rawCopy.ts: the CopyData messages pass through unchanged, nothing
 *   copied or reframed per row in this process), in binary format when every column is of a
 *   built-in type whose binary form carries no server-specific OID (BINARY_SAFE_TYPES), in text
 *   format otherwise (enums, arrays of user types, anything else). FREEZE: the table was created in the same transaction, so its
 *   rows are written frozen and all-visible, and the verification's scan (and every later one)
 *   does not rewrite each page to set hint bits.
 * - Constraints and indexes are built after the data, as pg_restore does (catalog.ts, postDataDdl).
 * - The verification reads each side once, in COPY form: the source's CopyData messages are
 *   hashed (sha256) as they stream to the target, and the target's table is read back with the
 *   same COPY right after its load and hashed the same way. A freshly loaded table is scanned in
 *   load order (one COPY, one writer, synchronize_seqscans off), so equal digests mean the target
 *   holds exactly the bytes the source sent, in the source's text or binary form of every value
 *   (the messages' framing is hashed too: equal framed streams have equal contents; a server that
 *   framed rows differently would send the table to the order-independent comparison below). When
 *   the two digests differ with equal row counts the table is compared again order-independently, by each
 *   server's md5 of every row's text (copy.ts, tableChecksums), before a difference is reported:
 *   an unexpected scan order costs time, never a false failure.
 *
 * Generated columns are not copied (the target computes them from the copied columns with the
 * same expression, which the structure comparison checks).
 */
import { createHash, type Hash } from "node:crypto";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import {
  assertCopyable, copyColumns, describeSchema, emptySchema, foreignKeyDdl, ownershipDdl, postDataDdl, preDataDdl, readSchema, sequenceValues, setvalSql,
  type SchemaDef, type TableDef,
} from "./catalog.ts";
import { tableChecksums, VerificationError, type TableChecksum } from "./copy.ts";
import { CopyIn, CopyOut } from "./rawCopy.ts";
import { qi, ql, qn } from "./sql.ts";

/**
 * Built-in types whose binary COPY form is the value itself, the same on every server of every
 * supported major version. Left out on purpose: OID-bearing types (reg*, oid: the binary form is
 * the number, the text form the name the target resolves again), enums and every user type
 * (arrays of them carry the element type's OID, different on each server), and the rest (text
 * format is always correct, only slower).
 */
export const BINARY_SAFE_TYPES = [
  "boolean", "smallint", "integer", "bigint", "real", "double precision", "numeric", "money",
  "text", "character varying", "character", "name", "bytea", "uuid", "json", "jsonb",
  "date", "time without time zone", "time with time zone", "timestamp without time zone", "timestamp with time zone", "interval",
  "inet", "cidr", "macaddr", "macaddr8", "bit", "bit varying",
] as const;

export interface CopyResult {
  /** Per table: rows copied and the sha256 of its COPY stream (the same on both sides). */
  tables: TableChecksum[];
  rowsCopied: number;
  /** Tables copied in binary format (the others in text). */
  binary: string[];
  /** Tables whose read-back came in another order than they were sent, found equal order-independently. */
  reordered: string[];
}

export interface CopyOptions {
  /**
   * An exported snapshot to read the source in (SET TRANSACTION SNAPSHOT): the one a change
   * capture slot was created with (cdc/slot.ts), so the copy and the stream meet exactly.
   */
  snapshot?: string;
  /** Add the foreign keys too (the change stream applies in commit order and keeps them true). */
  foreignKeys?: boolean;
  /** Runs in the target's transaction just before it commits (to record the stream's start with the copy). */
  beforeCommit?: (target: pg.ClientBase) => Promise<void>;
  /**
   * Runs in the target's transaction after a table's load, before its verification (tests change
   * a row here to show the verification catches it).
   */
  afterLoad?: (target: pg.ClientBase, table: string) => Promise<void>;
  /**
   * An operator's cancel: the COPY streams are destroyed (the target's COPY gets a CopyFail) and no
   * further table starts; the caller's sessions are ended by the server (pg/sessions.ts, openSession).
   */
  signal?: AbortSignal;
}

/** The tables of `d` whose copied columns are all of BINARY_SAFE_TYPES (or arrays of them). */
export async function binaryTables(c: pg.ClientBase, d: SchemaDef): Promise<Set<string>> {
  const { rows } = await c.query<{ t: string }>(
    `SELECT cl.relname AS t
       FROM pg_class cl JOIN pg_namespace n ON n.oid = cl.relnamespace
       JOIN pg_attribute a ON a.attrelid = cl.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
       JOIN pg_type ty ON ty.oid = a.atttypid
      WHERE n.nspname = $1 AND cl.relkind = 'r'
      GROUP BY cl.relname
     HAVING bool_and(ty.oid = ANY($2::regtype[]::oid[]) OR (ty.typelem <> 0 AND ty.typlen = -1 AND ty.typelem = ANY($2::regtype[]::oid[])))`,
    [d.schema, BINARY_SAFE_TYPES],
  );
  return new Set(rows.map((r) => r.t));
}

/** A pass-through that hashes what flows through it. */
function hashing(hash: Hash): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
}

function digestOf(hash: Hash): string {
  return hash.digest("hex").slice(0, 32);
}

function copyTarget(schema: string, t: TableDef): string {
  return `${qn(schema, t.name)} (${copyColumns(t).map(qi).join(", ")})`;
}

/** Streams one table (whole, in the source's transaction) into the target's table of the same name; returns rows and the stream's digest. */
async function loadTable(source: pg.ClientBase, target: pg.ClientBase, schema: string, t: TableDef, binary: boolean, signal?: AbortSignal): Promise<{ rows: number; loaded: number; digest: string }> {
  const fmt = binary ? "(FORMAT binary)" : "";
  const hash = createHash("sha256");
  const out = source.query(new CopyOut(`COPY ${copyTarget(schema, t)} TO STDOUT ${fmt}`));
  const sink = target.query(new CopyIn(`COPY ${copyTarget(schema, t)} FROM STDIN ${binary ? "(FORMAT binary, FREEZE)" : "(FREEZE)"}`));
  await pipeline(out, hashing(hash), sink, ...(signal ? [{ signal }] : []));
  return { rows: out.rowCount, loaded: sink.rowCount, digest: digestOf(hash) };
}

/** The target's table read back in the same COPY form and hashed the same way. */
async function readBack(target: pg.ClientBase, schema: string, t: TableDef, binary: boolean): Promise<{ rows: number; digest: string }> {
  const hash = createHash("sha256");
  const out = target.query(new CopyOut(`COPY ${copyTarget(schema, t)} TO STDOUT ${binary ? "(FORMAT binary)" : ""}`));
  for await (const chunk of out) hash.update(chunk as Buffer);
  return { rows: out.rowCount, digest: digestOf(hash) };
}

/**
 * The bulk copy. `source` and `target` are prepared sessions (prepareSession) whose user is a
 * member of the schema owner on each side (ensureMember); both are used inside transactions
 * opened here, and no other transaction may be open on them. Whatever the target schema held is
 * dropped first (it holds only what an earlier attempt of this copy left: the dedicated app does
 * not serve from it before cutover), so a re-run starts clean. One REPEATABLE READ snapshot of the
 * source (as pg_dump takes), the target rebuilt, loaded and verified in one transaction: the
 * target holds either a complete, verified copy of that snapshot or nothing.
 */
export async function copySchema(source: pg.ClientBase, target: pg.ClientBase, schema: string, owner: string, opts: CopyOptions = {}): Promise<CopyResult> {
  await source.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  try {
    if (opts.snapshot !== undefined) await source.query(`SET TRANSACTION SNAPSHOT ${ql(opts.snapshot)}`);
    await assertCopyable(source, schema);
    const d = await readSchema(source, schema);
    const binary = await binaryTables(source, d);
    await target.query("BEGIN");
    try {
      // The read-back must see the table in load order: no scan may start mid-table.
      await target.query("SET LOCAL synchronize_seqscans = off");
      await emptySchema(target, schema);
      for (const sql of preDataDdl(d)) await target.query(sql);
      const tables: TableChecksum[] = [];
      const differences: string[] = [];
      const reordered: string[] = [];
      let rowsCopied = 0;
      for (const t of d.tables) {
        opts.signal?.throwIfAborted();
        const sent = await loadTable(source, target, schema, t, binary.has(t.name), opts.signal);
        rowsCopied += sent.loaded;
        await opts.afterLoad?.(target, t.name);
        const held = await readBack(target, schema, t, binary.has(t.name));
        tables.push({ table: t.name, rows: sent.rows, digest: sent.digest });
        if (sent.loaded === sent.rows && held.rows === sent.rows && held.digest === sent.digest) continue;
        const difference = held.rows === sent.rows ? await unorderedDifference(source, target, d, t) : `table ${t.name}: source ${sent.rows} rows, target ${held.rows} rows (${sent.loaded} loaded)`;
        if (difference) differences.push(difference);
        else reordered.push(t.name);
      }
      for (const sql of postDataDdl(d)) await target.query(sql);
      for (const sql of ownershipDdl(d, owner)) await target.query(sql);
      // Sequences are not transactional: the snapshot does not freeze them, and the application
      // moves them on during the copy. They are set again and verified at cutover, writes stopped.
      for (const [name, v] of await sequenceValues(source, d)) await target.query(setvalSql(schema, name, v));
      if (opts.foreignKeys) for (const fk of foreignKeyDdl(d)) await target.query(fk.sql);
      const strip = (x: SchemaDef): SchemaDef =>
        opts.foreignKeys ? x : { ...x, tables: x.tables.map((t) => ({ ...t, constraints: t.constraints.filter((k) => k.type !== "f") })) };
      if (describeSchema(strip(d)) !== describeSchema(strip(await readSchema(target, schema)))) differences.unshift("table, column, constraint, index or sequence definitions differ");
      if (differences.length > 0) throw new VerificationError(schema, differences);
      await opts.beforeCommit?.(target);
      await target.query("COMMIT");
      return { tables, rowsCopied, binary: [...binary].sort(), reordered };
    } catch (err) {
      await target.query("ROLLBACK").catch(() => undefined);
      throw err;
    }
  } finally {
    await source.query("ROLLBACK").catch(() => undefined);
  }
}

/** The order-independent comparison of one table (each server hashes its own rows), or undefined when equal. */
async function unorderedDifference(source: pg.ClientBase, target: pg.ClientBase, d: SchemaDef, t: TableDef): Promise<string | undefined> {
  const one: SchemaDef = { ...d, tables: [t] };
  const [[a], [b]] = await Promise.all([tableChecksums(source, one), tableChecksums(target, one)]);
  if (a!.rows === b!.rows && a!.digest === b!.digest) return undefined;
  return `table ${t.name}: source ${a!.rows} rows (${a!.digest}), target ${b!.rows} rows (${b!.digest})`;
}
