/**
 * One initdb per test run instead of one per embedded PostgreSQL server. initdb takes seconds on a
 * loaded 2-core CI machine (4-5 s measured here) and about sixty test files start a server, so the
 * first file of a run that needs one initialises a cluster, stops it cleanly and keeps its data
 * directory in the run's temporary directory (test/support/runTempDir.ts); every later server of
 * the run starts from a copy (`cp -a`, owner and modes kept: the server refuses a data directory it
 * does not own). A copy keeps the template's bootstrap superuser (`postgres`) and password, which
 * the callers then use. Without the run directory (a script outside vitest, the crash suite's own
 * config) or when the template cannot be made, each server runs its own initdb as before.
 *
 * Test files run in parallel processes: a lock directory (mkdir is atomic) makes one of them build
 * the template; the others wait for its completion marker.
 */
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startClusterOnFreePort } from "../../automation/db/database.ts";
import { reachableTempDir, serverUser } from "../../automation/db/pgAccess.ts";
import { RUN_TEMP_ENV } from "./runTempDir.ts";

/** The bootstrap superuser of every server made from the template (the one both test helpers use). */
export const TEMPLATE_SUPERUSER = "postgres";

const DIR = "pg-template";
const COMPLETE = ".complete";
const FAILED = ".failed";
/** How long a file waits for another file's process to build the template (initdb on a loaded machine). */
const WAIT_MS = 180_000;

interface Template {
  dataDir: string;
  password: string;
}

async function build(target: string): Promise<void> {
  const user = serverUser();
  // initdb runs as the server user: it builds in a directory that user reaches, then the data
  // directory moves (copied, owner kept) to the run directory, which only this user reaches.
  const work = mkdtempSync(join(reachableTempDir(user), "tenancy-pg-template-"));
  try {
    chmodSync(work, 0o755);
    const password = randomBytes(18).toString("base64url");
    const { cluster } = await startClusterOnFreePort({
      dir: work,
      password,
      superuser: TEMPLATE_SUPERUSER,
      persistent: true,
      flags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
    });
    // A clean shutdown: the copies start without recovery.
    await cluster.stop();
    rmSync(join(cluster.dataDir, "postmaster.opts"), { force: true });
    execFileSync("cp", ["-a", cluster.dataDir, join(target, "data")]);
    writeFileSync(join(target, "password"), password, { mode: 0o600 });
    writeFileSync(join(target, COMPLETE), "");
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function template(): Promise<Template | undefined> {
  const runDir = process.env[RUN_TEMP_ENV];
  if (!runDir || !existsSync(runDir)) return undefined;
  const target = join(runDir, DIR);
  const ready = (): Template | undefined =>
    existsSync(join(target, COMPLETE)) ? { dataDir: join(target, "data"), password: readFileSync(join(target, "password"), "utf8") } : undefined;
  let mine = false;
  try {
    mkdirSync(target);
    mine = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") return undefined;
  }
  if (mine) {
    try {
      await build(target);
    } catch (err) {
      writeFileSync(join(target, FAILED), String((err as Error).message));
      return undefined;
    }
    return ready();
  }
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    const t = ready();
    if (t) return t;
    if (existsSync(join(target, FAILED))) return undefined;
    await sleep(100);
  }
  return undefined;
}

/**
 * Fills `dataDir` (which must not exist yet) with a copy of the run's template cluster and returns
 * the bootstrap superuser's password; undefined when there is no template (the caller's server
 * then runs initdb itself, with a password of its own).
 */
export async function seedFromTemplate(dataDir: string): Promise<string | undefined> {
  const t = await template();
  if (!t) return undefined;
  execFileSync("cp", ["-a", t.dataDir, dataDir]);
  return t.password;
}

/**
 * Prepares a control plane's data directory (TENANCY_DATA_DIR) so that its embedded PostgreSQL
 * (automation/db/database.ts: the cluster in `<dataDir>/postgres/data`, its password in
 * `<dataDir>/postgres/password`) starts from the template instead of running initdb; for tests
 * that start `npm run control-plane` and are not about the first start. Nothing when there is no
 * template: the control plane then runs initdb itself.
 */
export async function seedControlPlaneDataDir(dataDir: string): Promise<void> {
  const dir = join(dataDir, "postgres");
  mkdirSync(dir, { recursive: true });
  const password = await seedFromTemplate(join(dir, "data"));
  if (password) writeFileSync(join(dir, "password"), password, { mode: 0o600 });
}
