/**
 * The control plane's HTTP API (fastify). Every error is JSON `{ error: { message } }` with a
 * message that says what to do; a stack trace never leaves the process (it is logged instead).
 */
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Fastify, { type FastifyReply, type FastifyRequest } from "fastify";
import type { Pool } from "pg";
import type PgBoss from "pg-boss";
import Stripe from "stripe";
import { stacksOfTenant } from "../../infra/model/fleet.ts";
import { parseStackName, StackNameError, TENANT_ID_PATTERN } from "../../infra/model/naming.ts";
import { loadPlatform, type Platform } from "../../infra/model/platform.ts";
import { routeOf } from "../../infra/model/routes.ts";
import { parseTenantFile } from "../../infra/model/tenantFile.ts";
import { recordStripeEvent } from "../billing/intake.ts";
import type { BillingReconciler } from "../billing/reconcile.ts";
import { branchOf, DirtyWorkingCopyError, InvalidMainError, stackPath, tenantPath, type ChangeResult, type GitWriter } from "../git/writer.ts";
import { withLogContext, type Logger } from "../log.ts";
import { isWorkflowId, WorkflowConflictError, WorkflowNotFoundError, type WorkflowEngine } from "../lifecycle/engine.ts";
import type { Metrics } from "../metrics.ts";
import type { RunStore } from "../runs/store.ts";
import { DocumentError, editTenantText, planNewTenant } from "../tenants/documents.ts";
import { API_KEY_HEADER, verifyApiKey, type ApiKeyRecord } from "./apiKeys.ts";
import { errorBody, HttpError } from "./errors.ts";
import type { RunEventHub } from "./runEvents.ts";

/** Stripe's recommended tolerance between the signature timestamp and now. */
export const STRIPE_TOLERANCE_SECONDS = 300;
const SSE_KEEPALIVE_MS = 15_000;

export interface ServerDeps {
  stripeWebhookSecret: string;
  apiKeys: readonly ApiKeyRecord[];
  unpaidGraceHours: number;
  repoDir: string;
  pool: Pool;
  boss: PgBoss;
  writer: GitWriter;
  runs: RunStore;
  reconciler: BillingReconciler;
  hub: RunEventHub;
  metrics: Metrics;
  log: Logger;
  /** The lifecycle workflows' engine; undefined when the lifecycle worker is off (TENANCY_LIFECYCLE_WORKER). */
  workflows?: WorkflowEngine;
}

declare module "fastify" {
  interface FastifyRequest {
    apiKeyName?: string;
  }
}

