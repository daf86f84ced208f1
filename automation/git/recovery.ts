/**
 * Crash recovery of the git writer. A change is recorded `planned` before git is touched and its
 * commit carries a `Tenancy-Change: <id>` trailer; at the start of every writer session (and at
 * start-up) the planned changes are settled: a commit found on main gets its runs queued (after
 * pushing it), one found on the tenant's branch becomes proposed, and one never committed is
 * marked failed with its half-written files restored, naming who redoes it.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { Pool } from "pg";
import { ATOMIC_TMP_SUFFIX, STACKS_DIR, TENANTS_DIR } from "../../infra/model/fleetFiles/index.ts";
import { withTransaction } from "../db/tx.ts";
import type { Logger } from "../log.ts";
import type { RunStore } from "../runs/store.ts";
import { CHANGE_TRAILER, type ChangeRoute, type ChangeSource } from "./change.ts";
import type { GitRepo } from "./repo.ts";

/** What recovery needs of the writer (called with the writer's lock held). */
export interface RecoveryContext {
  pool: Pool;
  runs: RunStore;
  log: Logger;
  repo: GitRepo;
  repoDir: string;
  /** The main branch (throws before GitWriter.init()). */
  branch(): string;
  head(): Promise<string>;
  /** The configured remote when the working copy has it; undefined: nothing is pushed. */
  pushRemote(): Promise<string | undefined>;
}

/** Repairs what a crash between git and the database left behind. */
export async function recoverInterruptedChanges(w: RecoveryContext): Promise<void> {
  const { rows } = await w.pool.query<{
    id: string; tenant_id: string; route: ChangeRoute; paths: string[]; stacks: string[]; branch: string | null; summary: string; source: ChangeSource; cause_ids: string[];
  }>(
    "SELECT id, tenant_id, route, paths, stacks, branch, summary, source, cause_ids FROM changes WHERE state = 'planned' ORDER BY created_at",
  );
  for (const row of rows) {
    const ref = row.route === "main" ? `refs/heads/${w.branch()}` : `refs/heads/${row.branch ?? ""}`;
    const exists = await w.repo.resolve(ref);
    const commit = exists ? await w.repo.findCommit(ref, `${CHANGE_TRAILER}: ${row.id}`) : undefined;
    if (commit && row.route === "main") {
      // Pushed before its runs are queued, as applyMain does.
      const pushed = await pushRecovered(w, row.id);
      await withTransaction(w.pool, async (client) => {
        await client.query("UPDATE changes SET state = 'committed', commit_sha = $2, note = $3, pushed = $4, updated_at = now() WHERE id = $1", [
          row.id, commit, "recovered after an interruption: commit found, runs queued", pushed,
        ]);
        for (const stack of row.stacks) await w.runs.enqueue(client, stack, { changeId: row.id, reason: row.summary });
      });
      w.runs.jobsSent();
      w.log.warn({ changeId: row.id, commit, pushed }, "recovered a committed change whose runs were not queued");
    } else if (commit) {
      await w.pool.query("UPDATE changes SET state = 'proposed', commit_sha = $2, note = $3, updated_at = now() WHERE id = $1", [
        row.id, commit, `recovered after an interruption: commit is on ${row.branch}; push and PR not confirmed`,
      ]);
    } else {
      let head: string | undefined;
      let discarded: string[] = [];
      if (row.route === "main") {
        head = await w.head();
        // What the crash left in the index or the working tree (written, or staged with `git add`).
        discarded = await w.repo.status(row.paths);
        await w.repo.restorePaths(head, row.paths);
      }
      const redo = redoneBy(row.source, row.cause_ids);
      await w.pool.query("UPDATE changes SET state = 'failed', note = $2, updated_at = now() WHERE id = $1", [
        row.id, `interrupted before its commit; nothing was committed; ${redo}`,
      ]);
      w.log.warn(
        { changeId: row.id, tenantId: row.tenant_id, source: row.source, causes: row.cause_ids, discarded, restoredTo: head ?? null },
        `discarded the change "${row.summary}" interrupted before its commit (index and working tree back at ${head?.slice(0, 12) ?? "the branch head"}); ${redo}`,
      );
    }
  }
  // Temporary files of an interrupted atomic write.
  for (const line of await w.repo.status([TENANTS_DIR, STACKS_DIR])) {
    const path = line.slice(3);
    if (line.startsWith("??") && ATOMIC_TMP_SUFFIX.test(path)) rmSync(join(w.repoDir, path), { force: true });
  }
}

/**
 * A recovered commit was possibly never pushed (the crash came before the push): push the main
 * branch now, so a runner that clones the remote (Deployments) finds the commit its runs use.
 */
async function pushRecovered(w: RecoveryContext, changeId: string): Promise<boolean> {
  const pushTo = await w.pushRemote();
  if (!pushTo) return false;
  try {
    await w.repo.push(pushTo, `refs/heads/${w.branch()}:refs/heads/${w.branch()}`);
    return true;
  } catch (err) {
    w.log.warn({ changeId, err: { message: (err as Error).message } }, "push of the recovered commit failed; the next change retries it");
    return false;
  }
}

/** Who applies an interrupted change again, told in the log line that discards it. */
export function redoneBy(source: ChangeSource, ids: readonly string[]): string {
  const list = ids.join(", ") || "(none recorded)";
  if (source === "stripe") return `redone when the reconcile of Stripe event ${list} runs again (its job is retried after the restart)`;
  if (source === "api") return `redone only when the client repeats API request ${list} (its connection was cut; nothing was answered)`;
  return `redone when workflow ${list} retries its step`;
}
