/**
 * The rollout engine's view of the run queue, backed by the RunStore: a rollout's stack is
 * started with the same enqueue every other change uses (so a stack still never has two runs at
 * once), and its outcome is the run's final state.
 */
import type { PoolClient } from "pg";
import type { RunStore } from "../runs/store.ts";
import type { RolloutRunPort } from "./engine.ts";

export function runStorePort(store: RunStore): RolloutRunPort {
  return {
    async enqueue(client, stack, cause) {
      const { runId } = await store.enqueue(client, stack, { reason: cause.reason, programCommit: cause.programCommit });
      return { runId };
    },
    async outcomes(client: PoolClient, runIds) {
      const { rows } = await client.query<{ id: string; state: "succeeded" | "failed"; error: string | null }>(
        "SELECT id, state, error FROM runs WHERE id = ANY($1::uuid[]) AND state IN ('succeeded', 'failed')",
        [runIds],
      );
      return new Map(rows.map((r) => [r.id, { state: r.state, error: r.error }]));
    },
    jobsSent() {
      store.jobsSent();
    },
  };
}
