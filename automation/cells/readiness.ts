/**
 * Opens cells as soon as their first `up` has succeeded (docs/cells.md): a periodic check that
 * removes `opening: true` from an opening cell's stack file, in a commit of its own, once a run of
 * its stack succeeded, whichever path opened the cell (POST /api/tenants, a Stripe creation,
 * `tenantctl new` merged by pull request and deployed by the deploy workflow through
 * POST /api/stacks/:stack/runs). Then subscriptions whose new tenant waited for that cell are
 * reconciled again.
 *
 * The check is cheap when nothing is opening: it reads the working copy's cell stack files and
 * asks PostgreSQL only about the opening ones; the writer's session (its lock) is taken only when
 * a cell is ready.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Pool } from "pg";
import type { PgBoss } from "pg-boss";
import { parse } from "yaml";
import { STACKS_DIR } from "../../infra/model/fleetFiles/index.ts";
import { CELL_KEY, stackNameOfFile } from "../../infra/model/stackFile.ts";
import type { GitWriter } from "../git/writer.ts";
import type { Logger } from "../log.ts";
import { QUEUES, type ReconcileJob } from "../queue.ts";
import type { CellOpener } from "./opener.ts";

export interface CellReadinessOptions {
  pool: Pool;
  boss: PgBoss;
  writer: GitWriter;
  opener: CellOpener;
  /** The working copy (its stacks/ is read for opening cells). */
  repoDir: string;
  log: Logger;
}

/** Stacks of the cells whose stack file in `repoDir` says `opening: true`. */
export function openingCellStacks(repoDir: string): string[] {
  const dir = join(repoDir, STACKS_DIR);
  const out: string[] = [];
  for (const file of readdirSync(dir).sort()) {
    const stack = stackNameOfFile(file);
    if (!stack?.startsWith("shared-")) continue;
    let doc: unknown;
    try {
      doc = parse(readFileSync(join(dir, file), "utf8"));
    } catch {
      continue; // validation reports a broken file; nothing to open here
    }
    const cell = (doc as { config?: Record<string, { opening?: unknown } | undefined> } | null)?.config?.[CELL_KEY];
    if (cell?.opening === true) out.push(stack);
  }
  return out;
}

export class CellReadiness {
  constructor(private readonly opts: CellReadinessOptions) {}

  /** Opens every opening cell whose stack has a succeeded up; returns the stacks opened. */
  async tick(): Promise<string[]> {
    const opening = openingCellStacks(this.opts.repoDir);
    if (opening.length === 0) return [];
    const { rows } = await this.opts.pool.query<{ stack: string; id: string }>(
      "SELECT DISTINCT ON (stack) stack, id FROM runs WHERE stack = ANY($1) AND operation = 'up' AND state = 'succeeded' ORDER BY stack, finished_at DESC",
      [opening],
    );
    if (rows.length === 0) return [];
    const { value: staged, results } = await this.opts.writer.change((draft) =>
      this.opts.opener.stageReady(draft, { source: "workflow", ids: rows.map((r) => r.id), actor: "cell readiness (first up succeeded)" }),
    );
    const opened = staged.filter((stack) => results.some((r) => r.state === "committed" && r.summary.startsWith(`open cell ${stack} `)));
    for (const r of results) {
      if (r.state === "rejected") this.opts.log.error({ problems: r.problems }, `${r.summary}: refused`);
    }
    if (opened.length === 0) return [];
    this.opts.log.info({ cells: opened }, `opened for placement: ${opened.join(", ")} (first up succeeded)`);
    await this.requeueWaiting(opened);
    return opened;
  }

  /** Reconcile jobs for the subscriptions whose new tenant waited for one of `stacks`. */
  private async requeueWaiting(stacks: readonly string[]): Promise<void> {
    const { rows } = await this.opts.pool.query<{ id: string; last_event_id: string }>(
      "SELECT id, last_event_id FROM subscriptions WHERE waiting_for_cell = ANY($1) ORDER BY id",
      [stacks],
    );
    for (const r of rows) {
      const job: ReconcileJob = { subscriptionId: r.id, eventId: r.last_event_id };
      await this.opts.boss.send(QUEUES.reconcile, job);
    }
    if (rows.length > 0) this.opts.log.info({ subscriptions: rows.map((r) => r.id) }, `reconciling ${rows.length} subscription(s) that waited for ${stacks.join(", ")}`);
  }
}
