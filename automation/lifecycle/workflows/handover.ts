/**
 * The state hand-over steps of the upgrade and its rollback use (infra/model/handover.ts says what
 * changes hands and when): StackRunner.moveState, idempotent, and a refusal to go on when what
 * must change hands is in neither stack.
 */
import { PermanentError, type JsonObject, type StepContext } from "../engine/engine.ts";
import { json } from "../engine/engine.ts";

export interface Move {
  source: string;
  dest: string;
  /** Alternatives: the move succeeds when one of them is moved or already moved. */
  urns: readonly string[];
  /** Every URN must end up in the destination (false: any one of the alternatives). */
  all: boolean;
}

/**
 * Moves state between stacks (StackRunner.moveState, idempotent) and refuses to go on when what
 * must change hands is in neither stack: no later update could then succeed without a person
 * importing it (`pulumi import`) or restoring it.
 */
export async function handOver(ctx: StepContext, moves: readonly Move[], reason: string): Promise<JsonObject> {
  const out: JsonObject = {};
  for (const m of moves) {
    if (m.urns.length === 0) continue;
    const r = await ctx.ports.runner.moveState({ source: m.source, dest: m.dest, urns: m.urns }, ctx.runContext(reason));
    const there = [...r.moved, ...r.alreadyMoved];
    const complete = m.all ? r.missing.length === 0 : there.length > 0;
    if (!complete) {
      throw new PermanentError(
        `${reason}: ${(m.all ? r.missing : m.urns).join(", ")} ${m.all ? "are" : "is"} in neither stack ${m.source} nor ${m.dest}; ` +
          `an update removed it from the state without deleting it (retainOnDelete): import it into ${m.dest} (pulumi import) and retry the workflow`,
      );
    }
    ctx.log({ source: m.source, dest: m.dest, moved: r.moved, alreadyMoved: r.alreadyMoved, runId: r.runId }, `state handed over: ${m.source} -> ${m.dest}`);
    out[`${m.source}->${m.dest}`] = json({ moved: r.moved, alreadyMoved: r.alreadyMoved, runId: r.runId });
  }
  return out;
}
