/**
 * Vitest global set-up: one temporary directory per test run, removed when the run ends. Helpers
 * that make temporary fleets outside a test (module level, describe bodies, beforeAll) put them
 * here, because a forked test worker is stopped without its `exit` handlers running, which left
 * hundreds of infra-fleet-* directories in /tmp across runs. The run's bundles of test child
 * processes (test/support/childBundle.ts) sit in the project, beside its node_modules, and go too.
 */
import { mkdtempSync, rmSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
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

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), "tenancy-test-run-"));
  // Forked workers inherit the environment of the main process, which is set before they start.
  process.env[RUN_TEMP_ENV] = dir;
  const runtime = runtimeDir();
  if (runtime) process.env.RUNTIME_DIRECTORY = runtime;
  return () => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(runBundleDir(dir), { recursive: true, force: true });
    if (runtime) rmSync(runtime, { recursive: true, force: true });
  };
}
