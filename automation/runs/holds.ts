/**
 * Holds on stacks (migration 321): a lifecycle workflow holds its tenant's stacks while its switch's
 * write window may be open (docs/lifecycle.md, "No stack run in the window"), so no update, destroy
 * or drift check of them starts inside it. A run that arrives meanwhile is queued as always but gets
 * no job (RunStore.enqueue / start / kickNext ask `heldStacks`); releasing the last hold on a stack
 * gives its queued runs their jobs. State moves are never held: they change no cloud resource and the
 * switch itself hands state over while holding. A run already running when the hold is taken goes
 * on; the holder waits for it (RunStore.hold returns it).
 */
import type { Queryable } from "../db/tx.ts";

export interface StackHold {
  stack: string;
  /** Who holds it: the lifecycle workflow's id. */
  holder: string;
  reason: string;
  since: string;
}

/** Operations a hold keeps from starting: all but state moves. */
export function holdApplies(operation: string): boolean {
  return operation !== "move";
}

export async function heldStacks(client: Queryable, stacks: readonly string[]): Promise<StackHold[]> {
  if (stacks.length === 0) return [];
  const { rows } = await client.query<{ stack: string; holder: string; reason: string; since: Date }>(
    "SELECT stack, holder, reason, since FROM stack_holds WHERE stack = ANY($1::text[]) ORDER BY stack, since, holder",
    [stacks],
  );
  return rows.map((r) => ({ stack: r.stack, holder: r.holder, reason: r.reason, since: r.since.toISOString() }));
}

/** Inserts the holds (idempotent: a hold already there keeps its reason and time). */
export async function insertHolds(client: Queryable, stacks: readonly string[], holder: string, reason: string): Promise<void> {
  await client.query(
    "INSERT INTO stack_holds (stack, holder, reason) SELECT s, $2, $3 FROM unnest($1::text[]) s ON CONFLICT (stack, holder) DO NOTHING",
    [[...new Set(stacks)], holder, reason],
  );
}

/** The stacks `holder` holds. */
export async function stacksHeldBy(client: Queryable, holder: string): Promise<string[]> {
  const { rows } = await client.query<{ stack: string }>("SELECT stack FROM stack_holds WHERE holder = $1 ORDER BY stack", [holder]);
  return rows.map((r) => r.stack);
}

export async function deleteHolds(client: Queryable, holder: string): Promise<void> {
  await client.query("DELETE FROM stack_holds WHERE holder = $1", [holder]);
}

/** One line for a run's skip reason and the logs. */
export function describeHold(h: StackHold): string {
  return `stack ${h.stack} is held by lifecycle workflow ${h.holder} (${h.reason}) since ${h.since}; the run starts when it is released`;
}
