/** /api/workflows/:id: a lifecycle workflow with its steps and backups, and its retry. */
import type { FastifyInstance } from "fastify";
import { isWorkflowId, WorkflowConflictError, WorkflowNotFoundError } from "../../lifecycle/engine.ts";
import { withLogContext } from "../../log.ts";
import { keyOf } from "../auth.ts";
import { HttpError } from "../errors.ts";
import type { RouteContext } from "./context.ts";

export function workflowRoutes(ctx: RouteContext) {
  return async (api: FastifyInstance) => {
    const workflowParam = async (id: string) => {
      if (!isWorkflowId(id)) throw new HttpError(400, `"${id}" is not a workflow id (a UUID, as tenantctl prints it when it records a workflow)`);
      const engine = ctx.workflows;
      if (!engine) {
        throw new HttpError(503, "the lifecycle workflows are off in this control plane (TENANCY_LIFECYCLE_WORKER=off); turn the worker on, or use tenantctl with DATABASE_URL");
      }
      const workflow = await engine.get(id);
      if (!workflow) throw new HttpError(404, `no workflow ${id}`);
      return { engine, workflow };
    };

    api.get<{ Params: { id: string } }>("/api/workflows/:id", async (request, reply) => {
      const { engine, workflow } = await workflowParam(request.params.id);
      const [steps, backups, resumesAt] = await Promise.all([engine.steps(workflow.id), engine.backups({ workflowId: workflow.id }), engine.resumeStep(workflow)]);
      return reply.send({ workflow, steps, backups, resumesAt: workflow.state === "succeeded" || workflow.state === "cancelled" ? null : resumesAt });
    });

    api.post<{ Params: { id: string } }>("/api/workflows/:id/retry", async (request, reply) => {
      const { engine, workflow: before } = await workflowParam(request.params.id);
      return withLogContext({ tenantId: before.tenantId }, async () => {
        let workflow;
        try {
          workflow = await engine.retry(before.id, { by: `api key ${request.apiKeyName}`, apiKey: keyOf(request).name });
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) throw new HttpError(404, err.message);
          if (err instanceof WorkflowConflictError) throw new HttpError(409, err.message);
          throw err;
        }
        return reply.send({ workflow, resumesAt: await engine.resumeStep(workflow) });
      });
    });
  };
}
