/**
 * Whether a process of a given pid exists on this host: the one signal-0 check behind the embedded
 * PostgreSQL's orphan handling, the sweeps of temporary directories and tree-cache overlays left by
 * dead processes, the run worker's record of its CLI processes, and the CLI test double's locks.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    // Signal 0 sends nothing: it only checks that the process exists and may be signalled.
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
