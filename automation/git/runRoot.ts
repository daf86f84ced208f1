/**
 * Where runs' working directories are made (TreeCache overlays: a directory of links into a
 * commit's shared export, plus the stack config files the Pulumi CLI may write). They live as long
 * as their run, are made again for every attempt and need no durability, so a memory file system
 * is the right place for them: on this machine's shared ext4 disk, 32 overlays of 15 links took
 * 0.7 to 2.4 s to make at load 14 and 15 to 80 ms on /dev/shm (docs/control-plane.md, "Per-run
 * overhead"). In order:
 *
 *  1. `TENANCY_RUN_DIR` (config.runDir), used as given;
 *  2. systemd's `RuntimeDirectory=` (`$RUNTIME_DIRECTORY`, a tmpfs under /run private to the service),
 *     then `/dev/shm`: the first that is a tmpfs this process can write, with at least
 *     MIN_FREE_BYTES free, in a directory of this user's own (`tenancy-runs-<uid>-<data dir hash>`:
 *     created with mode 0700; one that exists must be a real directory owned by this user that no
 *     one else can write, or the candidate is passed over: another local user must not be able to
 *     plant links where the CLI writes);
 *  3. the data directory's `trees/` (beside the exports).
 *
 * Whether the root is on a memory file system is part of the answer: there, an overlay is removed
 * with one synchronous call (TreeCacheOptions.removeSync), cheaper for the event loop than the
 * asynchronous walk a disk needs.
 */
import { createHash } from "node:crypto";
import { accessSync, constants, lstatSync, mkdirSync, statfsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

/** statfs(2) f_type of a tmpfs (linux/magic.h TMPFS_MAGIC). */
export const TMPFS_MAGIC = 0x01021994;

/**
 * Free space a memory file system must have to hold runs' directories. An overlay holds short
 * relative links (inline in their inode on a tmpfs: no page each), one absolute link and copies of
 * the run's stack config files: a few pages.
 */
export const MIN_FREE_BYTES = 16 * 1024 * 1024;

export interface RunRoot {
  dir: string;
  /** Where it came from (logged at start-up). */
  source: "TENANCY_RUN_DIR" | "RUNTIME_DIRECTORY" | "/dev/shm" | "data directory";
  /** Whether it is on a memory file system (tmpfs): its overlays are removed with synchronous calls (TreeCacheOptions.removeSync). */
  memory: boolean;
}

export interface RunRootProbe {
  env?: Readonly<Record<string, string | undefined>>;
  /** Candidates in order (tests replace them); default $RUNTIME_DIRECTORY's first entry, then /dev/shm. */
  candidates?: readonly { dir: string; source: RunRoot["source"] }[];
  /** statfs(2) of a path: its type and free bytes (tests replace it). */
  statfs?: (path: string) => { type: number; free: number };
}

const realStatfs = (path: string) => {
  const s = statfsSync(path);
  return { type: s.type, free: s.bavail * s.bsize };
};

/** The run root for a control plane on `dataDir` (see the module comment); `runDir` is TENANCY_RUN_DIR. */
export function chooseRunRoot(dataDir: string, runDir?: string, probe: RunRootProbe = {}): RunRoot {
  const statfs = probe.statfs ?? realStatfs;
  // The file system of the directory, or of its nearest existing parent (TENANCY_RUN_DIR and the
  // data directory's trees/ may not exist yet).
  const onMemory = (dir: string): boolean => {
    for (let d = dir; ; d = dirname(d)) {
      try {
        return statfs(d).type === TMPFS_MAGIC;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT" || dirname(d) === d) return false;
      }
    }
  };
  if (runDir) return { dir: resolve(runDir), source: "TENANCY_RUN_DIR", memory: onMemory(resolve(runDir)) };
  const env = probe.env ?? process.env;
  const runtime = env.RUNTIME_DIRECTORY?.split(":")[0];
  const candidates = probe.candidates ?? [
    ...(runtime ? [{ dir: runtime, source: "RUNTIME_DIRECTORY" as const }] : []),
    { dir: "/dev/shm", source: "/dev/shm" as const },
  ];
  const uid = process.getuid?.() ?? 0;
  const name = `tenancy-runs-${uid}-${createHash("sha256").update(resolve(dataDir)).digest("hex").slice(0, 12)}`;
  for (const c of candidates) {
    try {
      const fs = statfs(c.dir);
      if (fs.type !== TMPFS_MAGIC || fs.free < MIN_FREE_BYTES) continue;
      accessSync(c.dir, constants.W_OK | constants.X_OK);
      const dir = join(c.dir, name);
      try {
        mkdirSync(dir, { mode: 0o700 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const st = lstatSync(dir);
      if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) continue;
      return { dir, source: c.source, memory: true };
    } catch {
      // Not usable (absent, not writable, full): the next candidate.
    }
  }
  return { dir: join(dataDir, "trees"), source: "data directory", memory: onMemory(join(dataDir, "trees")) };
}
