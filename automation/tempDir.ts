/**
 * The control plane process's own temporary directory, `<dataDir>/work/p<pid>-<random>`, made its
 * TMPDIR at start-up (automation/main.ts) so that what the Pulumi Automation API and the CLI put
 * in the temporary directory (the event-log directories `automation-logs-<command>-*` of every
 * update, the workspace directory of each RemoteWorkspace, `stack import` files) lives under the
 * data directory, not in the host's /tmp. The SDK removes an event-log directory when its
 * operation ends, but not when the process is killed, and never removes a RemoteWorkspace's
 * directory: the process removes its own directory when it stops, and at start-up the
 * directories of earlier processes that are gone (a `kill -9`; docs/control-plane.md, "After a
 * crash"). The directory of a process that is still running (another control plane on the same
 * data directory) is left alone.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { isProcessAlive } from "./processAlive.ts";

/** Under the data directory: one directory per control plane process. */
export const WORK_DIR = "work";

const OWN = /^p(\d+)-[0-9a-f]{8}$/;

export interface ProcessTempDir {
  /** This process's directory (exists until dispose). */
  dir: string;
  /** Directories of earlier processes removed at start-up (full paths). */
  removed: string[];
  /** Removes this process's directory and everything in it. */
  dispose(): void;
}

/**
 * Creates this process's directory under `<dataDir>/work` after removing those of processes that
 * are gone: a directory named for a process id that is not running, or for this process's own id
 * (an earlier process of the same id, e.g. pid 1 of a restarted container, is gone: this one has
 * made none yet). Entries not named like ours are not touched.
 */
export function claimTempDir(dataDir: string, pid = process.pid): ProcessTempDir {
  const work = join(dataDir, WORK_DIR);
  mkdirSync(work, { recursive: true });
  const removed: string[] = [];
  for (const name of readdirSync(work)) {
    const m = OWN.exec(name);
    if (!m) continue;
    const owner = Number(m[1]);
    if (owner !== pid && isProcessAlive(owner)) continue;
    rmSync(join(work, name), { recursive: true, force: true });
    removed.push(join(work, name));
  }
  const dir = join(work, `p${pid}-${randomBytes(4).toString("hex")}`);
  mkdirSync(dir, { mode: 0o700 });
  return { dir, removed, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
