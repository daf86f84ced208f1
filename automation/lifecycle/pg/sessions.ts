/**
 * Database sessions of lifecycle steps and what they check about the tenant's role: open a
 * prepared session, whether the role may log in, end its sessions, and verify that a stack
 * update set LOGIN as expected.
 */
import pg from "pg";
import { pgTenantIdent } from "../../../infra/model/naming.ts";
import { prepareSession } from "./sql.ts";

/**
 * A connected, prepared session (see prepareSession); the caller ends it. With `signal`, the
 * session is ended on both sides when the signal aborts (endOnAbort): whatever it runs stops.
 */
export async function openSession(config: pg.ClientConfig, signal?: AbortSignal): Promise<pg.Client> {
  signal?.throwIfAborted();
  const c = new pg.Client(config);
  // A server-side termination surfaces on the query that fails, not as an unhandled event.
  c.on("error", () => undefined);
  await c.connect();
  try {
    await prepareSession(c);
    if (signal) await endOnAbort(c, config, signal);
  } catch (err) {
    await c.end().catch(() => undefined);
    throw err;
  }
  return c;
}

/**
 * When `signal` aborts (an operator cancelled the workflow of the step using the session), the
 * session ends at once on both sides: the client closes its connection (node-postgres destroys the
 * socket when a query is active, so a COPY being read stops and every queued query fails), and its
 * backend is terminated from a second session (pg_terminate_backend: allowed for a backend of one's
 * own role), because a backend waiting for a lock or blocked sending COPY data does not read its
 * socket and would not notice: its transaction is rolled back and its locks, snapshot and
 * connection released on the server.
 */
async function endOnAbort(c: pg.Client, config: pg.ClientConfig, signal: AbortSignal): Promise<void> {
  const pid = (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
  const onAbort = () => {
    void withSession(config, (admin) => admin.query("SELECT pg_terminate_backend($1)", [pid])).catch(() => undefined);
    void c.end().catch(() => undefined);
  };
  signal.addEventListener("abort", onAbort, { once: true });
  c.once("end", () => signal.removeEventListener("abort", onAbort));
  if (signal.aborted) onAbort();
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
