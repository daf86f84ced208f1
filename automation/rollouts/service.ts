/**
 * Rollouts as the API and tenantctl see them: plan a change's waves from a checkout of the fleet
 * (its tenant and stack files and the rings in Pulumi.yaml), record it, and report its progress
 * wave by wave. The engine (engine.ts) does the work; this file only plans and summarises.
 */
import { requireFleet } from "../../infra/model/fleet.ts";
import { loadRings, planWaves, rolloutTargets } from "../../infra/model/rings.ts";
import type { RolloutEngine, RolloutRecord, RolloutStackRecord, RolloutStackState } from "./engine.ts";
import type { RolloutTiming } from "./timing.ts";

export const COMMIT_PATTERN = /^[0-9a-f]{7,40}$/;

export interface StartRequest {
  /** What the change is, for people (a PR title, a release name). */
  name: string;
  /**
   * The commit on the main branch the rollout applies: each run applies this commit's program
   * with the head's tenant and stack files (docs/rollouts.md).
   */
  commit: string;
  supersede?: boolean;
  requestedBy?: string;
}

export class RolloutRequestError extends Error {}

export interface WaveSummary {
  index: number;
  ring: string;
  parallelism: number;
  bakeMs: number;
  failureBudgetPercent: number;
  counts: Record<RolloutStackState, number>;
  stacks: RolloutStackRecord[];
}

export interface RolloutView {
  rollout: RolloutRecord;
  waves: WaveSummary[];
  /** Canary time, control-plane overhead per run, canary failures (timing.ts). */
  timing: RolloutTiming;
}

export class RolloutService {
  constructor(
    readonly engine: RolloutEngine,
    private readonly projectDir: string,
    /** The full id of a commit of the main branch, or why it is not one (GitWriter.commitOnBranch). */
    private readonly onBranch?: (commit: string) => Promise<{ sha: string } | { problem: string }>,
  ) {}

  /** Plans the waves over every cell and dedicated stack of the checkout and records the rollout. */
  async start(req: StartRequest): Promise<RolloutRecord> {
    const name = req.name.trim();
    if (name === "" || name.length > 200) throw new RolloutRequestError("name must be 1-200 characters (what the change is, e.g. the pull request title)");
    if (!COMMIT_PATTERN.test(req.commit)) throw new RolloutRequestError(`commit "${req.commit}" is not a git commit id (7-40 lower-case hex digits)`);
    let commit = req.commit;
    if (this.onBranch) {
      const found = await this.onBranch(commit);
      if ("problem" in found) throw new RolloutRequestError(found.problem);
      commit = found.sha;
    }
    const waves = planWaves(loadRings(this.projectDir), rolloutTargets(requireFleet({ projectDir: this.projectDir })));
    return this.engine.start({ name, commit, waves, ...(req.supersede ? { supersede: true } : {}), ...(req.requestedBy ? { requestedBy: req.requestedBy } : {}) });
  }

  async view(id: string): Promise<RolloutView | undefined> {
    const rollout = await this.engine.get(id);
    if (!rollout) return undefined;
    const stacks = await this.engine.stacks(id);
    const waves = rollout.waves.map((w) => {
      const mine = stacks.filter((s) => s.wave === w.index);
      const counts = { pending: 0, running: 0, succeeded: 0, failed: 0 };
      for (const s of mine) counts[s.state]++;
      return { index: w.index, ring: w.ring, parallelism: w.parallelism, bakeMs: w.bakeMs, failureBudgetPercent: w.failureBudgetPercent, counts, stacks: mine };
    });
    return { rollout, waves, timing: await this.engine.timing(rollout) };
  }
}
