/**
 * What every route plugin of the control plane's HTTP API receives: the server's dependencies
 * and the helpers more than one resource uses (parameter checks, the answer to a staged change).
 */
import type { FastifyReply } from "fastify";
import type { Pool } from "pg";
import type { PgBoss } from "pg-boss";
import { TENANT_ID_PATTERN } from "../../../infra/model/naming.ts";
import type { Platform } from "../../../infra/model/platform.ts";
import type { BillingReconciler } from "../../billing/reconcile.ts";
import type { TenantCosts } from "../../cost/tenantCosts.ts";
import type { FleetCache } from "../../git/fleetCache.ts";
import type { ChangeResult, GitWriter } from "../../git/writer.ts";
import type { WorkflowEngine } from "../../lifecycle/engine/engine.ts";
import type { LifecycleService } from "../../lifecycle/service.ts";
import type { Logger } from "../../log.ts";
import type { Metrics } from "../../metrics.ts";
import type { DriftScheduler } from "../../drift/scheduler.ts";
import type { RolloutService } from "../../rollouts/service.ts";
import type { RunStore } from "../../runs/store.ts";
import type { SchemaMigrationService } from "../../schemaMigrations/service.ts";
import { errorBody, HttpError } from "../errors.ts";
import type { ApiKeyRing } from "../keyRing.ts";
import type { RunEventHub } from "../runEvents.ts";
import type { HttpSettings } from "../settings.ts";
import type { StreamLimits } from "../streams.ts";

export interface ServerDeps {
  stripeWebhookSecret: string;
  /** The API keys in force (reloaded on SIGHUP and file change). */
  keys: ApiKeyRing;
  http: HttpSettings;
  unpaidGraceHours: number;
  repoDir: string;
  /** The fleet of repoDir, loaded once per commit (GET /api/fleet, GET /api/drift). */
  fleet: FleetCache;
  /** Tenants' monthly costs, priced in a worker process and kept per loaded fleet (GET /api/tenants/:id/cost). */
  costs: TenantCosts;
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
  /** The lifecycle requests (checked against the tenant file); present exactly when `workflows` is. */
  lifecycle?: LifecycleService;
  /** Rollouts of program changes over the fleet; undefined when this process runs no stack runs. */
  rollouts?: RolloutService;
  /** Scheduled drift checks; undefined when drift detection is off. */
  drift?: DriftScheduler;
  /** Tenant schema migrations; undefined without the tenant databases (lifecycle settings) or run workers. */
  schemaMigrations?: SchemaMigrationService;
}

/** The dependencies plus the platform file, read once on first use, and the event-stream caps. */
export interface RouteContext extends ServerDeps {
  platform(): Platform;
  streams: StreamLimits;
}

declare module "fastify" {
  interface FastifyRequest {
    apiKeyName?: string;
  }
}

export function tenantIdParam(id: string): string {
  if (!TENANT_ID_PATTERN.test(id)) throw new HttpError(400, `"${id}" is not a tenant id (a DNS label: lower-case letters, digits and dashes, starting with a letter)`);
  return id;
}

const changeStatus = (r: ChangeResult) => (r.state === "committed" ? 201 : r.state === "proposed" ? 202 : 422);

/** 201 committed, 202 proposed, 422 rejected (with the problems). */
export function changeReply(reply: FastifyReply, r: ChangeResult): FastifyReply {
  if (r.state === "rejected") {
    return reply.status(422).send(errorBody(`the resulting tenant spec is invalid; nothing was committed: ${r.problems.join("; ")}`, { problems: r.problems, changeId: r.changeId }));
  }
  return reply.status(changeStatus(r)).send({ change: r });
}
