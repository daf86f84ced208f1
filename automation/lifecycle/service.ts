/**
 * The lifecycle service: what the control plane, tenantctl and the tests call. It checks a
 * request against the tenant's file (so an impossible request is refused at once, with the
 * reason) and records the workflow; `engine.run` / `engine.runDue` execute it.
 */
import type pg from "pg";
import { parse } from "yaml";
import { tenantPath } from "../../infra/model/fleetFiles/index.ts";
import { loadPlatform } from "../../infra/model/platform.ts";
import { parseTenantFile } from "../../infra/model/tenantFile.ts";
import { formatProblem } from "../../infra/model/problems.ts";
import type { Tenant } from "../../infra/model/schema.ts";
import { DEFAULT_LIFECYCLE_CONFIG, type LifecycleConfig } from "./config.ts";
import { WorkflowConflictError, WorkflowEngine, type EngineHooks, type JsonObject, type WorkflowRecord } from "./engine/engine.ts";
import type { LifecyclePorts } from "./ports.ts";
import { LIFECYCLE_WORKFLOWS, type LifecycleWorkflowKind } from "./workflows/registry.ts";
import type { RollbackParams } from "./workflows/rollback.ts";
import type { MoveRollbackParams } from "./workflows/moveRollback.ts";
import type { UpgradeParams } from "./workflows/upgrade.ts";
import { rotationRefusal, type RotateParams } from "./workflows/rotate.ts";
import type { MoveParams } from "./workflows/move.ts";
import { moveRefusal } from "../../infra/model/fleetFiles/index.ts";
import { requireFleet } from "../../infra/model/fleet.ts";

/** A request that the tenant's current state makes impossible (exit 1 in tenantctl, 409 over HTTP). */
export class LifecycleRequestError extends Error {}

export interface RequestOptions {
  requestedBy?: string;
}

export class LifecycleService {
  readonly engine: WorkflowEngine;

  constructor(
    pool: pg.Pool,
    private readonly ports: LifecyclePorts,
    config: LifecycleConfig = DEFAULT_LIFECYCLE_CONFIG,
    hooks: EngineHooks = {},
  ) {
    this.engine = new WorkflowEngine(pool, ports, LIFECYCLE_WORKFLOWS, config, hooks);
  }

  /** The workflows' time (the ports' clock, as the engine reads it): what a requested time is checked against. */
  now(): Date {
    return this.ports.clock.now();
  }

  private async tenant(id: string): Promise<{ tenant: Tenant; text: string }> {
    const text = await this.ports.repo.read(tenantPath(id));
    if (text === undefined) throw new LifecycleRequestError(`tenant ${id} has no file ${tenantPath(id)}`);
    const platform = loadPlatform(this.ports.repo.root);
    const parsed = parseTenantFile(tenantPath(id), text, { regions: platform.regions, environments: platform.environments }, id);
    if (Array.isArray(parsed)) throw new LifecycleRequestError(parsed.map(formatProblem).join("\n"));
    return { tenant: parsed.tenant, text };
  }

  private async create(kind: LifecycleWorkflowKind, id: string, params: JsonObject, opts: RequestOptions): Promise<WorkflowRecord> {
    try {
      return await this.engine.create(kind, id, params, opts.requestedBy);
    } catch (err) {
      if (err instanceof WorkflowConflictError) throw new LifecycleRequestError(err.message);
      throw err;
    }
  }

  async requestUpgrade(id: string, opts: RequestOptions & { cutoverNotBefore?: Date } = {}): Promise<WorkflowRecord> {
    const { tenant: t, text } = await this.tenant(id);
    if (t.deployment !== "pooled") throw new LifecycleRequestError(`tenant ${id} is already dedicated${t.migration ? ` (migration in phase ${t.migration.phase})` : ""}`);
    if (t.lifecycle !== "active") throw new LifecycleRequestError(`tenant ${id} is ${t.lifecycle}; resume it before upgrading`);
    // The file's own `deployment` key (enterprise may write it), restored as it was by a rollback.
    const raw = parse(text) as { deployment?: unknown };
    const explicitDeployment = typeof raw.deployment === "string" ? raw.deployment : undefined;
    const params: UpgradeParams = {
      to: "dedicated",
      previous: { tier: t.tier, ...(explicitDeployment ? { deployment: explicitDeployment } : {}), placement: { ...(t.placement as Record<string, string>) } },
      ...(opts.cutoverNotBefore ? { cutoverNotBefore: opts.cutoverNotBefore.toISOString() } : {}),
    };
    return this.create("upgrade", id, params, opts);
  }

  /**
   * Rolls back the tenant's upgrade before its switch (workflows/rollback.ts): the open one, or,
   * with none open, its latest upgrade when that one was cancelled or failed for good after it had
   * completed a step and nothing came after it (what it did stays until rolled back; docs/lifecycle.md, "Cancelling a workflow").
   */
  async requestRollback(id: string, opts: RequestOptions & { destroyDedicated?: boolean } = {}): Promise<WorkflowRecord> {
    const open = await this.engine.openFor(id);
    let upgrade = open?.kind === "upgrade" ? open : undefined;
    if (!open) {
      // Only the tenant's latest workflow: after a later one (a rollback already run, say) it no longer
      // describes the tenant (>=: a tie counts as later, a spurious refusal is the safe side).
      const all = await this.engine.list(id);
      const last = all.filter((w) => w.kind === "upgrade").at(-1);
      if (
        last && (last.state === "cancelled" || last.state === "failed") && !all.some((w) => w.id !== last.id && w.createdAt >= last.createdAt) &&
        (await this.engine.steps(last.id)).length > 0
      ) {
        upgrade = last;
      }
    }
    if (!upgrade) {
      throw new LifecycleRequestError(`tenant ${id} has no upgrade under way${open ? ` (its open workflow is a ${open.kind})` : ""}; nothing to roll back`);
    }
    const params: RollbackParams = { upgradeId: upgrade.id, destroyDedicated: opts.destroyDedicated ?? false };
    return this.create("rollback", id, params, opts);
  }

