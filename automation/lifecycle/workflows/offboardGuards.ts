/**
 * What an offboarding knows about its tenant and checks before it changes anything: its
 * parameters, the tenant's facts as offboard.files records them, the guard of every destructive
 * step (assertDeletable, authorizeProtectionRelease) and the preflight of the ports it needs. The
 * steps themselves are in offboard.ts.
 */
import { z } from "zod";
import { databaseSecretName, dedicatedStackName, masterSecretName, teamSecretName, tenantSecretName } from "../../../infra/model/naming.ts";
import { dedicatedDbIdentifier } from "../../../infra/model/infraNames.ts";
import { addDays } from "../config.ts";
import { PermanentError, type BackupRecord, type JsonObject, type StepContext } from "../engine/engine.ts";
import type { ProtectionRelease } from "../ports.ts";
import { requireBackups } from "./backup.ts";
import { requireFleet } from "../../../infra/model/fleet.ts";
import { poolUsage } from "../../../infra/model/cells.ts";
import type { TenantObjects } from "../ports.ts";
import { envsOf } from "./stacks.ts";
import { requireTenant } from "./tenantFile.ts";

export const OffboardParamsSchema = z
  .object({
    /** Overrides the file's graceDays and the configured default. */
    graceDays: z.number().int().min(0).optional(),
  })
  .strict();

/** What offboard.files records about the tenant (its file moves away later). */
export const TenantFactsSchema = z.object({
  /** The platform's app name (first segment of secret names and RDS identifiers). */
  app: z.string(),
  deployment: z.enum(["pooled", "dedicated"]),
  region: z.string(),
  envs: z.array(z.string()),
  /** env -> cell (pooled). */
  cells: z.record(z.string(), z.string()),
  /** env -> secret names the tenant has there (Secrets Manager). */
  secrets: z.record(z.string(), z.array(z.string())),
  requestedAt: z.string(),
  graceDays: z.number().int().min(0),
});
export type TenantFacts = z.infer<typeof TenantFactsSchema>;

export function facts(ctx: StepContext): TenantFacts {
  const raw = ctx.outputs.get("offboard.files");
  const parsed = TenantFactsSchema.safeParse(raw);
  if (!parsed.success) throw new PermanentError(`workflow ${ctx.workflow.id}: offboard.files has not recorded the tenant's facts`);
  return parsed.data;
}

/** When the grace period of this offboarding ends. */
export function graceEnd(f: Pick<TenantFacts, "requestedAt" | "graceDays">): Date {
  return addDays(new Date(f.requestedAt), f.graceDays);
}

/**
 * The guard of every destructive step. Reads the request time and grace from the step record in
 * the database (ctx.outputs is loaded from lifecycle_steps when the run starts) and the backups
 * from lifecycle_backups, and refuses unless the grace period is over and every env is backed up.
 */
export async function assertDeletable(ctx: StepContext, what: string): Promise<{ facts: TenantFacts; backups: Map<string, BackupRecord>; graceEndedAt: Date }> {
  const f = facts(ctx);
  const end = graceEnd(f);
  const now = ctx.ports.clock.now();
  if (now < end) {
    throw new PermanentError(
      `refusing to ${what} for tenant ${ctx.workflow.tenantId}: its grace period runs until ${end.toISOString()} (requested ${f.requestedAt}, ${f.graceDays} days); nothing was deleted`,
    );
  }
  const backups = await requireBackups(ctx, f.envs, what);
  return { facts: f, backups, graceEndedAt: end };
}

/**
 * The only maker of a ProtectionRelease: for one dedicated stack of a tenant whose grace period is
 * over and whose env has a recorded final backup.
 */
export async function authorizeProtectionRelease(ctx: StepContext, env: string): Promise<ProtectionRelease> {
  const { facts: f, backups, graceEndedAt } = await assertDeletable(ctx, "lift the protection of the dedicated stack");
  if (f.deployment !== "dedicated") throw new PermanentError(`tenant ${ctx.workflow.tenantId} is not dedicated: there is no stack protection to lift`);
  const backup = backups.get(env)!;
  return {
    kind: "offboarding",
    stack: dedicatedStackName(ctx.workflow.tenantId, env),
    workflowId: ctx.workflow.id,
    backupId: backup.id,
    gracePeriodEndedAt: graceEndedAt.toISOString(),
  } as ProtectionRelease;
}

/** The tenant's Secrets Manager secrets in one env, as the stacks name them. */
export function secretNamesOf(app: string, t: { id: string; deployment: string; secrets: readonly string[]; environments: Record<string, { teams?: Record<string, { secrets?: readonly string[] } | undefined> } | undefined> }, env: string): string[] {
  const names = [databaseSecretName(app, env, t.id), ...t.secrets.map((s) => tenantSecretName(app, env, t.id, s))];
  if (t.deployment === "dedicated") names.push(masterSecretName(app, env, t.id));
  for (const [team, def] of Object.entries(t.environments[env]?.teams ?? {})) {
    for (const s of def?.secrets ?? []) names.push(teamSecretName(app, env, t.id, team, s));
  }
  return names.sort();
}

