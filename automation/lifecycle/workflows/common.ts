/**
 * What every lifecycle workflow does the same way: read the tenant's file from the repository,
 * edit it (keeping comments), commit through the FleetRepo port, run stacks through the runner,
 * open database sessions, and check in the database that a stack update took effect.
 */
import pg from "pg";
import { loadPlatform, type Platform } from "../../../infra/model/platform.ts";
import { cellStackName, dedicatedStackName, pgTenantIdent } from "../../../infra/model/naming.ts";
import type { Tenant } from "../../../infra/model/schema.ts";
import { parseTenantFile } from "../../../infra/model/tenantFile.ts";
import { formatProblem } from "../../../infra/model/problems.ts";
import { archivePath, editTenantText, isoSeconds, stackPath, tenantPath, type Edit } from "../../../infra/model/fleetFiles/index.ts";
import { PermanentError, type JsonObject, type StepContext } from "../engine/engine.ts";
import { prepareSession } from "../pg/sql.ts";

export { archivePath, stackPath, tenantPath };

export interface TenantFile {
  text: string;
  tenant: Tenant;
  platform: Platform;
}

/** The tenant's file as committed now, parsed and validated on its own. */
export async function readTenant(ctx: StepContext, tenantId: string = ctx.workflow.tenantId): Promise<TenantFile | undefined> {
  const path = tenantPath(tenantId);
  const text = await ctx.ports.repo.read(path);
  if (text === undefined) return undefined;
  const platform = loadPlatform(ctx.ports.repo.root);
  const parsed = parseTenantFile(path, text, { regions: platform.regions, environments: platform.environments }, tenantId);
  if (Array.isArray(parsed)) throw new PermanentError(`${path} does not validate: ${parsed.map(formatProblem).join("; ")}`);
  return { text, tenant: parsed.tenant, platform };
}

export async function requireTenant(ctx: StepContext): Promise<TenantFile> {
  const t = await readTenant(ctx);
  if (!t) throw new PermanentError(`tenant ${ctx.workflow.tenantId} has no file ${tenantPath(ctx.workflow.tenantId)}`);
  return t;
}

export { editTenantText, type Edit };

/** Commits `files` (no-op when nothing changes); returns the commit id, if one was made. */
export async function commitFiles(ctx: StepContext, summary: string, files: Record<string, string | null>): Promise<string | undefined> {
  const commit = await ctx.ports.repo.commit({ tenantId: ctx.workflow.tenantId, workflowId: ctx.workflow.id, summary, files });
  ctx.log({ commit: commit ?? null, files: Object.keys(files) }, commit ? `committed: ${summary}` : `already committed: ${summary}`);
  return commit;
}

/** Runs `up` on each stack in order; returns the run ids. A failed run rejects (the step is retried). */
export async function upStacks(ctx: StepContext, stacks: readonly string[], reason: string): Promise<string[]> {
  const runs: string[] = [];
  for (const stack of stacks) {
    const { runId } = await ctx.ports.runner.up(stack, ctx.runContext(reason));
    ctx.log({ stack, runId }, `stack update succeeded: ${stack}`);
    runs.push(runId);
  }
  return runs;
}

export function envsOf(t: Tenant): string[] {
  return Object.keys(t.environments).sort();
}

/** The cell each env of a pooled (or migrating) tenant lives in. */
export function cellsOf(t: Tenant): Record<string, string> {
  const out: Record<string, string> = {};
  for (const env of envsOf(t)) {
    const cell = t.deployment === "pooled" ? t.placement[env] : t.migration?.from[env];
    if (cell) out[env] = cell;
  }
  return out;
}

export function cellStacks(cells: Record<string, string>): string[] {
  return Object.entries(cells).map(([env, cell]) => cellStackName(env, cell)).sort();
}

export function dedicatedStacks(tenantId: string, envs: readonly string[]): string[] {
  return envs.map((env) => dedicatedStackName(tenantId, env)).sort();
}

/** A connected, prepared session (see prepareSession); the caller ends it. */
export async function openSession(config: pg.ClientConfig): Promise<pg.Client> {
  const c = new pg.Client(config);
  // A server-side termination surfaces on the query that fails, not as an unhandled event.
  c.on("error", () => undefined);
  await c.connect();
  await prepareSession(c);
  return c;
}

export async function withSession<T>(config: pg.ClientConfig, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await openSession(config);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Whether the tenant's role may log in on that database (undefined: no such role). */
export async function roleCanLogin(c: pg.ClientBase, tenantId: string): Promise<boolean | undefined> {
  const { rows } = await c.query<{ login: boolean }>("SELECT rolcanlogin AS login FROM pg_roles WHERE rolname = $1", [pgTenantIdent(tenantId)]);
  return rows[0]?.login;
}

/**
 * Ends every session of the tenant's role and waits until none is left. Revoking LOGIN stops new
 * sessions only; open ones (a connection pool) would keep writing.
 */
export async function terminateSessions(c: pg.ClientBase, tenantId: string, timeoutMs: number): Promise<number> {
  const role = pgTenantIdent(tenantId);
  const deadline = Date.now() + timeoutMs;
  let terminated = 0;
  for (;;) {
    const { rows } = await c.query<{ n: string }>(
      "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::text AS n FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()",
      [role],
    );
    terminated += Number(rows[0]?.n ?? 0);
    const left = await c.query("SELECT 1 FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()", [role]);
    if (left.rowCount === 0) return terminated;
    if (Date.now() > deadline) throw new Error(`sessions of ${role} are still open after ${timeoutMs} ms of terminating them`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * After a stack update that should have set the role's LOGIN to `expected`, checks it did: a
 * workflow never assumes a stack update had an effect it cannot see.
 */
export async function expectLogin(c: pg.ClientBase, tenantId: string, expected: boolean, stack: string): Promise<void> {
  const actual = await roleCanLogin(c, tenantId);
  if (actual !== expected) {
    throw new Error(
      `after the update of ${stack}, role ${pgTenantIdent(tenantId)} ${actual === undefined ? "does not exist" : `has LOGIN ${actual}`}, ` +
        `expected LOGIN ${expected}; check the stack's last run`,
    );
  }
}

export function json(value: unknown): JsonObject {
  return JSON.parse(JSON.stringify(value)) as JsonObject;
}

export { isoSeconds };
