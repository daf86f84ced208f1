/**
 * Vitest global set-up: one temporary directory per test run, removed when the run ends. Helpers
 * that make temporary fleets outside a test (module level, describe bodies, beforeAll) put them
 * here, because a forked test worker is stopped without its `exit` handlers running, which left
 * hundreds of infra-fleet-* directories in /tmp across runs. The run's bundles of test child
 * processes (test/support/childBundle.ts) sit in the project, beside its node_modules, and go too.
 *
 * The run's temporary files go to a tmpfs (/dev/shm) when the machine has one with room
 * (fastTempDir): the embedded PostgreSQL servers' data directories, the git repositories and the
 * fleets the tests make. On the disk, PostgreSQL's file writes (every CREATE DATABASE copies and
 * WAL-logs a template, every server starts from a copied cluster) cost more kernel time than the
 * tests' own work: test/lifecycle/offboard.test.ts took 106 s and 38 CPU-s with /tmp on ext4,
 * 62 s and 30 CPU-s on /dev/shm (load 10). What the tests do and check is unchanged: only where
 * the files live. An explicit TMPDIR is kept as it is.
 */
import { mkdtempSync, rmSync, statfsSync, statSync } from "node:fs";
import { freemem, tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { TMPFS_MAGIC } from "../../automation/git/runRoot.ts";

export const RUN_TEMP_ENV = "TENANCY_TEST_RUN_TMP";

/** Where the bundles of a run's test child processes live: under the project, so their package imports resolve. */
export function runBundleDir(runDir: string): string {
  return join(resolve(import.meta.dirname, "..", ".."), ".tmp", "test-bundles", basename(runDir));
}

/**
 * A directory of the run's own on /dev/shm when it is a tmpfs, given to every control plane the
 * tests start as systemd's `RUNTIME_DIRECTORY`: their runs' working directories go there
 * (automation/git/runRoot.ts), as in production, and whatever a killed control plane left there
 * goes with the run. Undefined where /dev/shm is no tmpfs (the data directory is used then).
 */
function runtimeDir(): string | undefined {
  try {
    if (statfsSync("/dev/shm").type !== TMPFS_MAGIC) return undefined;
    return mkdtempSync(join("/dev/shm", "tenancy-test-run-"));
  } catch {
    return undefined;
  }
}

/**
 * Room a run's temporary files may take at once (three workers, each with up to two PostgreSQL
 * servers whose WAL grows to max_wal_size between checkpoints), both on the tmpfs and in free
 * memory, which a tmpfs uses. A container's default /dev/shm (64 MiB) falls short: the disk then.
 */
const FAST_TEMP_MIN_BYTES = 4 * 1024 ** 3;

/**
 * /dev/shm when it is a tmpfs with FAST_TEMP_MIN_BYTES free, the machine has as much free memory,
 * and every user may create files in it and search it (sticky and world-writable, as a distribution
 * mounts it: the PostgreSQL server user must reach its data directory there,
 * automation/db/pgAccess.ts); undefined otherwise or when TMPDIR is set.
 */
export function fastTempDir(env: NodeJS.ProcessEnv = process.env, dir = "/dev/shm"): string | undefined {
  if (env.TMPDIR) return undefined;
  try {
    const fs = statfsSync(dir);
    if (fs.type !== TMPFS_MAGIC || fs.bavail * fs.bsize < FAST_TEMP_MIN_BYTES || freemem() < FAST_TEMP_MIN_BYTES) return undefined;
    if ((statSync(dir).mode & 0o1777) !== 0o1777) return undefined;
  } catch {
    return undefined;
  }
  return dir;
}

export default function setup(): () => void {
  // Forked workers inherit the environment of the main process, which is set before they start.
  const fast = fastTempDir();
  if (fast) process.env.TMPDIR = fast;
  const dir = mkdtempSync(join(tmpdir(), "tenancy-test-run-"));
  process.env[RUN_TEMP_ENV] = dir;
  const runtime = runtimeDir();
  if (runtime) process.env.RUNTIME_DIRECTORY = runtime;
  return () => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(runBundleDir(dir), { recursive: true, force: true });
    if (runtime) rmSync(runtime, { recursive: true, force: true });
  };
}