/** When the last of the recorded final backups was recorded. */
export function latestBackup(backups: Map<string, BackupRecord>): Date {
  return new Date(Math.max(...[...backups.values()].map((b) => b.recordedAt.getTime())));
}

/** Manual snapshot id of the offboarding (RDS: letters, digits, hyphens). */
export function offboardSnapshotId(app: string, env: string, tenantId: string, workflowId: string): string {
  return `${dedicatedDbIdentifier(app, env, tenantId)}-offboard-${workflowId.slice(0, 8)}`;
}

/**
 * The cell whose bucket holds the copy of a dedicated tenant's objects in `env`: the first cell of
 * that env in the tenant's region that is deployed (not opening). Its bucket is in the same region
 * (the data stays there), encrypted with the cell's key (the copy stays readable once the tenant's
 * key is gone, as the RDS snapshot's copy under the platform key does), and its `backups/` prefix
 * is outside every tenant role's reach (docs/lifecycle.md).
 */
export function objectBackupCell(root: string, env: string, region: string): string {
  const cell = poolUsage(requireFleet({ projectDir: root }), env, region).cells.find((c) => !c.opening);
  if (!cell) {
    throw new PermanentError(`no deployed cell of ${env} in ${region} whose bucket could hold the copy of the dedicated bucket's objects; open one (docs/cells.md) and retry; nothing was changed`);
  }
  return cell.cell.id;
}

/** A tenant's objects in one env: its prefix of the cell bucket (pooled), or its own bucket. */
export function objectsOf(f: Pick<TenantFacts, "deployment" | "region" | "cells">, tenant: string, env: string): TenantObjects {
  return f.deployment === "pooled" ? { kind: "cell-prefix", env, cell: f.cells[env]!, tenant } : { kind: "tenant-bucket", env, tenant, region: f.region };
}

/** What the preflight checks need to know about the tenant. */
export type PreflightFacts = Pick<TenantFacts, "app" | "deployment" | "region" | "envs" | "cells">;

/** The tenant's facts as offboard.files recorded them, or (before that step) from its file. */
export async function preflightFacts(ctx: StepContext): Promise<PreflightFacts> {
  if (ctx.outputs.has("offboard.files")) return facts(ctx);
  const { tenant: t, platform } = await requireTenant(ctx);
  return {
    app: platform.appName,
    deployment: t.deployment,
    region: t.region,
    envs: envsOf(t),
    cells: t.deployment === "pooled" ? { ...(t.placement as Record<string, string>) } : {},
  };
}

/** A preflight found a port this offboarding needs unusable; nothing was changed. */
export class PreflightError extends PermanentError {
  constructor(readonly problems: readonly string[], message: string) {
    super(message);
  }
}

/**
 * Checks, reading only, that the ports the remaining steps need can do their part: the backup
 * store of every env (pooled) until offboard.backup is done, RDS snapshots and deletion
 * protection (dedicated) until offboard.delete is done, Secrets Manager until offboard.secrets is.
 * Every check runs; the unusable ones are reported together in one PermanentError. A check that
 * failed in a way a retry may mend (AWS throttling, the network) is thrown as it is, for the
 * engine's backoff, when no check failed for good. Returns what each port said (the step output).
 */
export async function preflight(ctx: StepContext, f: PreflightFacts, unchanged: string): Promise<JsonObject> {
  const id = ctx.workflow.tenantId;
  const completed = (step: string) => ctx.outputs.has(step);
  const found: JsonObject = {};
  const problems: string[] = [];
  let retryable: unknown;
  const probe = async (put: (line: string) => void, check: () => Promise<string>) => {
    try {
      put(await check());
    } catch (err) {
      if (err instanceof PermanentError) problems.push(err.message);
      else retryable ??= err;
    }
  };
  if (f.deployment === "pooled" && !completed("offboard.backup")) {
    const backups: JsonObject = {};
    found.backups = backups;
    for (const env of f.envs) await probe((l) => (backups[env] = l), () => ctx.ports.backups.check({ env, cell: f.cells[env]! }));
  }
  if (f.deployment === "dedicated" && !completed("offboard.backup")) {
    const objectCopies: JsonObject = {};
    found.objectCopies = objectCopies;
    for (const env of f.envs) await probe((l) => (objectCopies[env] = l), () => ctx.ports.backups.check({ env, cell: objectBackupCell(ctx.ports.repo.root, env, f.region) }));
  }
  if (f.deployment === "dedicated" && !completed("offboard.delete")) {
    const snapshots: JsonObject = {};
    found.snapshots = snapshots;
    for (const env of f.envs) await probe((l) => (snapshots[env] = l), () => ctx.ports.snapshots.check(dedicatedDbIdentifier(f.app, env, id), f.region));
  }
  if (!completed("offboard.secrets")) await probe((l) => (found.secrets = l), () => ctx.ports.secrets.check(f.region));
  if (problems.length > 0) {
    throw new PreflightError(
      problems,
      `offboarding of tenant ${id} cannot go ahead: ${problems.map((p, i) => `(${i + 1}) ${p}`).join("; ")}. ${unchanged}; configure what is named and retry the workflow`,
    );
  }
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- rethrows the first caught error exactly as the check threw it
  if (retryable !== undefined) throw retryable;
  return found;
}