export function buildServer(deps: ServerDeps) {
  const app = Fastify({
    loggerInstance: deps.log,
    genReqId: () => randomUUID(),
    bodyLimit: 1024 * 1024,
  });
  let platform: Platform | undefined;
  const getPlatform = () => (platform ??= loadPlatform(deps.repoDir));

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (err instanceof HttpError) return reply.status(err.status).send(errorBody(err.message, err.details));
    if (err instanceof DirtyWorkingCopyError || err instanceof InvalidMainError) {
      // The repository needs a person; the message says what to do.
      request.log.error({ err: { message: err.message } }, "tenant files cannot be changed");
      return reply.status(503).send(errorBody(err.message));
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // fastify's own client errors (bad JSON, wrong content type, body too large): their messages are safe and specific.
      return reply.status(status).send(errorBody(`${err.message}${err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE" ? "; send application/json" : ""}`));
    }
    request.log.error({ err: { message: err.message, stack: err.stack } }, "request failed");
    return reply.status(500).send(errorBody(`internal error while handling ${request.method} ${request.url} (request ${request.id}); the control plane's log has the details`));
  });
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send(errorBody(`no route ${request.method} ${request.url}; see docs/control-plane.md for the endpoints`));
  });

  // --- health and metrics --------------------------------------------------------------------

  app.get("/healthz", async (_request, reply) => {
    const checks: Record<string, string> = {};
    await deps.pool.query("SELECT 1").then(() => (checks.database = "ok"), (e: Error) => (checks.database = e.message));
    await deps.writer.head().then(() => (checks.git = "ok"), (e: Error) => (checks.git = e.message));
    const ok = Object.values(checks).every((v) => v === "ok");
    return reply.status(ok ? 200 : 503).send({ status: ok ? "ok" : "unavailable", checks });
  });

  app.get("/metrics", async (_request, reply) => {
    const body = await deps.metrics.registry.metrics();
    return reply.header("content-type", deps.metrics.registry.contentType).send(body);
  });

  // --- Stripe webhook --------------------------------------------------------------------------

  app.register(async (scope) => {
    // The signature covers the exact bytes Stripe sent: keep the raw body, never re-serialize it.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
    scope.post("/webhooks/stripe", async (request, reply) => {
      const signature = request.headers["stripe-signature"];
      const raw = request.body;
      if (typeof signature !== "string" || signature === "") {
        deps.metrics.eventsRejected.inc({ stage: "signature" });
        throw new HttpError(400, "missing Stripe-Signature header; only Stripe's signed deliveries are accepted");
      }
      if (!Buffer.isBuffer(raw) || raw.length === 0) throw new HttpError(400, "empty body; expected the Stripe event JSON");
      let event: Stripe.Event;
      try {
        event = Stripe.webhooks.constructEvent(raw, signature, deps.stripeWebhookSecret, STRIPE_TOLERANCE_SECONDS);
      } catch (err) {
        deps.metrics.eventsRejected.inc({ stage: "signature" });
        request.log.warn({ reason: (err as Error).message.split("\n")[0] }, "webhook signature rejected");
        throw new HttpError(
          400,
          `Stripe signature verification failed: ${(err as Error).message.split("\n")[0]} ` +
            `(signatures older than ${STRIPE_TOLERANCE_SECONDS}s are refused; check that STRIPE_WEBHOOK_SECRET is this endpoint's signing secret)`,
        );
      }
      deps.metrics.eventsReceived.inc({ type: event.type });
      const result = await withLogContext({ eventId: event.id }, () =>
        recordStripeEvent(deps.pool, deps.boss, event, { graceHours: deps.unpaidGraceHours }),
      );
      if (result.duplicate) {
        deps.metrics.eventsDeduplicated.inc();
        withLogContext({ eventId: result.eventId }, () => request.log.info("duplicate Stripe event; already recorded, nothing enqueued"));
        return reply.send({ received: true, duplicate: true, eventId: result.eventId });
      }
      if (result.outcome === "rejected") deps.metrics.eventsRejected.inc({ stage: "payload" });
      if (result.outcome === "stale") deps.metrics.eventsRejected.inc({ stage: "stale" });
      withLogContext({ eventId: result.eventId }, () =>
        request.log.info({ outcome: result.outcome, reason: result.reason, subscriptionId: result.subscriptionId }, `Stripe event ${event.type} ${result.outcome}`),
      );
      if (result.outcome === "rejected" && result.eventId === "") throw new HttpError(400, result.reason ?? "unusable event");
      return reply.send({ received: true, duplicate: false, eventId: result.eventId, outcome: result.outcome, ...(result.reason ? { reason: result.reason } : {}) });
    });
  });

  // --- internal API ----------------------------------------------------------------------------

  app.register(async (api) => {
    api.addHook("onRequest", async (request) => {
      const header = request.headers[API_KEY_HEADER];
      const name = verifyApiKey(deps.apiKeys, typeof header === "string" ? header : undefined);
      if (!name) {
        throw new HttpError(401, `missing or unknown API key: send a key from TENANCY_API_KEYS in the ${API_KEY_HEADER} header`);
      }
      request.apiKeyName = name;
    });

    const tenantIdParam = (id: string) => {
      if (!TENANT_ID_PATTERN.test(id)) throw new HttpError(400, `"${id}" is not a tenant id (a DNS label: lower-case letters, digits and dashes, starting with a letter)`);
      return id;
    };

    const changeStatus = (r: ChangeResult) => (r.state === "committed" ? 201 : r.state === "proposed" ? 202 : 422);
    const changeReply = (reply: FastifyReply, r: ChangeResult) => {
      if (r.state === "rejected") {
        return reply.status(422).send(errorBody(`the resulting tenant spec is invalid; nothing was committed: ${r.problems.join("; ")}`, { problems: r.problems, changeId: r.changeId }));
      }
      return reply.status(changeStatus(r)).send({ change: r });
    };

    api.post("/api/tenants", async (request, reply) => {
      const body = request.body;
      if (!body || typeof body !== "object" || Array.isArray(body)) {
        throw new HttpError(400, "send the tenant as a JSON object with the fields of a tenant file (id, displayName, tier, region, environments, ...)");
      }
      const doc = body as Record<string, unknown>;
      if (typeof doc.id !== "string") throw new HttpError(400, "id: is required (the tenant id, a DNS label)");
      const id = tenantIdParam(doc.id);
      return withLogContext({ tenantId: id, eventId: request.id }, async () => {
        const { value, results } = await deps.writer.change(async (draft) => {
          if (draft.tenant(id) || draft.read(tenantPath(id)) !== undefined) {
            throw new HttpError(409, `tenant ${id} already exists; change it with a pull request, or DELETE it first`);
          }
          if ((await draft.pending(id)) !== undefined) {
            throw new HttpError(409, `tenant ${id} is already proposed on branch ${branchOf(id)}; merge or close that pull request first`);
          }
          let planned;
          try {
            planned = planNewTenant(draft.fleet, doc);
          } catch (err) {
            if (err instanceof DocumentError) throw new HttpError(422, `${tenantPath(id)}: ${err.path}: ${err.message}`, { problems: [`${tenantPath(id)}: ${err.path}: ${err.message}`] });
            throw err;
          }
          return draft.stage({
            tenantId: id,
            summary: `create ${id} (${String(doc.tier)}, ${planned.where}) via the API`,
            files: planned.files,
            cause: { source: "api", ids: [String(request.id)], actor: `api key ${request.apiKeyName}` },
          });
        });
        if (value.kind === "unchanged") throw new HttpError(409, `tenant ${id} already exists`);
        const result = value.kind === "rejected" ? value.result : results.find((r) => r.changeId === value.changeId)!;
        return changeReply(reply, result);
      });
    });

    api.delete<{ Params: { id: string }; Querystring: { graceDays?: string } }>("/api/tenants/:id", async (request, reply) => {
      const id = tenantIdParam(request.params.id);
      const grace = request.query.graceDays;
      if (grace !== undefined && !/^\d{1,4}$/.test(grace)) throw new HttpError(400, `graceDays must be a whole number of days, got "${grace}"`);
      return withLogContext({ tenantId: id, eventId: request.id }, async () => {
        const { value, results } = await deps.writer.change((draft) => {
          const t = draft.tenant(id)?.tenant;
          const text = draft.read(tenantPath(id));
          if (!t || text === undefined) throw new HttpError(404, `no tenant ${id} on ${deps.writer.branch}`);
          if (t.lifecycle === "offboarding") return { kind: "already" as const, requestedAt: t.offboarding?.requestedAt };
          const requestedAt = new Date().toISOString();
          const staged = draft.stage({
            tenantId: id,
            summary: `offboard ${id} via the API`,
            files: { [tenantPath(id)]: editTenantText(text, [[["lifecycle"], "offboarding"], [["offboarding"], { requestedAt, ...(grace ? { graceDays: Number(grace) } : {}) }]]) },
            cause: { source: "api", ids: [String(request.id)], actor: `api key ${request.apiKeyName}` },
          });
          return { kind: "staged" as const, staged };
        });
        if (value.kind === "already") return reply.status(200).send({ message: `tenant ${id} is already offboarding (requested ${value.requestedAt})` });
        const s = value.staged;
        if (s.kind === "unchanged") return reply.status(200).send({ message: `tenant ${id} unchanged` });
        const result = s.kind === "rejected" ? s.result : results.find((r) => r.changeId === s.changeId)!;
        if (result.state === "committed") return reply.status(202).send({ change: result });
        return changeReply(reply, result);
      });
    });

    api.get<{ Params: { id: string } }>("/api/tenants/:id", async (request, reply) => {
      const id = tenantIdParam(request.params.id);
      return withLogContext({ tenantId: id }, async () => {
        const path = tenantPath(id);
        const abs = join(deps.repoDir, path);
        const changes = await deps.pool.query(
          `SELECT id, summary, source, cause_ids AS "causeIds", route, state, stacks, commit_sha AS commit, branch, pull_request AS "pullRequest",
                  pushed, note, problems, created_at AS "createdAt" FROM changes WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT 20`,
          [id],
        );
        if (!existsSync(abs)) {
          const branch = await deps.writer.repo.resolve(`refs/heads/${branchOf(id)}`);
          throw new HttpError(404, `no tenant ${id} on ${deps.writer.branch}${branch ? `; a change is pending on branch ${branchOf(id)}` : ""}`, { changes: changes.rows });
        }
        const p = getPlatform();
        const loaded = parseTenantFile(path, readFileSync(abs, "utf8"), { regions: p.regions, environments: p.environments }, id);
        if (Array.isArray(loaded)) throw new HttpError(500, `${path} on ${deps.writer.branch} does not validate; fix it: ${loaded.map((x) => x.message).join("; ")}`);
        const t = loaded.tenant;
        const stacks = stacksOfTenant(t);
        const runs = await deps.runs.list({ stacks, limit: 20 });
        const sub = await deps.pool.query(
          `SELECT id, status, price_id AS "priceId", deleted_at AS "deletedAt", delinquent_since AS "delinquentSince", last_event_id AS "lastEventId"
           FROM subscriptions WHERE tenant_id = $1 OR id = $2`,
          [id, t.billing?.subscriptionId ?? ""],
        );
        return reply.send({
          tenant: t,
          lifecycle: t.lifecycle,
          routes: Object.keys(t.environments).map((env) => routeOf({ platform: p }, t, env)),
          stacks,
          runs,
          changes: changes.rows,
          subscription: sub.rows[0] ?? null,
          // Newest first; each is GET /api/workflows/:id (absent when the lifecycle worker is off).
          ...(deps.workflows ? { workflows: (await deps.workflows.list(id)).reverse().slice(0, 20) } : {}),
        });
      });
    });

    const runParam = async (id: string) => {
      const run = await deps.runs.get(id);
      if (!run) throw new HttpError(404, `no run ${id}`);
      return run;
    };

    api.get<{ Params: { id: string } }>("/api/runs/:id", async (request, reply) => {
      const run = await runParam(request.params.id);
      return reply.send({ run });
    });

    api.post<{ Params: { id: string } }>("/api/runs/:id/cancel", async (request, reply) => {
      await runParam(request.params.id);
      const run = await deps.runs.requestCancel(request.params.id);
      withLogContext({ runId: request.params.id }, () => request.log.warn({ by: request.apiKeyName }, "run cancellation requested"));
      return reply.status(202).send({ run });
    });

    api.get<{ Params: { id: string }; Querystring: { after?: string } }>("/api/runs/:id/events", async (request, reply) => {
      await runParam(request.params.id);
      streamRunEvents(deps, request, reply, request.params.id);
    });

    api.post<{ Params: { stack: string } }>("/api/stacks/:stack/runs", async (request, reply) => {
      const stack = request.params.stack;
      try {
        parseStackName(stack, getPlatform().environments);
      } catch (err) {
        if (err instanceof StackNameError) throw new HttpError(400, err.message);
        throw err;
      }
      if (!existsSync(join(deps.repoDir, stackPath(stack)))) throw new HttpError(404, `no stack file ${stackPath(stack)} on ${deps.writer.branch}`);
      const [run] = await deps.runs.enqueueAll([stack], { reason: `requested via the API (api key ${request.apiKeyName})` });
      return reply.status(202).send({ run: await deps.runs.get(run!.runId), coalesced: run!.coalesced });
    });

    api.post<{ Params: { id: string } }>("/api/subscriptions/:id/reconcile", async (request, reply) => {
      const { rowCount } = await deps.pool.query("SELECT 1 FROM subscriptions WHERE id = $1 AND last_event_created >= 0", [request.params.id]);
      if (!rowCount) throw new HttpError(404, `no events recorded for subscription ${request.params.id}`);
      const [outcome] = await deps.reconciler.reconcile([request.params.id]);
      return reply.send({ outcome });
    });

    // --- lifecycle workflows ---------------------------------------------------------------------

    const workflowParam = async (id: string) => {
      if (!isWorkflowId(id)) throw new HttpError(400, `"${id}" is not a workflow id (a UUID, as tenantctl prints it when it records a workflow)`);
      const engine = deps.workflows;
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
          workflow = await engine.retry(before.id, { by: `api key ${request.apiKeyName}` });
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) throw new HttpError(404, err.message);
          if (err instanceof WorkflowConflictError) throw new HttpError(409, err.message);
          throw err;
        }
        return reply.send({ workflow, resumesAt: await engine.resumeStep(workflow) });
      });
    });

    api.get<{ Params: { id: string } }>("/api/events/:id", async (request, reply) => {
      const { rows } = await deps.pool.query(
        `SELECT id, type, created, subscription_id AS "subscriptionId", outcome, reason, result, received_at AS "receivedAt", processed_at AS "processedAt"
         FROM billing_events WHERE id = $1`,
        [request.params.id],
      );
      if (!rows[0]) throw new HttpError(404, `no Stripe event ${request.params.id} was recorded`);
      return reply.send({ event: rows[0] });
    });
  });

  return app;
}

