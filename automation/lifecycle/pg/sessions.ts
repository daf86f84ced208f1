/**
 * Database sessions of lifecycle steps and what they check about the tenant's role: open a
 * prepared session, whether the role may log in, end its sessions, and verify that a stack
 * update set LOGIN as expected.
 */
import pg from "pg";
import { pgTenantIdent } from "../../../infra/model/naming.ts";
import { prepareSession } from "./sql.ts";

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
