/**
 * Crash injection, for tests only (test/automation/crash/): with TENANCY_CRASH_AT=<point> in the
 * environment, the process kills itself with SIGKILL the first time it reaches that named point,
 * so a test can prove that `kill -9` at an awkward moment loses nothing and applies nothing twice
 * (docs/control-plane.md, "After a crash"). Never set it in production: it is not a setting, it is
 * read here only, and loadConfig ignores it.
 *
 * Without the variable `crashPoint()` is one comparison of a module constant with `undefined`:
 * production paths call it unconditionally.
 */
export const CRASH_POINTS = {
  "intake.stored": "a Stripe event's row is inserted, its transaction (subscription, reconcile job) not yet committed",
  "intake.committed": "the event's transaction committed, Stripe not yet answered",
  "git.written": "a change's files are written in the working copy, not yet staged",
  "git.staged": "new files are staged (git add), not yet committed",
  "git.committed": "the commit exists, the change is not yet recorded committed nor its runs queued",
  "git.pushing": "the commit exists and is about to be pushed to TENANCY_GIT_REMOTE",
  "run.queued": "a committed change's runs and their jobs are committed, no worker has started them",
  "run.started": "a worker marked the run running, before its checkout and update",
  "run.updating": "the update is running: the first engine event arrived",
  "run.finishing": "the update returned, the run is not yet recorded succeeded",
  "lifecycle.step": "a lifecycle step's effects are done, its completion not yet recorded (`lifecycle.step:<step>`: that step only)",
} as const;

export type CrashPointName = keyof typeof CRASH_POINTS;

/** The test-only variable: one point name (see CRASH_POINTS). */
export const CRASH_ENV = "TENANCY_CRASH_AT";

const armed: string | undefined = process.env[CRASH_ENV] || undefined;
// `<point>:<detail>` arms the point only where it is reached with that detail (a lifecycle step's name).
if (armed !== undefined && !(armed.split(":")[0]! in CRASH_POINTS)) {
  // A typo must not make a crash test pass by never crashing.
  throw new Error(`${CRASH_ENV}=${armed}: unknown crash point; known: ${Object.keys(CRASH_POINTS).join(", ")} (test-only, unset it)`);
}

/**
 * Kills this process with SIGKILL when TENANCY_CRASH_AT names `name`, or `name:detail` (e.g.
 * `lifecycle.step:suspend.files`, so a test kills at one step and the next life at the next);
 * otherwise does nothing.
 */
export function crashPoint(name: CrashPointName, detail?: string): void {
  if (armed === undefined || (armed !== name && (detail === undefined || armed !== `${name}:${detail}`))) return;
  // Written synchronously so the test sees which point killed the process.
  process.stderr.write(`crash point ${armed} reached: SIGKILL (${CRASH_ENV}, test only)\n`);
  process.kill(process.pid, "SIGKILL");
}
