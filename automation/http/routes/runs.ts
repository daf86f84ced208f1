/**
 * /api/runs: the queue and recent runs, and their state changes as server-sent events
 * (/api/runs/events); /api/runs/:id: a run, its cancellation, and its engine events as server-sent events.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { withLogContext } from "../../log.ts";
import { RUN_STATES, type RunState } from "../../runs/store.ts";
import { parseStackName, StackNameError } from "../../../infra/model/naming.ts";
import { keyOf } from "../auth.ts";
import { HttpError } from "../errors.ts";
import { openEventStream } from "../eventStream.ts";
import { streamRunChanges } from "../runChanges.ts";
import type { RouteContext } from "./context.ts";

export function runRoutes(ctx: RouteContext) {
  return async (api: FastifyInstance) => {
    const runParam = async (id: string) => {
      const run = await ctx.runs.get(id);
      if (!run) throw new HttpError(404, `no run ${id}`);
      return run;
    };

    // The queue and recent runs, newest first: ?state=queued,running (any of RUN_STATES), ?stack=, ?limit= (1-500, default 100).
    api.get<{ Querystring: { state?: string; stack?: string; limit?: string } }>("/api/runs", async (request, reply) => {
      const { state, stack, limit } = request.query;
      const states = state === undefined ? undefined : state.split(",");
      const bad = states?.filter((s) => !(RUN_STATES as readonly string[]).includes(s)) ?? [];
      if (bad.length > 0) throw new HttpError(400, `state ${bad.join(", ")} is not a run state; states are ${RUN_STATES.join(", ")}`);
      if (limit !== undefined && !/^\d{1,3}$/.test(limit)) throw new HttpError(400, `limit must be a whole number from 1 to 500, got "${limit}"`);
      const n = limit === undefined ? 100 : Number(limit);
      if (n < 1 || n > 500) throw new HttpError(400, `limit must be a whole number from 1 to 500, got "${limit}"`);
      const runs = await ctx.runs.list({ ...(states ? { states: states as RunState[] } : {}), ...(stack !== undefined ? { stacks: [stack] } : {}), limit: n });
      return reply.send({ runs });
    });

    // Every run's state changes (?stack=: one stack's), as server-sent events (automation/http/runChanges.ts).
    api.get<{ Querystring: { stack?: string } }>("/api/runs/events", async (request, reply) => {
      const { stack } = request.query;
      if (stack !== undefined) {
        try {
          parseStackName(stack, ctx.platform().environments);
        } catch (err) {
          if (err instanceof StackNameError) throw new HttpError(400, err.message);
          throw err;
        }
      }
      const release = ctx.streams.open(keyOf(request).name);
      streamRunChanges(ctx, request, reply, stack, release);
    });

    api.get<{ Params: { id: string } }>("/api/runs/:id", async (request, reply) => {
      const run = await runParam(request.params.id);
      return reply.send({ run });
    });

    api.post<{ Params: { id: string } }>("/api/runs/:id/cancel", async (request, reply) => {
      await runParam(request.params.id);
      const run = await ctx.runs.requestCancel(request.params.id);
      withLogContext({ runId: request.params.id }, () => request.log.warn({ by: request.apiKeyName }, "run cancellation requested"));
      return reply.status(202).send({ run });
    });

    api.get<{ Params: { id: string }; Querystring: { after?: string } }>("/api/runs/:id/events", async (request, reply) => {
      await runParam(request.params.id);
      const release = ctx.streams.open(keyOf(request).name);
      streamRunEvents(ctx, request, reply, request.params.id, release);
    });
  };
}

/** Server-sent events: every engine event of the run (resumable with Last-Event-ID), then `end`. */
function streamRunEvents(ctx: RouteContext, request: FastifyRequest, reply: FastifyReply, runId: string, release: () => void): void {
  const header = request.headers["last-event-id"];
  const query = (request.query as { after?: string }).after;
  let last = typeof header === "string" && /^\d+$/.test(header) ? header : query && /^\d+$/.test(query) ? query : "0";
  // Subscribed once the stream is open (below); close() unsubscribes what is subscribed by then.
  let unsubscribe = () => undefined as void;
  const stream = openEventStream(request, reply, () => {
    release();
    unsubscribe();
  });
  let pumping = false;
  let again = false;
  const pump = async (): Promise<void> => {
    if (stream.closed) return;
    if (pumping) {
      again = true;
      return;
    }
    pumping = true;
    try {
      do {
        again = false;
        // Read the state first: once terminal, every event is already persisted.
        const run = await ctx.runs.get(runId);
        for (;;) {
          const rows = await ctx.runs.events(runId, last, 500);
          for (const row of rows) {
            stream.write(`id: ${row.id}\nevent: engine\ndata: ${JSON.stringify({ attempt: row.attempt, at: row.at, event: row.event })}\n\n`);
            last = row.id;
          }
          if (rows.length < 500) break;
        }
        if (run && (run.state === "succeeded" || run.state === "failed")) {
          stream.write(`event: end\ndata: ${JSON.stringify({ state: run.state, error: run.error })}\n\n`);
          stream.close();
          return;
        }
      } while (again && !stream.closed);
    } catch (err) {
      request.log.warn({ err: { message: (err as Error).message } }, "run event stream failed");
      stream.close();
    } finally {
      pumping = false;
    }
  };
  unsubscribe = ctx.hub.subscribe(runId, () => void pump());
  void pump();
}
