/**
 * The application's tenant schema migrations as files (docs/schema-migrations.md): a directory of
 * `NNNN_name.up.sql` files, each with an optional `NNNN_name.down.sql`, ordered by their number
 * and identified by the sha256 of the up file. Every problem with the directory is collected and
 * reported at once, each naming the file and the fix.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadSchemaMigrationsConfig, type SchemaMigrationsConfig } from "../../infra/model/schemaMigrations.ts";

export const MIGRATION_FILE = /^(\d{4})_([a-z0-9][a-z0-9_]*)\.(up|down)\.sql$/;

export interface MigrationFile {
  /** File name inside the directory, e.g. `0002_add_invoices.up.sql`. */
  file: string;
  sql: string;
  /** sha256 of the file's bytes, hex. */
  checksum: string;
  /**
   * Present when the file declares `-- tenancy:no-transaction` in its leading comment lines: its
   * statements (only CREATE/DROP/REINDEX INDEX CONCURRENTLY), run one by one outside a transaction.
   */
  steps?: NonTransactionalStep[];
}

/** One statement of a non-transactional file; `index` is the (unqualified) index it makes or removes. */
export interface NonTransactionalStep {
  kind: "create" | "drop" | "reindex";
  index: string;
  sql: string;
}

/** The declaration, on a line of its own among the comment lines a file starts with. */
export const NO_TRANSACTION = "-- tenancy:no-transaction";
const STEP_FORMS: readonly [NonTransactionalStep["kind"], RegExp][] = [
  ["create", /^CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)\s+ON\s+(?:ONLY\s+)?[a-z_][a-z0-9_]*\s*(?:USING\s+\w+\s*)?\(/i],
  ["drop", /^DROP\s+INDEX\s+CONCURRENTLY\s+(?:IF\s+EXISTS\s+)?([a-z_][a-z0-9_]*)$/i],
  ["reindex", /^REINDEX\s+INDEX\s+CONCURRENTLY\s+([a-z_][a-z0-9_]*)$/i],
];

/**
 * Splits SQL into statements at semicolons outside quotes and comments (dollar quoting is refused:
 * a non-transactional file holds index statements only). Comments are dropped.
 */
export function splitStatements(sql: string): string[] | string {
  const out: string[] = [];
  let cur = "";
  for (let i = 0; i < sql.length; i++) {
    const ch = sql[i]!;
    if (ch === "-" && sql[i + 1] === "-") {
      const end = sql.indexOf("\n", i);
      i = end < 0 ? sql.length : end;
      cur += " ";
      continue;
    }
    if (ch === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      if (end < 0) return "an unterminated /* comment";
      i = end + 1;
      cur += " ";
      continue;
    }
    if (ch === "$") return "dollar quoting ($...$), which a non-transactional file never needs";
    if (ch === "'" || ch === '"') {
      const end = sql.indexOf(ch, i + 1);
      if (end < 0) return `an unterminated ${ch} quote`;
      cur += sql.slice(i, end + 1);
      i = end;
      continue;
    }
    if (ch === ";") {
      if (cur.trim()) out.push(cur.trim());
      cur = "";
      continue;
    }
    cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** The steps of a file that declares no-transaction, or the problem with them. */
function nonTransactionalSteps(sql: string): NonTransactionalStep[] | string {
  const statements = splitStatements(sql);
  if (typeof statements === "string") return `holds ${statements}`;
  if (statements.length === 0) return "declares no-transaction but holds no statement";
  const steps: NonTransactionalStep[] = [];
  for (const st of statements) {
    const one = st.replace(/\s+/g, " ");
    const form = STEP_FORMS.find(([, re]) => re.test(one));
    if (!form) {
      return `declares no-transaction, so every statement must be CREATE [UNIQUE] INDEX CONCURRENTLY <name> ON <table> (...), DROP INDEX CONCURRENTLY <name> or REINDEX INDEX CONCURRENTLY <name> (unqualified names); "${one.slice(0, 80)}" is not: put it in a migration of its own without the declaration`;
    }
    steps.push({ kind: form[0], index: form[1].exec(one)![1]!.toLowerCase(), sql: st });
  }
  return steps;
}

/** Whether the file's leading comment lines hold the no-transaction declaration. */
function declaresNoTransaction(sql: string): boolean {
  for (const line of sql.split("\n")) {
    const l = line.trim();
    if (l === "") continue;
    if (!l.startsWith("--")) return false;
    if (l.toLowerCase() === NO_TRANSACTION) return true;
  }
  return false;
}

export interface Migration {
  version: number;
  name: string;
  up: MigrationFile;
  down?: MigrationFile;
}

export interface MigrationSet {
  dir: string;
  /** Ascending by version. */
  migrations: readonly Migration[];
  /** Highest version (0 for an empty directory). */
  head: number;
}

export class MigrationFilesError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join("\n"));
  }
}

