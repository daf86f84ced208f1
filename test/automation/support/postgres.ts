/**
 * A live PostgreSQL for a test file: DATABASE_URL when set (each harness gets its own database
 * on it), else one embedded server started for the file on a free port and removed afterwards.
 *
 * A control plane's database (controlPlaneDatabase) is a copy of one database prepared once per
 * server: the control plane's migrations and pg-boss's install ran there, so each harness starts
 * with CREATE DATABASE ... TEMPLATE (a fraction of a second) instead of running both again (about
 * 1.5 s a harness on a loaded 2-core machine). ControlPlane.create still runs both on the copy:
 * the migrations find every version applied with its checksum, pg-boss finds its schema current.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { getConstructionPlans } from "pg-boss";
import { createPool, startEmbeddedPostgres } from "../../../automation/db/database.ts";
import { migrate } from "../../../automation/db/migrate.ts";
import { reachableTempDir, serverUser } from "../../../automation/db/pgAccess.ts";
import { seedFromTemplate } from "../../support/pgTemplate.ts";
import { createDatabaseStrategy } from "../../support/postgres.ts";

export interface TestPostgres {
  /** A fresh, empty database. */
  newDatabase(): Promise<string>;
  /**
   * A fresh database as a new control plane's start leaves it before its queues exist: every
   * migration applied and pg-boss installed (its own install SQL, getConstructionPlans), nothing
   * else. For harnesses; a test about migrating or installing takes newDatabase().
   */
  controlPlaneDatabase(): Promise<string>;
  stop(): Promise<void>;
}

export async function startTestPostgres(): Promise<TestPostgres> {
  const external = process.env.DATABASE_URL;
  const created: string[] = [];
  let adminUrl: string;
  let stopServer = async () => undefined as void;
  let dir: string | undefined;
  if (external) {
    adminUrl = external;
  } else {
    dir = mkdtempSync(join(reachableTempDir(serverUser()), "tenancy-pg-"));
    chmodSync(dir, 0o755);
    let server;
    try {
      // A copy of the run's template cluster when there is one (test/support/pgTemplate.ts): no
      // initdb. startEmbeddedPostgres reads the superuser's password from <dir>/password.
      const password = await seedFromTemplate(join(dir, "data"));
      if (password) writeFileSync(join(dir, "password"), password, { mode: 0o600 });
      // fsync=off: a throwaway server (test/support/postgres.ts says why that changes nothing a test sees).
      server = await startEmbeddedPostgres(dir, undefined, { persistent: false, flags: ["-c", "fsync=off"] });
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    adminUrl = server.url("postgres");
    stopServer = () => server.stop();
  }
  const withDb = (name: string) => {
    const u = new URL(adminUrl);
    u.pathname = `/${name}`;
    return u.toString();
  };
  const strategy = createDatabaseStrategy(external ? "external" : "embedded");
  const createDatabase = async (name: string, template?: string) => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}${template ? ` TEMPLATE ${client.escapeIdentifier(template)}` : ""}${strategy}`);
    } finally {
      await client.end();
    }
    created.push(name);
    return withDb(name);
  };
  const newDatabase = () => createDatabase(`tenancy_test_${randomBytes(5).toString("hex")}`);
  let template: Promise<string> | undefined;
  const controlPlaneTemplate = () =>
    (template ??= (async () => {
      const url = await newDatabase();
      // One connection, ended before the first copy: CREATE DATABASE ... TEMPLATE refuses a
      // template with sessions (it waits up to 5 s for ending ones).
      const pool = createPool(url, 1);
      try {
        await migrate(pool);
        await pool.query(getConstructionPlans());
      } finally {
        await pool.end();
      }
      return new URL(url).pathname.slice(1);
    })());
  return {
    newDatabase,
    async controlPlaneDatabase() {
      return createDatabase(`tenancy_test_${randomBytes(5).toString("hex")}`, await controlPlaneTemplate());
    },
    async stop() {
      if (external) {
        const client = new pg.Client({ connectionString: adminUrl });
        await client.connect();
        for (const name of created) await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`).catch(() => undefined);
        await client.end();
      }
      await stopServer();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
