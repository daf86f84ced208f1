/**
 * /api/rollouts: start a rollout of a change over the fleet's stacks, follow it (JSON, or
 * server-sent events with a snapshot on every change), pause, resume and abort it
 * (docs/rollouts.md).
 */
import type { FastifyInstance } from "fastify";
import { RingsError } from "../../../infra/model/rings.ts";
import { FleetError } from "../../../infra/model/problems.ts";
import { RolloutStateError } from "../../rollouts/engine.ts";
import { RolloutRequestError, type RolloutService } from "../../rollouts/service.ts";
import { keyOf } from "../auth.ts";
import { HttpError } from "../errors.ts";
import { openEventStream } from "../eventStream.ts";
import type { RouteContext } from "./context.ts";

const SNAPSHOT_POLL_MS = 1000;
const TERMINAL = new Set(["succeeded", "aborted", "superseded"]);

export function rolloutRoutes(ctx: RouteContext) {
  return async (api: FastifyInstance) => {
    const service = (): RolloutService => {
      if (!ctx.rollouts) throw new HttpError(503, "rollouts are off in this control plane (its run workers are off)");
      return ctx.rollouts;
    };
    const idParam = (id: string) => {
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) throw new HttpError(400, `"${id}" is not a rollout id (a UUID)`);
      return id;
    };
    const view = async (id: string) => {
      const v = await service().view(idParam(id));
      if (!v) throw new HttpError(404, `no rollout ${id}`);
      return v;
    };

    api.post<{ Body: { name?: unknown; commit?: unknown; supersede?: unknown } }>("/api/rollouts", async (request, reply) => {
      const b = request.body ?? {};
      if (typeof b.name !== "string" || typeof b.commit !== "string" || (b.supersede !== undefined && typeof b.supersede !== "boolean")) {
        throw new HttpError(400, 'body must be { "name": string, "commit": "<git commit id>", "supersede"?: boolean }');
      }
      try {
        const rollout = await service().start({ name: b.name, commit: b.commit, supersede: b.supersede === true, requestedBy: `api key ${request.apiKeyName}` });
        request.log.info({ rolloutId: rollout.id, by: request.apiKeyName, state: rollout.state }, `rollout started: ${rollout.name}`);
        return reply.status(201).send(await service().view(rollout.id));
      } catch (err) {
        if (err instanceof RolloutRequestError || err instanceof RolloutStateError) throw new HttpError(400, err.message);
        if (err instanceof RingsError || err instanceof FleetError) throw new HttpError(422, `the fleet on ${ctx.writer.branch} cannot be planned: ${err.message}`);
        throw err;
      }
    });

    api.get("/api/rollouts", async (_request, reply) => reply.send({ rollouts: await service().engine.list() }));

    api.get<{ Params: { id: string } }>("/api/rollouts/:id", async (request, reply) => reply.send(await view(request.params.id)));

    for (const action of ["pause", "resume", "abort"] as const) {
      api.post<{ Params: { id: string } }>(`/api/rollouts/:id/${action}`, async (request, reply) => {
        const id = idParam(request.params.id);
        await view(id);
        try {
          await service().engine[action](id);
        } catch (err) {
          if (err instanceof RolloutStateError) throw new HttpError(409, err.message);
          throw err;
        }
        request.log.warn({ rolloutId: id, by: request.apiKeyName }, `rollout ${action} requested`);
        return reply.send(await service().view(id));
      });
    }

    api.get<{ Params: { id: string } }>("/api/rollouts/:id/events", async (request, reply) => {
      const id = idParam(request.params.id);
      await view(id);
      const release = ctx.streams.open(keyOf(request).name);
      let last = "";
      let timer: NodeJS.Timeout | undefined;
      const stream = openEventStream(request, reply, () => {
        release();
        clearTimeout(timer);
      });
      const send = async (): Promise<void> => {
        if (stream.closed) return;
        try {
          const v = await service().view(id);
          if (!v || stream.closed) return stream.close();
          const data = JSON.stringify(v);
          if (data !== last) {
            stream.write(`event: rollout\ndata: ${data}\n\n`);
            last = data;
          }
          if (TERMINAL.has(v.rollout.state)) {
            stream.write(`event: end\ndata: ${JSON.stringify({ state: v.rollout.state })}\n\n`);
            return stream.close();
          }
        } catch (err) {
          request.log.warn({ err: { message: (err as Error).message } }, "rollout event stream failed");
          return stream.close();
        }
        timer = setTimeout(() => void send(), SNAPSHOT_POLL_MS);
      };
      await send();
    });
  };
}
