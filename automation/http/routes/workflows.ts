/**
 * /api/workflows/:id: a lifecycle workflow with its steps and backups, its retry and its cancel; and the
 * lifecycle requests made over the API that are not tenant-file edits (POST /api/tenants/:id/rotate,
 * POST /api/tenants/:id/move, POST /api/tenants/:id/move/rollback).
 */
import type { FastifyInstance } from "fastify";
import { LifecycleRequestError } from "../../lifecycle/service.ts";
import { afterCancel, whileCancelling } from "../../lifecycle/afterCancel.ts";
import { CutoverTimeError, parseCutoverTime } from "../../lifecycle/workflows/cutoverTime.ts";
import {
  CancelRefusedError, isWorkflowId, WorkflowBusyError, WorkflowConflictError, WorkflowFinishedError, WorkflowNotFoundError,
} from "../../lifecycle/engine/engine.ts";
import { withLogContext } from "../../log.ts";
import { keyOf } from "../auth.ts";
import { HttpError } from "../errors.ts";
import { tenantIdParam, type RouteContext } from "./context.ts";

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

    // Records a rotation of the tenant's database password (docs/lifecycle.md, "Credential
    // rotation"); the lifecycle worker runs it. 202 with the workflow; 409 naming why when refused.
    api.post<{ Params: { id: string }; Body: { envs?: unknown } | undefined }>("/api/tenants/:id/rotate", async (request, reply) => {
      const id = tenantIdParam(request.params.id);
      const lifecycle = ctx.lifecycle;
      if (!lifecycle) {
        throw new HttpError(503, "the lifecycle workflows are off in this control plane (TENANCY_LIFECYCLE_WORKER=off); turn the worker on, or use tenantctl rotate with DATABASE_URL");
      }
      const envs = request.body?.envs;
      if (envs !== undefined && (!Array.isArray(envs) || envs.some((e) => typeof e !== "string"))) {
        throw new HttpError(400, `envs must be a list of environment names (e.g. ["prod"]), or left out for all of the tenant's; got ${JSON.stringify(envs)}`);
      }
      return withLogContext({ tenantId: id }, async () => {
        let workflow;
        try {
          workflow = await lifecycle.requestRotate(id, { requestedBy: `api key ${request.apiKeyName}`, ...(envs ? { envs: envs as string[] } : {}) });
        } catch (err) {
          if (err instanceof LifecycleRequestError) throw new HttpError(/has no file/.test(err.message) ? 404 : 409, err.message);
          throw err;
        }
        return reply.status(202).send({ workflow });
      });
    });

    // Records a cell move of the tenant (docs/lifecycle.md, "Cell moves"): body { to, env?,
    // cutoverNotBefore? }; the lifecycle worker runs it. 202 with the workflow; 409 naming why when refused.
    api.post<{ Params: { id: string }; Body: { to?: unknown; env?: unknown; cutoverNotBefore?: unknown } | undefined }>("/api/tenants/:id/move", async (request, reply) => {
      const id = tenantIdParam(request.params.id);
      const lifecycle = ctx.lifecycle;
      if (!lifecycle) {
        throw new HttpError(503, "the lifecycle workflows are off in this control plane (TENANCY_LIFECYCLE_WORKER=off); turn the worker on, or use tenantctl move with DATABASE_URL");
      }
      const { to, env } = request.body ?? {};
      if (typeof to !== "string" || to === "") throw new HttpError(400, `to must name the cell to move to (e.g. {"to": "use1-02"}); got ${JSON.stringify(to)}`);
      if (env !== undefined && typeof env !== "string") throw new HttpError(400, `env must be an environment name (e.g. "prod"), or left out; got ${JSON.stringify(env)}`);
      const notBefore = request.body?.cutoverNotBefore;
      let cutoverNotBefore: Date | undefined;
      if (notBefore !== undefined) {
        try {
          if (typeof notBefore !== "string") throw new CutoverTimeError(`cutoverNotBefore must be a string; got ${JSON.stringify(notBefore)}`);
          // Against the clock the engine waits by (the lifecycle ports'), not this host's.
          cutoverNotBefore = parseCutoverTime(notBefore, lifecycle.now(), "cutoverNotBefore");
        } catch (err) {
          if (err instanceof CutoverTimeError) throw new HttpError(400, err.message);
          throw err;
        }
      }
      return withLogContext({ tenantId: id }, async () => {
        let workflow;
        try {
          workflow = await lifecycle.requestMove(id, { requestedBy: `api key ${request.apiKeyName}`, to, ...(env ? { env } : {}), ...(cutoverNotBefore ? { cutoverNotBefore } : {}) });
        } catch (err) {
          if (err instanceof LifecycleRequestError) throw new HttpError(/has no file/.test(err.message) ? 404 : 409, err.message);
          throw err;
        }
        return reply.status(202).send({ workflow });
      });
    });

    // Records the rollback of the tenant's cell move before its switch (docs/lifecycle.md, "Cell
    // moves"); no body. 202 with the workflow; 409 naming why when refused (no move, switched, or
    // the move has started its switch), 404 for an unknown tenant.
    api.post<{ Params: { id: string } }>("/api/tenants/:id/move/rollback", async (request, reply) => {
      const id = tenantIdParam(request.params.id);
      const lifecycle = ctx.lifecycle;
      if (!lifecycle) {
        throw new HttpError(503, "the lifecycle workflows are off in this control plane (TENANCY_LIFECYCLE_WORKER=off); turn the worker on, or use tenantctl move --rollback with DATABASE_URL");
      }
      return withLogContext({ tenantId: id }, async () => {
        let workflow;
        try {
          workflow = await lifecycle.requestMoveRollback(id, { requestedBy: `api key ${request.apiKeyName}` });
        } catch (err) {
          if (err instanceof LifecycleRequestError) throw new HttpError(/has no file/.test(err.message) ? 404 : 409, err.message);
          throw err;
        }
        return reply.status(202).send({ workflow });
      });
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

    // Cancels an open workflow (docs/lifecycle.md, "Cancelling a workflow"): body { note? }. 200 with
    // the cancelled workflow and what to do next; 202 with `cancelling` when a step is running (the
    // cancel is recorded; the step is stopped, or left to end when it cannot be interrupted, and the
    // workflow then ends cancelled); 404 unknown; 409 when it has finished (with its state), is
    // running or past the step after which a cancel is refused, or its clean-up failed (with the cause; nothing changed).
    api.post<{ Params: { id: string }; Body: { note?: unknown } | undefined }>("/api/workflows/:id/cancel", async (request, reply) => {
      const { engine, workflow: before } = await workflowParam(request.params.id);
      const note = request.body?.note;
      if (note !== undefined && (typeof note !== "string" || note.trim() === "" || note.length > 500)) {
        throw new HttpError(400, `note must be a short text saying why (at most 500 characters, e.g. {"note": "customer asked to wait"}), or left out; got ${JSON.stringify(note)?.slice(0, 80)}`);
      }
      return withLogContext({ tenantId: before.tenantId }, async () => {
        let workflow;
        try {
          workflow = await engine.cancel(before.id, `cancelled by api key ${request.apiKeyName}${note ? `: ${note.trim()}` : ""}`);
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) throw new HttpError(404, err.message);
          if (err instanceof WorkflowFinishedError) throw new HttpError(409, err.message, { state: err.workflow.state, finishedAt: err.workflow.finishedAt });
          if (err instanceof CancelRefusedError) throw new HttpError(409, err.message, { state: err.workflow.state, step: err.workflow.currentStep, cause: err.reason });
          if (err instanceof WorkflowBusyError) throw new HttpError(409, err.message, { state: err.workflow.state, step: err.workflow.currentStep });
          if (err instanceof WorkflowConflictError) throw new HttpError(409, err.message);
          throw err;
        }
        if (workflow.state !== "cancelled") {
          const interrupting = engine.cancelInterrupts(workflow);
          request.log.warn({ workflowId: workflow.id, kind: workflow.kind, step: workflow.currentStep, interrupting, by: request.apiKeyName }, "lifecycle workflow cancel requested while a step runs");
          return reply.status(202).send({ workflow, cancelling: { step: workflow.currentStep, interrupting }, next: whileCancelling(workflow, interrupting) });
        }
        request.log.warn({ workflowId: workflow.id, kind: workflow.kind, step: before.currentStep, by: request.apiKeyName }, "lifecycle workflow cancelled");
        return reply.send({ workflow, next: afterCancel(workflow, await engine.steps(workflow.id)) });
      });
    });
  };
}
