/** POST /api/stacks/:stack/runs: queue an `up` of one stack on the current commit. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { parseStackName, StackNameError } from "../../../infra/model/naming.ts";
import { stackPath } from "../../../infra/model/fleetFiles/index.ts";
import { keyOf } from "../auth.ts";
import { HttpError } from "../errors.ts";
import type { RouteContext } from "./context.ts";

export function stackRoutes(ctx: RouteContext) {
  return async (api: FastifyInstance) => {
    api.post<{ Params: { stack: string } }>("/api/stacks/:stack/runs", async (request, reply) => {
      const stack = request.params.stack;
      try {
        parseStackName(stack, ctx.platform().environments);
      } catch (err) {
        if (err instanceof StackNameError) throw new HttpError(400, err.message);
        throw err;
      }
      if (!existsSync(join(ctx.repoDir, stackPath(stack)))) throw new HttpError(404, `no stack file ${stackPath(stack)} on ${ctx.writer.branch}`);
      const [run] = await ctx.runs.enqueueAll([stack], { reason: `requested via the API (api key ${request.apiKeyName})`, apiKey: keyOf(request).name });
      return reply.status(202).send({ run: await ctx.runs.get(run!.runId), coalesced: run!.coalesced });
    });
  };
}
