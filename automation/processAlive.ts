/**
 * Whether a process of a given pid exists on this host: the one signal-0 check behind the embedded
 * PostgreSQL's orphan handling, the sweeps of temporary directories and tree-cache overlays left by
 * dead processes, the run worker's record of its CLI processes, and the CLI test double's locks.
 *
 * A process that has exited but was not reaped yet (a zombie) still answers signal 0, and where
 * PID 1 does not reap the orphans it inherits (a container without an init; this machine's PID 1
 * left an orphaned `sleep` a zombie for as long as it was watched), an exited postmaster whose
 * owner died first stays a zombie indefinitely: it holds no data directory, no port and no file.
 * On Linux its state in /proc/<pid>/stat (Z, or X while it is being removed) says so; elsewhere
 * (no /proc) signal 0 decides alone.
 */
import { readFileSync } from "node:fs";

export function isProcessAlive(pid: number): boolean {
  try {
    // Signal 0 sends nothing: it only checks that the process exists and may be signalled.
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  return !hasExited(pid);
}

/** Linux: the process has exited and waits to be reaped (state Z or X in /proc/<pid>/stat). */
function hasExited(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return false;
  }
  // The state follows the command name, which is in parentheses and may itself hold them.
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state === "Z" || state === "X";
}