  async requestSuspend(id: string, opts: RequestOptions = {}): Promise<WorkflowRecord> {
    const { tenant: t } = await this.tenant(id);
    if (t.lifecycle === "offboarding") throw new LifecycleRequestError(`tenant ${id} is offboarding; suspension does not apply`);
    return this.create("suspend", id, {}, opts);
  }

  async requestResume(id: string, opts: RequestOptions = {}): Promise<WorkflowRecord> {
    await this.tenant(id);
    return this.create("resume", id, {}, opts);
  }

  async requestOffboard(id: string, opts: RequestOptions & { graceDays?: number } = {}): Promise<WorkflowRecord> {
    const { tenant: t } = await this.tenant(id);
    if (t.deployment === "dedicated" && t.migration) throw new LifecycleRequestError(`tenant ${id} is migrating to dedicated (phase ${t.migration.phase}); finish or roll back the upgrade first`);
    return this.create("offboard", id, opts.graceDays !== undefined ? { graceDays: opts.graceDays } : {}, opts);
  }

  /**
   * Moves the tenant's environment `env` to cell `to` (docs/lifecycle.md, "Cell moves"), switching
   * no earlier than `cutoverNotBefore` when given (workflows/cutoverTime.ts). Refused
   * (moveRefusal) for a tenant that is not an active pooled one, already moving, or a cell that is
   * its own, unknown, of another env or region, opening, draining or full; and by the engine while
   * another of its workflows is under way or its schema is mid-way in a schema migration.
   */
  async requestMove(id: string, opts: RequestOptions & { env?: string; to: string; cutoverNotBefore?: Date }): Promise<WorkflowRecord> {
    const { tenant: t } = await this.tenant(id);
    const fleet = requireFleet({ projectDir: this.ports.repo.root });
    // Without an env: the one of the tenant's environments that has a cell of that id.
    let env = opts.env;
    if (env === undefined) {
      const envs = Object.keys(t.environments).filter((e) => [...fleet.cells.values()].some((c) => c.env === e && c.id === opts.to)).sort();
      if (envs.length !== 1) {
        throw new LifecycleRequestError(`move of ${id} to ${opts.to}: ${envs.length === 0 ? `no environment of the tenant (${Object.keys(t.environments).sort().join(", ")}) has a cell ${opts.to}` : `cells named ${opts.to} exist in ${envs.join(" and ")}`}; name the environment (--env)`);
      }
      env = envs[0]!;
    }
    const refusal = moveRefusal(fleet, t, env, opts.to);
    if (refusal) throw new LifecycleRequestError(`move of ${id} to ${opts.to} refused: ${refusal}`);
    const params: MoveParams = {
      env, from: (t as Extract<Tenant, { deployment: "pooled" }>).placement[env]!, to: opts.to,
      ...(opts.cutoverNotBefore ? { cutoverNotBefore: opts.cutoverNotBefore.toISOString() } : {}),
    };
    return this.create("move", id, params, opts);
  }

  /**
   * Rolls back the tenant's cell move before its switch (workflows/moveRollback.ts): refused
   * without a move in its file, once the file says the switch happened (phase cutover or cleanup),
   * and by the engine while the move is open and has started its switch.
   */
  async requestMoveRollback(id: string, opts: RequestOptions = {}): Promise<WorkflowRecord> {
    const { tenant: t } = await this.tenant(id);
    if (t.deployment !== "pooled" || !t.move) throw new LifecycleRequestError(`tenant ${id} has no cell move under way; nothing to roll back`);
    if (t.move.phase === "cutover" || t.move.phase === "cleanup") {
      throw new LifecycleRequestError(`tenant ${id}'s move (workflow ${t.move.workflowId}) is in phase ${t.move.phase}: the cell it moved to serves it; a rollback is possible only before the switch`);
    }
    const params: MoveRollbackParams = { moveId: t.move.workflowId };
    return this.create("move-rollback", id, params, opts);
  }

  /**
   * Rotates the tenant's database password in `envs` (default: every environment it has).
   * Refused while it is suspended, offboarding or migrating, and (by the engine) while another
   * of its workflows is under way.
   */
  async requestRotate(id: string, opts: RequestOptions & { envs?: readonly string[] } = {}): Promise<WorkflowRecord> {
    const { tenant: t } = await this.tenant(id);
    const envs = opts.envs && opts.envs.length > 0 ? [...new Set(opts.envs)].sort() : Object.keys(t.environments).sort();
    const refusal = rotationRefusal(t, envs);
    if (refusal) throw new LifecycleRequestError(refusal);
    const params: RotateParams = { envs };
    return this.create("rotate", id, params, opts);
  }
}
