/**
 * The control plane's side of cells that never fill up (docs/cells.md): inside the git writer's
 * session (its advisory lock serializes every creation, across processes) a tenant creation
 * first opens a new cell when its env and region would fall below the reserve (the cell's stack
 * file, committed on its own, with a run of its stack queued), and opens a cell that is opening
 * once a run of its stack succeeded (a commit removing `opening: true`). Outside the session a
 * creation that found no open cell with room waits here for the opening cell's first run.
 */
import { cellsToOpen, openedCellText } from "../../infra/model/cells.ts";
import { stackPath } from "../../infra/model/fleetFiles/index.ts";
import type { ChangeCause, Draft } from "../git/writer.ts";
import type { Logger } from "../log.ts";
import type { RunRecord, RunStore } from "../runs/store.ts";

/** How long a creation waits for a new cell's first run by default (an RDS instance takes 10-20 minutes). */
export const DEFAULT_CELL_WAIT_MS = 30 * 60 * 1000;

/** The opening cell's first run failed, or did not end in time: the tenant cannot be placed now. */
export class CellNotReadyError extends Error {
  constructor(
    readonly cellStack: string,
    readonly run: RunRecord | undefined,
    message: string,
  ) {
    super(message);
  }
}

export interface CellOpenerOptions {
  runs: RunStore;
  log: Logger;
  /** Default DEFAULT_CELL_WAIT_MS. */
  waitMs?: number;
  pollMs?: number;
}

/** What prepare() staged. */
export interface CellSteps {
  /** Stacks of cells whose files were staged now (opened for this need). */
  opened: string[];
  /** Stacks of opening cells whose marker was removed now (their first up succeeded). */
  ready: string[];
}

export class CellOpener {
  constructor(private readonly opts: CellOpenerOptions) {}

  /** The newest `up` run of a stack (drift previews and moves do not deploy a cell). */
  private async lastUp(stack: string): Promise<RunRecord | undefined> {
    return (await this.opts.runs.list({ stacks: [stack], limit: 50 })).find((r) => r.operation === "up");
  }

  private async hasSucceededUp(stack: string): Promise<RunRecord | undefined> {
    return (await this.opts.runs.list({ stacks: [stack], states: ["succeeded"], limit: 50 })).find((r) => r.operation === "up");
  }

  /**
   * Stages, on `draft`, what placing the new tenant `doc` needs first: opening cells of its region
   * whose stack has a succeeded up are opened; then a new cell per env that would fall below the
   * reserve (none while one is opening there). Each is a change of its own (its own commit).
   */
  async prepare(draft: Draft, doc: Readonly<Record<string, unknown>>, tenantId: string, cause: ChangeCause): Promise<CellSteps> {
    const region = typeof doc.region === "string" ? doc.region : undefined;
    const steps: CellSteps = { opened: [], ready: await this.stageReady(draft, cause, { tenantId, region }) };
    for (const cell of cellsToOpen(draft.fleet, doc)) {
      const staged = draft.stage({
        tenantId, cause, route: "main", stacks: [cell.stack],
        summary: `open cell ${cell.stack} (${cell.config.cidr}, ${cell.config.azs.join(", ")}): ${cell.env}/${cell.region} would fall below its ${draft.fleet.platform.cellDefaults.reservePercent}% reserve`,
        files: { [stackPath(cell.stack)]: cell.text },
      });
      if (staged.kind === "staged") steps.opened.push(cell.stack);
    }
    return steps;
  }

  /**
   * Stages, on `draft`, the removal of `opening: true` from every opening cell (of `only.region`
   * when given) whose stack has a succeeded `up`: a change of its own per cell, recorded under
   * `only.tenantId` (the creation that found it) or else under the cell's stack name. Returns the
   * stacks staged.
   */
  async stageReady(draft: Draft, cause: ChangeCause, only: { tenantId?: string; region?: string | undefined } = {}): Promise<string[]> {
    const ready: string[] = [];
    for (const cell of draft.fleet.cells.values()) {
      if (cell.config.opening !== true || ("region" in only && cell.region !== only.region)) continue;
      const run = await this.hasSucceededUp(cell.stack);
      const text = draft.read(stackPath(cell.stack));
      if (!run || text === undefined) continue;
      const staged = draft.stage({
        tenantId: only.tenantId ?? cell.stack, cause, route: "main",
        summary: `open cell ${cell.stack} for placement: its first up succeeded (run ${run.id})`,
        files: { [stackPath(cell.stack)]: openedCellText(text) },
      });
      if (staged.kind === "staged") ready.push(cell.stack);
    }
    return ready;
  }

  /**
   * The last `up` of an opening cell's stack when it is queued, running or succeeded; otherwise
   * (none: a cell opened offline; the last one failed) a new run is queued and returned.
   */
  async ensureFirstUp(stack: string, reason: string): Promise<RunRecord> {
    const done = await this.hasSucceededUp(stack);
    if (done) return done;
    let run = await this.lastUp(stack);
    if (!run || run.state === "failed") {
      const [queued] = await this.opts.runs.enqueueAll([stack], { reason });
      run = queued ? await this.opts.runs.get(queued.runId) : undefined;
      if (!run) throw new CellNotReadyError(stack, undefined, `could not queue the first run of cell ${stack}`);
      this.opts.log.info({ stack, runId: run.id }, `queued the first run of cell ${stack}`);
    }
    return run;
  }

  /**
   * Waits until a run of the opening cell's stack succeeded. Queues its first run when the stack
   * has none (a cell opened offline) or its last one failed before this wait began.
   */
  async waitForFirstUp(stack: string, reason: string): Promise<RunRecord> {
    const waitMs = this.opts.waitMs ?? DEFAULT_CELL_WAIT_MS;
    const run = await this.ensureFirstUp(stack, reason);
    if (run.state === "succeeded") return run;
    let finished: RunRecord;
    try {
      finished = await this.opts.runs.waitFor(run.id, { timeoutMs: waitMs, pollMs: this.opts.pollMs ?? 250 });
    } catch (err) {
      throw new CellNotReadyError(stack, run, `cell ${stack} is opening: its first run ${run.id} did not finish within ${Math.round(waitMs / 1000)} s (${(err as Error).message}); repeat the request later`);
    }
    if (finished.state !== "succeeded") {
      throw new CellNotReadyError(
        stack, finished,
        `cell ${stack} is opening but its first run ${finished.id} failed (${(finished.error ?? "no error recorded").split("\n")[0]}); ` +
          `fix the cause and repeat the request (it queues a new run of ${stack})`,
      );
    }
    return finished;
  }
}
