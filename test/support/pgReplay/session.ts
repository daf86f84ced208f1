/**
 * Sessions and transactions: one session per database for the whole replay, each resource in
 * one transaction (or none, for CREATE DATABASE), and the record of every write executed.
 */
import { ReplayError, type ExecutedStatement, type ReplayOptions, type Row, type SqlSession } from "./api.ts";

/** One resource's view of its transaction: `exec` writes (recorded), `read` does not. */
export interface Tx {
  exec(sql: string): Promise<void>;
  read(sql: string, values?: unknown[]): Promise<Row[]>;
}

export async function one(t: Tx, sql: string, values?: unknown[]): Promise<Row | undefined> {
  return (await t.read(sql, values))[0];
}

export class Runner {
  readonly executed: ExecutedStatement[] = [];
  private readonly sessions = new Map<string, Promise<SqlSession>>();
  constructor(private readonly opts: ReplayOptions) {}

  db(declared: string): string {
    return this.opts.databaseName ? this.opts.databaseName(declared) : declared;
  }

  session(database: string): Promise<SqlSession> {
    let s = this.sessions.get(database);
    if (!s) {
      s = this.opts.connect(database);
      this.sessions.set(database, s);
    }
    return s;
  }

  async close(): Promise<void> {
    const all = await Promise.allSettled([...this.sessions.values()]);
    for (const s of all) if (s.status === "fulfilled") await s.value.end();
  }

  /** One transaction on `database`; `exec` writes (recorded), `read` does not. */
  async tx(urn: string, database: string, fn: (t: Tx) => Promise<void>): Promise<void> {
    const s = await this.session(database);
    await s.query("BEGIN");
    try {
      await fn(this.handle(urn, database, s));
      await s.query("COMMIT");
    } catch (err) {
      await s.query("ROLLBACK").catch(() => undefined);
      throw err;
    }
  }

  /** Outside a transaction (CREATE DATABASE cannot run in one). */
  async direct(urn: string, database: string, fn: (t: Tx) => Promise<void>): Promise<void> {
    await fn(this.handle(urn, database, await this.session(database)));
  }

  private handle(urn: string, database: string, s: SqlSession): Tx {
    return {
      exec: async (sql: string) => {
        try {
          await s.query(sql);
        } catch (err) {
          throw new ReplayError(`${urn}: ${sql}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        }
        this.executed.push({ urn, database, sql });
      },
      read: async (sql: string, values?: unknown[]) => (await s.query(sql, values)).rows,
    };
  }
}
