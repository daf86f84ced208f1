import { formatProblem } from "../../infra/model/problems.ts";
import { affectedStacks } from "../affected/affected.ts";
import { GitError } from "../affected/git.ts";
import { EXIT, UsageError, type Io } from "../io.ts";
import { fleetDirs } from "../options.ts";

export interface AffectedOptions {
  base: string;
  head?: string;
  json?: boolean;
  project?: string;
}

/**
 * `tenantctl affected --base REF [--head REF] [--json]`: the stacks a change touches, one a line
 * (docs/architecture.md, "Contracts other tools rely on"). `--json` adds the reasons and whether each stack exists at each side, for CI
 * matrices (a stack whose file was deleted has nothing to `pulumi up`).
 */
export async function affectedCommand(opts: AffectedOptions, io: Io): Promise<number> {
  const { projectDir } = fleetDirs(opts);
  let result;
  try {
    result = await affectedStacks(projectDir, opts.base, opts.head);
  } catch (err) {
    if (err instanceof GitError) throw new UsageError(err.message);
    throw err;
  }
  for (const w of result.warnings) io.err(`tenantctl: warning: ${w}`);
  if (result.placementChanges.length > 0) {
    for (const p of result.placementChanges) io.err(formatProblem(p));
    return EXIT.problems;
  }
  if (opts.json) {
    io.out(
      JSON.stringify(
        {
          base: result.base,
          head: result.head,
          stacks: result.stacks,
          details: result.details,
          warnings: result.warnings,
          // A program, policy or platform change: the deploy workflow starts a rollout (docs/rollouts.md).
          program: result.programPaths.length > 0,
          programPaths: result.programPaths,
        },
        null,
        2,
      ),
    );
    return EXIT.ok;
  }
  for (const s of result.stacks) io.out(s);
  return EXIT.ok;
}
