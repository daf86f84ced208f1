/**
 * The program in force for a stack: the program commit a run that is not a rollout's applies (a
 * tenant change, a lifecycle step, a drift check, a person's run), so that a program change reaches
 * a stack only through a rollout (docs/rollouts.md, "Which commit a run applies"). In order:
 *
 *  1. the commit of the rollout that reached the stack last: the newest rollout whose run of the
 *     stack succeeded (whatever the rollout's own end: a halted, aborted or superseded rollout's
 *     stack that succeeded runs its program);
 *  2. for a stack no rollout reached (created after the rollout started, or never in one): the
 *     commit of the newest rollout that succeeded, the program of the fleet;
 *  3. with no rollout ever succeeded: the program of the stack's newest successful update (its
 *     program_commit, or the commit itself for an update from before pins), so a program change
 *     merged before the fleet's first rollout reaches a stack only through that rollout;
 *  4. otherwise (a new stack, and no rollout ever succeeded): the head the run read.
 *
 * Platform stacks are never rolled out (a person deploys them, docs/deploying.md): they apply the head.
 * The pin is resolved when the run starts, not when it is queued: a run queued behind a rollout's run
 * of its stack applies what that run left in force.
 *
 * The rules are one server-side function, tenancy_program_in_force
 * (automation/db/migrations/340_run_claim_functions.sql), which the run's claim calls in its own
 * statement (automation/runs/oneTrip.ts) and the functions here call: one definition, planned once
 * per session. A change of the rules is a new migration replacing it.
 */
import type { Pool } from "pg";
import { platformStackName } from "../../infra/model/naming.ts";
import type { Queryable } from "../db/tx.ts";

const PLATFORM_PREFIX = platformStackName("");

/** The newest succeeded rollout's commit: rule 2 (also in tenancy_program_in_force). */
const FLEET = `SELECT commit FROM rollouts WHERE state = 'succeeded' ORDER BY finished_at DESC LIMIT 1`;

/**
 * Records the program in force for the run's stack as the run's `program_commit` unless it has one
 * (a rollout's run), and returns the run's program commit: one round trip. `head` is the main head
 * the run read (rule 4, and every platform stack's run).
 */
export async function pinRunProgram(db: Queryable, run: { runId: string; stack: string; head: string }): Promise<string> {
  const { rows } = await db.query<{ program_commit: string }>(
    "UPDATE runs SET program_commit = COALESCE(program_commit, tenancy_program_in_force($2, $3, $4)) WHERE id = $1 AND stack = $2 RETURNING program_commit",
    [run.runId, run.stack, run.head, PLATFORM_PREFIX],
  );
  if (!rows[0]) throw new Error(`run ${run.runId} of stack ${run.stack} does not exist; its program cannot be pinned`);
  return rows[0].program_commit;
}

/** The program in force for `stack` now (what its next run outside a rollout applies); `head` for rule 4. */
export async function programInForce(db: Queryable, stack: string, head: string): Promise<string> {
  const { rows } = await db.query<{ p: string }>("SELECT tenancy_program_in_force($1, $2, $3) AS p", [stack, head, PLATFORM_PREFIX]);
  return rows[0]!.p;
}

/**
 * Every program commit a stack's run may still compose with (composed.ts keeps a ref per program
 * commit while it is here): the program of each stack's newest successful update and of the
 * rollout that reached it last, the fleet's (newest succeeded rollout), those of queued and running
 * runs and of rollouts not ended. A superset of the programs in force: one row per distinct
 * program, however many stacks run it.
 */
export async function programsInUse(pool: Pool): Promise<Set<string>> {
  const { rows } = await pool.query<{ p: string }>(
    `SELECT DISTINCT p FROM (
       (SELECT DISTINCT ON (stack) COALESCE(program_commit, commit_sha) AS p FROM runs
         WHERE operation = 'up' AND state = 'succeeded' ORDER BY stack, finished_at DESC)
       UNION ALL
       (SELECT DISTINCT ON (rs.stack) r.commit FROM rollout_stacks rs JOIN rollouts r ON r.id = rs.rollout_id JOIN runs u ON u.id = rs.run_id
         WHERE u.state = 'succeeded' ORDER BY rs.stack, u.finished_at DESC)
       UNION ALL (${FLEET})
       UNION ALL (SELECT program_commit FROM runs WHERE state IN ('queued', 'running') AND program_commit IS NOT NULL)
       UNION ALL (SELECT commit FROM rollouts WHERE state IN ('waiting', 'running', 'paused', 'halted'))
     ) used WHERE p IS NOT NULL`,
  );
  return new Set(rows.map((r) => r.p));
}