/** Server-sent events: every engine event of the run (resumable with Last-Event-ID), then `end`. */
function streamRunEvents(deps: ServerDeps, request: FastifyRequest, reply: FastifyReply, runId: string): void {
  const header = request.headers["last-event-id"];
  const query = (request.query as { after?: string }).after;
  let last = typeof header === "string" && /^\d+$/.test(header) ? header : query && /^\d+$/.test(query) ? query : "0";
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  let closed = false;
  let pumping = false;
  let again = false;
  const close = () => {
    if (closed) return;
    closed = true;
    unsubscribe();
    clearInterval(keepalive);
    res.end();
  };
  const pump = async (): Promise<void> => {
    if (closed) return;
    if (pumping) {
      again = true;
      return;
    }
    pumping = true;
    try {
      do {
        again = false;
        // Read the state first: once terminal, every event is already persisted.
        const run = await deps.runs.get(runId);
        for (;;) {
          const rows = await deps.runs.events(runId, last, 500);
          for (const row of rows) {
            res.write(`id: ${row.id}\nevent: engine\ndata: ${JSON.stringify({ attempt: row.attempt, at: row.at, event: row.event })}\n\n`);
            last = row.id;
          }
          if (rows.length < 500) break;
        }
        if (run && (run.state === "succeeded" || run.state === "failed")) {
          res.write(`event: end\ndata: ${JSON.stringify({ state: run.state, error: run.error })}\n\n`);
          close();
          return;
        }
      } while (again && !closed);
    } catch (err) {
      request.log.warn({ err: { message: (err as Error).message } }, "run event stream failed");
      close();
    } finally {
      pumping = false;
    }
  };
  const unsubscribe = deps.hub.subscribe(runId, () => void pump());
  const keepalive = setInterval(() => res.write(": keepalive\n\n"), SSE_KEEPALIVE_MS);
  request.raw.on("close", close);
  void pump();
}