export function sha256(text: string | Buffer): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Builds a set from file names and contents (pure; `loadMigrationSet` reads the directory). */
export function migrationSet(dir: string, files: ReadonlyMap<string, Buffer>): MigrationSet {
  const problems: string[] = [];
  const byVersion = new Map<number, { name: string; up?: MigrationFile; down?: MigrationFile }>();
  for (const [file, bytes] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const m = MIGRATION_FILE.exec(file);
    if (!m) {
      if (file.endsWith(".sql")) problems.push(`${join(dir, file)}: not a migration file name; expected NNNN_name.up.sql or NNNN_name.down.sql (4 digits, lower-case name)`);
      continue;
    }
    const version = Number(m[1]);
    const name = m[2]!;
    if (version === 0) {
      problems.push(`${join(dir, file)}: version 0000 is the empty schema; number migrations from 0001`);
      continue;
    }
    const entry = byVersion.get(version) ?? { name };
    if (entry.name !== name) {
      problems.push(`${join(dir, file)}: version ${m[1]} is also ${entry.name}; each version has one name (rename one of them to the next free number)`);
      continue;
    }
    const sql = bytes.toString("utf8");
    const mf: MigrationFile = { file, sql, checksum: sha256(bytes) };
    if (sql.trim() === "") problems.push(`${join(dir, file)}: is empty; a migration holds at least one statement`);
    else if (declaresNoTransaction(sql)) {
      const steps = nonTransactionalSteps(sql);
      if (typeof steps === "string") problems.push(`${join(dir, file)}: ${steps}`);
      else mf.steps = steps;
    }
    if (m[3] === "up") entry.up = mf;
    else entry.down = mf;
    byVersion.set(version, entry);
  }
  const migrations: Migration[] = [];
  for (const [version, e] of [...byVersion].sort(([a], [b]) => a - b)) {
    if (!e.up) {
      problems.push(`${join(dir, e.down!.file)}: has no ${e.down!.file.replace(/\.down\.sql$/, ".up.sql")}; a down file undoes an up file of the same name`);
      continue;
    }
    migrations.push({ version, name: e.name, up: e.up, ...(e.down ? { down: e.down } : {}) });
  }
  if (problems.length > 0) throw new MigrationFilesError(problems);
  return { dir, migrations, head: migrations.at(-1)?.version ?? 0 };
}

/** Reads a migration directory. */
export function loadMigrationSet(dir: string): MigrationSet {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new MigrationFilesError([`${dir}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); create it or fix saas-tenancy:schemaMigrations.path in Pulumi.yaml`]);
  }
  return migrationSet(dir, new Map(names.filter((n) => n.endsWith(".sql")).map((n) => [n, readFileSync(join(dir, n))])));
}

export interface ProjectMigrations {
  config: SchemaMigrationsConfig;
  set: MigrationSet;
}

/** The project's configuration and migrations; the template version must be a version of the set (or 0). */
export function loadProjectMigrations(projectDir: string): ProjectMigrations {
  const config = loadSchemaMigrationsConfig(projectDir);
  const set = loadMigrationSet(config.dir);
  assertVersion(set, config.templateVersion, `Pulumi.yaml saas-tenancy:schemaMigrations.templateVersion`);
  return { config, set };
}

/** Throws naming `what` unless `version` is 0 or a migration of the set. */
export function assertVersion(set: MigrationSet, version: number, what: string): void {
  if (version === 0 || set.migrations.some((m) => m.version === version)) return;
  throw new MigrationFilesError([
    `${what}: ${version} is not a migration in ${set.dir} (versions: ${set.migrations.map((m) => m.version).join(", ") || "none"}); name an existing version or 0`,
  ]);
}
