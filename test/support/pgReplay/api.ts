/**
 * The replayer's contract with its callers: the resource type tokens it reads, the session it
 * needs, what it takes and returns, and the error it throws.
 */

export const PG_TYPES = {
  provider: "pulumi:providers:postgresql",
  role: "postgresql:index/role:Role",
  schema: "postgresql:index/schema:Schema",
  grant: "postgresql:index/grant:Grant",
  defaultPrivileges: "postgresql:index/defaultPrivileges:DefaultPrivileges",
  database: "postgresql:index/database:Database",
} as const;

export type Row = Record<string, unknown>;

/** What the replayer needs from a connection (a `pg.Client` fits). */
export interface SqlSession {
  query(text: string, values?: unknown[]): Promise<{ rows: Row[] }>;
  end(): Promise<void>;
}

/** Terraform state analogue: the inputs last applied, by URN. Pass the same map to a re-apply. */
export type ReplayState = Map<string, Record<string, unknown>>;

export interface ExecutedStatement {
  urn: string;
  database: string;
  sql: string;
}

export interface ReplayOptions {
  /** A session as the provider's admin user on the given (actual) database. */
  connect(database: string): Promise<SqlSession>;
  /** Declared database name -> actual (tests on a shared server suffix their databases). Default identity. */
  databaseName?: (declared: string) => string;
  state?: ReplayState;
}

export interface ReplayResult {
  /** Every statement that writes (DDL/DCL), in order; reads are not listed. */
  executed: ExecutedStatement[];
  state: ReplayState;
}

export class ReplayError extends Error {}
