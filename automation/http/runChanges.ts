/**
 * GET /api/runs/events: the run queue as server-sent events (docs/control-plane.md). Every change
 * of a run's state (queued, started, finished, cancelled, taken over), of any run or of one stack's
 * (?stack=), is sent as `event: run` with the run as GET /api/runs/:id answers it. Notifications
 * come from the RunEventHub (one LISTEN connection for the process); a burst of them (a rollout
 * queueing a wave) is read back in one query. `event: resync` says changes may have been missed
 * (the hub's connection was lost and made again): read the list again. The console's Runs page
 * (automation/console/assets/runs.js) follows it.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { RunRecord } from "../runs/store.ts";
import { openEventStream } from "./eventStream.ts";
import type { RunEventHub } from "./runEvents.ts";

/** Runs read back per query: a larger burst is sent in several. */
const BATCH = 200;

export interface RunChangesDeps {
  hub: RunEventHub;
  runs: { getMany(ids: readonly string[]): Promise<RunRecord[]> };
}

/** Streams run state changes until the client goes; `release` gives the stream's slot back (StreamLimits). */
export function streamRunChanges(deps: RunChangesDeps, request: FastifyRequest, reply: FastifyReply, stack: string | undefined, release: () => void): void {
  const dirty = new Set<string>();
  let resync = false;
  let pumping = false;
  // Subscribed before the headers go out: a change after the client saw the stream open is never missed.
  const unsubscribe = deps.hub.subscribeStates((runId) => {
    if (runId === undefined) resync = true;
    else dirty.add(runId);
    void pump();
  });
  const stream = openEventStream(request, reply, () => {
    release();
    unsubscribe();
    dirty.clear();
  });
  async function pump(): Promise<void> {
    if (stream.closed || pumping) return;
    pumping = true;
    try {
      while (!stream.closed && (resync || dirty.size > 0)) {
        if (resync) {
          resync = false;
          stream.write(`event: resync\ndata: {}\n\n`);
        }
        const ids = [...dirty].slice(0, BATCH);
        for (const id of ids) dirty.delete(id);
        const runs = await deps.runs.getMany(ids);
        if (stream.closed) return;
        // Oldest first, so a client applying them in order ends at the newest state.
        for (const run of runs.reverse()) {
          if (stack === undefined || run.stack === stack) stream.write(`event: run\ndata: ${JSON.stringify({ run })}\n\n`);
        }
      }
    } catch (err) {
      request.log.warn({ err: { message: (err as Error).message } }, "run queue event stream failed");
      stream.close();
    } finally {
      pumping = false;
    }
  }
}
